import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { awsErrorCode, classifyAwsError } from '../aws/errors';

export interface StoredObject {
  text: string;
  etag: string;
}

/** Raised when a conditional write loses to another writer. */
export class WriteConflictError extends Error {
  constructor(
    readonly key: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'WriteConflictError';
  }
}

/**
 * Precondition for a write: `absent` creates only if nothing is there yet;
 * an etag replaces only the version that was read.
 */
export type WriteCondition = { absent: true } | { etag: string };

/** Per call: `signal` aborts the request (a caller whose own caller has gone). */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface ObjectStoreOptions {
  s3: S3Client;
  bucket: string;
}

/** Text objects in one bucket, read with their ETag and written conditionally. */
export class ObjectStore {
  constructor(private readonly options: ObjectStoreOptions) {}

  get bucket(): string {
    return this.options.bucket;
  }

  async read(key: string, call: CallOptions = {}): Promise<StoredObject | undefined> {
    try {
      const out = await this.options.s3.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }), { abortSignal: call.signal });
      return { text: (await out.Body?.transformToString('utf8')) ?? '', etag: out.ETag ?? '' };
    } catch (err) {
      if (awsErrorCode(err) === 'NoSuchKey' || awsErrorCode(err) === 'NotFound') return undefined;
      throw classifyAwsError(err, `reading s3://${this.options.bucket}/${key}`);
    }
  }

  /**
   * A conditional GET (If-None-Match): `'unchanged'` when the object still has `etag` (S3 answers
   * 304 and sends no body), the object when it changed, undefined when it is gone.
   */
  async readIfChanged(key: string, etag: string): Promise<StoredObject | 'unchanged' | undefined> {
    try {
      const out = await this.options.s3.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key, IfNoneMatch: etag }));
      return { text: (await out.Body?.transformToString('utf8')) ?? '', etag: out.ETag ?? '' };
    } catch (err) {
      // The SDK has no modelled error for 304: it surfaces as an unknown error carrying the status.
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 304 || awsErrorCode(err) === 'NotModified') return 'unchanged';
      if (awsErrorCode(err) === 'NoSuchKey' || awsErrorCode(err) === 'NotFound') return undefined;
      throw classifyAwsError(err, `reading s3://${this.options.bucket}/${key}`);
    }
  }

  /** Writes `text` if `condition` still holds; returns the new ETag or throws WriteConflictError. */
  async write(key: string, text: string, condition: WriteCondition, options: CallOptions & { contentType?: string } = {}): Promise<string> {
    try {
      const out = await this.options.s3.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: key,
          Body: text,
          ContentType: options.contentType ?? 'application/json',
          ...('absent' in condition ? { IfNoneMatch: '*' } : { IfMatch: condition.etag }),
        }),
        { abortSignal: options.signal },
      );
      return out.ETag ?? '';
    } catch (err) {
      const code = awsErrorCode(err);
      // A missing object under If-Match means someone deleted what we read: also a conflict.
      if (code === 'PreconditionFailed' || code === 'ConditionalRequestConflict' || ('etag' in condition && code === 'NoSuchKey')) {
        const expected = 'absent' in condition ? 'to be absent' : `at version ${condition.etag}`;
        throw new WriteConflictError(
          key,
          `conflict writing s3://${this.options.bucket}/${key}: expected it ${expected}, but another writer changed it first; nothing was overwritten — re-read and try again`,
          { cause: err },
        );
      }
      throw classifyAwsError(err, `writing s3://${this.options.bucket}/${key}`);
    }
  }
}
