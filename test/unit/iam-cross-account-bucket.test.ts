/**
 * The bucket's side of `shard.infra.assume_role` (`nstance iam policy --cross-account`): the worker's S3
 * calls sign as the shard's role, the operator reads the shard's config with its own credentials, so a
 * bucket in one account and a caller in another needs a bucket policy as well as the caller's own. The
 * documents are evaluated by the policy simulator across accounts (an identity policy alone is not enough
 * there, nor a bucket policy alone).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfigText } from '../../common/config';
import { crossAccountDocuments } from '../../common/iam/documents';
import { evaluate } from '../support/iam-proof';
import { runCli } from '../support/cli';
import { exampleWith, setPath } from './config/example';

const OPERATOR_ACCOUNT = '111111111111';
const SHARD_ACCOUNT = '210987654321';
const ROLE = `arn:aws:iam::${SHARD_ACCOUNT}:role/nstance-fleet`;
const OPERATOR = `arn:aws:iam::${OPERATOR_ACCOUNT}:role/nstance-worker`;
const config = parseConfigText(exampleWith((c) => setPath(c, 'shard.infra.assume_role', { role_arn: ROLE, external_id: 'tenant-42' })), 'config.jsonc');
const bucket = config.cluster.storage.bucket;
const shard = config.shard.id;
const inRegion = { 'aws:RequestedRegion': 'us-east-1' };
const object = (key: string) => ({ action: 's3:GetObject', resource: `arn:aws:s3:::${bucket}/${key}`, context: inRegion });

describe('the bucket is the cluster\'s, in the operator\'s account (the default)', () => {
  const docs = crossAccountDocuments(config, { operatorPrincipal: OPERATOR });
  const side = docs?.bucket;

  it("grants the shard's role the worker's S3 statements, resource for resource", () => {
    expect(side?.account).toBe(OPERATOR_ACCOUNT);
    expect(side?.why).toMatch(/across accounts, S3 needs both the role's policy and this bucket policy/);
    const roleS3 = docs?.rolePolicy.Statement.filter((s) => s.Action.every((a) => a.startsWith('s3:'))) ?? [];
    expect(roleS3.length).toBeGreaterThan(0);
    expect(side?.policy?.Statement.map(({ Sid, Principal, ...rest }) => ({ Sid, Principal, rest }))).toEqual(
      roleS3.map(({ Sid, ...rest }) => ({ Sid: `ShardRole${Sid}`, Principal: { AWS: ROLE }, rest })),
    );
  });

  it('lets the role read its shard across accounts only with both policies, and no other prefix', async () => {
    const asRole = (request: ReturnType<typeof object>, withBucketPolicy: boolean) =>
      evaluate([request], [docs?.rolePolicy as NonNullable<typeof docs>['rolePolicy']], OPERATOR_ACCOUNT, { principal: ROLE, ...(withBucketPolicy ? { resourcePolicy: side?.policy } : {}) });
    const [both] = await asRole(object(`shard/${shard}/config.jsonc`), true);
    const [identityOnly] = await asRole(object(`shard/${shard}/config.jsonc`), false);
    const [otherShard] = await asRole(object('shard/other/config.jsonc'), true);
    expect([both?.result, identityOnly?.result, otherShard?.result]).toEqual(['Allowed', 'ImplicitlyDenied', 'ImplicitlyDenied']);
  });

  it('`--cross-account` prints the bucket policy with why; the text names the bucket and its account', async () => {
    const file = path.join(os.tmpdir(), `iam-bucket-${process.pid}.jsonc`);
    fs.writeFileSync(file, JSON.stringify(config));
    try {
      const text = await runCli('iam', 'policy', '-f', file, '--cross-account', '--operator', OPERATOR);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain(`# bucket ${bucket} (account ${OPERATOR_ACCOUNT}): its bucket policy\n# the bucket is the cluster's, in the operator's account`);
      expect(text.stdout).toContain(`"AWS": "${ROLE}"`);
      const refused = await runCli('iam', 'policy', '-f', file, '--bucket-account', SHARD_ACCOUNT);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/--bucket-account says which account owns the bucket .*it needs --cross-account/);
      const bad = await runCli('iam', 'policy', '-f', file, '--cross-account', '--bucket-account', 'mine');
      expect(bad.stderr).toMatch(/--bucket-account "mine": expected a 12-digit AWS account id/);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});

describe('a bucket in the shard role\'s account (--bucket-account)', () => {
  const docs = crossAccountDocuments(config, { operatorPrincipal: OPERATOR, bucketAccount: SHARD_ACCOUNT });

  it('grants the operator what it reads and `config apply` writes with its own credentials, nothing of the worker\'s', async () => {
    const side = docs?.bucket;
    expect(side?.account).toBe(SHARD_ACCOUNT);
    expect(side?.policy?.Statement.map((s) => s.Sid)).toEqual(['OperatorReadShardConfigBeforeAssuming', 'OperatorConfigApplyObjects']);
    expect(new Set(side?.policy?.Statement.map((s) => s.Principal.AWS))).toEqual(new Set([OPERATOR]));
    const asOperator = (request: ReturnType<typeof object>) =>
      evaluate([request], [docs?.operatorPolicy as NonNullable<typeof docs>['operatorPolicy']], SHARD_ACCOUNT, { principal: OPERATOR, resourcePolicy: side?.policy });
    const [config_] = await asOperator(object(`shard/${shard}/config.jsonc`));
    const [instances] = await asOperator(object(`shard/${shard}/instance/default.web-1.json`));
    expect([config_?.result, instances?.result]).toEqual(['Allowed', 'ImplicitlyDenied']);
  });
});

it('one account for the bucket, the role and the operator: no bucket policy, and it says why', () => {
  const sameAccount = `arn:aws:iam::${SHARD_ACCOUNT}:role/nstance-worker`;
  const side = crossAccountDocuments(config, { operatorPrincipal: sameAccount, bucketAccount: SHARD_ACCOUNT })?.bucket;
  expect(side?.policy).toBeUndefined();
  expect(side?.why).toMatch(/all in account 210987654321: the identity policies suffice, no bucket policy is needed/);
});
