import { LiveInstances, type InstanceStatus } from '../../workers/agent-api/live-instances';

function fleet(size: number): Set<string> {
  return new Set(Array.from({ length: size }, (_, i) => `i-${i}`));
}

function live(running: Set<string>, statuses: Map<string, InstanceStatus> = new Map()) {
  let clock = 0;
  const instances = new LiveInstances({
    list: async () => new Set(running),
    describe: async (id) => statuses.get(id) ?? (running.has(id) ? 'RUNNING' : 'NOT_FOUND'),
    ttlMs: 30_000,
    now: () => clock,
  });
  return { instances, advance: (ms: number) => (clock += ms) };
}

test('2,000 agents reporting within one TTL cost one listing and no describe', async () => {
  const running = fleet(2000);
  const { instances } = live(running);
  const answers = await Promise.all([...running].map((id) => instances.status(id)));
  expect(new Set(answers)).toEqual(new Set(['RUNNING']));
  expect(instances.calls).toEqual({ lists: 1, describes: 0 });
});

test('an instance started after the listing is described once, then counted as listed', async () => {
  const running = fleet(3);
  const { instances } = live(running);
  await instances.status('i-0');
  running.add('i-new');
  expect(await instances.status('i-new')).toBe('RUNNING');
  expect(await instances.status('i-new')).toBe('RUNNING');
  expect(instances.calls).toEqual({ lists: 1, describes: 1 });
});

test('a terminated instance is refused from the next listing on, and remembered: its agent asking again costs nothing', async () => {
  const running = fleet(3);
  const statuses = new Map<string, InstanceStatus>();
  const { instances, advance } = live(running, statuses);
  expect(await instances.status('i-1')).toBe('RUNNING');
  running.delete('i-1');
  statuses.set('i-1', 'TERMINATED');
  // Within the TTL the listing stands: the bound on how long a terminated certificate still works.
  advance(29_999);
  expect(await instances.status('i-1')).toBe('RUNNING');
  advance(1);
  expect(await instances.status('i-1')).toBe('TERMINATED');
  for (let i = 0; i < 5; i++) {
    advance(60_000);
    expect(await instances.status('i-1')).toBe('TERMINATED');
  }
  expect(instances.calls.describes).toBe(1);
  // Later listings are made for other agents' requests, never for the gone one.
  expect(instances.calls.lists).toBe(2);
});

test('a failed listing falls back to describing (slower, never wrong)', async () => {
  const errors: string[] = [];
  const instances = new LiveInstances({
    list: async () => {
      throw new Error('visibility unavailable');
    },
    describe: async (id) => (id === 'i-1' ? 'RUNNING' : 'COMPLETED'),
    ttlMs: 30_000,
    onError: (err) => errors.push(err.message),
  });
  expect(await instances.status('i-1')).toBe('RUNNING');
  expect(await instances.status('i-2')).toBe('COMPLETED');
  expect(await instances.status('i-1')).toBe('RUNNING');
  // One failed listing, then describes: a failing visibility is not asked again per request.
  expect(errors).toEqual(['visibility unavailable']);
  expect(instances.calls).toEqual({ lists: 1, describes: 3 });
});
