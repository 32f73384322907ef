/** Reads the agent's command line back out of rendered userdata (what the simulated fleet boots from). */

export interface AgentArgs {
  register: string;
  nonce: string;
}

/** Finds `--register ADDR --nonce NONCE` (or `--flag=value`) on the line that runs the agent. */
export function parseAgentArgs(userdata: string): AgentArgs | undefined {
  for (const line of userdata.split(/\r?\n/)) {
    if (!line.includes('--register')) continue;
    const tokens = line.trim().split(/\s+/);
    const values: Record<string, string> = {};
    for (let i = 0; i < tokens.length; i++) {
      const m = /^--(register|nonce)(?:=(.*))?$/.exec(tokens[i]);
      if (!m) continue;
      const value = m[2] ?? tokens[i + 1];
      if (m[2] === undefined) i++;
      if (value) values[m[1]] = value.replace(/^["']|["']$/g, '');
    }
    if (values.register && values.nonce) return { register: values.register, nonce: values.nonce };
  }
  return undefined;
}

/** "host:port" (or "[v6]:port") → parts; a missing port is an error, the agent API has no default to guess. */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address.trim());
  if (!m) throw new Error(`invalid address "${address}": expected host:port, e.g. 10.0.1.10:8443`);
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}
