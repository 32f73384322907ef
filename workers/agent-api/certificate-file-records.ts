/**
 * Issued certificate files, kept across leader changes, so that a new leader serves the certificate
 * an instance already holds until it is due, instead of issuing every file again (a signature and a
 * certificate-log entry each, and a push to every agent) on its first round.
 *
 * One object per instance, `shard/<shard>/certificate-files/<instance>.json` (deleted by garbage
 * collection with the instance's record, once the instance is gone), written by the leader
 * after each issue (conditionally: the ETag it read, so an old leader's late write never drops a
 * newer leader's entry). Each file's record holds what is public: the certificate, its serial,
 * issue time and expiry, the digest of the spec it was issued for, and the public key. A key made
 * on the agent never reaches the server, so there is nothing more. A key made on the server is
 * sealed (AES-256-GCM, the instance and file as associated data) under a key derived with HKDF from
 * the cluster CA's private key, which lives only in the configured secret store: whoever reads the
 * bucket without the store reads no private key, and a new CA (whose key derives another) makes old
 * records unusable, as their certificates would be.
 *
 * A record is believed only if its certificate verifies under the CA and is for the recorded public
 * key (and, for a sealed key, the key opens and matches): anything else is ignored and issued again.
 */
import { createPrivateKey, createPublicKey, hkdfSync, X509Certificate, type KeyObject } from 'node:crypto';
import type { ObjectStore, WriteCondition } from '../../adapters/s3/objects';
import { WriteConflictError } from '../../adapters/s3/objects';
import { publicKeyFingerprint } from '../../adapters/pki/x509';
import { decryptSecret, encryptSecret } from '../../adapters/secrets/crypto';
import { s3Keys } from '../../common/names';

/** What a leader needs to serve an issued certificate file again. */
export interface CertificateFileRecord {
  digest: string;
  certPem: string;
  serialNumber: string;
  issuedAtMs: number;
  notAfterMs: number;
  /** SPKI PEM of the certificate's key. */
  publicKeyPem: string;
  /** Set when the key was made on the agent (then no private key is anywhere but the instance). */
  agentKey?: true;
  /** A server-made private key, sealed (base64 of nonce ‖ ciphertext ‖ tag). */
  sealedKey?: string;
}

/** A record as a leader uses it: the private key (server-made only) opened. */
export interface RestoredCertificateFile extends Omit<CertificateFileRecord, 'sealedKey'> {
  keyPem?: string;
  publicKey: KeyObject;
}

interface StoredRecords {
  version: 1;
  instanceId: string;
  files: Record<string, CertificateFileRecord>;
}

/** A sealed key opens only for the instance and file it was sealed for: it cannot be moved to another record. */
const sealedFor = (instanceId: string, path: string) => Buffer.from(`${instanceId}\u0000${path}`, 'utf8');
/** Instances whose object (and its ETag) is held in memory at most: far above a shard's. */
const MAX_INSTANCES = 20_000;

export class CertificateFileRecords {
  private readonly sealingKey: Buffer;
  private readonly caPublicKey: KeyObject;
  /** Each instance's object as last read or written here, with its ETag (undefined: absent). */
  private readonly known = new Map<string, { etag: string | undefined; files: Record<string, CertificateFileRecord> }>();
  /** One write per instance at a time, in order: each writes everything known for it. */
  private readonly writing = new Map<string, Promise<unknown>>();

  constructor(
    private readonly options: { objects: ObjectStore; shard: string; caKey: KeyObject; caCertPem: string },
  ) {
    const caKeyDer = options.caKey.export({ type: 'pkcs8', format: 'der' });
    this.sealingKey = Buffer.from(hkdfSync('sha256', caKeyDer, Buffer.alloc(0), 'nstance certificate-file keys v1', 32));
    this.caPublicKey = new X509Certificate(options.caCertPem).publicKey;
  }

  /** The instance's usable records, by file path (read from S3 once; afterwards from memory). */
  async load(instanceId: string): Promise<Map<string, RestoredCertificateFile>> {
    const entry = this.known.get(instanceId) ?? (await this.read(instanceId));
    const out = new Map<string, RestoredCertificateFile>();
    for (const [path, record] of Object.entries(entry.files)) {
      const restored = this.restore(instanceId, path, record);
      if (restored) out.set(path, restored);
    }
    return out;
  }

  /** Adds (or replaces) one file's record and writes the instance's object. */
  save(instanceId: string, path: string, issued: { digest: string; certPem: string; serialNumber: string; issuedAtMs: number; notAfterMs: number; publicKey: KeyObject; keyPem?: string }, signal?: AbortSignal): Promise<void> {
    const record: CertificateFileRecord = {
      digest: issued.digest,
      certPem: issued.certPem,
      serialNumber: issued.serialNumber,
      issuedAtMs: issued.issuedAtMs,
      notAfterMs: issued.notAfterMs,
      publicKeyPem: issued.publicKey.export({ type: 'spki', format: 'pem' }) as string,
      ...(issued.keyPem ? { sealedKey: this.seal(instanceId, path, issued.keyPem) } : { agentKey: true as const }),
    };
    const previous = this.writing.get(instanceId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.write(instanceId, path, record, signal));
    this.writing.set(instanceId, next);
    const clear = () => {
      if (this.writing.get(instanceId) === next) this.writing.delete(instanceId);
    };
    next.then(clear, clear);
    return next;
  }

  private async read(instanceId: string): Promise<{ etag: string | undefined; files: Record<string, CertificateFileRecord> }> {
    const stored = await this.options.objects.read(s3Keys.certificateFiles(this.options.shard, instanceId));
    let files: Record<string, CertificateFileRecord> = {};
    if (stored) {
      try {
        const parsed = JSON.parse(stored.text) as Partial<StoredRecords>;
        if (parsed.version === 1 && parsed.instanceId === instanceId && parsed.files && typeof parsed.files === 'object') files = parsed.files;
      } catch {
        /* unreadable: as if absent (its files are issued again, and the object rewritten) */
      }
    }
    const entry = { etag: stored?.etag, files };
    this.remember(instanceId, entry);
    return entry;
  }

  private async write(instanceId: string, path: string, record: CertificateFileRecord, signal?: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const current = this.known.get(instanceId) ?? (await this.read(instanceId));
      const files = { ...current.files, [path]: record };
      const body: StoredRecords = { version: 1, instanceId, files };
      const condition: WriteCondition = current.etag === undefined ? { absent: true } : { etag: current.etag };
      try {
        const etag = await this.options.objects.write(s3Keys.certificateFiles(this.options.shard, instanceId), JSON.stringify(body), condition, { signal });
        this.remember(instanceId, { etag, files });
        return;
      } catch (err) {
        // Someone else wrote it (another file of the instance elsewhere, a leader before or after): read, merge, again.
        if (!(err instanceof WriteConflictError) || attempt >= 2) throw err;
        this.known.delete(instanceId);
      }
    }
  }

  private remember(instanceId: string, entry: { etag: string | undefined; files: Record<string, CertificateFileRecord> }): void {
    this.known.delete(instanceId);
    this.known.set(instanceId, entry);
    if (this.known.size > MAX_INSTANCES) this.known.delete(this.known.keys().next().value as string);
  }

  private restore(instanceId: string, path: string, record: CertificateFileRecord): RestoredCertificateFile | undefined {
    try {
      const cert = new X509Certificate(record.certPem);
      const publicKey = createPublicKey(record.publicKeyPem);
      if (!cert.verify(this.caPublicKey) || publicKeyFingerprint(cert.publicKey) !== publicKeyFingerprint(publicKey)) return undefined;
      // Serial and expiry as the certificate says, not as the record does.
      const notAfterMs = Date.parse(cert.validTo);
      if (!(record.issuedAtMs < notAfterMs)) return undefined;
      let keyPem: string | undefined;
      if (!record.agentKey) {
        keyPem = record.sealedKey === undefined ? undefined : this.open(instanceId, path, record.sealedKey);
        if (!keyPem || publicKeyFingerprint(createPrivateKey(keyPem)) !== publicKeyFingerprint(publicKey)) return undefined;
      }
      const { sealedKey: _sealed, ...rest } = record;
      return { ...rest, serialNumber: cert.serialNumber, notAfterMs, publicKey, ...(keyPem ? { keyPem } : {}) };
    } catch {
      return undefined;
    }
  }

  private seal(instanceId: string, path: string, keyPem: string): string {
    return encryptSecret(Buffer.from(keyPem, 'utf8'), this.sealingKey, sealedFor(instanceId, path)).toString('base64');
  }

  private open(instanceId: string, path: string, sealed: string): string | undefined {
    return decryptSecret(Buffer.from(sealed, 'base64'), this.sealingKey, sealedFor(instanceId, path))?.toString('utf8');
  }
}
