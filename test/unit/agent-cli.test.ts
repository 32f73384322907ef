/** `nstance agent` writes the files it is given where the config names them: under --files-root, `/` unless told. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentOptions } from '../../client/agent/agent';

const constructed: AgentOptions[] = [];
jest.mock('../../client/agent/agent', () => ({
  Agent: class {
    constructor(options: AgentOptions) {
      constructed.push(options);
    }
    async register() {
      return { identity: { instanceId: 'web-1', serialNumber: '01' } };
    }
    async fetchFiles() {
      return [];
    }
    async checkNotice() {
      return undefined;
    }
    async reportHealth() {}
  },
}));

// Imported after the mock, so the command builds the stand-in agent.
import { agentCommand } from '../../client/agent/cli';

async function runOnce(...args: string[]): Promise<AgentOptions> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-cli-'));
  const ca = join(dir, 'ca.crt');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
  const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    await agentCommand().parseAsync(['--register', '10.0.1.10:8443', '--ca-file', ca, '--state-dir', join(dir, 'state'), '--once', ...args], { from: 'user' });
  } finally {
    write.mockRestore();
  }
  return constructed[constructed.length - 1] as AgentOptions;
}

test('files go to the paths the config names (root /) unless --files-root says otherwise; the state dir holds only state', async () => {
  expect((await runOnce()).filesRoot).toBe('/');
  expect((await runOnce('--files-root', '/mnt/image')).filesRoot).toBe('/mnt/image');
});
