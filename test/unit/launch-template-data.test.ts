import { launchTemplateData } from '../../activities/launch';
import { TEMPLATE_FIELDS, TEMPLATE_ROOTS } from '../../common/config';
import type { InstanceWorkflowInput } from '../../common/types';

// Config validation accepts exactly the references launch-time rendering can resolve.
test('the template data built at launch has the roots and fields config validation allows', () => {
  const input = {
    shard: 's',
    tenant: 't',
    group: 'g',
    clusterId: 'c',
    instanceId: 'web-1',
    launch: { kind: 'web', instanceType: 'm7g.large', vars: { A: '1' }, registrationAddress: 'a:1' },
  } as unknown as InstanceWorkflowInput;
  const data = launchTemplateData(input, { al2023: 'ami-1' }, { nonce: 'n', caCertificate: 'pem' });
  expect(Object.keys(data).sort()).toEqual([...TEMPLATE_ROOTS].sort());
  for (const [root, fields] of Object.entries(TEMPLATE_FIELDS)) {
    expect(Object.keys(data[root] as Record<string, string>).sort()).toEqual([...fields].sort());
  }
  for (const root of ['Nonce', 'Group', 'Tenant']) expect(typeof data[root]).toBe('string');
});
