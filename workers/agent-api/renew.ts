/**
 * POST /v1/renew: an agent whose certificate nears expiry presents it (mTLS) with a new Ed25519
 * public key and gets a certificate for the same identity (instance, tenant, group: from the one
 * presented, never from the body), logged in the certificate log with the serial it replaces.
 *
 * Only a running instance's certificate renews (an expired one fails TLS verification, a
 * terminated one gets 403), and only in the second half of its life: a certificate cannot be
 * stretched by renewing it over and over, and the certificate log grows by one entry per
 * instance per lifetime, not per request.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { writeCertLog } from '../../adapters/pki/certlog';
import { instanceWorkflowId } from '../../common/names';
import type { AgentApiContext } from './context';
import type { LeaderFence } from './fence';
import { signAgentCertificate } from './agent-certificate';
import { HttpError, requiredString } from './http';
import type { AgentIdentity } from './mtls';
import type { RegisterResponse } from './register';

const DAY_MS = 24 * 3600 * 1000;
/** A certificate may be renewed once less than this share of its lifetime is left. */
export const RENEWABLE_REMAINING_SHARE = 1 / 2;

/** A renewal answers as a registration does: the agent stores either the same way. */
export type RenewResponse = RegisterResponse;

export async function renew(ctx: AgentApiContext, fence: LeaderFence, who: AgentIdentity, req: IncomingMessage, body: Record<string, unknown>, remote?: string): Promise<RenewResponse> {
  const refuse = (status: number, code: string, message: string): never => {
    ctx.reject({ action: 'agent.renew.rejected', reason: code, remote, tenant: who.tenant, group: who.group, instanceIds: [who.instanceId], details: { message, serialNumber: who.serialNumber } });
    throw new HttpError(status, code, message);
  };
  const instanceId = requiredString(body, 'instanceId', 128);
  if (instanceId !== who.instanceId) refuse(403, 'instance-mismatch', `certificate is for instance ${who.instanceId}; it cannot renew one for ${instanceId}`);
  const publicKey = parsePublicKey(requiredString(body, 'publicKey'), refuse);
  const notAfter = Date.parse((req.socket as TLSSocket).getPeerCertificate().valid_to);
  const now = ctx.deps.now();
  const renewableFrom = notAfter - RENEWABLE_REMAINING_SHARE * ctx.clientCertValidityDays * DAY_MS;
  if (now < renewableFrom) {
    refuse(409, 'renewal-not-due', `certificate ${who.serialNumber} of ${who.instanceId} is valid until ${new Date(notAfter).toISOString()}: renew from ${new Date(renewableFrom).toISOString()}`);
  }
  const { view, pki } = await ctx.pki();
  fence.check();
  const { issued, certlogEntry } = signAgentCertificate(ctx, fence, {
    view,
    pki,
    claims: { sub: who.instanceId, tenant: who.tenant, group: who.group },
    publicKey,
    renewalOf: who.serialNumber,
  });
  fence.check();
  // Logged before it is handed out: a certificate nobody can trace is never in use.
  await writeCertLog(ctx.objects, certlogEntry);
  fence.check();
  await ctx.audit('agent.renew', {
    tenant: who.tenant,
    group: who.group,
    instanceIds: [who.instanceId],
    workflowId: instanceWorkflowId(ctx.shard, who.instanceId),
    details: { serialNumber: issued.serialNumber, renewalOf: who.serialNumber, notAfter: issued.notAfter, certlog: issued.certlog, remote, leaderEpoch: fence.epoch },
  });
  return {
    instanceId: who.instanceId,
    certificate: issued.certificate,
    caCertificate: pki.caCertPem,
    serialNumber: issued.serialNumber,
    notAfter: issued.notAfter,
    healthCheckIntervalMs: view.healthCheckIntervalMs,
  };
}

function parsePublicKey(pem: string, refuse: (status: number, code: string, message: string) => never): KeyObject {
  let key: KeyObject | undefined;
  try {
    key = createPublicKey(pem);
  } catch {
    return refuse(400, 'bad-public-key', '"publicKey" is not a PEM SubjectPublicKeyInfo');
  }
  if (key.asymmetricKeyType !== 'ed25519') refuse(400, 'bad-public-key', `"publicKey" must be Ed25519, got ${key.asymmetricKeyType}`);
  return key;
}
