/** The scale benchmark's own arithmetic: what it reports must be right before it is believed. */
import { errorKind } from '../../bench/scale/fleet-child';
import { sameSizeUserData } from '../../bench/scale/floor';
import { scaleOptions, surgeCount } from '../../bench/scale/options';
import { cohortExpiryMs } from '../../bench/scale/replacement';
import { certLogTime, throughput } from '../../bench/scale/registrations';
import { callFigures, passFigures } from '../../bench/scale/figures';
import type { Sample } from '../../bench/scale/watch';
import { certLogKey } from '../../adapters/pki/certlog';
import { heldCurve } from '../../bench/scale/ledger';
import { msToTs } from '@temporalio/common/lib/time';
import { spread, TimingsCollector, type HistoryEvent } from '../../bench/scale/timings';

const sample = (t: number, passes?: number, historyLength?: number, carriedStateBytes?: number): Sample => ({
  t,
  ec2: { held: 0 },
  group: { desired: 0, running: 0, pending: 0, draining: 0, inService: 0, passes, historyLength, carriedStateBytes },
});

describe('scale benchmark figures', () => {
  it('reads a certificate log key back to the time it names', () => {
    const at = new Date('2026-12-01T10:11:12.345Z');
    expect(certLogTime(certLogKey('s1', 'default', at, 'web-abcdefghijkl'))).toBe(at.getTime());
    expect(certLogTime('shard/s1/certlog/garbage.json')).toBeUndefined();
  });

  it('registration throughput: mean rate first to last, and the busiest 10 s', () => {
    const t0 = 1_000_000;
    // 10 registrations in the first second, then 5 spread over the next 20 s.
    const times = [...Array.from({ length: 10 }, (_, i) => t0 + i * 100), ...Array.from({ length: 5 }, (_, i) => t0 + 1_000 + (i + 1) * 4_000)];
    const r = throughput(times, t0 - 500);
    expect(r).toMatchObject({ count: 15, firstMs: 500, lastMs: 21_500 });
    expect(r.perSecond).toBeCloseTo(15 / 21, 1);
    expect(r.peakPerSecond10s).toBe(1.2);
    expect(throughput([], 0)).toEqual({ count: 0 });
  });

  it('events per pass from diagnostics samples, skipping continue-as-new (history restarts) and idle samples', () => {
    const samples = [sample(0, 10, 100), sample(1, 12, 140), sample(2, 12, 140), sample(3, 13, 20, 900), sample(4, 15, 60, 1200)];
    expect(passFigures(samples)).toEqual({ passes: 4, eventsPerPass: 20, maxEventsPerPass: 20, carriedStateBytesMax: 1200 });
    expect(passFigures([sample(0), sample(1)])).toEqual({ carriedStateBytesMax: undefined });
  });

  it('calls per instance by action, with the throttles the proxy gave', () => {
    const figures = callFigures(
      {
        at: 0,
        actions: {
          'ec2:RunInstances': { calls: 120, instances: 120, outcomes: { ok: 100, throttled: 20 } },
          'ec2:DescribeInstances': { calls: 150, instances: 0, outcomes: { ok: 150 } },
        },
        s3: {},
      },
      100,
    );
    expect(figures.perInstance).toEqual({ 'ec2:DescribeInstances': 1.5, 'ec2:RunInstances': 1.2 });
    expect(figures.totalPerInstance).toBe(2.7);
    expect(figures.throttled).toEqual({ 'ec2:RunInstances': 20 });
  });

  it('surge: a percentage rounds up, a count is a count', () => {
    expect(surgeCount('10%', 2000)).toBe(200);
    expect(surgeCount('10%', 15)).toBe(2);
    expect(surgeCount('3', 2000)).toBe(3);
  });

  it('the cohort expires only after it can all be in service', () => {
    expect(cohortExpiryMs(50, 20_000)).toBe(120_000);
    expect(cohortExpiryMs(2000, 600_000)).toBe(900_000);
    expect(cohortExpiryMs(2000)).toBe(1_200_000);
    expect(cohortExpiryMs(2000, 600_000, 5_000)).toBe(5_000);
  });

  it('the floor sends userdata of exactly the project\'s size', () => {
    for (const bytes of [1, 2, 20, 619, 4096]) expect(Buffer.byteLength(sameSizeUserData(bytes))).toBe(bytes);
  });

  it('counts alike agent failures together', () => {
    expect(errorKind('[web-abcdefghijkl] agent i-0123abcd: POST /v1/register: timed out')).toBe(errorKind('[web-zzzzzzzzzzzz] agent i-99999999: POST /v1/register: timed out'));
  });

  it('reads its knobs, and names a bad one', () => {
    const o = scaleOptions({ BENCH_SIZES: '50, 200', BENCH_HOLD: '10s', BENCH_REPLACE_SIZE: 'off' }, '/tmp/x.json');
    expect(o).toMatchObject({ sizes: [50, 200], holdMs: 10_000, replaceSize: 0, maxSurge: '10%', out: '/tmp/x.json' });
    expect(scaleOptions({ BENCH_SIZES: '50,200' }, '').replaceSize).toBe(200);
    expect(() => scaleOptions({ BENCH_SIZES: '50,x' }, '')).toThrow(/BENCH_SIZES="50,x"/);
    expect(() => scaleOptions({ BENCH_MAX_SURGE: 'lots' }, '')).toThrow(/BENCH_MAX_SURGE/);
    expect(scaleOptions({ BENCH_SIZES: 'none', BENCH_REPLACE_SIZE: '2000' }, '')).toMatchObject({ sizes: [], replaceSize: 2000 });
    expect(() => scaleOptions({ BENCH_SIZES: 'none', BENCH_REPLACE_SIZE: 'off' }, '')).toThrow(/BENCH_SIZES=none .*BENCH_REPLACE_SIZE/);
    expect(() => scaleOptions({ BENCH_SIZES: 'none' }, '')).toThrow(/BENCH_REPLACE_SIZE/);
  });
});

describe('held curve from the proxy ledger', () => {
  it('finds when N were first held and the most held at once', () => {
    const events = [
      { at: 5, kind: 'launched' as const, ids: ['old'] },
      { at: 10, kind: 'launched' as const, ids: ['a', 'b'] },
      { at: 20, kind: 'launched' as const, ids: ['c'] },
      { at: 30, kind: 'terminated' as const, ids: ['a', 'x'] },
      { at: 40, kind: 'launched' as const, ids: ['d', 'e'] },
      { at: 50, kind: 'terminated' as const, ids: ['b', 'c', 'd'] },
    ];
    const curve = heldCurve(events, 10);
    expect(curve).toEqual({ launched: 5, terminated: 4, maxHeld: 4, maxHeldAt: 40, reachedAt: [10, 10, 20, 40], held: new Set(['e']) });
    expect(heldCurve(events, 10, 25, ['z']).maxHeld).toBe(4);
  });
});

describe('phase timings from histories', () => {
  it('splits each workflow task and activity into its wait for a worker and its run', () => {
    const ts = (ms: number) => msToTs(ms);
    const events = [
      { eventId: 1, eventTime: ts(0), workflowTaskScheduledEventAttributes: {} },
      { eventId: 2, eventTime: ts(300), workflowTaskStartedEventAttributes: { scheduledEventId: 1 } },
      { eventId: 3, eventTime: ts(350), workflowTaskCompletedEventAttributes: { scheduledEventId: 1 } },
      { eventId: 4, eventTime: ts(350), activityTaskScheduledEventAttributes: { activityType: { name: 'launchInstance' } } },
      { eventId: 5, eventTime: ts(1350), activityTaskStartedEventAttributes: { scheduledEventId: 4 } },
      { eventId: 6, eventTime: ts(1600), activityTaskCompletedEventAttributes: { scheduledEventId: 4 } },
    ] as unknown as HistoryEvent[];
    const c = new TimingsCollector();
    c.add('instanceWorkflow', events);
    expect(c.summary()).toEqual({
      instanceWorkflow: { waited: spread([300]), ran: spread([50]) },
      'instanceWorkflow/launchInstance': { waited: spread([1000]), ran: spread([250]) },
    });
    expect(spread([5, 1, 3, 2, 4])).toEqual({ count: 5, medianMs: 3, p90Ms: 5, maxMs: 5, totalS: 0 });
  });
});
