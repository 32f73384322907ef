/**
 * The cluster's PKI: an Ed25519 CA (certificate in S3 at cluster/ca.crt, private
 * key in the configured secret store as "ca-key") and an Ed25519 registration signing
 * key ("registration-key"). Each is created exactly once however many
 * workers start together: the secret is created first (the store's conditional create
 * picks one winner), then the certificate is derived from whichever key won and written
 * create-only, and a certificate already there is checked against the key.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { s3Keys } from '../../common/names';
import type { ObjectStore } from '../s3/objects';
import { WriteConflictError } from '../s3/objects';
import { SecretStores, secretsLocationKey, type SecretsLocation } from '../secrets/factory';
import type { SecretStore } from '../secrets/store';
import { certificateMatchesKey, createCaCertificate, publicKeyFingerprint, type CaSubject } from './x509';

export interface ClusterPki {
  clusterId: string;
  caCertPem: string;
  caKey: KeyObject;
  registrationKey: KeyObject;
  registrationPublicKey: KeyObject;
  /** Key id put in nonce headers: a digest of the registration public key. */
  registrationKid: string;
  created: { caKey: boolean; registrationKey: boolean; caCert: boolean };
}

/** Where the PKI's secrets live: the cluster and its `cluster.secrets` (and bucket, for object storage). */
export type PkiLocation = SecretsLocation & {
  /** `certificates.ca`, rendered: applies only when the CA is first created (an existing CA is never replaced). */
  ca?: CaSubject;
};

/** Names in the secret store (relative to cluster.secrets.prefix). */
export const secretNames = {
  caKey: 'ca-key',
  registrationKey: 'registration-key',
};

function newEd25519Pem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function parseKey(pem: string, name: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new Error(`secret ${name} does not hold a PKCS#8 private key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`secret ${name} holds a ${key.asymmetricKeyType} key; expected Ed25519`);
  return key;
}

export async function ensureClusterPki(deps: { secrets: SecretStore; objects: ObjectStore }, where: { clusterId: string; ca?: CaSubject }): Promise<ClusterPki> {
  const caName = deps.secrets.locate(secretNames.caKey);
  const regName = deps.secrets.locate(secretNames.registrationKey);
  const [ca, reg] = await Promise.all([
    deps.secrets.createIfAbsent(secretNames.caKey, newEd25519Pem, `nstance cluster ${where.clusterId}: CA private key`),
    deps.secrets.createIfAbsent(secretNames.registrationKey, newEd25519Pem, `nstance cluster ${where.clusterId}: registration nonce signing key`),
  ]);
  const caKey = parseKey(ca.value, caName);
  const registrationKey = parseKey(reg.value, regName);

  const key = s3Keys.caCert();
  let caCertPem = (await deps.objects.read(key))?.text;
  let caCertCreated = false;
  if (caCertPem === undefined) {
    const candidate = await createCaCertificate(caKey, where.clusterId, Date.now(), where.ca);
    try {
      await deps.objects.write(key, candidate, { absent: true }, { contentType: 'application/x-pem-file' });
      caCertPem = candidate;
      caCertCreated = true;
    } catch (err) {
      if (!(err instanceof WriteConflictError)) throw err;
      // Another worker wrote it first (from the same key, since the key secret has one winner).
      caCertPem = (await deps.objects.read(key))?.text;
      if (caCertPem === undefined) throw new Error(`s3://${deps.objects.bucket}/${key} was written by another worker but cannot be read back yet; retry`);
    }
  }
  if (!certificateMatchesKey(caCertPem, caKey)) {
    // Never overwrite: a mismatch means someone replaced one half; agents trust the S3 cert.
    throw new Error(
      `s3://${deps.objects.bucket}/${key} does not match the CA key in secret ${caName}: restore the matching pair (or delete both to start a new CA)`,
    );
  }
  const registrationPublicKey = createPublicKey(registrationKey);
  return {
    clusterId: where.clusterId,
    caCertPem,
    caKey,
    registrationKey,
    registrationPublicKey,
    registrationKid: publicKeyFingerprint(registrationPublicKey).slice(0, 16),
    created: { caKey: ca.created, registrationKey: reg.created, caCert: caCertCreated },
  };
}

/** Memoizes the PKI per (cluster, secrets config): it never changes once created, and creating it costs AWS calls. */
export class PkiCache {
  private readonly cache = new Map<string, Promise<ClusterPki>>();
  constructor(private readonly deps: { stores: SecretStores; objects: ObjectStore }) {}

  get(where: PkiLocation): Promise<ClusterPki> {
    const id = secretsLocationKey(where);
    let found = this.cache.get(id);
    if (!found) {
      found = this.deps.stores.for(where).then((secrets) => ensureClusterPki({ secrets, objects: this.deps.objects }, where));
      // A failure (AWS down) is not cached: the next caller tries again.
      found.catch(() => this.cache.delete(id));
      this.cache.set(id, found);
    }
    return found;
  }
}
