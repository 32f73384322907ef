/**
 * The files side of a health report. The agent sends the digest of the files it holds (and, when
 * it knows the digests differ, the per-file list); the agent API compares it with what it would
 * deliver now (instance-files.ts, from memory) and answers `files: {hash, changed}`. An agent told
 * `changed` fetches at once, so a changed var, a rotated secret or a reissued certificate reaches
 * it within one health interval rather than at its next periodic fetch. What each instance holds
 * stale is kept here, in the leader's memory, for operators and tests (`FileReports.get`).
 */
import { fileSetHash, staleFiles, type ManifestEntry, type StaleFiles } from '../../common/files-manifest';
import type { AgentApiContext } from './context';
import { instanceFileSet, manifestOf, type InstanceWho } from './instance-files';

export interface ReportedFiles {
  hash: string;
  held?: ManifestEntry[];
  truncated?: boolean;
}

export interface HealthFilesAnswer {
  /** The digest of what the server delivers now. */
  hash: string;
  /** Fetch /v1/files now. */
  changed: boolean;
  /** The files that differ, when the report listed what it holds. */
  stale?: string[];
}

export interface FileStatus {
  at: string;
  agentHash: string;
  expectedHash: string;
  /** From the last report that listed the agent's files (absent when digests matched). */
  stale?: StaleFiles;
  /** Certificate files to issue or whose key the agent has not submitted yet. */
  pendingCertificates: string[];
}

/** A health report must not wait long on the files comparison: past this it is answered without it. */
export const FILE_COMPARE_BUDGET_MS = 2000;
const MAX_TRACKED = 20_000;

export class FileReports {
  private readonly byInstance = new Map<string, FileStatus>();

  record(instanceId: string, status: FileStatus): void {
    this.byInstance.delete(instanceId);
    this.byInstance.set(instanceId, status);
    if (this.byInstance.size > MAX_TRACKED) this.byInstance.delete(this.byInstance.keys().next().value as string);
  }

  get(instanceId: string): FileStatus | undefined {
    return this.byInstance.get(instanceId);
  }

  /** Instances whose last report held something other than what would be delivered. */
  stale(): string[] {
    return [...this.byInstance].filter(([, s]) => s.agentHash !== s.expectedHash || s.pendingCertificates.length > 0).map(([id]) => id);
  }
}

/** Compares the report with the files the instance gets now; undefined when that cannot be worked out in time. */
export async function compareReportedFiles(ctx: AgentApiContext, who: InstanceWho, reported: ReportedFiles): Promise<HealthFilesAnswer | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), FILE_COMPARE_BUDGET_MS);
    timer.unref();
  });
  const compare = (async (): Promise<HealthFilesAnswer> => {
    const set = await instanceFileSet(ctx, who);
    const expected = manifestOf(set.files);
    const expectedHash = fileSetHash(expected);
    const pendingCertificates = [...set.pending, ...set.keyRequests.map((k) => k.path)];
    const stale = reported.held ? staleFiles(expected, reported.held) : undefined;
    ctx.fileReports.record(who.instanceId, { at: new Date(ctx.deps.now()).toISOString(), agentHash: reported.hash, expectedHash, ...(stale ? { stale } : {}), pendingCertificates });
    return {
      hash: expectedHash,
      changed: reported.hash !== expectedHash || pendingCertificates.length > 0,
      ...(stale ? { stale: [...stale.changed, ...stale.missing, ...pendingCertificates] } : {}),
    };
  })();
  try {
    return await Promise.race([compare, late]);
  } catch (err) {
    ctx.deps.log(`agent API: comparing the files of ${who.instanceId} failed (answered without): ${(err as Error).message}`);
    return undefined;
  } finally {
    clearTimeout(timer);
    compare.catch(() => undefined);
  }
}
