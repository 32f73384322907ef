/**
 * Loads `cluster.secrets.encryption_key` and `old_encryption_keys` from where the config says
 * they are. A key is exactly 32 bytes: raw (Nstance's form) or base64 of 32 bytes (what
 * `openssl rand -base64 32` prints, and what the demo seeds). Errors name the config field.
 */
import { readFile } from 'node:fs/promises';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { ApplicationFailure } from '@temporalio/common';
import type { EncryptionKeySource, SecretsConfig } from '../../common/config/secrets';
import { awsErrorCode } from '../aws/errors';
import { KEY_BYTES, KeyRing } from './crypto';

export interface KeyClients {
  secrets: SecretsManagerClient;
  ssm: SSMClient;
}

/** A key that can never load (wrong length, missing variable): retrying will not help. */
export function keyConfigError(field: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'ConfigInvalid', nonRetryable: true, message: `cluster.secrets.${field}: ${message}` });
}

/** 32 raw bytes, or base64 text decoding to 32 bytes; anything else is refused. */
export function keyBytes(text: Buffer, field: string, where: string): Buffer {
  if (text.length === KEY_BYTES) return text;
  const trimmed = text.toString('utf8').trim();
  if (/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) return Buffer.from(trimmed, 'base64');
  throw keyConfigError(field, `${where} holds ${text.length} bytes; an encryption key must be exactly ${KEY_BYTES} bytes (or base64 of 32 bytes, e.g. from "openssl rand -base64 32")`);
}

/** ASCII white space, the bytes Go's strings.TrimSpace (Nstance's file-key trim) removes from either end. */
const ASCII_SPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]);

export function trimAsciiSpace(data: Buffer): Buffer {
  let start = 0;
  let end = data.length;
  while (start < end && ASCII_SPACE.has(data[start] as number)) start++;
  while (end > start && ASCII_SPACE.has(data[end - 1] as number)) end--;
  return data.subarray(start, end);
}

async function loadKey(source: EncryptionKeySource, field: string, clients: KeyClients, env: NodeJS.ProcessEnv): Promise<Buffer> {
  const where = `${source.provider} "${source.source}"`;
  switch (source.provider) {
    case 'env': {
      const value = env[source.source];
      if (value === undefined || value === '') throw keyConfigError(field, `environment variable ${source.source} is not set`);
      return keyBytes(Buffer.from(value, 'utf8'), field, where);
    }
    case 'file': {
      let data: Buffer;
      try {
        data = await readFile(source.source);
      } catch (err) {
        throw keyConfigError(field, `cannot read key file ${source.source}: ${(err as Error).message}`);
      }
      // Nstance trims the file (a trailing newline from an editor is not part of the key). The
      // trim works on the bytes: a binary key need not be valid UTF-8.
      return keyBytes(data.length === KEY_BYTES ? data : trimAsciiSpace(data), field, where);
    }
    case 'aws-secrets-manager': {
      try {
        const out = await clients.secrets.send(new GetSecretValueCommand({ SecretId: source.source }));
        const value = out.SecretBinary ? Buffer.from(out.SecretBinary) : out.SecretString !== undefined ? Buffer.from(out.SecretString, 'utf8') : undefined;
        if (!value?.length) throw keyConfigError(field, `${where} is empty`);
        return keyBytes(value, field, where);
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        if (awsErrorCode(err) === 'ResourceNotFoundException') throw keyConfigError(field, `${where} does not exist`);
        throw new Error(`cluster.secrets.${field}: reading ${where}: ${(err as Error).message}`, { cause: err });
      }
    }
    case 'aws-parameter-store': {
      try {
        const out = await clients.ssm.send(new GetParameterCommand({ Name: source.source, WithDecryption: true }));
        if (out.Parameter?.Type !== 'SecureString') throw keyConfigError(field, `${where} is a ${out.Parameter?.Type ?? 'missing'} parameter; an encryption key must be a SecureString`);
        if (!out.Parameter.Value) throw keyConfigError(field, `${where} is empty`);
        return keyBytes(Buffer.from(out.Parameter.Value, 'utf8'), field, where);
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        if (awsErrorCode(err) === 'ParameterNotFound') throw keyConfigError(field, `${where} does not exist`);
        throw new Error(`cluster.secrets.${field}: reading ${where}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}

/** The key ring of an object-storage store: the current key, then the old ones (decrypt only). */
export async function loadKeyRing(secrets: SecretsConfig, clients: KeyClients, env: NodeJS.ProcessEnv = process.env): Promise<KeyRing> {
  if (!secrets.encryption_key) throw keyConfigError('encryption_key', 'is required by the object-storage provider');
  const current = await loadKey(secrets.encryption_key, 'encryption_key', clients, env);
  const old = await Promise.all((secrets.old_encryption_keys ?? []).map((source, i) => loadKey(source, `old_encryption_keys[${i}]`, clients, env)));
  return new KeyRing(current, old);
}
