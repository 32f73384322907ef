/**
 * The agent's client certificate and its certificate-log entry, built together so the spent
 * nonce's record can hold both (a repeat of the registration then returns the certificate and
 * writes the log entry should the first request have stopped before it did).
 */
import type { KeyObject } from 'node:crypto';
import { certLogKey, type CertLogEntry } from '../../adapters/pki/certlog';
import { issueClientCertificate } from '../../adapters/pki/client-cert';
import type { ClusterPki } from '../../adapters/pki/cluster-ca';
import type { NonceClaims } from '../../adapters/pki/nonce';
import { publicKeyFingerprint } from '../../adapters/pki/x509';
import type { AgentApiContext, ShardView } from './context';
import type { LeaderFence } from './fence';

export const CLIENT_CERT_VALIDITY_DAYS = 90;

/** The SAN URI carried by agent certificates: lets mTLS handlers know the tenant/group without a lookup. */
export function agentUri(c: { cluster: string; shard: string; tenant: string; group: string; instanceId: string }): string {
  return `nstance://${c.cluster}/${c.shard}/${c.tenant}/${c.group}/${c.instanceId}`;
}

/** The certificate kept in a spent nonce's record: what a repeat of the same request gets. */
export interface IssuedRecord {
  certificate: string;
  serialNumber: string;
  notAfter: string;
  issuedAt: string;
  /** Its certificate-log object. */
  certlog: string;
}

/** Signs the agent's certificate in memory: nothing is handed out or logged until the nonce is spent with it. */
export function signAgentCertificate(
  ctx: AgentApiContext,
  fence: LeaderFence,
  r: {
    view: ShardView;
    pki: ClusterPki;
    /** Whose certificate: a registration's nonce claims, or (renewal: no nonce) the current certificate's identity. */
    claims: Pick<NonceClaims, 'sub' | 'tenant' | 'group'> & { jti?: string };
    publicKey: KeyObject;
    ip?: string;
    hostname?: string;
    /** The serial of the certificate this one renews. */
    renewalOf?: string;
  },
): { issued: IssuedRecord; certlogEntry: CertLogEntry } {
  const { view, pki, claims, publicKey, ip, hostname, renewalOf } = r;
  const now = ctx.deps.now();
  const cert = issueClientCertificate({
    caCertPem: pki.caCertPem,
    caKey: pki.caKey,
    publicKey,
    commonName: claims.sub,
    organization: view.clusterId,
    organizationalUnit: ctx.shard,
    uris: [agentUri({ cluster: view.clusterId, shard: ctx.shard, tenant: claims.tenant, group: claims.group, instanceId: claims.sub })],
    validityDays: ctx.clientCertValidityDays,
    now,
  });
  const issuedAt = new Date(now).toISOString();
  const certlogEntry: CertLogEntry = {
    kind: 'agent-client',
    cluster: view.clusterId,
    shard: ctx.shard,
    tenant: claims.tenant,
    group: claims.group,
    id: claims.sub,
    serialNumber: cert.serialNumber,
    subject: `CN=${claims.sub}, OU=${ctx.shard}, O=${view.clusterId}`,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    publicKeySha256: publicKeyFingerprint(publicKey),
    issuedAt,
    nonceId: claims.jti,
    ...(renewalOf ? { renewalOf } : {}),
    reportedIp: ip,
    hostname,
    issuer: `agent-api:${ctx.deps.workerId}`,
    leaderEpoch: fence.epoch,
  };
  const issued: IssuedRecord = { certificate: cert.pem, serialNumber: cert.serialNumber, notAfter: cert.notAfter, issuedAt, certlog: certLogKey(ctx.shard, claims.tenant, new Date(issuedAt), claims.sub) };
  return { issued, certlogEntry };
}
