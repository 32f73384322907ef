/**
 * The mTLS endpoints. The TLS layer requests a client certificate and checks it
 * against the cluster CA; it does not drop unverified connections itself
 * (rejectUnauthorized: false) so that a wrong certificate gets a clear 401 and an
 * audit entry rather than an opaque handshake failure.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AgentApiContext } from './context';
import type { LeaderFence } from './fence';
import type { HealthReport } from './health-tracker';
import { HttpError, optionalString, requiredString } from './http';
import type { KeyObject } from 'node:crypto';
import { resolveGroup } from '../../common/config';
import { fileSetHash, parseReportedFiles } from '../../common/files-manifest';
import { parseAgentPublicKey, type KeyRequest } from './certificate-files';
import { compareReportedFiles, type HealthFilesAnswer, type ReportedFiles } from './file-reports';
import { instanceFileSet, manifestOf, type DeliveredFile } from './instance-files';

export interface AgentIdentity {
  instanceId: string;
  cluster: string;
  shard: string;
  tenant: string;
  group: string;
  serialNumber: string;
}

const URI = /^nstance:\/\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)$/;

/** The identity in a verified peer certificate, or a 401/403 (audited) saying why not. */
export function authenticate(ctx: AgentApiContext, req: IncomingMessage, endpoint: string): AgentIdentity {
  const socket = req.socket as TLSSocket;
  const remote = `${socket.remoteAddress}:${socket.remotePort}`;
  const cert = socket.getPeerCertificate?.();
  const reject = (status: number, code: string, message: string): never => {
    ctx.reject({
      action: 'agent.auth.rejected',
      reason: code,
      remote,
      instanceIds: cert?.subject?.CN ? [String(cert.subject.CN)] : undefined,
      details: { endpoint, message, serialNumber: cert?.serialNumber },
    });
    throw new HttpError(status, code, message);
  };
  if (!cert || Object.keys(cert).length === 0) return reject(401, 'client-certificate-required', `${endpoint} requires a client certificate issued by the cluster CA (register first)`);
  if (!socket.authorized) {
    return reject(401, 'client-certificate-untrusted', `client certificate ${cert.subject?.CN ?? '(no CN)'} was not issued by this cluster's CA (${socket.authorizationError})`);
  }
  const uri = (cert.subjectaltname ?? '').split(', ').find((n) => n.startsWith('URI:'))?.slice(4) ?? '';
  const m = URI.exec(uri);
  const cn = String(cert.subject?.CN ?? '');
  if (!m || m[5] !== cn) return reject(403, 'client-certificate-not-agent', `certificate ${cn || '(no CN)'} is not an agent certificate (no matching nstance:// URI)`);
  const identity = { cluster: m[1], shard: m[2], tenant: m[3], group: m[4], instanceId: cn, serialNumber: cert.serialNumber };
  if (identity.shard !== ctx.shard) {
    return reject(403, 'wrong-shard', `certificate of ${cn} is for shard "${identity.shard}"; this agent API serves shard "${ctx.shard}"`);
  }
  return identity;
}

/** POST /v1/health: the report stays in memory; only transitions become signals (see HealthTracker). */
export async function health(ctx: AgentApiContext, fence: LeaderFence, who: AgentIdentity, body: Record<string, unknown>, remote?: string): Promise<{ ok: true; nextReportInMs: number; files?: HealthFilesAnswer }> {
  const instanceId = requiredString(body, 'instanceId', 128);
  if (instanceId !== who.instanceId) {
    ctx.reject({
      action: 'agent.health.rejected',
      reason: 'instance-mismatch',
      remote,
      tenant: who.tenant,
      group: who.group,
      instanceIds: [who.instanceId, instanceId],
      details: { serialNumber: who.serialNumber },
    });
    throw new HttpError(403, 'instance-mismatch', `certificate is for instance ${who.instanceId}; it cannot report health for ${instanceId}`);
  }
  const status = body.status ?? 'healthy';
  if (status !== 'healthy' && status !== 'unhealthy') throw new HttpError(400, 'bad-request', '"status" must be "healthy" or "unhealthy"');
  const report: HealthReport = { status, reason: optionalString(body, 'reason', 1024) };
  const notice = body.terminationNotice as { deadline?: unknown; reason?: unknown } | undefined;
  if (notice !== undefined) {
    if (!notice || typeof notice.deadline !== 'string' || Number.isNaN(Date.parse(notice.deadline))) {
      throw new HttpError(400, 'bad-request', '"terminationNotice.deadline" must be an ISO time');
    }
    report.terminationNotice = { deadline: new Date(notice.deadline).toISOString(), reason: typeof notice.reason === 'string' ? notice.reason.slice(0, 256) : undefined };
  }
  let reportedFiles: ReportedFiles | undefined;
  if (body.files !== undefined) {
    const parsed = parseReportedFiles(body.files);
    if (typeof parsed === 'string') throw new HttpError(400, 'bad-request', parsed);
    reportedFiles = parsed;
  }
  // The report may signal a transition (stamped with the current epoch): only while still leading at the request's.
  fence.check();
  ctx.tracker.report(who.instanceId, report);
  const files = reportedFiles && (await compareReportedFiles(ctx, who, reportedFiles));
  return { ok: true, nextReportInMs: ctx.healthIntervalMs, ...(files ? { files } : {}) };
}

export { CA_BUNDLE_PATH, type DeliveredFile } from './instance-files';

/**
 * A client certificate is valid for 90 days, far longer than most instances live, and nothing
 * revokes it. The group's secrets therefore go only to an instance whose workflow still runs
 * (checked through a short cache, see AgentApiContext.instanceStatus); a terminated instance's
 * certificate gets 403 and an audit entry.
 */
async function ensureInstanceRunning(ctx: AgentApiContext, who: AgentIdentity, remote?: string): Promise<void> {
  const status = await ctx.instanceStatus(who.instanceId);
  if (status === 'RUNNING') return;
  const message =
    status === 'NOT_FOUND'
      ? `certificate of ${who.instanceId}: this shard has no workflow for that instance; /v1/files serves only running instances`
      : `certificate of ${who.instanceId}: its instance workflow is ${status} (the instance is gone); /v1/files serves only running instances`;
  ctx.reject({
    action: 'agent.files.rejected',
    reason: 'instance-not-running',
    remote,
    tenant: who.tenant,
    group: who.group,
    instanceIds: [who.instanceId],
    details: { message, workflowStatus: status, serialNumber: who.serialNumber },
  });
  throw new HttpError(403, 'instance-not-running', message);
}

/**
 * GET /v1/files: the CA bundle, the group's secret files and the template's files (secret and
 * storage values cached briefly, certificates issued once and remembered), to an instance that is
 * still running. `keyRequests` lists the certificate files whose key the agent is to make;
 * `declared`, every path the template still names (the agent removes the files it wrote that are not).
 */
export async function files(
  ctx: AgentApiContext,
  fence: LeaderFence,
  who: AgentIdentity,
  remote?: string,
): Promise<{ files: DeliveredFile[]; keyRequests: KeyRequest[]; hash: string; declared?: string[] }> {
  await ensureInstanceRunning(ctx, who, remote);
  const set = await instanceFileSet(ctx, who, { fence });
  return { files: set.files, keyRequests: set.keyRequests, hash: fileSetHash(manifestOf(set.files)), ...(set.declared ? { declared: set.declared } : {}) };
}

/** Public keys per request at most (a template has a handful of certificate files). */
const MAX_SUBMITTED_KEYS = 64;

/**
 * POST /v1/keys `{instanceId, publicKeys: {<file>: <PEM>}}`: the public halves of keys the agent
 * made for its certificate files (Nstance's SubmitPublicKeys). Each must name a certificate file of
 * the instance's template whose key is made on the agent; the certificate is issued on the next fetch.
 */
export async function submitKeys(ctx: AgentApiContext, who: AgentIdentity, body: Record<string, unknown>, remote?: string): Promise<{ accepted: string[] }> {
  const instanceId = requiredString(body, 'instanceId', 128);
  if (instanceId !== who.instanceId) {
    ctx.reject({ action: 'agent.keys.rejected', reason: 'instance-mismatch', remote, tenant: who.tenant, group: who.group, instanceIds: [who.instanceId, instanceId], details: { serialNumber: who.serialNumber } });
    throw new HttpError(403, 'instance-mismatch', `certificate is for instance ${who.instanceId}; it cannot submit keys for ${instanceId}`);
  }
  const submitted = body.publicKeys;
  if (!submitted || typeof submitted !== 'object' || Array.isArray(submitted)) throw new HttpError(400, 'bad-request', '"publicKeys" must be an object {<file>: <public key PEM>}');
  const entries = Object.entries(submitted as Record<string, unknown>);
  if (entries.length === 0 || entries.length > MAX_SUBMITTED_KEYS) throw new HttpError(400, 'bad-request', `"publicKeys" must name 1 to ${MAX_SUBMITTED_KEYS} files`);
  const agentKeyed = await agentKeyedFiles(ctx, who);
  const parsed: [string, KeyObject][] = [];
  for (const [path, pem] of entries) {
    if (!agentKeyed.has(path)) {
      throw new HttpError(400, 'not-an-agent-key', `"publicKeys.${path}": the instance's template has no certificate file "${path}" whose key is made on the agent (key: {source: agent})`);
    }
    const key = parseAgentPublicKey(pem);
    if (typeof key === 'string') throw new HttpError(400, 'bad-public-key', `"publicKeys.${path}" must be ${key}`);
    parsed.push([path, key]);
  }
  for (const [path, key] of parsed) ctx.certificateFiles.submitPublicKey(who.instanceId, path, key);
  return { accepted: parsed.map(([p]) => p) };
}

/** The instance's certificate files whose key is made on the agent. */
async function agentKeyedFiles(ctx: AgentApiContext, who: AgentIdentity): Promise<Set<string>> {
  const snapshot = await ctx.config.snapshot();
  const resolved = snapshot && resolveGroup(snapshot.config, snapshot.dynamic, who.tenant, who.group);
  const files = (resolved && snapshot.config.templates[resolved.template]?.files) || {};
  return new Set(Object.entries(files).filter(([, f]) => f.kind === 'certificate' && f.key?.source === 'agent').map(([path]) => path));
}
