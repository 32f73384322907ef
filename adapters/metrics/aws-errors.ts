/**
 * Counts throttled and capacity-refused AWS requests (adapters/metrics/domain-metrics.ts)
 * with one middleware per client, outermost in the initialize step: it sees each request's
 * final error, after the SDK's own retries (activity clients make one attempt, so every
 * refusal an activity meets is counted) and after any fault layer a test puts in front.
 */
import type { AwsClients } from '../aws/clients';
import { recordAwsError } from './domain-metrics';

interface Instrumentable {
  middlewareStack: { add(middleware: never, options: { step: 'initialize'; name: string; priority: 'high'; override: boolean }): void };
}

const instrumented = new WeakSet<object>();

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { name?: unknown; Code?: unknown; code?: unknown };
  for (const v of [e.Code, e.code, e.name]) if (typeof v === 'string' && v !== 'Error') return v;
  return undefined;
}

export function instrumentAwsClients(clients: AwsClients): void {
  for (const client of Object.values(clients) as unknown as Instrumentable[]) {
    if (instrumented.has(client)) continue;
    instrumented.add(client);
    const middleware =
      (next: (args: unknown) => Promise<unknown>, context: { clientName?: string; commandName?: string }) =>
      async (args: unknown): Promise<unknown> => {
        try {
          return await next(args);
        } catch (err) {
          const code = errorCode(err);
          if (code) recordAwsError((context.clientName ?? 'unknown').replace(/Client$/, ''), (context.commandName ?? 'unknown').replace(/Command$/, ''), code);
          throw err;
        }
      };
    client.middlewareStack.add(middleware as never, { step: 'initialize', name: 'nstanceErrorMetrics', priority: 'high', override: true });
  }
}
