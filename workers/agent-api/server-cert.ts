/**
 * The agent API's own TLS certificate: issued by the cluster CA for the names agents dial
 * (the leader network IP, loopback, the host name, any extra), and logged like every
 * certificate the CA signs (pseudo-tenant `_server`).
 */
import { generateKeyPairSync } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { writeCertLog } from '../../adapters/pki/certlog';
import { issueCertificate, publicKeyFingerprint } from '../../adapters/pki/x509';
import type { AgentApiContext } from './context';

export interface ServerTls {
  key: string;
  cert: string;
  ca: string;
}

export async function serverCertificate(
  ctx: AgentApiContext,
  o: { shard: string; workerId: string; host: string; serverNames?: string[]; validityDays: number },
): Promise<ServerTls> {
  const { view, pki } = await ctx.pki();
  const names = new Set(['localhost', osHostname(), '127.0.0.1', '::1', ...(view.leaderIp ? [view.leaderIp] : []), ...(o.serverNames ?? [])]);
  if (o.host !== '0.0.0.0' && o.host !== '::') names.add(o.host);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const issued = await issueCertificate({
    caCertPem: pki.caCertPem,
    caKey: pki.caKey,
    publicKey,
    commonName: `nstance agent API ${o.shard}`,
    organization: view.clusterId,
    organizationalUnit: o.shard,
    usage: 'server',
    dnsNames: [...names].filter((n) => !isIP(n)),
    ips: [...names].filter((n) => isIP(n)),
    validityDays: o.validityDays,
  });
  await writeCertLog(ctx.objects, {
    kind: 'agent-api-server',
    cluster: view.clusterId,
    shard: o.shard,
    tenant: '_server',
    id: o.workerId.replace(/[^A-Za-z0-9_-]/g, '-'),
    serialNumber: issued.serialNumber,
    subject: `CN=nstance agent API ${o.shard}`,
    notBefore: issued.notBefore,
    notAfter: issued.notAfter,
    publicKeySha256: publicKeyFingerprint(publicKey),
    issuedAt: new Date().toISOString(),
    issuer: `agent-api:${o.workerId}`,
  });
  // The chain includes the CA so an agent holding only its nonce's CA pin can discover and check it.
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: `${issued.pem.trim()}\n${pki.caCertPem.trim()}\n`, ca: pki.caCertPem };
}
