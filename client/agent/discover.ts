/**
 * CA discovery for an agent whose userdata carries only its nonce: the nonce
 * names the SHA-256 of the cluster CA certificate (claim `cafp`), the agent API
 * sends the CA in its TLS chain, and the agent keeps the chain's certificate
 * whose digest matches. Every later request then verifies the server normally
 * against that pinned CA. A server that cannot present the pinned CA gets nothing
 * (the nonce is only sent after this).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { connect, type DetailedPeerCertificate } from 'node:tls';

export async function discoverPinnedCa(target: { host: string; port: number }, fingerprint: string, timeoutMs = 15_000): Promise<string> {
  const peer = await new Promise<DetailedPeerCertificate>((resolve, reject) => {
    // Verification is off for this one handshake only: we read the chain, send nothing, and check the pin below.
    const socket = connect({ host: target.host, port: target.port, rejectUnauthorized: false, minVersion: 'TLSv1.3', timeout: timeoutMs });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate(true));
      socket.destroy();
    });
    socket.once('timeout', () => socket.destroy(new Error(`CA discovery at ${target.host}:${target.port} timed out`)));
    socket.once('error', reject);
  });
  const seen = new Set<string>();
  for (let cert: DetailedPeerCertificate | undefined = peer; cert?.raw && !seen.has(cert.fingerprint256); cert = cert.issuerCertificate) {
    seen.add(cert.fingerprint256);
    if (createHash('sha256').update(cert.raw).digest('hex') === fingerprint.toLowerCase()) {
      const ca = new X509Certificate(cert.raw);
      if (!ca.ca) throw new Error(`the certificate matching the pinned CA digest is not a CA certificate`);
      return ca.toString();
    }
  }
  throw new Error(`the agent API at ${target.host}:${target.port} did not present the cluster CA pinned by the nonce (sha256 ${fingerprint.slice(0, 16)}…): refusing to register`);
}
