/**
 * A layer between a Temporal client and its connection, as the AWS fault layer is for EC2: it
 * counts every WorkflowService call by method (describeWorkflowExecution, listWorkflowExecutions…)
 * and can hide executions from visibility lists, which is how visibility lag looks to a caller
 * (a workflow that runs but is not listed yet, or no longer listed). Describe is left alone: it
 * reads the execution itself, consistently.
 */
import { Client, type ConnectionLike } from '@temporalio/client';
import { nstanceDataConverter } from '../../adapters/temporal/data-converter';

type WorkflowService = ConnectionLike['workflowService'];
type ListResponse = Awaited<ReturnType<WorkflowService['listWorkflowExecutions']>>;

export class TemporalCallLayer {
  readonly client: Client;
  /** Every call made through the layer's client, in order, with when it was made and answered (ms since epoch). */
  readonly calls: { method: string; at: number; answeredAt?: number }[] = [];
  private readonly counts = new Map<string, number>();
  private hidden: (workflowId: string) => boolean = () => false;

  constructor(base: Client) {
    const service = base.connection.workflowService;
    const counted = new Proxy(service, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof prop !== 'string' || typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          this.counts.set(prop, (this.counts.get(prop) ?? 0) + 1);
          const call: TemporalCallLayer['calls'][number] = { method: prop, at: Date.now() };
          this.calls.push(call);
          const response: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          call.answeredAt = Date.now();
          if (prop === 'listWorkflowExecutions') this.hide(response as ListResponse);
          return response;
        };
      },
    });
    const connection = new Proxy(base.connection, {
      get: (target, prop, receiver) => {
        if (prop === 'workflowService') return counted;
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    this.client = new Client({ connection, namespace: base.options.namespace, dataConverter: nstanceDataConverter() });
  }

  /** WorkflowService calls of this method made through the layer's client (e.g. 'describeWorkflowExecution'). */
  count(method: string): number {
    return this.counts.get(method) ?? 0;
  }

  /** Leaves the matching executions out of every visibility list from now on (until told otherwise). */
  hideFromVisibility(hidden: (workflowId: string) => boolean): this {
    this.hidden = hidden;
    return this;
  }

  reset(): void {
    this.counts.clear();
    this.calls.length = 0;
    this.hidden = () => false;
  }

  private hide(response: ListResponse): void {
    if (response.executions) response.executions = response.executions.filter((e) => !this.hidden(e.execution?.workflowId ?? ''));
  }
}
