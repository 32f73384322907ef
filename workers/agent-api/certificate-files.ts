/**
 * The certificate files of the shard's instances, issued by the cluster CA and remembered in the
 * leader's memory, so every fetch (and every health report's "did the files change?") hands out
 * the same certificate until it is due: two thirds through its life, or when its spec changes
 * (a var in a SAN, a new ttl) or the agent submits another public key. Then it is issued again,
 * without replacing the instance; the agent hears of it in its next health report's answer.
 *
 * A key made on the server is delivered with its certificate. A key made on the agent is never
 * seen: the agent is asked for it (`keyRequests` in the /v1/files answer) and submits only the
 * public half (POST /v1/keys). What was issued is also kept in S3 (certificate-file-records.ts):
 * a new leader restores an instance's records at its first look and serves the same certificates
 * (and knows the agent's public keys) until they are due, rather than issuing each again.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { publicKeyFingerprint } from '../../adapters/pki/x509';
import type { KeyRequest } from '../../common/files-manifest';
import type { CertificateFileSpec } from './certificate-spec';
import { reissueAt } from './certificate-spec';
import type { RestoredCertificateFile } from './certificate-file-records';

export interface IssuedFileCertificate {
  certPem: string;
  serialNumber: string;
  notAfter: string;
}

/** Signs (and logs) one certificate: the CA part, injected so this module holds only the decisions. */
export type FileCertificateIssuer = (request: { instanceId: string; tenant: string; group: string; spec: CertificateFileSpec; publicKey: KeyObject; now: number }) => Promise<IssuedFileCertificate>;

interface Held {
  digest: string;
  publicKeySha256: string;
  /** Only for a key made on the server. */
  keyPem?: string;
  certPem: string;
  serialNumber: string;
  issuedAtMs: number;
  notAfterMs: number;
}

export interface CertificateFileOut {
  path: string;
  mode: string;
  content: string;
  source: string;
}

export type { KeyRequest } from '../../common/files-manifest';

/** Where issued certificate files outlive a leadership (CertificateFileRecords); `save` only where issuing is allowed. */
export interface CertificateFilePersistence {
  load(instanceId: string): Promise<Map<string, RestoredCertificateFile>>;
  save?(instanceId: string, path: string, issued: { digest: string; certPem: string; serialNumber: string; issuedAtMs: number; notAfterMs: number; publicKey: KeyObject; keyPem?: string }): Promise<void>;
}

export interface CertificateFilesResult {
  files: CertificateFileOut[];
  keyRequests: KeyRequest[];
  /** Files whose certificate is missing or due and was not issued here (a look that issues nothing). */
  pending: string[];
  problems: string[];
}

/**
 * Certificate-file issues per second at most (each is an Ed25519 signature, about 15 ms of CPU with
 * @peculiar/x509, and a certificate-log PUT): a mass reissue (a new leader, a changed entry for a
 * whole group) is spread out so health reports and registrations keep their share of the process.
 */
export const DEFAULT_ISSUES_PER_SECOND = 20;

/** Far above a shard's instances × certificate files; past it the oldest entries go (they are issued again if asked). */
const MAX_ENTRIES = 50_000;

const key = (instanceId: string, path: string) => `${instanceId}\u0000${path}`;

function remember<V>(map: Map<string, V>, k: string, value: V): void {
  map.delete(k);
  map.set(k, value);
  if (map.size > MAX_ENTRIES) map.delete(map.keys().next().value as string);
}

/** An Ed25519 SubjectPublicKeyInfo PEM, or a message saying what is wrong with it. */
export function parseAgentPublicKey(pem: unknown): KeyObject | string {
  if (typeof pem !== 'string' || pem.length > 4096) return 'a PEM SubjectPublicKeyInfo string';
  let parsed: KeyObject;
  try {
    parsed = createPublicKey(pem);
  } catch {
    return 'a PEM SubjectPublicKeyInfo';
  }
  return parsed.asymmetricKeyType === 'ed25519' ? parsed : `an Ed25519 key (got ${parsed.asymmetricKeyType})`;
}

export class CertificateFiles {
  private readonly held = new Map<string, Held>();
  private readonly agentKeys = new Map<string, KeyObject>();
  private readonly inflight = new Map<string, Promise<Held>>();
  /** Instances whose kept records were read (by this process: a new leader reads each once). */
  private readonly restored = new Map<string, Promise<void>>();

  /** Issues this process may still start now (refilled at issuesPerSecond, at most that many banked). */
  private budget: { tokens: number; at: number };

  constructor(private readonly options: { now: () => number; issuesPerSecond?: number; log?: (line: string) => void }) {
    this.budget = { tokens: this.issuesPerSecond, at: Date.now() };
  }

  private get issuesPerSecond(): number {
    return this.options.issuesPerSecond ?? DEFAULT_ISSUES_PER_SECOND;
  }

  /** Takes one issue from the budget, or says there is none left this instant. */
  private takeIssue(): boolean {
    const now = Date.now();
    this.budget = { tokens: Math.min(this.issuesPerSecond, this.budget.tokens + ((now - this.budget.at) / 1000) * this.issuesPerSecond), at: now };
    if (this.budget.tokens < 1) return false;
    this.budget.tokens -= 1;
    return true;
  }

  /** The public key the agent submitted for an instance's file (replacing an earlier one). */
  submitPublicKey(instanceId: string, path: string, publicKey: KeyObject): void {
    remember(this.agentKeys, key(instanceId, path), publicKey);
  }

  /** What the server holds for a file (tests and the stale view read it). */
  current(instanceId: string, path: string): { serialNumber: string; notAfter: string; reissueAt: string } | undefined {
    const h = this.held.get(key(instanceId, path));
    return h && { serialNumber: h.serialNumber, notAfter: new Date(h.notAfterMs).toISOString(), reissueAt: new Date(reissueAt(h)).toISOString() };
  }

  /**
   * The instance's certificate files. With an issuer, what is missing or due is issued now (the
   * /v1/files path); without, it is only listed in `pending` (the health path: cheap, no signing).
   */
  async forInstance(
    who: { instanceId: string; tenant: string; group: string },
    specs: CertificateFileSpec[],
    issue?: FileCertificateIssuer,
    persistence?: CertificateFilePersistence,
  ): Promise<CertificateFilesResult> {
    const out: CertificateFilesResult = { files: [], keyRequests: [], pending: [], problems: [] };
    if (persistence && specs.some((spec) => !this.held.has(key(who.instanceId, spec.path)))) {
      await this.restore(who.instanceId, persistence).catch((err: Error) => out.problems.push(`reading the kept certificate files failed (issuing instead): ${err.message}`));
    }
    const now = this.options.now();
    await Promise.all(
      specs.map(async (spec) => {
        const k = key(who.instanceId, spec.path);
        const agentKey = spec.agentKey ? this.agentKeys.get(k) : undefined;
        if (spec.agentKey && !agentKey) {
          out.keyRequests.push({ path: spec.path, keyPath: spec.keyPath, publicKeyPath: spec.agentKey.publicKeyPath });
          return;
        }
        let held = this.held.get(k);
        const fresh = held && held.digest === spec.digest && now < reissueAt(held) && (!agentKey || held.publicKeySha256 === publicKeyFingerprint(agentKey));
        // Over the budget (a new leader's first round, a mass reissue): the certificate in hand for now, issued on a later fetch.
        if (!fresh && (!issue || (!this.inflight.has(k) && !this.takeIssue()))) {
          out.pending.push(spec.path);
          if (!held || held.notAfterMs <= now || held.digest !== spec.digest) return;
        } else if (!fresh && issue) {
          try {
            held = await this.issueOnce(k, who, spec, agentKey, issue, persistence);
          } catch (err) {
            // The certificate in hand (if still valid) is better than none while the CA or S3 is unreachable.
            out.problems.push(`${spec.path}: issuing from certificates.${spec.entry} failed: ${(err as Error).message}`);
            if (!held || held.notAfterMs <= now) return;
          }
        }
        if (!held) return;
        const source = `cluster-ca:certificates.${spec.entry}`;
        out.files.push({ path: spec.certPath, mode: '0644', content: held.certPem, source });
        if (held.keyPem) out.files.push({ path: spec.keyPath, mode: '0600', content: held.keyPem, source });
      }),
    );
    return out;
  }

  /** The instance's kept records, into memory (once per instance; a failed read is tried again at the next look). */
  private restore(instanceId: string, persistence: CertificateFilePersistence): Promise<void> {
    const running = this.restored.get(instanceId);
    if (running) return running;
    const promise = (async () => {
      for (const [path, r] of await persistence.load(instanceId)) {
        const k = key(instanceId, path);
        if (!this.held.has(k)) {
          const { digest, certPem, serialNumber, issuedAtMs, notAfterMs, keyPem } = r;
          remember(this.held, k, { digest, certPem, serialNumber, issuedAtMs, notAfterMs, keyPem, publicKeySha256: publicKeyFingerprint(r.publicKey) });
        }
        if (r.agentKey && !this.agentKeys.has(k)) remember(this.agentKeys, k, r.publicKey);
      }
    })();
    remember(this.restored, instanceId, promise);
    promise.catch(() => this.restored.delete(instanceId));
    return promise;
  }

  /** One issuance per file at a time, however many requests ask together. */
  private issueOnce(
    k: string,
    who: { instanceId: string; tenant: string; group: string },
    spec: CertificateFileSpec,
    agentKey: KeyObject | undefined,
    issue: FileCertificateIssuer,
    persistence?: CertificateFilePersistence,
  ): Promise<Held> {
    const running = this.inflight.get(k);
    if (running) return running;
    const promise = (async () => {
      // A server-made key is new at every issue, as an agent's renewal makes a new one.
      const keyPem = agentKey ? undefined : (generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
      const publicKey = agentKey ?? createPublicKey(createPrivateKey(keyPem as string));
      const now = this.options.now();
      const issued = await issue({ ...who, spec, publicKey, now });
      const held: Held = {
        digest: spec.digest,
        publicKeySha256: publicKeyFingerprint(publicKey),
        keyPem,
        certPem: issued.certPem,
        serialNumber: issued.serialNumber,
        issuedAtMs: now,
        notAfterMs: Date.parse(issued.notAfter),
      };
      remember(this.held, k, held);
      // Kept for the next leader; if that fails, this one still serves it (the next would issue it again).
      await persistence?.save?.(who.instanceId, spec.path, { ...held, publicKey }).catch((err: Error) => this.options.log?.(`agent API: keeping the certificate of ${spec.path} for ${who.instanceId} failed: ${err.message}`));
      return held;
    })();
    this.inflight.set(k, promise);
    const clear = () => this.inflight.delete(k);
    promise.then(clear, clear);
    return promise;
  }
}
