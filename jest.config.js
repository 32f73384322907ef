/**
 * Two projects: fast unit tests (no Temporal, no AWS) and integration tests that
 * need the Temporal dev server and the moto emulator (started in global setup).
 * ts-jest transpiles only (isolatedModules); type errors are caught by `tsc --noEmit`.
 * It is set through `tsconfig` because ts-jest 29's own `isolatedModules` option
 * is deprecated and warns on every run.
 */
const tsJest = ['ts-jest', { tsconfig: { isolatedModules: true } }];

/** @type {import('jest').Config} */
module.exports = {
  // Jest 29 reads testTimeout only from the global config (a per-project value is
  // ignored with a warning), so the integration budget applies to unit tests too.
  testTimeout: 120000,
  // The history scan runs after every other test file (it reads the histories they leave).
  testSequencer: '<rootDir>/test/support/sequencer.js',
  // ... and waits until they have (test/support/finished-files.ts), which this reporter tells it.
  reporters: ['default', '<rootDir>/test/support/finished-files-reporter.js'],
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      transform: { '^.+\\.tsx?$': tsJest },
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      transform: { '^.+\\.tsx?$': tsJest },
    },
  ],
};
