/**
 * The emulator seed is shared by test files that run at the same time: the one instance profile
 * they all refer to must come out of concurrent seeds whole, with every seed succeeding.
 */
import { GetInstanceProfileCommand, IAMClient } from '@aws-sdk/client-iam';
import { ensureInstanceProfile } from '../../scripts/seed/services';
import { stackEnv } from '../support/stack-env';

const iam = new IAMClient({ region: stackEnv().region, endpoint: stackEnv().awsEndpoint });
afterAll(() => iam.destroy());

test('four seeds at once create one instance profile holding its role, and none fails', async () => {
  const name = `seed-race-${Date.now().toString(36)}`;
  const results = await Promise.allSettled([1, 2, 3, 4].map(() => ensureInstanceProfile(iam, name)));
  expect(results.map((r) => (r.status === 'fulfilled' ? 'ok' : String(r.reason)))).toEqual(['ok', 'ok', 'ok', 'ok']);
  const profile = (await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }))).InstanceProfile;
  expect(profile?.Roles?.map((r) => r.RoleName)).toEqual([name]);
});
