/**
 * Launch options in args on the real launch path (common/iam/launch-args.ts): a group whose template asks
 * for spot, a placement group by name and tags on the spot request launches through the worker, and the
 * shard fixture's IAM proof judges each launch as EC2 authorises it (the spot request it creates, the
 * placement group, CreateTags on the spot request) against the policy generated for the config, so the
 * statements those options add (LaunchSpotRequests, LaunchIntoPlacementGroups, TagOnLaunchOnly's spot
 * request) are proven, and used, by real launches. moto marks the instances spot (it keeps no placement
 * groups); a config with a launch template is refused at apply, naming the field, before anything is stored.
 */
import { waitForConvergence } from '../../client/ops/status';
import { ConfigValidationError } from '../../common/config';
import { ShardConfigStore } from '../../adapters/s3/config-store';
import { ObjectStore } from '../../adapters/s3/objects';
import { shardInstances } from '../support/emulator';
import { useShard } from '../support/shard-fixture';

const fx = useShard('lo', { worker: true });

type Config = { templates: { web: { args: Record<string, unknown> } } };

test('a spot launch into a placement group, its spot request tagged: launched by the worker, each request the policy grants', async () => {
  const config = fx.config({ size: 2 }) as Config;
  config.templates.web.args = {
    ...config.templates.web.args,
    InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time' } },
    Placement: { GroupName: `${fx.shard}-spread` },
    TagSpecifications: [{ ResourceType: 'spot-instances-request', Tags: [{ Key: 'team', Value: 'web' }] }],
  };
  await fx.apply(config);
  await waitForConvergence(fx.client, fx.ref, { timeoutMs: 120_000, size: 2, pollMs: 500 });
  const running = await shardInstances(fx.aws.ec2, fx.shard);
  expect(running.map((i) => i.InstanceLifecycle)).toEqual(['spot', 'spot']);
  // What the recorder made of the launches: the resources EC2 authorises them on, beyond the instance's own.
  const launched = fx.faults.callsOf('RunInstances').filter((c) => c.outcome === 'ok' && c.caller === 'worker');
  expect(launched.length).toBeGreaterThanOrEqual(2);
  const resources = new Set(launched.flatMap((c) => (c.auth ?? []).map((a) => `${a.action} ${a.resource.replace(/^arn:aws:ec2:[^:]+:\d*:/, '')}`)));
  expect([...resources]).toEqual(
    expect.arrayContaining(['ec2:RunInstances spot-instances-request/sir-0launched', `ec2:RunInstances placement-group/${fx.shard}-spread`, 'ec2:CreateTags spot-instances-request/sir-0launched']),
  );
  await fx.scale(0);
  await waitForConvergence(fx.client, fx.ref, { timeoutMs: 120_000, size: 0, pollMs: 500 });
});

test('a launch template is refused at apply, naming the field, and nothing is stored', async () => {
  const store = new ShardConfigStore(new ObjectStore({ s3: fx.aws.s3, bucket: fx.bucket }), fx.shard);
  const before = await store.readConfig();
  const config = fx.config({ size: 1 }) as Config;
  config.templates.web.args = { ...config.templates.web.args, LaunchTemplate: { LaunchTemplateName: 'web' } };
  const err = await fx.apply(config).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigValidationError);
  expect((err as Error).message).toMatch(/^config\.jsonc: templates\.web\.args\.LaunchTemplate: not supported: a launch template's contents/);
  expect((await store.readConfig())?.etag).toBe(before?.etag);
});
