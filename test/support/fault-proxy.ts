/**
 * An HTTP proxy in front of moto that enforces the ENI rules moto lacks, for
 * worker processes (which cannot share the in-process SDK fault layer):
 *
 * - AttachNetworkInterface on an ENI that is attached, attaching or detaching
 *   fails like AWS: 400 InvalidParameterValue "Interface: [eni-…] in use."
 *   (moto silently re-attaches it);
 * - attach shows "attaching" and detach shows "detaching" for a while before
 *   EC2 settles on attached / available (moto switches at once);
 * - injectAttachInUse(n): the next n attaches fail "in use" even when the ENI
 *   is free (the transient error a real handoff must retry through);
 * - injectAttachResponseLost(n): the next n attaches are applied, but the caller gets a
 *   500 instead of the answer (AWS attach is not idempotent: the retry meets "in use");
 * - injectAttachRejected(n): the next n attaches are refused UnauthorizedOperation
 *   (a request AWS will not retry into success, e.g. a missing IAM permission that
 *   an operator then fixes: the leader workflow must try the move again later).
 *
 * EC2 is a form-encoded Query API (Action=…) answering XML; every other request
 * (S3, ELBv2, the moto API) passes through untouched.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxyCall {
  action: string;
  interfaceId?: string;
  instanceId?: string;
  outcome: 'forwarded' | 'in-use' | 'injected-in-use' | 'injected-rejected' | 'response-lost' | 'deferred';
  at: number;
}

interface Transition {
  state: 'attaching' | 'detaching';
  until: number;
}

interface Upstream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface FaultProxyOptions {
  /** moto's URL, e.g. http://127.0.0.1:41234 */
  target: string;
  attachDelayMs?: number;
  detachDelayMs?: number;
}

/** Top-level <item>s of a DescribeNetworkInterfaces answer, with their ENI ids. */
export function interfaceItems(xml: string): { start: number; end: number; interfaceId: string; text: string }[] {
  const items: { start: number; end: number; interfaceId: string; text: string }[] = [];
  const set = xml.indexOf('<networkInterfaceSet>');
  if (set < 0) return items;
  const re = /<item>|<\/item>|<\/networkInterfaceSet>/g;
  re.lastIndex = set;
  let depth = 0;
  let start = -1;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    if (m[0] === '</networkInterfaceSet>' && depth === 0) break;
    if (m[0] === '<item>') {
      if (depth === 0) start = m.index;
      depth++;
    } else if (--depth === 0) {
      const text = xml.slice(start, m.index + m[0].length);
      const id = /<networkInterfaceId>([^<]+)<\/networkInterfaceId>/.exec(text)?.[1] ?? '';
      items.push({ start, end: m.index + m[0].length, interfaceId: id, text });
    }
  }
  return items;
}

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`;
}

export class Ec2FaultProxy {
  readonly calls: ProxyCall[] = [];
  private server?: Server;
  private transitions = new Map<string, Transition>();
  private injectedInUse = 0;
  private injectedRejected = 0;
  private injectedResponseLost = 0;
  private readonly target: URL;
  private readonly attachDelayMs: number;
  private readonly detachDelayMs: number;

  constructor(options: FaultProxyOptions) {
    this.target = new URL(options.target);
    this.attachDelayMs = options.attachDelayMs ?? 600;
    this.detachDelayMs = options.detachDelayMs ?? 600;
  }

  url = '';

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res).catch((err: Error) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`fault proxy: ${err.message}`);
    }));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The next `n` attaches fail "in use" whatever the ENI's state. */
  injectAttachInUse(n = 1): void {
    this.injectedInUse += n;
  }

  /** The next `n` attaches that EC2 accepts lose their answer: applied, but the caller sees a 500. */
  injectAttachResponseLost(n = 1): void {
    this.injectedResponseLost += n;
  }

  /** The next `n` attaches are refused as unauthorized (non-retryable for the activity). */
  injectAttachRejected(n = 1): void {
    this.injectedRejected += n;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const form = req.method === 'POST' && /x-www-form-urlencoded/.test(req.headers['content-type'] ?? '') ? new URLSearchParams(body.toString('utf8')) : undefined;
    const action = form?.get('Action');
    if (!form || !action) return this.reply(res, await this.forward(req.method ?? 'GET', req.url ?? '/', req.headers, body));

    if (action === 'AttachNetworkInterface') return this.attach(req, res, form, body);
    if (action === 'DetachNetworkInterface') return this.detach(req, res, form, body);
    const up = await this.forward('POST', req.url ?? '/', req.headers, body);
    if (action === 'DescribeNetworkInterfaces' && up.status === 200) up.body = Buffer.from(this.rewriteDescribe(up.body.toString('utf8')));
    return this.reply(res, up);
  }

  private async attach(req: IncomingMessage, res: ServerResponse, form: URLSearchParams, body: Buffer): Promise<void> {
    const interfaceId = form.get('NetworkInterfaceId') ?? '';
    const instanceId = form.get('InstanceId') ?? '';
    const call = { action: 'AttachNetworkInterface', interfaceId, instanceId, at: Date.now() };
    const inUse = () => this.reply(res, { status: 400, headers: { 'content-type': 'text/xml' }, body: Buffer.from(errorXml('InvalidParameterValue', `Interface: [${interfaceId}] in use.`)) });
    if (this.injectedRejected > 0) {
      this.injectedRejected--;
      this.calls.push({ ...call, outcome: 'injected-rejected' });
      return this.reply(res, { status: 403, headers: { 'content-type': 'text/xml' }, body: Buffer.from(errorXml('UnauthorizedOperation', 'You are not authorized to perform this operation.')) });
    }
    if (this.injectedInUse > 0) {
      this.injectedInUse--;
      this.calls.push({ ...call, outcome: 'injected-in-use' });
      return inUse();
    }
    // AWS's rule: only an available ENI can be attached.
    if (this.transitionOf(interfaceId) || (await this.attachedInMoto(req.headers, interfaceId))) {
      this.calls.push({ ...call, outcome: 'in-use' });
      return inUse();
    }
    const up = await this.forward('POST', req.url ?? '/', req.headers, body);
    if (up.status === 200) this.transitions.set(interfaceId, { state: 'attaching', until: Date.now() + this.attachDelayMs });
    if (up.status === 200 && this.injectedResponseLost > 0) {
      this.injectedResponseLost--;
      this.calls.push({ ...call, outcome: 'response-lost' });
      return this.reply(res, { status: 500, headers: { 'content-type': 'text/xml' }, body: Buffer.from(errorXml('InternalError', 'fault proxy: the attach was applied, its answer lost')) });
    }
    this.calls.push({ ...call, outcome: 'forwarded' });
    return this.reply(res, up);
  }

  /** Answers at once and applies the detach to moto only after the delay, so EC2 shows "detaching" meanwhile. */
  private async detach(req: IncomingMessage, res: ServerResponse, form: URLSearchParams, body: Buffer): Promise<void> {
    const attachmentId = form.get('AttachmentId') ?? '';
    const xml = (await this.describe(req.headers)).body.toString('utf8');
    const item = interfaceItems(xml).find((i) => i.text.includes(`<attachmentId>${attachmentId}</attachmentId>`));
    if (!item) return this.reply(res, { status: 400, headers: { 'content-type': 'text/xml' }, body: Buffer.from(errorXml('InvalidAttachmentID.NotFound', `The attachment ID '${attachmentId}' does not exist`)) });
    const interfaceId = item.interfaceId;
    if (this.transitionOf(interfaceId)?.state !== 'detaching') {
      this.transitions.set(interfaceId, { state: 'detaching', until: Date.now() + this.detachDelayMs });
      const headers = { ...req.headers };
      setTimeout(() => {
        void this.forward('POST', req.url ?? '/', headers, body)
          .catch(() => undefined)
          .finally(() => this.transitions.delete(interfaceId));
      }, this.detachDelayMs);
    }
    this.calls.push({ action: 'DetachNetworkInterface', interfaceId, outcome: 'deferred', at: Date.now() });
    return this.reply(res, {
      status: 200,
      headers: { 'content-type': 'text/xml' },
      body: Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<DetachNetworkInterfaceResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fault-proxy</requestId><return>true</return></DetachNetworkInterfaceResponse>'),
    });
  }

  private transitionOf(interfaceId: string): Transition | undefined {
    const t = this.transitions.get(interfaceId);
    if (t && t.state === 'attaching' && Date.now() >= t.until) {
      this.transitions.delete(interfaceId);
      return undefined;
    }
    return t;
  }

  private rewriteDescribe(xml: string): string {
    let out = xml;
    for (const item of interfaceItems(xml).reverse()) {
      const t = this.transitionOf(item.interfaceId);
      if (!t) continue;
      const text = item.text.replace(/(<attachment>[\s\S]*?<status>)attached(<\/status>)/, `$1${t.state}$2`);
      out = out.slice(0, item.start) + text + out.slice(item.end);
    }
    return out;
  }

  private async attachedInMoto(headers: IncomingHttpHeaders, interfaceId: string): Promise<boolean> {
    const xml = (await this.describe(headers, interfaceId)).body.toString('utf8');
    return interfaceItems(xml).some((i) => i.interfaceId === interfaceId && i.text.includes('<attachment>'));
  }

  private describe(headers: IncomingHttpHeaders, interfaceId?: string): Promise<Upstream> {
    const form = new URLSearchParams({ Action: 'DescribeNetworkInterfaces', Version: '2016-11-15' });
    if (interfaceId) form.set('NetworkInterfaceId.1', interfaceId);
    const body = Buffer.from(form.toString());
    // The caller's signature headers carry the region moto routes by; moto does not verify them.
    return this.forward('POST', '/', { authorization: headers.authorization, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'content-length': String(body.length) }, body);
  }

  private forward(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<Upstream> {
    return new Promise((resolve, reject) => {
      const up = httpRequest(
        { host: this.target.hostname, port: this.target.port, method, path, headers: { ...headers, host: this.target.host, 'content-length': String(body.length) } },
        (r) => void readBody(r).then((b) => resolve({ status: r.statusCode ?? 502, headers: r.headers, body: b }), reject),
      );
      up.on('error', reject);
      up.end(body);
    });
  }

  private reply(res: ServerResponse, up: Upstream): void {
    const headers = { ...up.headers, 'content-length': String(up.body.length) };
    delete headers['transfer-encoding'];
    res.writeHead(up.status, headers);
    res.end(up.body);
  }
}

function readBody(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
