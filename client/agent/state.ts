/** The agent's state directory: its private key, certificate and the CA it trusts. */
import { mkdir, readFile, rename, rm, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';

export interface AgentIdentityFile {
  instanceId: string;
  serialNumber: string;
  registeredAt: string;
  healthCheckIntervalMs: number;
  /** When the current certificate was received by renewal (absent: it is the registration's). */
  renewedAt?: string;
}

export interface AgentState {
  keyPem: string;
  certPem: string;
  caPem: string;
  identity: AgentIdentityFile;
}

const FILES = { key: 'key.pem', cert: 'cert.pem', ca: 'ca.pem', identity: 'identity.json', renewed: 'renewed.json' };

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
  // A renewal that stopped half-way through rewriting the files below: its journal is complete and newer.
  const journal = await readOptional(join(dir, FILES.renewed));
  if (journal) {
    const renewed = JSON.parse(journal) as AgentState;
    await saveRenewedState(dir, renewed);
    return renewed;
  }
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

/**
 * The agent's private key, created before it registers and kept across attempts:
 * a registration retried after a lost response presents the same public key,
 * which the agent API accepts for an already spent nonce (and nothing else does).
 */
export async function loadOrCreateKey(dir: string, create: () => string): Promise<string> {
  const path = join(dir, FILES.key);
  const existing = await readOptional(path);
  if (existing) return existing;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pem = create();
  await writeFile(path, pem, { mode: 0o600 });
  return pem;
}

/**
 * A renewed key and certificate replace the old pair. Key and certificate are two files, which no
 * rename replaces together, so the new state goes first into one journal file (written whole, then
 * renamed into place), then into the usual files, and the journal goes last: a crash anywhere leaves
 * either the old pair or a complete journal, never a key that does not match its certificate.
 */
export async function saveRenewedState(dir: string, state: AgentState): Promise<void> {
  const journal = join(dir, FILES.renewed);
  await writeFile(`${journal}.tmp`, JSON.stringify(state), { mode: 0o600 });
  await rename(`${journal}.tmp`, journal);
  await saveState(dir, state);
  await rm(journal, { force: true });
}
