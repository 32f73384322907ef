/**
 * How the agent puts a delivered file in place: written to a temporary file beside it with its
 * mode set explicitly (never wider than asked: the umask cannot widen it and world-write is
 * dropped), flushed, then renamed over the old one, so a reader sees the old file or the new,
 * never half of one. A file whose content and mode are unchanged is not rewritten.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';

export interface FileToWrite {
  path: string;
  /** Octal, e.g. "0600". */
  mode: string;
  content: string;
}

export interface WrittenFile {
  path: string;
  sha256: string;
  changed: boolean;
}

const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

/** The mode to write with: the one asked for, minus the others' write bit; 0600 when unparseable. */
export function safeMode(mode: string): number {
  const bits = /^0?[0-7]{3}$/.test(mode) ? parseInt(mode, 8) : 0o600;
  return bits & ~0o002;
}

export async function writeFileAtomically(root: string, file: FileToWrite): Promise<WrittenFile> {
  const target = join(root, normalize(`/${file.path}`));
  const mode = safeMode(file.mode);
  const digest = sha256(file.content);
  try {
    const [current, info] = await Promise.all([readFile(target), stat(target)]);
    if (sha256(current) === digest && (info.mode & 0o777) === mode) return { path: file.path, sha256: digest, changed: false };
  } catch {
    /* absent or unreadable: write it */
  }
  await mkdir(dirname(target), { recursive: true, mode: 0o755 });
  const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(file.content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await chmod(temp, mode);
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  return { path: file.path, sha256: digest, changed: true };
}
