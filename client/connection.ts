import { Client, Connection } from '@temporalio/client';
import { clientConnectionOptions, describeTemporalSettings, temporalSettingsFromEnv, type TemporalSettings } from '../adapters/temporal/connection-settings';
import { nstanceDataConverter } from '../adapters/temporal/data-converter';

/** Temporal connection settings from envconfig (profiles, TEMPORAL_* variables): see adapters/temporal/connection-settings.ts. */
export type ClientEnv = TemporalSettings;

export function clientEnv(env: NodeJS.ProcessEnv = process.env): ClientEnv {
  return temporalSettingsFromEnv(env);
}

/** A Temporal client (with the project's payload codec) plus a way to close its connection when the command is done. */
export async function connectClient(env: ClientEnv): Promise<{ client: Client; close: () => Promise<void> }> {
  // Before connecting: a missing payload key is the clearer error.
  const dataConverter = nstanceDataConverter();
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...clientConnectionOptions(env), connectTimeout: '5s' });
  } catch (err) {
    throw new Error(`cannot reach Temporal at ${describeTemporalSettings(env)} (set TEMPORAL_ADDRESS or a TEMPORAL_PROFILE): ${(err as Error).message}`, { cause: err });
  }
  return { client: new Client({ connection, namespace: env.namespace, dataConverter }), close: () => connection.close() };
}
