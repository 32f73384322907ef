/**
 * Everything one instance receives, as /v1/files delivers it and as a health report's answer
 * compares it: the CA bundle, the group's secret files, the template's rendered files and its
 * certificate files. Built from what is in memory (config, PKI, the files caches, the issued
 * certificates): a health report costs no S3 or secret-store read beyond the caches' own refresh.
 */
import { writeCertLog } from '../../adapters/pki/certlog';
import type { ClusterPki } from '../../adapters/pki/cluster-ca';
import { issueCertificate, publicKeyFingerprint } from '../../adapters/pki/x509';
import { AGENT_API_PORT } from '../../activities/group-spec';
import { contentSha256, type ManifestEntry } from '../../common/files-manifest';
import type { CertificateFilePersistence, FileCertificateIssuer, KeyRequest } from './certificate-files';
import type { AgentApiContext, ShardView } from './context';
import type { LeaderFence } from './fence';
import { CA_BUNDLE_PATH } from '../../common/config/file-paths';

const DAY_MS = 24 * 3600 * 1000;

export { CA_BUNDLE_PATH };

/** With caching off, a health report's look still reads each secret or object at most once per this. */
export const UNCACHED_LOOK_TTL_MS = 5_000;

export interface DeliveredFile {
  path: string;
  mode: string;
  content: string;
  /** Where it came from: "cluster-ca", a secret's name, an object, a template (never a value). */
  source: string;
}

export interface InstanceFileSet {
  files: DeliveredFile[];
  /** Certificate files whose key the agent is to make and submit (POST /v1/keys). */
  keyRequests: KeyRequest[];
  /** Certificate files missing or due, not issued by this look (the health path issues nothing). */
  pending: string[];
  /** Every path the instance's files config names now (see RenderedFiles.declared); absent: remove nothing. */
  declared?: string[];
}

export interface InstanceWho {
  instanceId: string;
  tenant: string;
  group: string;
}

/** Problems already logged (each once, not once per agent fetch). */
const loggedProblems = new Set<string>();

function logOnce(ctx: AgentApiContext, who: InstanceWho, problem: string): void {
  if (loggedProblems.has(problem)) return;
  if (loggedProblems.size > 1000) loggedProblems.clear();
  loggedProblems.add(problem);
  ctx.deps.log(`agent API: file not delivered to ${who.tenant}/${who.group}: ${problem}`);
}

/** Signs a certificate file's certificate and logs it in the certificate log before it is handed out. */
function fileCertificateIssuer(ctx: AgentApiContext, fence: LeaderFence, view: ShardView, pki: ClusterPki): FileCertificateIssuer {
  return async ({ instanceId, tenant, group, spec, publicKey, now }) => {
    fence.check();
    const cert = await issueCertificate({
      caCertPem: pki.caCertPem,
      caKey: pki.caKey,
      publicKey,
      commonName: spec.commonName,
      usage: spec.usage,
      subjectDetails: spec.details,
      dnsNames: spec.dnsNames,
      ips: spec.ips,
      uris: spec.uris,
      validityDays: spec.ttlMs / DAY_MS,
      now,
    });
    fence.check();
    await writeCertLog(
      ctx.objects,
      {
        kind: 'instance-file',
        file: spec.path,
        cluster: view.clusterId,
        shard: ctx.shard,
        tenant,
        group,
        id: instanceId,
        serialNumber: cert.serialNumber,
        subject: [`CN=${spec.commonName}`, ...(spec.details.organization ?? []).map((o) => `O=${o}`)].join(', '),
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        publicKeySha256: publicKeyFingerprint(publicKey),
        issuedAt: new Date(now).toISOString(),
        issuer: `agent-api:${ctx.deps.workerId}`,
        leaderEpoch: fence.epoch,
      },
      { signal: fence.signal },
    );
    return { certPem: cert.pem, serialNumber: cert.serialNumber, notAfter: cert.notAfter };
  };
}

/**
 * The instance's files now. With a fence (a fetch), certificate files that are missing or due are
 * issued (fenced: only the leader signs). Without (a health report's look), they are listed as
 * pending, and secret and storage values come from the same caches as fetches; with caching off
 * (cache_ttl 0) from a cache of UNCACHED_LOOK_TTL_MS, so reports never read a store each.
 */
export async function instanceFileSet(ctx: AgentApiContext, who: InstanceWho, issue?: { fence: LeaderFence }): Promise<InstanceFileSet> {
  const uncachedTtlMs = issue ? 0 : UNCACHED_LOOK_TTL_MS;
  const { view, pki } = await ctx.pki();
  const store = await ctx.secretStore(view);
  const secretFiles = await ctx.secretFiles.forGroup(store, who.tenant, who.group, view.secrets, uncachedTtlMs);
  const out: InstanceFileSet = {
    files: [
      { path: CA_BUNDLE_PATH, mode: '0644', content: pki.caCertPem, source: 'cluster-ca' },
      ...secretFiles.map((f) => ({ path: f.path, mode: '0600', content: f.content, source: f.source })),
    ],
    keyRequests: [],
    pending: [],
  };
  const snapshot = await ctx.config.snapshot();
  if (!snapshot) return out;
  const rendered = await ctx.templateFiles.forInstance({
    config: snapshot.config,
    dynamic: snapshot.dynamic,
    store,
    objects: ctx.objects,
    instanceId: who.instanceId,
    tenant: who.tenant,
    group: who.group,
    caCertPem: pki.caCertPem,
    registrationAddress: view.leaderIp ? `${view.leaderIp}:${AGENT_API_PORT}` : undefined,
    uncachedTtlMs,
  });
  const records = ctx.certificateFileRecords(pki);
  const persistence: CertificateFilePersistence = {
    load: (instanceId) => records.load(instanceId),
    // Only the leader keeps what it issued, and stops at once when deposed.
    ...(issue
      ? {
          save: (instanceId, path, issued) => {
            issue.fence.check();
            return records.save(instanceId, path, issued, issue.fence.signal);
          },
        }
      : {}),
  };
  const certificates = await ctx.certificateFiles.forInstance(who, rendered.certificates, issue && fileCertificateIssuer(ctx, issue.fence, view, pki), persistence);
  for (const problem of [...rendered.problems, ...certificates.problems]) logOnce(ctx, who, problem);
  out.files.push(...rendered.files, ...certificates.files);
  out.keyRequests = certificates.keyRequests;
  out.pending = certificates.pending;
  if (rendered.declared) out.declared = [CA_BUNDLE_PATH, ...secretFiles.map((f) => f.path), ...rendered.declared];
  return out;
}

export function manifestOf(files: readonly DeliveredFile[]): ManifestEntry[] {
  return files.map((f) => ({ path: f.path, mode: f.mode, sha256: contentSha256(f.content) }));
}
