import { matchesRequirements, orderCandidates } from '../../adapters/ec2/instance-requirements';

const r = { vcpu: { min: 2, max: 4 }, memory_mib: { min: 4096 }, burstable: 'excluded' as const, max_types: 3, excluded_types: ['m5', 'c6g*', '*.metal'] };
const c = (type: string, vcpus: number, memoryMib: number, burstable = false) => ({ type, vcpus, memoryMib, burstable });

test('instance_requirements: ranges, burstable and excluded families/wildcards; smallest first, cut at max_types', () => {
  expect(matchesRequirements(c('m7g.large', 2, 8192), r)).toBe(true);
  expect(matchesRequirements(c('m7g.2xlarge', 8, 32768), r)).toBe(false);
  expect(matchesRequirements(c('m7g.medium', 1, 4096), r)).toBe(false);
  expect(matchesRequirements(c('t4g.large', 2, 8192, true), r)).toBe(false);
  expect(matchesRequirements(c('m5.large', 2, 8192), r)).toBe(false);
  expect(matchesRequirements(c('m5a.large', 2, 8192), r)).toBe(true);
  expect(matchesRequirements(c('c6gn.large', 2, 4096), r)).toBe(false);
  expect(matchesRequirements(c('m7g.metal', 4, 8192), r)).toBe(false);
  const list = [c('r7g.large', 2, 16384), c('m7g.xlarge', 4, 16384), c('c7g.large', 2, 4096), c('m7g.large', 2, 8192), c('m6g.large', 2, 8192)];
  expect(orderCandidates(list, r)).toEqual(['c7g.large', 'm6g.large', 'm7g.large']);
});
