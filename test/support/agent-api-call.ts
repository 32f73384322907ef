/** A raw HTTPS request to the agent API (TLS 1.3), for requests the real agent would never send. */
import { request } from 'node:https';

export interface AgentApiResponse {
  status: number;
  headers?: Record<string, string | string[] | undefined>;
  body: { error?: string; message?: string; serialNumber?: string; files?: { path: string; source: string }[] };
}

export interface AgentApiTarget {
  port?: number;
  ca: string;
  servername?: string;
  key?: string;
  cert?: string;
}

export function callAgentApi(target: AgentApiTarget, method: 'GET' | 'POST', path: string, body?: string): Promise<AgentApiResponse> {
  const { port, ...tls } = target;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, ...tls, minVersion: 'TLSv1.3', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) as AgentApiResponse['body'] }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function postToAgentApi(target: AgentApiTarget, path: string, body: string): Promise<AgentApiResponse> {
  return callAgentApi(target, 'POST', path, body);
}
