import { HealthTracker } from '../../workers/agent-api/health-tracker';
import type { HealthTransition } from '../../workflows/definitions';

const INTERVAL = 60_000;

function setup(notifyResult: () => Promise<'ok' | 'gone'> = async () => 'ok') {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const sent: HealthTransition[] = [];
  const tracker = new HealthTracker({
    intervalMs: () => INTERVAL,
    now: () => now,
    notify: (t) => {
      sent.push(t);
      return notifyResult();
    },
  });
  return { tracker, sent, advance: (ms: number) => (now += ms) };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('health tracker', () => {
  test('regular healthy reports signal nothing (they stay out of workflow history)', () => {
    const { tracker, sent, advance } = setup();
    tracker.registered('i-1');
    for (let k = 0; k < 10; k++) {
      advance(INTERVAL);
      tracker.report('i-1', { status: 'healthy' });
      tracker.check();
    }
    expect(sent).toEqual([]);
  });

  test('unhealthy after 3 missed intervals, once; healthy again on the next report', () => {
    const { tracker, sent, advance } = setup();
    tracker.registered('i-1');
    advance(3 * INTERVAL - 1);
    expect(tracker.check()).toEqual([]);
    advance(1);
    expect(tracker.check().map((t) => t.status)).toEqual(['unhealthy']);
    advance(INTERVAL);
    expect(tracker.check()).toEqual([]);
    expect(tracker.report('i-1', { status: 'healthy' }).map((t) => t.status)).toEqual(['healthy']);
    expect(sent.map((t) => `${t.instanceId}:${t.status}`)).toEqual(['i-1:unhealthy', 'i-1:healthy']);
    expect(sent[0].reason).toMatch(/3 missed intervals/);
  });

  test('an agent reporting unhealthy is a transition; repeating it is not', () => {
    const { tracker, sent } = setup();
    tracker.registered('i-1');
    tracker.report('i-1', { status: 'unhealthy', reason: 'disk full' });
    tracker.report('i-1', { status: 'unhealthy', reason: 'disk full' });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ status: 'unhealthy', reason: 'agent reports unhealthy: disk full' });
  });

  test('a termination notice is signalled once per deadline, with the deadline', () => {
    const { tracker, sent } = setup();
    tracker.registered('i-1');
    const notice = { deadline: '2026-01-01T00:02:00.000Z', reason: 'spot interruption' };
    tracker.report('i-1', { status: 'healthy', terminationNotice: notice });
    tracker.report('i-1', { status: 'healthy', terminationNotice: notice });
    expect(sent).toEqual([expect.objectContaining({ status: 'termination-notice', deadline: notice.deadline, reason: 'spot interruption' })]);
  });

  test('a failed signal is emitted again on the next check', async () => {
    let fail = true;
    const { tracker, sent, advance } = setup(async () => {
      if (fail) throw new Error('Temporal unavailable');
      return 'ok';
    });
    tracker.registered('i-1');
    advance(3 * INTERVAL);
    tracker.check();
    await flush();
    fail = false;
    tracker.check();
    expect(sent.map((t) => t.status)).toEqual(['unhealthy', 'unhealthy']);
  });

  test('an instance whose workflow is gone is forgotten', async () => {
    const { tracker, advance } = setup(async () => 'gone');
    tracker.registered('i-1');
    advance(3 * INTERVAL);
    tracker.check();
    await flush();
    expect(tracker.size).toBe(0);
  });

  test('seeded instances are expected to report from the seed time; instances already tracked keep their record', () => {
    const { tracker, sent, advance } = setup();
    tracker.registered('i-1');
    advance(2 * INTERVAL);
    expect(tracker.seed(['i-1', 'i-2'])).toBe(1);
    advance(INTERVAL);
    // i-1 was last seen 3 intervals ago (the seed did not refresh it); i-2 was seeded 1 interval ago.
    expect(tracker.check().map((t) => t.instanceId)).toEqual(['i-1']);
    advance(2 * INTERVAL);
    expect(tracker.check().map((t) => t.instanceId)).toEqual(['i-2']);
    expect(sent.map((t) => t.status)).toEqual(['unhealthy', 'unhealthy']);
  });

  test('reset forgets everything (a new leader must not judge by reports it never saw)', () => {
    const { tracker, sent, advance } = setup();
    tracker.registered('i-1');
    tracker.reset();
    advance(10 * INTERVAL);
    expect(tracker.check()).toEqual([]);
    expect(sent).toEqual([]);
  });
});
