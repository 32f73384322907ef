/**
 * Where and how to reach Temporal, for the worker and the CLI alike: the SDK's environment
 * configuration (@temporalio/envconfig), so a profile in temporal.toml (TEMPORAL_CONFIG_FILE,
 * TEMPORAL_PROFILE) or the TEMPORAL_* variables (ADDRESS, NAMESPACE, API_KEY, TLS, TLS_CLIENT_CERT_PATH,
 * TLS_CLIENT_KEY_PATH, TLS_SERVER_CA_CERT_PATH, TLS_SERVER_NAME, GRPC_META_*) point the same binaries
 * at a dev server, a self-hosted cluster with mTLS or Temporal Cloud.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { ConnectionOptions } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';

export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

type Tls = Exclude<NonNullable<NativeConnectionOptions['tls']>, boolean>;
type Metadata = NonNullable<NativeConnectionOptions['metadata']>;

export interface TemporalSettings {
  address: string;
  namespace: string;
  /** undefined: plaintext (the dev server); an object: TLS, with a client pair for mTLS. */
  tls?: Tls;
  apiKey?: string;
  metadata?: Metadata;
  /** The profile the settings came from, for messages. */
  profile: string;
}

export class TemporalSettingsError extends Error {
  override name = 'TemporalSettingsError';
}

export function temporalSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const profile = env.TEMPORAL_PROFILE || 'default';
  let loaded: ReturnType<typeof loadClientConnectConfig>;
  try {
    loaded = loadClientConnectConfig({ overrideEnvVars: definedOnly(env) });
  } catch (err) {
    throw new TemporalSettingsError(`Temporal connection settings (profile "${profile}"${env.TEMPORAL_CONFIG_FILE ? `, ${env.TEMPORAL_CONFIG_FILE}` : ''}): ${(err as Error).message}`, { cause: err });
  }
  const { address, tls, apiKey, metadata } = loaded.connectionOptions;
  const settings: TemporalSettings = {
    address: address || DEFAULT_TEMPORAL_ADDRESS,
    namespace: loaded.namespace || DEFAULT_TEMPORAL_NAMESPACE,
    profile,
  };
  // envconfig turns TLS on for an API key; `false` (TEMPORAL_TLS=false) is plaintext, as is nothing at all.
  if (tls === true) settings.tls = {};
  else if (tls) settings.tls = tls;
  if (typeof apiKey === 'string' && apiKey !== '') settings.apiKey = apiKey;
  if (metadata && Object.keys(metadata).length > 0) settings.metadata = metadata;
  return settings;
}

/** Options for NativeConnection.connect (workers). */
export function nativeConnectionOptions(settings: TemporalSettings): NativeConnectionOptions {
  return { address: settings.address, ...shared(settings) };
}

/** Options for Connection.connect (clients). */
export function clientConnectionOptions(settings: TemporalSettings): ConnectionOptions {
  return { address: settings.address, ...shared(settings) };
}

/** A one-line description for logs and errors; never the API key or the key material. */
export function describeTemporalSettings(settings: TemporalSettings): string {
  const security = settings.tls ? (settings.tls.clientCertPair ? 'mTLS' : 'TLS') : 'plaintext';
  return `${settings.address}/${settings.namespace} (${security}${settings.apiKey ? ', API key' : ''}, profile ${settings.profile})`;
}

function shared(settings: TemporalSettings): Pick<NativeConnectionOptions, 'tls' | 'apiKey' | 'metadata'> {
  return {
    ...(settings.tls ? { tls: settings.tls } : {}),
    ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
    ...(settings.metadata ? { metadata: settings.metadata } : {}),
  };
}

/** envconfig treats an empty variable as set; the project always treated it as unset. */
function definedOnly(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''));
}
