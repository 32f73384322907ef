/**
 * A shard worker that serves the agent API on loopback (an ephemeral port), for tests
 * that run real agents: resolves once the API listens, rejects if it cannot start.
 */
import type { LeadershipGate } from '../../workers/leadership/gate';
import type { AgentApi, AgentApiListenOptions } from '../../workers/agent-api/server';
import type { Harness } from './harness';

export interface AgentApiWorker {
  api: AgentApi;
  /** host:port the agents dial (userdata names the leader IP instead). */
  address: string;
  port: number;
  stop: () => Promise<void>;
}

export async function startAgentApiWorker(h: Harness, gate: LeadershipGate, listen: Partial<AgentApiListenOptions> = {}): Promise<AgentApiWorker> {
  let failed: (err: Error) => void = () => undefined;
  let onReady: (api: AgentApi) => void = () => undefined;
  const ready = new Promise<AgentApi>((resolve, reject) => {
    failed = reject;
    onReady = resolve;
  });
  const { done, stop } = await h.startWorker({}, {
    agentApi: {
      ...listen,
      port: 0,
      host: '127.0.0.1',
      gate,
      onReady: (a) => onReady(a),
      log: (line) => line.startsWith('agent API failed to start') && failed(new Error(line)),
    },
  });
  done.catch((err: Error) => failed(err));
  const api = await ready;
  const port = api.address?.port;
  if (!port) throw new Error('agent API is not listening');
  return { api, address: `127.0.0.1:${port}`, port, stop };
}
