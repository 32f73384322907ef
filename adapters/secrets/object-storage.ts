/**
 * cluster.secrets.provider "object-storage": each secret is an object `cluster/<prefix><name>`
 * (default prefix "secret/") holding AES-256-GCM ciphertext (see crypto.ts), so only S3 and the
 * key are needed: no Secrets Manager permissions. Writes are conditional (If-None-Match for a
 * create, If-Match for a re-encryption), so racers never overwrite each other unseen.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { awsErrorCode, classifyAwsError } from '../aws/errors';
import type { KeyRing } from './crypto';
import { checkSecretName, readWinner, type SecretStore } from './store';

export const OBJECT_SECRETS_ROOT = 'cluster/';

export type ReencryptOutcome = 'current' | 'rewritten' | 'missing' | 'unreadable';

const isConflict = (err: unknown) => ['PreconditionFailed', 'ConditionalRequestConflict'].includes(awsErrorCode(err) ?? '');
const isMissing = (err: unknown) => ['NoSuchKey', 'NotFound'].includes(awsErrorCode(err) ?? '');

export class ObjectStorageSecretStore implements SecretStore {
  readonly provider = 'object-storage' as const;

  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    readonly prefix: string,
    readonly keys: KeyRing,
  ) {}

  private key(name: string): string {
    return `${OBJECT_SECRETS_ROOT}${this.prefix}${checkSecretName(name)}`;
  }

  locate(name: string): string {
    return `s3://${this.bucket}/${this.key(name)}`;
  }

  /** The stored ciphertext and its version. */
  async readBlob(name: string): Promise<{ blob: Buffer; etag: string } | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(name) }));
      return { blob: Buffer.from((await out.Body?.transformToByteArray()) ?? []), etag: out.ETag ?? '' };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw classifyAwsError(err, `reading ${this.locate(name)}`);
    }
  }

  async get(name: string): Promise<string | undefined> {
    const stored = await this.readBlob(name);
    if (!stored) return undefined;
    const opened = this.keys.decrypt(stored.blob);
    if (!opened) {
      throw new Error(
        `${this.locate(name)} cannot be decrypted with cluster.secrets.encryption_key (key ${this.keys.currentId}) or any of old_encryption_keys: was it written under another key?`,
      );
    }
    return opened.plaintext.toString('utf8');
  }

  private async putBlob(name: string, blob: Buffer, condition?: { absent: true } | { etag: string }): Promise<string> {
    const out = await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key(name),
        Body: blob,
        ContentType: 'application/octet-stream',
        ...(condition === undefined ? {} : 'absent' in condition ? { IfNoneMatch: '*' } : { IfMatch: condition.etag }),
      }),
    );
    return out.ETag ?? '';
  }

  async put(name: string, value: string): Promise<void> {
    try {
      await this.putBlob(name, this.keys.encrypt(Buffer.from(value, 'utf8')));
    } catch (err) {
      throw classifyAwsError(err, `writing ${this.locate(name)}`);
    }
  }

  async delete(name: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(name) }));
    } catch (err) {
      if (isMissing(err)) return false;
      throw classifyAwsError(err, `reading ${this.locate(name)}`);
    }
    try {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(name) }));
      return true;
    } catch (err) {
      throw classifyAwsError(err, `deleting ${this.locate(name)}`);
    }
  }

  /** One page of names after `startAfter` (a cursor that survives a crash), at most `limit`. */
  async listPage(options: { under?: string; startAfter?: string; limit: number }): Promise<{ names: string[]; next?: string }> {
    const root = `${OBJECT_SECRETS_ROOT}${this.prefix}`;
    let out;
    try {
      out = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: `${root}${options.under ?? ''}`,
          StartAfter: options.startAfter === undefined ? undefined : `${root}${options.startAfter}`,
          MaxKeys: options.limit,
        }),
      );
    } catch (err) {
      throw classifyAwsError(err, `listing s3://${this.bucket}/${root}`);
    }
    const names = (out.Contents ?? []).map((o) => (o.Key ?? '').slice(root.length)).filter((n) => n !== '' && !n.endsWith('/'));
    return { names, next: out.IsTruncated && names.length > 0 ? names[names.length - 1] : undefined };
  }

  async list(under = ''): Promise<string[]> {
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.listPage({ under, startAfter: cursor, limit: 1000 });
      names.push(...page.names);
      cursor = page.next;
    } while (cursor !== undefined);
    return names.sort();
  }

  async createIfAbsent(name: string, make: () => string, description: string): Promise<{ value: string; created: boolean }> {
    void description; // S3 objects carry no description; the name says what it is.
    const existing = await this.get(name);
    if (existing !== undefined) return { value: existing, created: false };
    const value = make();
    try {
      await this.putBlob(name, this.keys.encrypt(Buffer.from(value, 'utf8')), { absent: true });
      return { value, created: true };
    } catch (err) {
      if (!isConflict(err)) throw classifyAwsError(err, `creating ${this.locate(name)}`);
    }
    return { value: await readWinner(() => this.get(name), this.locate(name)), created: false };
  }

  /**
   * Re-encrypts one secret under the current key, never leaving it readable by neither key: the
   * new ciphertext is checked in memory before it is written, written only over the version that
   * was read (If-Match: a concurrent put, already under the current key, wins), and read back.
   * Idempotent: a secret already under the current key is left alone.
   */
  async reencrypt(name: string): Promise<ReencryptOutcome> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const stored = await this.readBlob(name);
      if (!stored) return 'missing';
      const opened = this.keys.decrypt(stored.blob);
      if (!opened) return 'unreadable';
      if (opened.by === 'current') return 'current';
      const fresh = this.keys.encrypt(opened.plaintext);
      const check = this.keys.decrypt(fresh);
      if (check?.by !== 'current' || !check.plaintext.equals(opened.plaintext)) throw new Error(`re-encrypting ${this.locate(name)}: the new ciphertext does not decrypt to the secret; nothing was written`);
      try {
        await this.putBlob(name, fresh, { etag: stored.etag });
      } catch (err) {
        if (isConflict(err) || isMissing(err)) continue; // Changed (or deleted) since it was read: look again.
        throw classifyAwsError(err, `re-encrypting ${this.locate(name)}`);
      }
      // Read back: whatever is there now (ours, or a later put) must open with a key of the ring.
      const back = await this.readBlob(name);
      if (back && !this.keys.decrypt(back.blob)) throw new Error(`re-encrypting ${this.locate(name)}: what was written does not read back under the current key`);
      return 'rewritten';
    }
    throw new Error(`re-encrypting ${this.locate(name)}: it kept changing under us (5 attempts); retry`);
  }
}
