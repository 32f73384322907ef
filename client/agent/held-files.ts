/**
 * What the agent holds, for its health reports, and the keys it makes for certificate files.
 *
 * The files are hashed as they are on disk at report time (a file removed or edited on the
 * instance is reported as it is, and the agent API answers that the files changed). The report
 * carries one digest; the per-file list (bounded to MAX_REPORTED_FILES) only when the agent
 * knows its digest differs from the one the server last answered, so a steady fleet sends 64
 * characters of files per report.
 *
 * A certificate file's key made on the agent (`key: {source: agent}`) is an Ed25519 pair written
 * at the key path (0600) with its public half beside it (`.pub`, 0644), as Nstance's agent does;
 * an existing pair is reused, so a new leader asking again gets the same public key. Only the
 * public key is ever sent.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { contentSha256, fileSetHash, MAX_REPORTED_FILES, type KeyRequest, type ManifestEntry } from '../../common/files-manifest';

export type { KeyRequest } from '../../common/files-manifest';
import { writeFileAtomically } from './file-writer';

export interface FilesReport {
  hash: string;
  held?: ManifestEntry[];
  truncated?: true;
}

const onDisk = (root: string, path: string) => join(root, normalize(`/${path}`));

/** The delivered files as they are on disk now ('' for one that cannot be read). */
export async function heldManifest(root: string, delivered: readonly { path: string; mode: string }[]): Promise<ManifestEntry[]> {
  return Promise.all(
    delivered.map(async (f) => {
      try {
        const [content, info] = await Promise.all([readFile(onDisk(root, f.path)), stat(onDisk(root, f.path))]);
        // The mode as delivered, unless someone changed it on disk (then the report differs and the file is written again).
        const mode = (info.mode & 0o777) === (parseInt(f.mode, 8) & ~0o002) ? f.mode : `0${(info.mode & 0o777).toString(8)}`;
        return { path: f.path, mode, sha256: contentSha256(content) };
      } catch {
        return { path: f.path, mode: f.mode, sha256: '' };
      }
    }),
  );
}

/** The report's `files`: always the digest; the list when the server's last digest differs from ours. */
export function filesReport(held: readonly ManifestEntry[], lastServerHash: string | undefined): FilesReport {
  const hash = fileSetHash(held);
  if (hash === lastServerHash) return { hash };
  return held.length > MAX_REPORTED_FILES ? { hash, held: held.slice(0, MAX_REPORTED_FILES), truncated: true } : { hash, held: [...held] };
}

/** The public key (SPKI PEM) of the pair at the request's key path, made there first if absent. */
export async function agentKeyPair(root: string, request: KeyRequest): Promise<string> {
  let privatePem: string | undefined;
  try {
    const existing = await readFile(onDisk(root, request.keyPath), 'utf8');
    if (createPrivateKey(existing).asymmetricKeyType === 'ed25519') privatePem = existing;
  } catch {
    /* absent or unreadable: make a new pair */
  }
  if (!privatePem) {
    privatePem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await writeFileAtomically(root, { path: request.keyPath, mode: '0600', content: privatePem });
  }
  const publicPem = createPublicKey(privatePem).export({ type: 'spki', format: 'pem' }) as string;
  await writeFileAtomically(root, { path: request.publicKeyPath, mode: '0644', content: publicPem });
  return publicPem;
}
