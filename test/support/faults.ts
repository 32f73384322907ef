/**
 * A fault-injecting layer in front of the emulator, as AWS SDK middleware:
 * it supplies what moto cannot do (a crash right after a call succeeded,
 * throttling, capacity errors, eventual consistency) and records every call,
 * so tests can assert on the order in which AWS was driven.
 *
 * It sits at the `initialize` step, outside the SDK's own retry loop, so an
 * injected failure reaches the activity exactly as a crash would.
 */
import { createHash } from 'node:crypto';
import type { InitializeHandler, InitializeHandlerArguments, InitializeHandlerOutput, HandlerExecutionContext } from '@smithy/types';
import type { AwsClients } from '../../adapters/aws/clients';
import { authRequestsOf, type ArnScope, type AuthRequest, type ResourceFacts } from './iam-calls';
import { currentCaller, type Caller } from './operator-calls';

/** Any SDK v3 client: each has its own input/output types, which this layer does not need. */
interface MiddlewareClient {
  middlewareStack: { add(middleware: never, options: { step: 'initialize'; name: string; override: boolean }): void };
}

type Handler = InitializeHandler<object, object>;

export interface CallRecord {
  command: string;
  input: Record<string, unknown>;
  at: number;
  outcome: 'ok' | 'error' | 'injected';
  /** The error's code (its name, as the SDK sets it) when the call failed. */
  error?: string;
  /**
   * What IAM authorises for this call: actions, resource ARNs, request and resource tags (iam-calls.ts),
   * as known when it was made. Absent for calls only the tests make (seeding), which the IAM proof skips.
   */
  auth?: AuthRequest[];
  /** Who made it (operator-calls.ts): the worker, or a test acting as the operator. */
  caller: Caller;
}

/** moto's account: every ARN it answers with is in it. */
export const MOTO_ACCOUNT = '123456789012';

type Match = (command: string, input: Record<string, unknown>) => boolean;

interface Rule {
  match: Match;
  when: 'before' | 'after';
  remaining: number;
  /** Throw this, or run this (a hook) and let the call continue. */
  action: { fail: () => Error } | { run: () => Promise<void> };
}

/** An error shaped like the SDK's service errors (name and $fault), so classification treats it as AWS's. */
export function awsError(code: string, message = code, fault: 'client' | 'server' = 'client'): Error {
  const err = new Error(message) as Error & { $fault: string; $metadata: object };
  err.name = code;
  err.$fault = fault;
  err.$metadata = { httpStatusCode: fault === 'server' ? 503 : 400 };
  return err;
}

interface Ec2Instance {
  InstanceId?: string;
}
interface RunInstancesOutput {
  Instances?: Ec2Instance[];
}
interface DescribeInstancesOutput {
  Reservations?: { Instances?: (Ec2Instance & { State?: { Code?: number; Name?: string } })[] }[];
}

interface TaggedOutput {
  Reservations?: { Instances?: { InstanceId?: string; Tags?: { Key?: string; Value?: string }[] }[] }[];
  NetworkInterfaces?: { NetworkInterfaceId?: string; TagSet?: { Key?: string; Value?: string }[]; Attachment?: { AttachmentId?: string; InstanceId?: string } }[];
  Instances?: { InstanceId?: string; Tags?: { Key?: string; Value?: string }[] }[];
  AttachmentId?: string;
}

interface DescribeTargetHealthOutput {
  TargetHealthDescriptions?: { Target?: { Id?: string; Port?: number }; TargetHealth?: { State?: string } }[];
}

/** A RunInstances request's parameters, minus its ClientToken, in a canonical form (key order does not matter). */
function runParameters(input: Record<string, unknown>): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, canonical(x)]))
        : v;
  const { ClientToken: _token, ...rest } = input;
  return createHash('sha256').update(JSON.stringify(canonical(rest))).digest('hex');
}

export class FaultLayer implements ResourceFacts {
  readonly calls: CallRecord[] = [];
  /** Tags of the instances and ENIs seen so far, and the ENI and instance of each attachment, for `auth`. */
  private readonly tags = new Map<string, Record<string, string>>();
  private readonly attachments = new Map<string, { interfaceId?: string; instanceId?: string }>();
  private readonly scope: ArnScope;

  constructor(scope: Partial<ArnScope> = {}) {
    this.scope = { region: scope.region ?? process.env.AWS_REGION ?? 'us-east-1', account: scope.account ?? MOTO_ACCOUNT, partition: scope.partition };
  }

  tagsOf(resourceId: string): Record<string, string> | undefined {
    return this.tags.get(resourceId);
  }

  attachment(attachmentId: string): { interfaceId?: string; instanceId?: string } | undefined {
    return this.attachments.get(attachmentId);
  }
  private rules: Rule[] = [];
  /**
   * AWS's RunInstances idempotency, which moto lacks: same ClientToken and same parameters, same
   * result; same ClientToken with other parameters, IdempotentParameterMismatch.
   */
  private clientTokens: Map<string, { parameters: string; out: unknown }> | undefined;
  /** EC2's eventual consistency: instances invisible to Describe for a while after launch. */
  private hideNewForMs = 0;
  private launchedAt = new Map<string, number>();
  /** EC2's boot: instances show "pending" for this long after launch (moto has them running at once). */
  private pendingForMs = 0;
  /** Instances Describe does not show, whatever their age (eventual consistency for one known instance). */
  private hiddenIds = new Set<string>();
  /** Targets an NLB keeps "draining" (moto drops a deregistered target at once). */
  private draining = new Set<string>();

  attach(...clients: MiddlewareClient[]): this {
    return this.attachAs('worker', ...clients);
  }

  /** `clients`' calls recorded as `caller`'s (operator-calls.ts), unless made inside asOperator. */
  private attachAs(caller: Caller, ...clients: MiddlewareClient[]): this {
    for (const client of clients) client.middlewareStack.add(this.middleware(caller) as never, { step: 'initialize', name: 'nstanceFaultLayer', override: true });
    return this;
  }

  /**
   * Every client of a set (EC2, S3, ELBv2, Secrets Manager, Parameter Store), so each call is logged for the
   * IAM proof; `caller` says whose clients they are: the worker's (default), or the test's own.
   */
  attachAll(aws: AwsClients, caller: Caller = 'worker'): this {
    return this.attachAs(caller, aws.ec2, aws.s3, aws.elbv2, aws.secrets, aws.ssm);
  }

  /** The layer as an SDK plugin, for clients built inside the SDK (the STS client of fromTemporaryCredentials). */
  plugin(): { applyToStack(stack: MiddlewareClient['middlewareStack']): void } {
    return { applyToStack: (stack) => stack.add(this.middleware('worker') as never, { step: 'initialize', name: 'nstanceFaultLayer', override: true }) };
  }

  private middleware(clientsOf: Caller) {
    return (next: Handler, context: HandlerExecutionContext) => async (args: InitializeHandlerArguments<object>): Promise<InitializeHandlerOutput<object>> => {
          const command = String((context as { commandName?: string }).commandName ?? 'unknown').replace(/Command$/, '');
          const input = ((args as { input?: Record<string, unknown> }).input ?? {}) as Record<string, unknown>;
          const record: CallRecord = { command, input, at: Date.now(), outcome: 'ok', caller: currentCaller(clientsOf) };
          const auth = authRequestsOf(command, input, this.scope, this);
          if (auth) record.auth = auth;
          this.calls.push(record);
          await this.apply('before', command, input, record);
          const token = command === 'RunInstances' ? (input.ClientToken as string | undefined) : undefined;
          const earlier = token ? this.clientTokens?.get(token) : undefined;
          if (earlier) {
            if (earlier.parameters === runParameters(input)) return earlier.out as InitializeHandlerOutput<object>;
            record.outcome = 'error';
            record.error = 'IdempotentParameterMismatch';
            throw awsError('IdempotentParameterMismatch', 'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).');
          }
          try {
            const out = await next(args);
            this.learn(command, input, out.output as TaggedOutput);
            if (command === 'RunInstances') this.remember(token, input, out);
            if (command === 'DescribeInstances') {
              this.hide(input, out.output as DescribeInstancesOutput);
              this.keepPending(out.output as DescribeInstancesOutput);
            }
            if (command === 'DescribeTargetHealth') this.addDraining(out.output as DescribeTargetHealthOutput);
            await this.apply('after', command, input, record);
            return out;
          } catch (err) {
            if (record.outcome === 'ok') record.outcome = 'error';
            record.error ??= err instanceof Error ? err.name : String(err);
            throw err;
          }
        };
  }

  /** Tags and attachments from answers (and from the tags a request set), so later calls' `auth` carries resource tags. */
  private learn(command: string, input: Record<string, unknown>, output: TaggedOutput | undefined): void {
    const keep = (id: string | undefined, list: { Key?: string; Value?: string }[] | undefined) => {
      if (!id || !list) return;
      this.tags.set(id, Object.fromEntries(list.filter((t) => t.Key).map((t) => [t.Key as string, t.Value ?? ''])));
    };
    if (!output) return;
    for (const r of output.Reservations ?? []) for (const i of r.Instances ?? []) keep(i.InstanceId, i.Tags);
    for (const n of output.NetworkInterfaces ?? []) {
      keep(n.NetworkInterfaceId, n.TagSet);
      if (n.Attachment?.AttachmentId) this.attachments.set(n.Attachment.AttachmentId, { interfaceId: n.NetworkInterfaceId, instanceId: n.Attachment.InstanceId });
    }
    if (command === 'RunInstances') {
      const spec = (input.TagSpecifications as { ResourceType?: string; Tags?: { Key?: string; Value?: string }[] }[] | undefined)?.find((t) => t.ResourceType === 'instance');
      for (const i of output.Instances ?? []) keep(i.InstanceId, i.Tags ?? spec?.Tags);
    }
    if (command === 'AttachNetworkInterface' && output.AttachmentId) {
      this.attachments.set(output.AttachmentId, { interfaceId: input.NetworkInterfaceId as string, instanceId: input.InstanceId as string });
    }
    if (command === 'CreateTags') {
      for (const id of (input.Resources as string[] | undefined) ?? []) {
        const added = Object.fromEntries(((input.Tags as { Key?: string; Value?: string }[] | undefined) ?? []).filter((t) => t.Key).map((t) => [t.Key as string, t.Value ?? '']));
        this.tags.set(id, { ...this.tags.get(id), ...added });
      }
    }
  }

  /** Fail the next `times` matching calls before they reach AWS. */
  failBefore(command: string | Match, error: () => Error, times = 1): this {
    return this.add(command, 'before', times, { fail: error });
  }

  /** Let the next `times` matching calls succeed at AWS, then fail as if the caller crashed. */
  failAfter(command: string | Match, error: () => Error, times = 1): this {
    return this.add(command, 'after', times, { fail: error });
  }

  /** Run `hook` just before the next matching call (for example, a competing writer). */
  before(command: string | Match, hook: () => Promise<void>, times = 1): this {
    return this.add(command, 'before', times, { run: hook });
  }

  /**
   * RunInstances honours ClientToken as AWS does: a repeat of a launch that succeeded returns that launch
   * when its parameters are the same, and fails with IdempotentParameterMismatch when they differ.
   */
  emulateClientTokens(): this {
    this.clientTokens ??= new Map();
    return this;
  }

  /** Make instances invisible to DescribeInstances for `ms` after their launch. */
  hideNewInstances(ms: number): this {
    this.hideNewForMs = ms;
    return this;
  }

  /** Make instances show "pending" for `ms` after their launch, as EC2's do while they boot. */
  holdPending(ms: number): this {
    this.pendingForMs = ms;
    return this;
  }

  private keepPending(output: DescribeInstancesOutput): void {
    if (this.pendingForMs <= 0) return;
    for (const r of output.Reservations ?? []) {
      for (const i of r.Instances ?? []) {
        const launched = i.InstanceId ? this.launchedAt.get(i.InstanceId) : undefined;
        if (launched !== undefined && Date.now() - launched < this.pendingForMs && i.State?.Name === 'running') i.State = { Code: 0, Name: 'pending' };
      }
    }
  }

  /** Make one instance invisible to DescribeInstances, whatever its age, until called again with `hidden` false. */
  setInstanceHidden(ec2InstanceId: string, hidden: boolean): this {
    if (hidden) this.hiddenIds.add(ec2InstanceId);
    else this.hiddenIds.delete(ec2InstanceId);
    return this;
  }

  private remember(token: string | undefined, input: Record<string, unknown>, out: { output: unknown }): void {
    for (const i of (out.output as RunInstancesOutput).Instances ?? []) if (i.InstanceId) this.launchedAt.set(i.InstanceId, Date.now());
    // Only a launch that succeeded binds its token, as at AWS: a rejected request may be retried with other parameters.
    if (token && this.clientTokens) this.clientTokens.set(token, { parameters: runParameters(input), out });
  }

  private hide(input: Record<string, unknown>, output: DescribeInstancesOutput): void {
    if (this.hideNewForMs <= 0 && this.hiddenIds.size === 0) return;
    const hidden = (id?: string) =>
      id !== undefined && (this.hiddenIds.has(id) || Date.now() - (this.launchedAt.get(id) ?? 0) < this.hideNewForMs);
    const asked = (input.InstanceIds as string[] | undefined) ?? [];
    if (asked.some((id) => hidden(id))) throw awsError('InvalidInstanceID.NotFound', `The instance IDs '${asked.join(', ')}' do not exist`);
    for (const r of output.Reservations ?? []) r.Instances = (r.Instances ?? []).filter((i) => !hidden(i.InstanceId));
    output.Reservations = (output.Reservations ?? []).filter((r) => (r.Instances ?? []).length > 0);
  }

  /** Keep reporting this instance as a draining target of every target group, as a slow NLB drain would. */
  keepDraining(ec2InstanceId: string): this {
    this.draining.add(ec2InstanceId);
    return this;
  }

  /** The slow drain is over: the NLB stops reporting the target. */
  stopDraining(ec2InstanceId: string): this {
    this.draining.delete(ec2InstanceId);
    return this;
  }

  private addDraining(output: DescribeTargetHealthOutput): void {
    const list = (output.TargetHealthDescriptions ??= []);
    for (const id of this.draining) {
      if (!list.some((d) => d.Target?.Id === id)) list.push({ Target: { Id: id }, TargetHealth: { State: 'draining' } });
    }
  }

  callsOf(command: string): CallRecord[] {
    return this.calls.filter((c) => c.command === command);
  }

  clear(): void {
    this.rules = [];
  }

  private add(command: string | Match, when: Rule['when'], times: number, action: Rule['action']): this {
    const match: Match = typeof command === 'string' ? (name) => name === command : command;
    this.rules.push({ match, when, remaining: times, action });
    return this;
  }

  private async apply(when: Rule['when'], command: string, input: Record<string, unknown>, record: CallRecord): Promise<void> {
    const rule = this.rules.find((r) => r.when === when && r.remaining > 0 && r.match(command, input));
    if (!rule) return;
    rule.remaining--;
    if ('run' in rule.action) return rule.action.run();
    record.outcome = 'injected';
    const err = rule.action.fail();
    record.error = err.name;
    throw err;
  }
}
