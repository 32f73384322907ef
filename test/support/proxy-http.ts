/** HTTP plumbing of the fault proxy: upstream answers, AWS-shaped error answers, bodies. */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { errorCodeOf } from './aws-requests';

export interface Upstream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** An EC2-style (Query API) error document. */
export function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`;
}

export function errorAnswer(status: number, code: string, message: string): Upstream {
  return { status, headers: { 'content-type': 'text/xml' }, body: Buffer.from(errorXml(code, message)) };
}

/** "ok" for a 2xx answer, else the AWS error code it carries (or its HTTP status). */
export function outcomeOf(up: Upstream): string {
  return up.status >= 200 && up.status < 300 ? 'ok' : (errorCodeOf(up.body) ?? `http-${up.status}`);
}

export function readBody(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
