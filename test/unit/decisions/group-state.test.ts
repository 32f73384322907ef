import { applyUpdate, forget, initialGroupState } from '../../../workflows/group-state';

describe('group state: instance reports', () => {
  test('a member the group forgot (gone in EC2) is not brought back by a late report; an unknown one is adopted', () => {
    const state = initialGroupState();
    applyUpdate(state, { instanceId: 'web-1', phase: 'in-service', ec2InstanceId: 'i-1' }, 0);
    state.members['web-1'].leaving = true;
    forget(state, 'web-1');
    // Its "draining" report was already on its way.
    applyUpdate(state, { instanceId: 'web-1', phase: 'draining', ec2InstanceId: 'i-1' }, 1);
    expect(state.members['web-1']).toBeUndefined();
    // Its final word is harmless.
    applyUpdate(state, { instanceId: 'web-1', phase: 'terminated' }, 2);
    expect(state.members).toEqual({});
    // A member the group never knew (its state was lost) reports in: adopted.
    applyUpdate(state, { instanceId: 'web-2', phase: 'in-service', ec2InstanceId: 'i-2' }, 3);
    expect(state.members['web-2']).toMatchObject({ phase: 'in-service', ec2InstanceId: 'i-2' });
  });

  test('only the newest forgotten ids are kept', () => {
    const state = initialGroupState();
    for (let i = 0; i < 250; i++) forget(state, `web-${i}`);
    expect(state.forgotten).toHaveLength(200);
    expect(state.forgotten?.[0]).toBe('web-50');
  });
});
