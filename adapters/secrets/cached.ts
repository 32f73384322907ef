/**
 * `cluster.secrets.cache_ttl`, as Nstance has it: reads are answered from memory for the TTL
 * (one load however many callers ask at once); this process's own puts and deletes drop the
 * entry at once. A value changed elsewhere is seen at most one TTL later.
 */
import type { SecretStore } from './store';

interface Entry {
  value: string | undefined;
  expiresAt: number;
}

const MAX_ENTRIES = 1000;

export class CachedSecretStore implements SecretStore {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<string | undefined>>();
  /** Bumped by every write, so a read that started before it is not cached after it. */
  private generation = 0;

  constructor(
    readonly inner: SecretStore,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get provider() {
    return this.inner.provider;
  }

  get prefix() {
    return this.inner.prefix;
  }

  locate(name: string): string {
    return this.inner.locate(name);
  }

  get(name: string): Promise<string | undefined> {
    const entry = this.entries.get(name);
    if (entry && entry.expiresAt > this.now()) return Promise.resolve(entry.value);
    const running = this.loading.get(name);
    if (running) return running;
    const generation = this.generation;
    const load = this.inner.get(name).then((value) => {
      if (generation === this.generation) this.remember(name, value);
      return value;
    });
    this.loading.set(name, load);
    const clear = () => this.loading.delete(name);
    load.then(clear, clear);
    return load;
  }

  private remember(name: string, value: string | undefined): void {
    this.entries.delete(name);
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(name, { value, expiresAt: this.now() + this.ttlMs });
  }

  private forget(name: string): void {
    this.generation++;
    this.entries.delete(name);
    this.loading.delete(name);
  }

  async put(name: string, value: string): Promise<void> {
    await this.inner.put(name, value);
    this.forget(name);
  }

  async delete(name: string): Promise<boolean> {
    const deleted = await this.inner.delete(name);
    this.forget(name);
    return deleted;
  }

  list(under?: string): Promise<string[]> {
    return this.inner.list(under);
  }

  async createIfAbsent(name: string, make: () => string, description: string): Promise<{ value: string; created: boolean }> {
    const result = await this.inner.createIfAbsent(name, make, description);
    this.forget(name);
    return result;
  }
}
