/**
 * What the history scan (test/integration/history-scan.test.ts, the suite's last file) cannot read
 * back from the emulator on its own, written down by the tests that make it: the object-storage
 * encryption keys they make, and secret values they write and then overwrite or delete. One file in
 * the stack's log directory, shared by every test file of the run (each is its own process), one
 * JSON line per entry.
 *
 * With the keys, the scan opens every object-storage secret in the emulator's buckets, whoever
 * wrote it (the workers' CA and registration keys too), and searches the histories for the
 * plaintext; the keys themselves are searched for as well.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { STACK_LOG_DIR_VAR } from './global-setup';

type Entry = { kind: 'key'; label: string; base64: string } | { kind: 'value'; label: string; value: string };

export interface SecretLedger {
  keys: { label: string; key: Buffer }[];
  values: { label: string; value: string }[];
}

function ledgerFile(): string {
  const dir = process.env[STACK_LOG_DIR_VAR];
  if (!dir) throw new Error(`${STACK_LOG_DIR_VAR} is not set: the secret ledger lives in the integration stack's log directory (test/support/global-setup.ts)`);
  return path.join(dir, 'secret-ledger.jsonl');
}

function append(entry: Entry): void {
  // One small write with O_APPEND: lines from concurrent test files never interleave.
  fs.appendFileSync(ledgerFile(), `${JSON.stringify(entry)}\n`);
}

/** Records an object-storage key a test made (or fixed). */
export function recordSecretsKey(label: string, key: Buffer): Buffer {
  append({ kind: 'key', label, base64: key.toString('base64') });
  return key;
}

/**
 * A fresh object-storage key (32 random bytes), recorded, and set as `envVar` (base64) for the
 * config's `encryption_key: { provider: 'env', source: envVar }`, for this process and the workers it spawns.
 */
export function testSecretsKey(envVar: string): Buffer {
  const key = recordSecretsKey(`the key in ${envVar}`, randomBytes(32));
  process.env[envVar] = key.toString('base64');
  return key;
}

/** Records a secret value a test wrote that the emulator may no longer hold when the scan runs (overwritten, deleted). */
export function recordSecretValue(label: string, value: string): string {
  append({ kind: 'value', label, value });
  return value;
}

export function readSecretLedger(): SecretLedger {
  const file = ledgerFile();
  const ledger: SecretLedger = { keys: [], values: [] };
  if (!fs.existsSync(file)) return ledger;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const entry = JSON.parse(line) as Entry;
    if (entry.kind === 'key') ledger.keys.push({ label: entry.label, key: Buffer.from(entry.base64, 'base64') });
    else ledger.values.push({ label: entry.label, value: entry.value });
  }
  return ledger;
}
