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
import { AGENT_API_PORT } from '../../activities/group-spec';
import type { SecretStore } from '../../adapters/secrets/store';

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
export function health(ctx: AgentApiContext, fence: LeaderFence, who: AgentIdentity, body: Record<string, unknown>, remote?: string): { ok: true; nextReportInMs: number } {
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
  // The report may signal a transition (stamped with the current epoch): only while still leading at the request's.
  fence.check();
  ctx.tracker.report(who.instanceId, report);
  return { ok: true, nextReportInMs: ctx.healthIntervalMs };
}

export interface DeliveredFile {
  path: string;
  mode: string;
  content: string;
  /** Where it came from: "cluster-ca" or the secret's name (never its value). */
  source: string;
}

export const CA_BUNDLE_PATH = '/etc/nstance/ca.crt';

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

/** GET /v1/files: the CA bundle plus the group's secret files (cached briefly, see SecretFiles), to an instance that is still running. */
export async function files(ctx: AgentApiContext, who: AgentIdentity, remote?: string): Promise<{ files: DeliveredFile[] }> {
  await ensureInstanceRunning(ctx, who, remote);
  const { view, pki } = await ctx.pki();
  const store = await ctx.secretStore(view);
  const secretFiles = await ctx.secretFiles.forGroup(store, who.tenant, who.group, view.secrets);
  const templated = await templateFilesOf(ctx, who, store, pki.caCertPem, view.leaderIp);
  return {
    files: [
      { path: CA_BUNDLE_PATH, mode: '0644', content: pki.caCertPem, source: 'cluster-ca' },
      ...secretFiles.map((f) => ({ path: f.path, mode: '0600', content: f.content, source: f.source })),
      ...templated,
    ],
  };
}

/** Problems already logged (each once, not once per agent fetch). */
const loggedFileProblems = new Set<string>();

/** The instance's template `files`, rendered (see TemplateFiles); a file that cannot be rendered is logged once and left out. */
async function templateFilesOf(ctx: AgentApiContext, who: AgentIdentity, store: SecretStore, caCertPem: string, leaderIp?: string): Promise<DeliveredFile[]> {
  const snapshot = await ctx.config.snapshot();
  if (!snapshot) return [];
  const rendered = await ctx.templateFiles.forInstance({
    config: snapshot.config,
    dynamic: snapshot.dynamic,
    store,
    objects: ctx.objects,
    instanceId: who.instanceId,
    tenant: who.tenant,
    group: who.group,
    caCertPem,
    registrationAddress: leaderIp ? `${leaderIp}:${AGENT_API_PORT}` : undefined,
  });
  for (const problem of rendered.problems) {
    if (loggedFileProblems.has(problem)) continue;
    if (loggedFileProblems.size > 1000) loggedFileProblems.clear();
    loggedFileProblems.add(problem);
    ctx.deps.log(`agent API: file not delivered to ${who.tenant}/${who.group}: ${problem}`);
  }
  return rendered.files;
}
