/**
 * The files this agent wrote, kept in its own state directory (written-files.json), so that a file
 * removed from the template is removed from the instance too, and nothing else ever is: the agent
 * removes only paths it recorded here before writing them, never a path the server merely names.
 *
 * Removal needs the server's word on what the template still declares (`declared` in the /v1/files
 * answer), not only what one fetch delivered: a secret that failed to render or a certificate not
 * issued yet this instant is left out of a fetch but still declared, and must stay on the instance.
 * An answer without `declared` (an older agent API, a group not resolved) removes nothing.
 */
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';

const LEDGER = 'written-files.json';

export class WrittenFiles {
  private paths: Set<string> | undefined;

  constructor(
    private readonly stateDir: string,
    private readonly filesRoot: string,
  ) {}

  private async load(): Promise<Set<string>> {
    if (this.paths) return this.paths;
    try {
      const saved = JSON.parse(await readFile(join(this.stateDir, LEDGER), 'utf8')) as { paths?: unknown };
      this.paths = new Set(Array.isArray(saved.paths) ? saved.paths.filter((p): p is string => typeof p === 'string') : []);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.paths = new Set();
    }
    return this.paths;
  }

  private async save(paths: Set<string>): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const target = join(this.stateDir, LEDGER);
    await writeFile(`${target}.tmp`, `${JSON.stringify({ paths: [...paths].sort() })}\n`, { mode: 0o600 });
    await rename(`${target}.tmp`, target);
  }

  /** Recorded before the files are written: a crash between the two leaves a path known, never a file unknown. */
  async record(paths: readonly string[]): Promise<void> {
    const known = await this.load();
    const fresh = paths.filter((p) => !known.has(p));
    if (fresh.length === 0) return;
    for (const p of fresh) known.add(p);
    await this.save(known);
  }

  /** Removes every recorded file not in `keep` (from disk, then from the record); returns the paths removed. */
  async prune(keep: ReadonlySet<string>): Promise<string[]> {
    const known = await this.load();
    const gone = [...known].filter((p) => !keep.has(p)).sort();
    for (const path of gone) {
      const onDisk = join(this.filesRoot, normalize(`/${path}`));
      // A directory at the path is not a file this agent wrote: left alone (and forgotten).
      const info = await lstat(onDisk).catch(() => undefined);
      if (info && !info.isDirectory()) await rm(onDisk, { force: true });
      known.delete(path);
    }
    if (gone.length > 0) await this.save(known);
    return gone;
  }

  /** What is recorded now (tests read it). */
  async list(): Promise<string[]> {
    return [...(await this.load())].sort();
  }
}
