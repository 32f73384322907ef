/**
 * What the Web UI shows without opening a payload: static summaries and details of each
 * workflow start, one line per activity, and the current details of long-lived runs.
 */
import { gcRunMetadata, groupRunMetadata, instanceRunMetadata, keyRotationRunMetadata, leaderRunMetadata } from '../../common/run-summaries';
import type { InstanceWorkflowInput } from '../../common/types';
import * as path from 'node:path';
import ts from 'typescript';
import { activitySummary, summarizedActivities, terminateSummary } from '../../workflows/activity-summaries';
import { gcDetails, instanceDetails, leaderDetails } from '../../workflows/current-details';

const input: InstanceWorkflowInput = {
  shard: 'use1-az1',
  tenant: 'default',
  group: 'web',
  clusterId: 'demo',
  instanceId: 'web-abcdefghijkl',
  groupWorkflowId: 'nstance:use1-az1:group:default/web',
  imageIds: { al2023: 'ami-0123' },
  launch: {
    kind: 'web',
    template: 'web',
    arch: 'arm64',
    instanceType: 't4g.micro',
    subnetPool: 'private',
    subnetIds: ['subnet-a', 'subnet-b'],
    args: {},
    vars: {},
    images: {},
  },
  lifecycle: { registrationTimeoutMs: 300_000, drainTimeoutMs: 60_000, targetGroups: [{ arn: 'arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-tg/abc', port: 8080 }] },
};

describe('static summaries and details of workflow starts', () => {
  it('names the group with its size and template', () => {
    const m = groupRunMetadata({ shard: 'use1-az1', tenant: 'default', group: 'web' }, { size: 3, template: 'web' });
    expect(m.staticSummary).toBe('group default/web · size 3 · template web');
    expect(m.staticDetails).toContain('**shard:** use1-az1');
    expect(m.staticDetails).toContain('**size at start:** 3');
  });

  it('leaves out what a waking signal does not know', () => {
    const m = groupRunMetadata({ shard: 's', tenant: 't', group: 'g' });
    expect(m.staticSummary).toBe('group t/g');
    expect(m.staticDetails).not.toContain('size at start');
  });

  it("names an instance's group, kind, template and type; details its subnets, image and target groups", () => {
    const m = instanceRunMetadata(input);
    expect(m.staticSummary).toBe('instance web-abcdefghijkl of default/web · kind web · template web · t4g.micro');
    expect(m.staticDetails).toContain('**subnet pool:** private (subnet-a, subnet-b)');
    expect(m.staticDetails).toContain('**image:** ami-0123');
    expect(m.staticDetails).toContain('targetgroup/web-tg/abc:8080');
    expect(m.staticSummary).not.toContain('\n');
  });

  it('names the leader and GC runs by shard', () => {
    expect(leaderRunMetadata('use1-az1', 4000).staticSummary).toBe('leader of shard use1-az1');
    expect(gcRunMetadata('use1-az1').staticSummary).toBe('garbage collector of shard use1-az1');
  });

  it('names a key rotation by shard and who started it; details what it does', () => {
    const m = keyRotationRunMetadata('use1-az1', 'alice', 50);
    expect(m.staticSummary).toBe('nstance secrets rotate-key (shard use1-az1, by alice)');
    expect(m.staticDetails).toContain('**page size:** 50 secrets per activity');
    expect(m.staticDetails).toContain('**does:** re-encrypts every object-storage secret under cluster.secrets.encryption_key');
    expect(keyRotationRunMetadata('s', 'a').staticDetails).not.toContain('page size');
  });
});

describe('activity summaries', () => {
  it('says which instance, subnet and image a launch is about', () => {
    expect(activitySummary('launchInstance', [input, { al2023: 'ami-0123' }, 'subnet-a'])).toBe('RunInstances web-abcdefghijkl (t4g.micro) in subnet-a (ami-0123)');
  });

  it('says why an instance is terminated when the call site knows', () => {
    expect(terminateSummary('i-0abc', 'expired-forced')).toBe('terminate i-0abc (expired-forced)');
    expect(activitySummary('terminateInstance', ['i-0abc'])).toBe('terminate i-0abc');
  });

  it('says which ENI goes to which instance at which epoch', () => {
    expect(activitySummary('moveLeaderNetwork', [{ interfaceId: 'eni-1', instanceId: 'i-2', epoch: 7, workerId: 'w1', timeoutMs: 30_000 }])).toBe(
      'attach eni-1 to i-2 (worker w1) at epoch 7',
    );
  });

  it('keeps a batch of 1,000 to one short line, with its reasons counted', () => {
    const removals = Array.from({ length: 1000 }, (_, i) => ({ instanceId: `web-${i}`, reason: i < 600 ? 'scale-down' : 'expired-eligible', drain: true }));
    const line = activitySummary('signalInstances', [{ shard: 's', actor: 'a', removals }]);
    expect(line).toBe('tell 1000 instances to leave (600 scale-down, 400 expired-eligible): web-0, web-1, web-2 and 997 more');
    const described = activitySummary('observeInstances', [Array.from({ length: 2000 }, (_, i) => `i-${i}`)]);
    expect(described).toBe('describe 2000 instances (i-0, i-1, i-2 and 1997 more)');
  });

  it('says whether a start batch launches its instances itself', () => {
    const common = { ...input, instanceId: undefined };
    const ids = ['web-1', 'web-2', 'web-3', 'web-4'];
    expect(activitySummary('startInstanceBatch', [{ common, instanceIds: ids, paceMs: 0, launchFirst: true }])).toBe('RunInstances and start 4 instances of default/web (t4g.micro) in pool private (ami-0123): web-1, web-2, web-3 and 1 more');
    expect(activitySummary('startInstanceBatch', [{ common, instanceIds: ids, paceMs: 0 }])).toBe('start 4 instances of default/web (t4g.micro): web-1, web-2, web-3 and 1 more');
  });

  it('names target groups by name, not ARN', () => {
    expect(activitySummary('registerTargets', [input.lifecycle?.targetGroups, 'i-9'])).toBe('register i-9 in web-tg');
  });

  it('falls back to the activity name for an unknown activity or arguments of another shape', () => {
    expect(activitySummary('somethingNew', [1, 2])).toBe('somethingNew');
    expect(activitySummary('launchInstance', [undefined])).toBe('launchInstance');
  });

  it('bounds any summary to one line of 200 characters', () => {
    const line = activitySummary('lookupImages', [Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`image-${i}`, {}])), 'amd64']);
    expect(line.length).toBeLessThanOrEqual(200);
    expect(line.endsWith('…')).toBe(true);
  });
});

/**
 * Every activity any workflow can schedule: the members of each `proxyActivities<T>` type in workflows/
 * (legacy code too), resolved by the compiler, so an activity added to a proxy is found wherever it is.
 */
function activitiesTheWorkflowsCall(): Map<string, string> {
  const root = path.join(__dirname, '..', '..');
  const config = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')) });
  if (!config) throw new Error('tsconfig.json could not be read');
  const workflowDir = path.join(root, 'workflows') + path.sep;
  const files = config.fileNames.filter((f) => path.resolve(f).startsWith(workflowDir));
  const program = ts.createProgram(files, { ...config.options, noEmit: true });
  const checker = program.getTypeChecker();
  const found = new Map<string, string>();
  const visit = (file: ts.SourceFile) => (node: ts.Node) => {
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'proxyActivities' && node.typeArguments?.length === 1) {
      const names = checker.getTypeFromTypeNode(node.typeArguments[0]).getProperties().map((p) => p.name);
      if (names.length === 0) throw new Error(`${file.fileName}: proxyActivities<${node.typeArguments[0].getText(file)}> resolved to no activities`);
      for (const name of names) if (!found.has(name)) found.set(name, path.relative(root, file.fileName));
    }
    ts.forEachChild(node, visit(file));
  };
  for (const file of program.getSourceFiles()) if (path.resolve(file.fileName).startsWith(workflowDir)) visit(file)(file);
  return found;
}

describe('every activity the workflows call has a summary', () => {
  it('finds them all, and each is in the summary table', () => {
    const called = activitiesTheWorkflowsCall();
    // The scan itself works: it sees the proxies of each workflow (instance, group, leader, GC, key rotation).
    for (const name of ['launchInstance', 'writeInstanceRecords', 'moveLeaderNetwork', 'serveAsLeader', 'collectGarbage', 'rotateSecretsPage']) expect(called.has(name)).toBe(true);
    const missing = [...called].filter(([name]) => !summarizedActivities.includes(name)).map(([name, file]) => `${name} (proxied in ${file})`);
    expect(missing).toEqual([]);
  }, 60_000);

  it('says how many records of which group, and which secrets a rotation page covers', () => {
    const record = (id: string) => ({ shard: 's', tenant: 'default', group: 'web', id, phase: 'in-service' as const, updatedAt: 'x' });
    expect(activitySummary('writeInstanceRecords', [['a', 'b', 'c', 'd'].map(record)])).toBe(
      'write 4 instance records of default/web to S3: a (in-service), b (in-service), c (in-service) and 1 more',
    );
    expect(activitySummary('beginKeyRotation', ['s1'])).toBe("count shard s1's object-storage secrets and read its encryption keys, to rotate them");
    expect(activitySummary('rotateSecretsPage', [{ shard: 's1', keyId: 'k2', limit: 100, startAfter: 'files/x' }])).toBe('re-encrypt up to 100 secrets under key k2, after files/x');
  });
});

describe('current details', () => {
  it("shows an instance's phase, EC2 id and health", () => {
    const text = instanceDetails({ instanceId: 'web-1', phase: 'in-service', ec2InstanceId: 'i-1', privateIp: '10.0.0.5', health: 'healthy' });
    expect(text).toBe('**phase:** in-service\n**EC2 instance:** i-1\n**private IP:** 10.0.0.5\n**health:** healthy');
  });

  it('shows who leads at which epoch and the last handoff', () => {
    const text = leaderDetails({
      shard: 's',
      epoch: 7,
      leader: { workerId: 'w2', ec2InstanceId: 'i-2', epoch: 7, since: '2026-12-01T00:00:00.000Z' },
      candidates: [
        { workerId: 'w1', seq: 1, announcedAt: 'x', alive: false, leaving: false, generation: 1 },
        { workerId: 'w2', seq: 2, announcedAt: 'x', alive: true, leaving: false, generation: 1 },
      ],
      interfaceId: 'eni-1',
      heartbeatTimeoutMs: 4000,
      handoffs: 3,
      lastHandoff: { from: 'w1', to: 'w2', epoch: 7, reason: 'heartbeat-timeout', detectedAt: 'x', durationMs: 5900 },
    });
    expect(text).toContain('**leader:** w2 (i-2) since 2026-12-01T00:00:00.000Z');
    expect(text).toContain('**epoch:** 7');
    expect(text).toContain('**candidates:** 1 live (w2) of 2');
    expect(text).toContain('**last handoff:** w1 → w2 at epoch 7 (heartbeat-timeout), ENI attached in 5900 ms');
  });

  it("shows the GC's last pass, bounded", () => {
    const collected = Array.from({ length: 8 }, (_, i) => ({ ec2InstanceId: `i-${i}`, why: 'no workflow' }));
    const text = gcDetails({ at: 't0', collected, nextAt: 't1' });
    expect(text).toContain('**terminated:** 8: i-0 (no workflow), i-1 (no workflow), i-2 (no workflow), i-3 (no workflow), i-4 (no workflow) and 3 more');
  });
});
