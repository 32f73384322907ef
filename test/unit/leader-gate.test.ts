import { leaseTiming } from '../../activities/leader-serve';
import { isInUseError } from '../../adapters/ec2/network-interfaces';
import { MutableLeadershipGate, NotLeaderError } from '../../workers/leadership/gate';
import { interfaceItems } from '../support/fault-proxy';

describe('MutableLeadershipGate holders', () => {
  test('acquire leads at an epoch; release by the holder steps down', () => {
    const gate = new MutableLeadershipGate();
    const seen: boolean[] = [];
    gate.onChange((s) => seen.push(s.leader));
    const t = gate.acquire(3);
    expect(gate.state).toEqual({ leader: true, epoch: 3 });
    expect(() => gate.assertLeader(3)).not.toThrow();
    expect(() => gate.assertLeader(2)).toThrow(NotLeaderError);
    expect(gate.release(t)).toBe(true);
    expect(gate.state.leader).toBe(false);
    expect(() => gate.assertLeader()).toThrow(NotLeaderError);
    expect(seen).toEqual([true, false]);
  });

  test('a newer holder at the same epoch takes over without a gap; the old release is a no-op', () => {
    const gate = new MutableLeadershipGate();
    const old = gate.acquire(5);
    const next = gate.acquire(5);
    expect(gate.release(old)).toBe(false);
    expect(gate.state).toEqual({ leader: true, epoch: 5 });
    expect(gate.release(next)).toBe(true);
  });
});

test('the lease ends before the workflow heartbeat timeout', () => {
  for (const hb of [1_000, 3_000, 4_000, 10_000]) {
    const { leaseMs, renewMs } = leaseTiming(hb);
    expect(leaseMs).toBeLessThan(hb);
    expect(renewMs).toBeLessThan(leaseMs / 2);
  }
});

test('AWS "in use" attach errors are recognised, other rejections are not', () => {
  const err = (name: string, message: string) => Object.assign(new Error(message), { name });
  expect(isInUseError(err('InvalidParameterValue', 'Interface: [eni-1] in use.'))).toBe(true);
  expect(isInUseError(err('InvalidNetworkInterface.InUse', 'x'))).toBe(true);
  expect(isInUseError(err('InvalidParameterValue', 'bad device index'))).toBe(false);
  expect(isInUseError(err('InvalidInstanceID.NotFound', 'in use'))).toBe(false);
});

test('the fault proxy finds each top-level ENI item in a Describe answer', () => {
  const xml =
    '<R><networkInterfaceSet><item><attachment><status>attached</status></attachment><groupSet><item><groupId>sg-1</groupId></item></groupSet>' +
    '<networkInterfaceId>eni-a</networkInterfaceId><tagSet/></item><item><networkInterfaceId>eni-b</networkInterfaceId></item></networkInterfaceSet></R>';
  const items = interfaceItems(xml);
  expect(items.map((i) => i.interfaceId)).toEqual(['eni-a', 'eni-b']);
  expect(items[0]?.text).toContain('<groupId>sg-1</groupId>');
  expect(xml.slice(items[1]?.start, items[1]?.end)).toBe('<item><networkInterfaceId>eni-b</networkInterfaceId></item>');
});
