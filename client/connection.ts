import { Client, Connection } from '@temporalio/client';

export interface ClientEnv {
  temporalAddress: string;
  namespace: string;
}

export function clientEnv(env: NodeJS.ProcessEnv = process.env): ClientEnv {
  return { temporalAddress: env.TEMPORAL_ADDRESS || '127.0.0.1:7233', namespace: env.TEMPORAL_NAMESPACE || 'default' };
}

/** A Temporal client plus a way to close its connection when the command is done. */
export async function connectClient(env: ClientEnv): Promise<{ client: Client; close: () => Promise<void> }> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: env.temporalAddress, connectTimeout: '5s' });
  } catch (err) {
    throw new Error(`cannot reach Temporal at ${env.temporalAddress} (set TEMPORAL_ADDRESS): ${(err as Error).message}`, { cause: err });
  }
  return { client: new Client({ connection, namespace: env.namespace }), close: () => connection.close() };
}
