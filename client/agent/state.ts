/** The agent's state directory: its private key, certificate and the CA it trusts. */
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';

export interface AgentIdentityFile {
  instanceId: string;
  serialNumber: string;
  registeredAt: string;
  healthCheckIntervalMs: number;
}

export interface AgentState {
  keyPem: string;
  certPem: string;
  caPem: string;
  identity: AgentIdentityFile;
}

const FILES = { key: 'key.pem', cert: 'cert.pem', ca: 'ca.pem', identity: 'identity.json' };

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** A complete state (registered before), or undefined. A half-written one counts as absent. */
export async function loadState(dir: string): Promise<AgentState | undefined> {
  const [keyPem, certPem, caPem, identity] = await Promise.all([
    readOptional(join(dir, FILES.key)),
    readOptional(join(dir, FILES.cert)),
    readOptional(join(dir, FILES.ca)),
    readOptional(join(dir, FILES.identity)),
  ]);
  if (!keyPem || !certPem || !caPem || !identity) return undefined;
  return { keyPem, certPem, caPem, identity: JSON.parse(identity) as AgentIdentityFile };
}

/** Private key first with 0600, identity last: identity.json's presence marks a complete registration. */
export async function saveState(dir: string, state: AgentState): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, FILES.key), state.keyPem, { mode: 0o600 });
  await chmod(join(dir, FILES.key), 0o600);
  await writeFile(join(dir, FILES.cert), state.certPem);
  await writeFile(join(dir, FILES.ca), state.caPem);
  await writeFile(join(dir, FILES.identity), `${JSON.stringify(state.identity, null, 2)}\n`);
}
