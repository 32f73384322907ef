import * as fs from 'fs';
import { bundledExampleConfig, sharedExampleConfig } from '../../../scripts/seed/example-config';

describe("the repo's copy of Nstance's example config", () => {
  const bundled = bundledExampleConfig(__dirname);
  const shared = sharedExampleConfig(__dirname);

  test('exists, so a checkout without ../shared runs the demo and the tests', () => {
    expect(bundled).toBeDefined();
  });

  // Where the original is present (the usual layout), the copy must not drift from it.
  (shared ? test : test.skip)('equals ../shared/examples/config.example.jsonc', () => {
    expect(fs.readFileSync(bundled as string, 'utf8')).toBe(fs.readFileSync(shared as string, 'utf8'));
  });
});
