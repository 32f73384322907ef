import {
  ConfigValidationError,
  DynamicGroups,
  emptyDynamicGroups,
  parseConfigText,
  parseDynamicGroupsText,
  resolveGroup,
  resolveGroups,
  serializeDynamicGroups,
  validateDynamicGroups,
  withoutOrphanOverrides,
} from '../../../common/config';
import { exampleText } from './example';

const config = parseConfigText(exampleText, 'config.jsonc');
const FILE = 'shard/use1-az1/groups.jsonc';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigValidationError) return e.message.split('\n');
    throw e;
  }
  throw new Error('expected a ConfigValidationError');
}

const validText = `{
  // written by the CLI
  "groups": {
    "default": { "web": { "size": 7 } },
    "team-a": { "batch-jobs": { "template": "web", "size": 2, "instance_type": "m7g.2xlarge", "vars": { "Queue": "jobs" } } },
  },
}`;

describe('dynamic groups', () => {
  it('parses size overrides and full groups, and validates against the config', () => {
    const dynamic = parseDynamicGroupsText(validText, FILE);
    expect(dynamic.groups.default.web).toEqual({ size: 7 });
    expect(dynamic.groups['team-a']['batch-jobs'].template).toBe('web');
    expect(() => validateDynamicGroups(config, dynamic, FILE)).not.toThrow();
  });

  it('a size-only override replaces the static size; a full group adds a group', () => {
    const dynamic = parseDynamicGroupsText(validText, FILE);
    const groups = resolveGroups(config, dynamic);
    expect(groups.map((g) => `${g.tenant}/${g.group}:${g.size}:${g.sizeSource}`)).toEqual([
      'default/web:7:dynamic',
      'team-a/batch-jobs:2:dynamic',
    ]);
    const batch = resolveGroup(config, dynamic, 'team-a', 'batch-jobs');
    expect(batch?.instanceType).toBe('m7g.2xlarge');
    expect(batch?.vars).toEqual({ Environment: 'demo', Queue: 'jobs' });
    expect(batch?.kind).toBe('web');
    // everything but the size still comes from config.jsonc
    expect(resolveGroup(config, dynamic, 'default', 'web')?.drainTimeoutMs).toBe(120_000);
  });

  it('splits off size overrides of groups the config no longer has; keeps everything else', () => {
    const dynamic = parseDynamicGroupsText(validText, FILE);
    dynamic.groups.gone = { api: { size: 3 } };
    const { dynamic: kept, orphans } = withoutOrphanOverrides(config, dynamic);
    expect(orphans).toEqual(['gone/api']);
    expect(kept.groups.gone).toBeUndefined();
    expect(kept.groups.default.web).toEqual({ size: 7 });
    expect(kept.groups['team-a']['batch-jobs'].template).toBe('web');
    expect(() => validateDynamicGroups(config, dynamic, FILE)).toThrow(/gone\/api, which is not defined in the config/);
    expect(() => validateDynamicGroups(config, kept, FILE)).not.toThrow();
  });

  it('accepts YAML too', () => {
    const d = parseDynamicGroupsText('groups:\n  default:\n    web:\n      size: 0\n', 'groups.yaml');
    expect(resolveGroup(config, d, 'default', 'web')?.size).toBe(0);
  });

  it('serializes to pretty JSON that parses back to the same value', () => {
    const dynamic = parseDynamicGroupsText(validText, FILE);
    const text = serializeDynamicGroups(dynamic);
    expect(text).toContain('\n  "groups": {');
    expect(text.endsWith('\n')).toBe(true);
    expect(parseDynamicGroupsText(text, FILE)).toEqual(dynamic);
    expect(serializeDynamicGroups(emptyDynamicGroups())).toBe('{\n  "groups": {}\n}\n');
  });

  it('rejects a size-only entry for a group that is not in the config', () => {
    const d = parseDynamicGroupsText('{ "groups": { "default": { "api": { "size": 2 } } } }', FILE);
    expect(problems(() => validateDynamicGroups(config, d, FILE))).toEqual([
      `${FILE}: groups.default.api: size-only entry for group default/api, which is not defined in the config; add "template" to define it as a new group`,
    ]);
  });

  it('rejects a full group that shadows a static one', () => {
    const d = parseDynamicGroupsText('{ "groups": { "default": { "web": { "template": "web", "size": 2 } } } }', FILE);
    expect(problems(() => validateDynamicGroups(config, d, FILE))[0]).toMatch(
      /^shard\/use1-az1\/groups\.jsonc: groups\.default\.web: group default\/web is already defined in the config; use \{ "size": 2 \}/,
    );
  });

  it('cross-checks full groups against the config, reporting in groups.jsonc', () => {
    const d = parseDynamicGroupsText(
      '{ "groups": { "ops": { "db": { "template": "wbe", "size": 1, "subnet_pool": "nope", "load_balancers": ["x"] } } } }',
      FILE,
    );
    const lines = problems(() => validateDynamicGroups(config, d, FILE));
    expect(lines).toEqual(
      expect.arrayContaining([
        `${FILE}: groups.ops.db.template: unknown template "wbe"; defined templates: web; did you mean "web"?`,
        expect.stringMatching(/^shard\/use1-az1\/groups\.jsonc: groups\.ops\.db\.subnet_pool: unknown subnet pool "nope"/),
        expect.stringMatching(/^shard\/use1-az1\/groups\.jsonc: groups\.ops\.db\.load_balancers\[0\]: unknown load balancer "x"/),
      ]),
    );
  });

  it('rejects fields other than size, instance_type and vars on an override and bad sizes, reporting all entries', () => {
    const lines = problems(() =>
      parseDynamicGroupsText('{ "groups": { "default": { "web": { "size": 2, "subnet_pool": "private" }, "api": { "size": 5001 } } } }', FILE),
    );
    expect(lines).toEqual([
      expect.stringMatching(/^shard\/use1-az1\/groups\.jsonc: groups\.default\.web\.subnet_pool: unknown field "subnet_pool"; .*may set only "size", "instance_type" and "vars".*add "template"/),
      `${FILE}: groups.default.api.size: size must be an integer from 0 to 5000, got 5001`,
    ]);
  });

  it('rejects unknown top-level fields and bad names', () => {
    const lines = problems(() => parseDynamicGroupsText('{ "group": {}, "groups": { "Team A": {} } }', FILE));
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^shard\/use1-az1\/groups\.jsonc: group: unknown field "group"/),
        expect.stringMatching(/^shard\/use1-az1\/groups\.jsonc: groups\["Team A"\]: invalid tenant name "Team A"/),
      ]),
    );
  });

  it('validateDynamicGroups re-checks values built in code', () => {
    const built: DynamicGroups = { groups: { default: { web: { size: -3 } } } };
    expect(problems(() => validateDynamicGroups(config, built, FILE))).toEqual([
      `${FILE}: groups.default.web.size: size must be an integer from 0 to 5000, got -3`,
    ]);
  });

  it('reports JSONC syntax errors with line and column', () => {
    expect(problems(() => parseDynamicGroupsText('{\n  "groups": {\n    "default": { "web": { "size": 2 } }\n  \n', FILE))[0]).toMatch(
      /^shard\/use1-az1\/groups\.jsonc: syntax error at line 5:1: expected "}"/,
    );
  });
});
