import { stringify } from 'yaml';
import { ConfigValidationError, parseConfigText, shardSettings } from '../../../common/config';
import { deletePath, exampleData, exampleText, exampleWith } from './example';

describe('parseConfigText', () => {
  it('accepts the shared example (JSONC with comments)', () => {
    expect(exampleText).toMatch(/^\/\//); // the example really does carry comments
    const config = parseConfigText(exampleText, 'config.jsonc');
    expect(config.cluster.id).toBe('demo');
    expect(config.shard.id).toBe('use1-az1');
    expect(config.shard.subnet_pools.private).toEqual(['subnet-0aaa', 'subnet-0bbb']);
    expect(config.images.al2023arm.sort).toBe('creation-date');
    expect(config.templates.web.kind).toBe('web');
    expect(config.groups.default.web).toEqual({ template: 'web', size: 3, load_balancers: ['web'], drain_timeout: '2m' });
  });

  it('accepts the same config as YAML (.yaml and .yml) with an identical result', () => {
    const fromJsonc = parseConfigText(exampleText, 'config.jsonc');
    const yamlText = stringify(exampleData());
    expect(parseConfigText(yamlText, 'config.yaml')).toEqual(fromJsonc);
    expect(parseConfigText(yamlText, 'shard/x/config.yml')).toEqual(fromJsonc);
  });

  it('treats any other extension as JSONC, allowing trailing commas', () => {
    const text = exampleText.replace('"drain_timeout": "2m" }', '"drain_timeout": "2m", }');
    expect(text).not.toBe(exampleText);
    expect(parseConfigText(text, 'config.json').groups.default.web.size).toBe(3);
  });

  it('YAML syntax errors come out as ConfigValidationError, not a yaml exception', () => {
    expect(() => parseConfigText('a: [1,\n', 'c.yaml')).toThrow(ConfigValidationError);
  });

  it('applies Nstance defaults to omitted shard durations and sections', () => {
    const text = exampleWith(
      (c) => deletePath(c, 'shard.health_check_interval'),
      (c) => deletePath(c, 'shard.default_drain_timeout'),
      (c) => deletePath(c, 'shard.image_refresh_interval'),
      (c) => deletePath(c, 'shard.create_rate_limit'),
      (c) => deletePath(c, 'shard.garbage_collection'),
      (c) => deletePath(c, 'shard.expiry'),
      (c) => deletePath(c, 'groups'),
    );
    const config = parseConfigText(text, 'config.jsonc');
    expect(config.groups).toEqual({});
    expect(shardSettings(config)).toEqual({
      healthCheckIntervalMs: 60_000,
      defaultDrainTimeoutMs: 300_000,
      imageRefreshIntervalMs: 6 * 3_600_000,
      createRateLimitMs: 200,
      expiry: undefined,
      gc: { intervalMs: 120_000, registrationTimeoutMs: 300_000, recordRetentionMs: 1_800_000 },
    });
  });

  it('fills in a partially given garbage_collection block', () => {
    const text = exampleWith((c) => {
      (c.shard as Record<string, unknown>).garbage_collection = { interval: '30s' };
    });
    expect(shardSettings(parseConfigText(text, 'c.jsonc')).gc).toEqual({ intervalMs: 30_000, registrationTimeoutMs: 300_000, recordRetentionMs: 1_800_000 });
  });

  it('shardSettings converts the example durations to milliseconds', () => {
    const s = shardSettings(parseConfigText(exampleText, 'config.jsonc'));
    expect(s.expiry).toEqual({ eligibleAgeMs: 504 * 3_600_000, forcedAgeMs: 720 * 3_600_000 });
    expect(s.createRateLimitMs).toBe(200);
    expect(s.healthCheckIntervalMs).toBe(60_000);
  });

  it('accepts days in durations', () => {
    const text = exampleWith((c) => {
      (c.shard as Record<string, unknown>).expiry = { eligible_age: '21d', forced_age: '30d' };
    });
    expect(shardSettings(parseConfigText(text, 'c.jsonc')).expiry?.forcedAgeMs).toBe(30 * 86_400_000);
  });
});
