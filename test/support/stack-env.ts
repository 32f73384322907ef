/**
 * Where the integration stack (started by test/support/global-setup.ts) listens.
 * Global setup publishes it through process.env, which jest hands to every test file.
 */

export interface StackEnv {
  /** Temporal frontend, host:port (namespace "default"). */
  temporalAddress: string;
  /** moto, e.g. http://127.0.0.1:41234 */
  awsEndpoint: string;
  region: string;
  /** The pinned temporal CLI, for @temporalio/testing's `executable: { type: 'existing-path' }`. */
  temporalBin: string;
  /** The pinned time-skipping test server, for TestWorkflowEnvironment.createTimeSkipping. */
  testServerBin: string;
}

/** The variables global setup sets; listed once so setup and readers cannot drift. */
export const STACK_ENV_VARS = {
  temporalAddress: 'TEMPORAL_ADDRESS',
  awsEndpoint: 'AWS_ENDPOINT_URL',
  region: 'AWS_REGION',
  temporalBin: 'NSTANCE_TEMPORAL_BIN',
  testServerBin: 'NSTANCE_TEST_SERVER_BIN',
} as const satisfies Record<keyof StackEnv, string>;

/** Set by global setup only, so a TEMPORAL_ADDRESS left in a developer's shell cannot pass for it. */
export const STACK_MARKER_VAR = 'NSTANCE_TEST_STACK';

export function stackEnv(env: NodeJS.ProcessEnv = process.env): StackEnv {
  const missing = [STACK_MARKER_VAR, ...Object.values(STACK_ENV_VARS)].filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(
      'the integration stack is not running: test/support/global-setup.ts did not run ' +
        `(missing ${missing.join(', ')}). ` +
        'Run integration tests with `npx jest --selectProjects integration`, not a bare test file.',
    );
  }
  const value = (name: string): string => env[name] as string;
  return {
    temporalAddress: value(STACK_ENV_VARS.temporalAddress),
    awsEndpoint: value(STACK_ENV_VARS.awsEndpoint),
    region: value(STACK_ENV_VARS.region),
    temporalBin: value(STACK_ENV_VARS.temporalBin),
    testServerBin: value(STACK_ENV_VARS.testServerBin),
  };
}
