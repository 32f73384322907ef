import { parseAgentArgs, splitAddress } from '../../client/agent/userdata';

describe('agent command line in userdata', () => {
  test('reads --register and --nonce from the example userdata', () => {
    const userdata = '#!/bin/bash\n/opt/nstance/agent --register 10.0.1.10:8443 --nonce eyJh.eyJi.c2ln\n';
    expect(parseAgentArgs(userdata)).toEqual({ register: '10.0.1.10:8443', nonce: 'eyJh.eyJi.c2ln' });
  });

  test('accepts --flag=value and quotes; none without both flags', () => {
    expect(parseAgentArgs('agent --nonce="a.b.c" --register=h:1')).toEqual({ register: 'h:1', nonce: 'a.b.c' });
    expect(parseAgentArgs('agent --register h:1')).toBeUndefined();
    expect(parseAgentArgs('echo hello')).toBeUndefined();
  });

  test('addresses need a port', () => {
    expect(splitAddress('10.0.1.10:8443')).toEqual({ host: '10.0.1.10', port: 8443 });
    expect(splitAddress('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(() => splitAddress('10.0.1.10')).toThrow(/host:port/);
  });
});
