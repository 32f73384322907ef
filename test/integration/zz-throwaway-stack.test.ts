import { IAMClient } from '@aws-sdk/client-iam';
import { DescribeVpcsCommand } from '@aws-sdk/client-ec2';
import { Connection } from '@temporalio/client';
import { createAwsClients, destroyAwsClients } from '../../activities/aws/clients';
import { seedEmulator } from '../../scripts/seed-emulator';
import { stackEnv } from '../support/stack-env';

test('stack env + seed twice', async () => {
  const env = stackEnv();
  console.log(JSON.stringify(env), process.env.NSTANCE_TEST_STACK_PGIDS, process.pid);
  const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint });
  const iam = new IAMClient({ region: env.region, endpoint: env.awsEndpoint });
  const a = await seedEmulator({ ...aws, iam, bucket: 'b-one', name: 'shard-one' });
  const b = await seedEmulator({ ...aws, iam, bucket: 'b-one', name: 'shard-one' });
  const c = await seedEmulator({ ...aws, iam, bucket: 'b-two', name: 'shard-two' });
  expect(b).toEqual(a);
  expect(c.vpcId).not.toEqual(a.vpcId);
  console.log(a.targetGroupArn, c.targetGroupArn);
  const vpcs = await aws.ec2.send(new DescribeVpcsCommand({}));
  expect(vpcs.Vpcs?.length).toBe(3);
  const connection = await Connection.connect({ address: env.temporalAddress });
  const sa = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
  expect(Object.keys(sa.customAttributes ?? {})).toEqual(expect.arrayContaining(['NstanceShard', 'NstancePhase']));
  await connection.close();
  destroyAwsClients(aws);
  iam.destroy();
  if (process.env.THROWAWAY_FAIL) throw new Error('deliberate failure');
  if (process.env.THROWAWAY_HANG) await new Promise((r) => setTimeout(r, 600000));
});
