/**
 * Whether this worker process currently leads its shard. The leader-only
 * services (agent API, leader-only duties) consult it on every request, so
 * losing leadership stops them at once.
 */
export interface LeadershipState {
  leader: boolean;
  /** Epoch of the leadership this worker holds (or last held). */
  epoch?: number;
}

export class NotLeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotLeaderError';
  }
}

export interface LeadershipGate {
  readonly state: LeadershipState;
  /** Throws NotLeaderError unless this worker leads (at `epoch`, when given). */
  assertLeader(epoch?: number): void;
  onChange(listener: (state: LeadershipState) => void): () => void;
}

/** The gate the leadership activity drives. */
export class MutableLeadershipGate implements LeadershipGate {
  private current: LeadershipState = { leader: false };
  private listeners = new Set<(state: LeadershipState) => void>();

  get state(): LeadershipState {
    return { ...this.current };
  }

  assertLeader(epoch?: number): void {
    if (!this.current.leader) throw new NotLeaderError('this worker is not the shard leader');
    if (epoch !== undefined && epoch !== this.current.epoch) {
      throw new NotLeaderError(`leadership epoch ${epoch} is stale: this worker leads at epoch ${this.current.epoch}`);
    }
  }

  set(state: LeadershipState): void {
    this.holder = undefined;
    this.publish(state);
  }

  /**
   * Takes leadership for one holder (a serve-as-leader activity). A newer holder
   * at the same epoch (the leader workflow continued-as-new and restarted the
   * activity) takes over without a gap; the older one's release is then a no-op.
   */
  acquire(epoch: number): symbol {
    const token = Symbol(`leader-epoch-${epoch}`);
    this.holder = token;
    this.publish({ leader: true, epoch });
    return token;
  }

  /** Steps down if `token` still holds leadership; true when it did. */
  release(token: symbol): boolean {
    if (this.holder !== token) return false;
    this.holder = undefined;
    this.publish({ leader: false, epoch: this.current.epoch });
    return true;
  }

  private holder: symbol | undefined;

  private publish(state: LeadershipState): void {
    this.current = { ...state };
    for (const listener of this.listeners) listener(this.state);
  }

  onChange(listener: (state: LeadershipState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** For single-worker setups and tests that do not exercise election: always the leader. */
export function alwaysLeader(epoch = 1): LeadershipGate {
  const gate = new MutableLeadershipGate();
  gate.set({ leader: true, epoch });
  return gate;
}
