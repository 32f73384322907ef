/** Messages between bench/agent-api.ts and its agent driver process. */

export interface PathStats {
  /** Requests answered 2xx (the latencies are theirs). */
  answered: number;
  /** Count per HTTP status (0: no answer). */
  statuses: Record<string, number>;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export type DriverMessage =
  | { type: 'init'; address: string; caPem: string; stateRoot: string; healthIntervalMs: number }
  | { type: 'start'; batch: string; agents: { instanceId: string; nonce: string }[] }
  /** Agents that hold a certificate already (saved in their state directory): they start reporting at once. */
  | { type: 'adopt'; agents: { instanceId: string; keyPem: string; certPem: string; serialNumber: string }[] }
  | { type: 'stats'; id: number; reset?: boolean }
  | { type: 'stop' };

export type DriverReply =
  | { type: 'ready' }
  | { type: 'registered'; batch: string; registeredMs: number[]; failed: number }
  | { type: 'adopted'; count: number }
  | {
      type: 'stats';
      id: number;
      paths: Record<string, PathStats>;
      agents: number;
      registered: number;
      eventLoopDelayMs: { p99: number; max: number };
      rssBytes: number;
    };
