/**
 * An authorizing frontend for the real dev server, which checks no credentials itself: it speaks
 * gRPC over cleartext HTTP/2, judges each call's `authorization` header as a Temporal cluster's
 * authorizer would, and forwards what it allows to the dev server unchanged (headers, messages,
 * trailers). A refused call gets PERMISSION_DENIED, as Temporal answers it.
 *
 * - `grants` maps an authorization header to the namespaces it may use: a WorkflowService call is
 *   allowed when its request's `namespace` is one of them (decoded from the request message);
 * - the calls Temporal's own authorizer lets through without claims (the health check and
 *   GetSystemInfo, an SDK client's first call) pass without a header;
 * - everything else is refused.
 * Every judged call is logged, for tests to read what was asked.
 */
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { temporal } from '@temporalio/proto';

const WORKFLOW_SERVICE = '/temporal.api.workflowservice.v1.WorkflowService/';
const UNCLAIMED = new Set(['/grpc.health.v1.Health/Check', `${WORKFLOW_SERVICE}GetSystemInfo`]);
const PERMISSION_DENIED = 7;

export interface JudgedCall {
  path: string;
  authorization?: string;
  namespace?: string;
  allowed: boolean;
}

export class GrpcAuthProxy {
  readonly calls: JudgedCall[] = [];
  private server?: http2.Http2Server;
  private upstream?: http2.ClientHttp2Session;
  address = '';

  constructor(
    private readonly target: string,
    private readonly grants: Record<string, string[]>,
  ) {}

  async start(): Promise<string> {
    this.upstream = http2.connect(`http://${this.target}`);
    this.upstream.on('error', () => undefined);
    const server = http2.createServer();
    server.on('stream', (stream, headers) => void this.serve(stream, headers).catch(() => stream.destroy()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.server = server;
    this.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.address;
  }

  async close(): Promise<void> {
    this.upstream?.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): Promise<void> {
    const path = String(headers[':path'] ?? '');
    // Unary calls only (all a client's calls here are): the whole request, to read its namespace.
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const authorization = typeof headers.authorization === 'string' ? headers.authorization : undefined;
    const namespace = namespaceOf(path, body);
    const allowed = UNCLAIMED.has(path) || (authorization !== undefined && namespace !== undefined && (this.grants[authorization] ?? []).includes(namespace));
    if (!UNCLAIMED.has(path)) this.calls.push({ path, authorization, namespace, allowed });
    if (!allowed) {
      const who = authorization === undefined ? 'no authorization header' : 'this authorization header';
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(PERMISSION_DENIED), 'grpc-message': encodeURIComponent(`Request unauthorized: ${who} may not call ${path.slice(path.lastIndexOf('/') + 1)} on namespace "${namespace ?? ''}"`) }, { endStream: true });
      return;
    }
    this.forward(stream, headers, body);
  }

  private forward(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer): void {
    const call = (this.upstream as http2.ClientHttp2Session).request(withoutPseudoHeaders(headers, [':method', ':path']));
    call.end(body);
    let trailers: http2.IncomingHttpHeaders | undefined;
    call.on('trailers', (t) => (trailers = t));
    call.on('response', (response, flags) => {
      const reply = withoutPseudoHeaders(response, [':status']);
      // A trailers-only answer (a gRPC error) ends with its headers.
      if ((flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0) return stream.respond(reply, { endStream: true });
      stream.respond(reply, { waitForTrailers: true });
      stream.on('wantTrailers', () => (trailers ? stream.sendTrailers(withoutPseudoHeaders(trailers)) : stream.close()));
      call.pipe(stream);
    });
    call.on('error', () => stream.destroy());
    stream.on('error', () => call.destroy());
  }
}

/** The `namespace` of a WorkflowService request (every namespaced request has one), decoded from its one gRPC message. */
function namespaceOf(path: string, body: Buffer): string | undefined {
  if (!path.startsWith(WORKFLOW_SERVICE) || body.length < 5) return undefined;
  const type = (temporal.api.workflowservice.v1 as unknown as Record<string, { decode(b: Uint8Array): { namespace?: string } } | undefined>)[`${path.slice(WORKFLOW_SERVICE.length)}Request`];
  // Message frame: compressed flag (1 byte), length (4 bytes), the message.
  const length = body.readUInt32BE(1);
  try {
    return type?.decode(body.subarray(5, 5 + length)).namespace || undefined;
  } catch {
    return undefined;
  }
}

/** HTTP/2 pseudo-headers (`:authority`, `:scheme`...) belong to one hop: only those in `keep` are passed on. */
function withoutPseudoHeaders(headers: http2.IncomingHttpHeaders, keep: string[] = []): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':') || keep.includes(name)) out[name] = value;
  return out;
}
