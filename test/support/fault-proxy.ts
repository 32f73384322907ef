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
 *   an operator then fixes: the leader workflow must try the move again later);
 * - injectError(action, code, n): the next n calls of an EC2 action are refused with that
 *   error code (InsufficientInstanceCapacity, RequestLimitExceeded, ...) and never reach moto.
 *
 * For benchmarks of separate worker processes it can also enforce EC2's account-wide
 * rules (ec2-limits.ts), each off unless asked for:
 *
 * - `ec2Limits`: EC2's token buckets (RunInstances 1,000 instances burst / 2 per s;
 *   Describe* 100 / 20 per s; TerminateInstances 1,000 instances / 20 per s; other
 *   mutating calls 200 / 10 per s); a call that finds its bucket empty is answered
 *   RequestLimitExceeded (HTTP 503) and never reaches moto;
 * - `clientTokens`: RunInstances ClientToken idempotency (same token and parameters:
 *   the first answer, no new instance; other parameters: IdempotentParameterMismatch).
 *
 * Every call, of every service, is counted by action and outcome (`census`; throttles
 * the proxy gave are the outcome "throttled"). With `recordCalls`, each call is also kept whole
 * (`wire`: command, input, signing key; wire-calls.ts) for the IAM proof of worker processes, and
 * with `trust` the proxy plays IAM's evaluation of sts:AssumeRole, which moto skips: each AssumeRole
 * of that role is evaluated against the generated trust and operator policies (sts-trust.ts), and one
 * they do not allow (another ExternalId, another caller) is refused AccessDenied.
 *
 * EC2 is a form-encoded Query API (Action=…) answering XML; every other request
 * (S3, ELBv2, Secrets Manager, the moto API) passes through untouched.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { classifyRequest } from './aws-requests';
import { CallCensus, type CallOutcome } from './call-census';
import { ClientTokens, Ec2RequestLimits, ec2CostOf, runParameters, type BucketSpec, type Ec2BucketName } from './ec2-limits';
import { errorAnswer, outcomeOf, readBody, type Upstream } from './proxy-http';
import { StsTrust, type RoleTrust } from './sts-trust';
import { accessKeyOf, signedRegionOf, wireCallOf, type WireCall } from './wire-calls';

export interface ProxyCall {
  action: string;
  interfaceId?: string;
  instanceId?: string;
  /** DetachNetworkInterface: the attachment it named. */
  attachmentId?: string;
  outcome: 'forwarded' | 'in-use' | 'injected-in-use' | 'injected-rejected' | 'response-lost' | 'deferred';
  at: number;
}

interface Transition {
  state: 'attaching' | 'detaching';
  until: number;
}

export interface FaultProxyOptions {
  /** moto's URL, e.g. http://127.0.0.1:41234 */
  target: string;
  attachDelayMs?: number;
  detachDelayMs?: number;
  /** Enforce EC2's token buckets: true for EC2's defaults, or bucket sizes of one's own. */
  ec2Limits?: boolean | Partial<Record<Ec2BucketName, BucketSpec>>;
  /** Honour RunInstances ClientTokens as EC2 does. */
  clientTokens?: boolean;
  /** The buckets' clock (unit tests). */
  now?: () => number;
  /** Keep every call whole in `wire` (off by default: benchmarks make too many). */
  recordCalls?: boolean;
  /** The role and the generated documents its AssumeRole is evaluated against (sts-trust.ts). */
  trust?: RoleTrust;
}

/** Instances EC2 launched or terminated, as the proxy saw EC2 answer (a replayed ClientToken launches nothing). */
export interface InstanceEvent {
  at: number;
  kind: 'launched' | 'terminated';
  ids: string[];
}

/** A proxy answer, and how the census should count it when it is not simply the upstream's. */
interface Answer extends Upstream {
  outcome?: CallOutcome;
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

export class Ec2FaultProxy {
  /** ENI attach/detach calls and what the proxy did with them. */
  readonly calls: ProxyCall[] = [];
  /** Every call through the proxy, counted by action and outcome. */
  readonly census = new CallCensus();
  /** Every launch and termination EC2 accepted through the proxy, in order: what EC2 held when, to the millisecond. */
  readonly instanceEvents: InstanceEvent[] = [];
  /** Set when the options ask for EC2's token buckets. */
  readonly limits?: Ec2RequestLimits;
  /** With `recordCalls`: every call, in order, as the wire carried it. */
  readonly wire: WireCall[] = [];
  /** The role's trust policy, and the keys AssumeRole handed out (sts.assumedKeys). */
  readonly sts: StsTrust;
  private readonly recordCalls: boolean;
  private readonly tokens?: ClientTokens<Upstream>;
  private server?: Server;
  private transitions = new Map<string, Transition>();
  private injectedInUse = 0;
  private injectedRejected = 0;
  private injectedResponseLost = 0;
  private readonly injectedErrors: { action: string; code: string; status: number; remaining: number }[] = [];
  private readonly target: URL;
  private readonly attachDelayMs: number;
  private readonly detachDelayMs: number;

  constructor(options: FaultProxyOptions) {
    this.target = new URL(options.target);
    this.attachDelayMs = options.attachDelayMs ?? 600;
    this.detachDelayMs = options.detachDelayMs ?? 600;
    if (options.ec2Limits) this.limits = new Ec2RequestLimits(options.ec2Limits === true ? {} : options.ec2Limits, options.now);
    if (options.clientTokens) this.tokens = new ClientTokens<Upstream>((a) => a.status === 200);
    this.recordCalls = options.recordCalls ?? false;
    this.sts = new StsTrust(options.trust);
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

  /** The next `n` calls of the EC2 `action` are answered with `code` (a throttle, HTTP 503, counts as "throttled"). */
  injectError(action: string, code: string, n = 1, status = code === 'RequestLimitExceeded' ? 503 : 400): void {
    this.injectedErrors.push({ action, code, status, remaining: n });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const form = req.method === 'POST' && /x-www-form-urlencoded/.test(req.headers['content-type'] ?? '') ? new URLSearchParams(body.toString('utf8')) : undefined;
    const call = classifyRequest(req.method ?? 'GET', req.url ?? '/', req.headers, form);
    const assumeRole = form && call.service === 'sts' && call.action === 'AssumeRole' ? form : undefined;
    const refused = assumeRole && (await this.sts.refusal(assumeRole, accessKeyOf(req.headers), signedRegionOf(req.headers)));
    const answer = refused ?? (form && call.service === 'ec2' ? await this.ec2(req, form, body, call.action) : await this.forward(req.method ?? 'GET', req.url ?? '/', req.headers, body));
    const instances = form && (call.action === 'RunInstances' || call.action === 'TerminateInstances') ? ec2CostOf(call.action, form) : 0;
    const outcome = (answer as Answer).outcome ?? outcomeOf(answer);
    this.census.record(call, outcome, instances);
    if (this.recordCalls) this.wire.push(wireCallOf(req.method ?? 'GET', req.url ?? '/', req.headers, body, outcome));
    if (assumeRole) this.sts.observe(answer);
    if (instances > 0 && outcome === 'ok') this.recordInstances(call.action === 'RunInstances' ? 'launched' : 'terminated', answer.body);
    return this.reply(res, answer);
  }

  private recordInstances(kind: InstanceEvent['kind'], body: Buffer): void {
    const ids = new Set([...body.toString('utf8').matchAll(/<instanceId>([^<]+)<\/instanceId>/g)].map((m) => m[1] as string));
    if (ids.size > 0) this.instanceEvents.push({ at: Date.now(), kind, ids: [...ids] });
  }

  private async ec2(req: IncomingMessage, form: URLSearchParams, body: Buffer, action: string): Promise<Answer> {
    const token = action === 'RunInstances' ? form.get('ClientToken') : null;
    if (this.tokens && token) {
      const run = await this.tokens.run(token, runParameters(form), () => this.admitted(req, form, body, action));
      if (run.outcome === 'mismatch') {
        return { ...errorAnswer(400, 'IdempotentParameterMismatch', 'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).'), outcome: 'mismatch' };
      }
      return run.outcome === 'replayed' ? { ...run.answer, outcome: 'replayed' } : run.answer;
    }
    return this.admitted(req, form, body, action);
  }

  /** The call, once its token bucket admits it (else EC2's RequestLimitExceeded). */
  private async admitted(req: IncomingMessage, form: URLSearchParams, body: Buffer, action: string): Promise<Answer> {
    const injected = this.injectedErrors.find((e) => e.action === action && e.remaining > 0);
    if (injected) {
      injected.remaining--;
      return { ...errorAnswer(injected.status, injected.code, `fault proxy: injected ${injected.code}`), outcome: injected.code === 'RequestLimitExceeded' ? 'throttled' : injected.code };
    }
    if (this.limits && !this.limits.admit(action, form).admitted) return { ...errorAnswer(503, 'RequestLimitExceeded', 'Request limit exceeded.'), outcome: 'throttled' };
    if (action === 'AttachNetworkInterface') return this.attach(req, form, body);
    if (action === 'DetachNetworkInterface') return this.detach(req, form, body);
    const up = await this.forward('POST', req.url ?? '/', req.headers, body);
    if (action === 'DescribeNetworkInterfaces' && up.status === 200) up.body = Buffer.from(this.rewriteDescribe(up.body.toString('utf8')));
    return up;
  }

  private async attach(req: IncomingMessage, form: URLSearchParams, body: Buffer): Promise<Upstream> {
    const interfaceId = form.get('NetworkInterfaceId') ?? '';
    const instanceId = form.get('InstanceId') ?? '';
    const call = { action: 'AttachNetworkInterface', interfaceId, instanceId, at: Date.now() };
    const inUse = () => errorAnswer(400, 'InvalidParameterValue', `Interface: [${interfaceId}] in use.`);
    if (this.injectedRejected > 0) {
      this.injectedRejected--;
      this.calls.push({ ...call, outcome: 'injected-rejected' });
      return errorAnswer(403, 'UnauthorizedOperation', 'You are not authorized to perform this operation.');
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
      return errorAnswer(500, 'InternalError', 'fault proxy: the attach was applied, its answer lost');
    }
    this.calls.push({ ...call, outcome: 'forwarded' });
    return up;
  }

  /** Answers at once and applies the detach to moto only after the delay, so EC2 shows "detaching" meanwhile. */
  private async detach(req: IncomingMessage, form: URLSearchParams, body: Buffer): Promise<Upstream> {
    const attachmentId = form.get('AttachmentId') ?? '';
    const xml = (await this.describe(req.headers)).body.toString('utf8');
    const item = interfaceItems(xml).find((i) => i.text.includes(`<attachmentId>${attachmentId}</attachmentId>`));
    if (!item) return errorAnswer(400, 'InvalidAttachmentID.NotFound', `The attachment ID '${attachmentId}' does not exist`);
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
    this.calls.push({ action: 'DetachNetworkInterface', interfaceId, attachmentId, instanceId: /<instanceId>([^<]+)<\/instanceId>/.exec(item.text)?.[1], outcome: 'deferred', at: Date.now() });
    return {
      status: 200,
      headers: { 'content-type': 'text/xml' },
      body: Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<DetachNetworkInterfaceResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fault-proxy</requestId><return>true</return></DetachNetworkInterfaceResponse>'),
    };
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
