/**
 * The agent API in one process, with S3, Secrets Manager and Temporal faked in memory:
 * fencing of every write on the leadership a request started under, epochs stamped on
 * what it writes and signals, rejections of malformed requests audited, TLS 1.3 only,
 * the health tracker seeded when leadership is gained, and files served only to
 * instances whose workflow still runs.
 */
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, ListSecretsCommand } from '@aws-sdk/client-secrets-manager';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AwsClients } from '../../adapters/aws/clients';
import type { CertLogEntry } from '../../adapters/pki/certlog';
import type { ClusterPki, PkiCache } from '../../adapters/pki/cluster-ca';
import { mintNonce } from '../../adapters/pki/nonce';
import * as clientCert from '../../adapters/pki/client-cert';
import * as x509 from '../../adapters/pki/x509';
import type { AuditEntry } from '../../common/types';
import { instanceWorkflowId } from '../../common/names';
import { agentUri } from '../../workers/agent-api/register';
import { AgentApi } from '../../workers/agent-api/server';
import { MutableLeadershipGate } from '../../workers/leadership/gate';
import { callAgentApi, postToAgentApi, type AgentApiResponse } from '../support/agent-api-call';
import type { AgentRegistration, HealthTransition } from '../../workflows/definitions';

const SHARD = 'fence';
const VIEW = { clusterId: 'test', secretsPrefix: 'nstance/test/', healthCheckIntervalMs: 60_000 };

/** S3 with create-only writes (If-None-Match), as the ObjectStore uses it; `onPut` runs after a write landed. */
class MemoryS3 {
  readonly objects = new Map<string, string>();
  onPut: (key: string) => void = () => undefined;
  /** Writes of keys matching this never answer: they end only when the caller aborts them. */
  hangOn: RegExp | undefined;
  /** Writes that were aborted while hanging. */
  aborted: string[] = [];

  async send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
    if (command instanceof PutObjectCommand) {
      const { Key, Body, IfNoneMatch } = command.input;
      if (this.hangOn?.test(Key as string)) {
        const signal = options?.abortSignal;
        await new Promise<void>((resolve) => (signal ? signal.addEventListener('abort', () => resolve(), { once: true }) : undefined));
        this.aborted.push(Key as string);
        throw Object.assign(new Error('Request aborted'), { name: 'AbortError' });
      }
      if (IfNoneMatch && this.objects.has(Key as string)) throw Object.assign(new Error('exists'), { name: 'PreconditionFailed' });
      this.objects.set(Key as string, String(Body));
      this.onPut(Key as string);
      return { ETag: '"1"' };
    }
    if (command instanceof GetObjectCommand) {
      const text = this.objects.get(command.input.Key as string);
      if (text === undefined) throw Object.assign(new Error('missing'), { name: 'NoSuchKey' });
      return { Body: { transformToString: async () => text }, ETag: '"1"' };
    }
    throw new Error(`unexpected S3 call ${(command as object).constructor.name}`);
  }

  keys(prefix: string): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix));
  }

  json<T>(prefix: string): T[] {
    return this.keys(prefix).map((k) => JSON.parse(this.objects.get(k) as string) as T);
  }
}

/** Secrets Manager's list and read; `reads` counts GetSecretValue calls. */
class MemorySecrets {
  readonly values = new Map<string, string>();
  reads = 0;
  lists = 0;

  async send(command: unknown): Promise<unknown> {
    if (command instanceof ListSecretsCommand) {
      this.lists++;
      return { SecretList: [...this.values.keys()].map((Name) => ({ Name })) };
    }
    if (command instanceof GetSecretValueCommand) {
      this.reads++;
      const value = this.values.get(command.input.SecretId as string);
      if (value === undefined) throw Object.assign(new Error('missing'), { name: 'ResourceNotFoundException' });
      return { SecretString: value };
    }
    throw new Error(`unexpected Secrets Manager call ${(command as object).constructor.name}`);
  }
}

interface Sent {
  workflowId: string;
  signal: string;
  arg: AgentRegistration | HealthTransition;
}

/** The few Temporal client calls the agent API makes. A workflow is RUNNING unless `statuses` says otherwise. */
/** What a new leader's seeding reads: instances visibility shows registered, and a group's members in service. */
interface Seedable {
  running: () => string[];
  inService: () => string[];
}

function fakeClient(hooks: { onDescribe: () => void | Promise<void>; statuses: Map<string, string>; described: string[]; sent: Sent[] } & Seedable): Client {
  return {
    withAbortSignal: async <R>(signal: AbortSignal, fn: () => Promise<R>): Promise<R> => {
      if (signal.aborted) throw Object.assign(new Error('cancelled'), { name: 'CancelledError' });
      return fn();
    },
    workflow: {
      getHandle: (workflowId: string) => ({
        describe: async () => {
          await hooks.onDescribe();
          hooks.described.push(workflowId);
          const name = hooks.statuses.get(workflowId) ?? 'RUNNING';
          if (name === 'NOT_FOUND') throw new WorkflowNotFoundError(`no workflow ${workflowId}`, workflowId, undefined);
          return { status: { name } };
        },
        signal: async (def: { name: string }, arg: AgentRegistration | HealthTransition) => {
          hooks.sent.push({ workflowId, signal: def.name, arg });
        },
        query: async () => ({ members: hooks.inService().map((instanceId) => ({ instanceId, phase: 'in-service' })) }),
      }),
      list: async function* ({ query }: { query: string }) {
        if (query.includes("'groupWorkflow'")) yield { workflowId: `nstance:${SHARD}:group:default/web` };
        else for (const id of hooks.running()) yield { workflowId: instanceWorkflowId(SHARD, id) };
      },
    },
  } as unknown as Client;
}

async function clusterPki(): Promise<ClusterPki> {
  const caKey = generateKeyPairSync('ed25519').privateKey;
  const registration = generateKeyPairSync('ed25519');
  return {
    clusterId: VIEW.clusterId,
    caCertPem: await x509.createCaCertificate(caKey, VIEW.clusterId),
    caKey,
    registrationKey: registration.privateKey,
    registrationPublicKey: registration.publicKey,
    registrationKid: 'kid',
    created: { caKey: false, registrationKey: false, caCert: false },
  };
}

let s3: MemoryS3;
let secrets: MemorySecrets;
let statuses: Map<string, string>;
let described: string[];
let gate: MutableLeadershipGate;
let api: AgentApi;
let pki: ClusterPki;
let clock: number;
let sent: Sent[];
let onDescribe: () => void | Promise<void>;
let running: string[];
let inService: string[];

beforeEach(async () => {
  s3 = new MemoryS3();
  secrets = new MemorySecrets();
  statuses = new Map();
  described = [];
  gate = new MutableLeadershipGate();
  gate.set({ leader: true, epoch: 1 });
  pki = await clusterPki();
  clock = Date.now();
  sent = [];
  onDescribe = () => undefined;
  running = [];
  inService = [];
  api = await startApi();
});

async function startApi(extra: Partial<ConstructorParameters<typeof AgentApi>[0]> = {}): Promise<AgentApi> {
  const started = new AgentApi({
    port: 0,
    host: '127.0.0.1',
    client: fakeClient({ onDescribe: () => onDescribe(), statuses, described, running: () => running, inService: () => inService, sent }),
    aws: { s3, secrets } as unknown as AwsClients,
    bucket: 'b',
    shard: SHARD,
    workerId: 'w1',
    gate,
    pki: { get: async () => pki } as unknown as PkiCache,
    now: () => clock,
    ...extra,
  });
  // The shard's config is not under test: its view is given.
  started.context.view = async () => VIEW;
  await started.start();
  return started;
}

afterEach(async () => {
  await api.close();
  jest.restoreAllMocks();
});

function post(path: string, body: string): Promise<AgentApiResponse> {
  return postToAgentApi({ port: api.address?.port, ca: pki.caCertPem, servername: 'localhost' }, path, body);
}

function registration(instanceId = 'i-1', key: KeyObject = pki.registrationKey): string {
  const nonce = mintNonce(key, { cluster: VIEW.clusterId, shard: SHARD, tenant: 'default', group: 'web', instanceId }, 60_000, clock).token;
  const publicKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' });
  return JSON.stringify({ nonce, publicKey });
}

const clientCertificates = (spy: jest.SpyInstance) => spy.mock.calls.length;
const flush = () => new Promise((r) => setImmediate(r));

describe('fencing: a worker deposed in the middle of a registration stops there', () => {
  test.each([
    ['steps down', () => gate.set({ leader: false, epoch: 1 })],
    ['sees another epoch', () => gate.set({ leader: true, epoch: 2 })],
  ])('leadership that %s while the instance workflow is looked up: 503, no nonce spent, no certificate, nothing logged or signalled', async (_what, flip) => {
    const issue = jest.spyOn(clientCert, 'issueClientCertificate');
    onDescribe = flip;
    const res = await post('/v1/register', registration());
    expect(res).toMatchObject({ status: 503, body: { error: 'not-leader' } });
    expect(s3.keys(`shard/${SHARD}/nonce/`)).toEqual([]);
    expect(s3.keys(`shard/${SHARD}/certlog/default.`)).toEqual([]);
    expect(clientCertificates(issue)).toBe(0);
    expect(sent).toEqual([]);
    expect(s3.json<AuditEntry>(`shard/${SHARD}/audit/`).map((e) => e.action)).toEqual([]);
  });

  test('deposed once the nonce is spent: the certificate is neither handed out, logged, audited nor signalled; the retry at the new leader gets that one', async () => {
    const issue = jest.spyOn(clientCert, 'issueClientCertificate');
    s3.onPut = (key) => {
      if (key.includes('/nonce/')) gate.set({ leader: false, epoch: 1 });
    };
    const body = registration();
    const res = await post('/v1/register', body);
    expect(res).toMatchObject({ status: 503, body: { error: 'not-leader' } });
    expect(res.body.serialNumber).toBeUndefined();
    // The nonce stays spent, with the certificate signed for it (signed in memory before the spend, never sent).
    const [record] = s3.json<{ instanceId: string; leaderEpoch?: number; issued?: { serialNumber: string } }>(`shard/${SHARD}/nonce/`);
    expect(record).toMatchObject({ instanceId: 'i-1', leaderEpoch: 1, issued: { serialNumber: expect.any(String) } });
    expect(clientCertificates(issue)).toBe(1);
    expect(s3.keys(`shard/${SHARD}/certlog/default.`)).toEqual([]);
    expect(s3.json<AuditEntry>(`shard/${SHARD}/audit/`).map((e) => e.action)).toEqual([]);
    expect(sent).toEqual([]);

    // The agent retries (same nonce, same key) at the new leader: it gets the recorded certificate, logged now, signalled at the new epoch.
    s3.onPut = () => undefined;
    gate.set({ leader: true, epoch: 2 });
    const retried = await post('/v1/register', body);
    expect(retried).toMatchObject({ status: 200, body: { serialNumber: record.issued?.serialNumber } });
    expect(clientCertificates(issue)).toBe(2);
    expect(s3.json<CertLogEntry>(`shard/${SHARD}/certlog/default.`)).toEqual([expect.objectContaining({ serialNumber: record.issued?.serialNumber, leaderEpoch: 1 })]);
    expect(sent).toEqual([expect.objectContaining({ signal: 'agentRegistered', arg: expect.objectContaining({ certificateSerial: record.issued?.serialNumber, leaderEpoch: 2 }) })]);
    expect(s3.json<AuditEntry>(`shard/${SHARD}/audit/`)).toEqual([expect.objectContaining({ action: 'agent.register', details: expect.objectContaining({ repeatOfSpentNonce: true }) })]);
  });

  test('a registration writes three S3 objects (the spent nonce holding the certificate, the certificate log, the audit entry) and reads none', async () => {
    const puts: string[] = [];
    s3.onPut = (key) => puts.push(key.split('/')[2] as string);
    const gets = jest.spyOn(s3, 'send');
    expect((await post('/v1/register', registration())).status).toBe(200);
    await flush();
    expect(puts.sort()).toEqual(['audit', 'certlog', 'nonce']);
    expect(gets.mock.calls.filter(([c]) => c instanceof GetObjectCommand)).toEqual([]);
  });

  test('a registration at the current epoch stamps it on the nonce record, the certificate log and the signal', async () => {
    gate.set({ leader: true, epoch: 7 });
    const res = await post('/v1/register', registration());
    expect(res.status).toBe(200);
    expect(s3.json<{ leaderEpoch?: number }>(`shard/${SHARD}/nonce/`)).toEqual([expect.objectContaining({ leaderEpoch: 7 })]);
    expect(s3.json<CertLogEntry>(`shard/${SHARD}/certlog/default.`)).toEqual([expect.objectContaining({ serialNumber: res.body.serialNumber, leaderEpoch: 7 })]);
    expect(sent).toEqual([{ workflowId: instanceWorkflowId(SHARD, 'i-1'), signal: 'agentRegistered', arg: expect.objectContaining({ leaderEpoch: 7 }) }]);
    expect(api.tracker.state('i-1')?.state).toBe('healthy');
  });

  test('health transitions carry the epoch; a worker no longer leading signals none', async () => {
    gate.set({ leader: true, epoch: 4 });
    api.tracker.registered('i-1');
    api.tracker.report('i-1', { status: 'unhealthy', reason: 'disk full' });
    await flush();
    expect(sent.map((s) => s.arg)).toEqual([expect.objectContaining({ status: 'unhealthy', leaderEpoch: 4 })]);
    gate.set({ leader: false, epoch: 4 });
    api.tracker.report('i-1', { status: 'healthy' });
    await flush();
    expect(sent).toHaveLength(1);
  });
});

test('malformed registrations (bad JSON, no nonce, a bad public key) are rejected with 400 and audited', async () => {
  const nonce = JSON.parse(registration()).nonce as string;
  const cases = [
    { body: '{not json', error: 'bad-json' },
    { body: JSON.stringify({ publicKey: 'x' }), error: 'bad-request' },
    { body: JSON.stringify({ nonce, publicKey: 'not a key' }), error: 'bad-public-key' },
  ];
  for (const c of cases) expect(await post('/v1/register', c.body)).toMatchObject({ status: 400, body: { error: c.error } });
  // Nothing is written per rejection: the window's summaries are, one per reason.
  expect(s3.keys(`shard/${SHARD}/audit/`)).toEqual([]);
  await api.context.rejections.flush();
  const rejected = s3.json<AuditEntry>(`shard/${SHARD}/audit/`).filter((e) => e.action === 'agent.register.rejected');
  expect(rejected.map((e) => e.details?.reason).sort()).toEqual(cases.map((c) => c.error).sort());
  expect(s3.keys(`shard/${SHARD}/nonce/`)).toEqual([]);
});

describe('limits', () => {
  test('a remote past its budget of rejections is answered 429 at once, with Retry-After, reading and writing nothing; it earns requests back over time', async () => {
    await api.close();
    api = await startApi({ rejectionLimits: { burst: 3, refillPerSecond: 0.5 } });
    for (let i = 0; i < 3; i++) expect((await post('/v1/register', '{bad')).status).toBe(400);
    const sends = jest.spyOn(s3, 'send');
    const limited = await post('/v1/register', registration());
    expect(limited).toMatchObject({ status: 429, body: { error: 'too-many-rejections' } });
    expect(limited.headers?.['retry-after']).toBe('2');
    // Not even the instance lookup: the request is refused before anything.
    expect([sends.mock.calls.length, described.length]).toEqual([0, 0]);
    clock += 2_000;
    expect((await post('/v1/register', registration())).status).toBe(200);
    // Accepted requests spend nothing: more of them still pass.
    expect((await post('/v1/register', registration('i-2'))).status).toBe(200);
    await api.context.rejections.flush();
    const summaries = s3.json<AuditEntry>(`shard/${SHARD}/audit/`).filter((e) => e.details?.summary);
    expect(summaries.map((e) => [e.action, e.details?.reason, e.details?.count]).sort()).toEqual([
      ['agent.rate-limited', 'too-many-rejections', 1],
      ['agent.register.rejected', 'bad-json', 3],
    ]);
  });

  test('past the registrations in flight and queued, the API answers 503 with Retry-After; the queued ones are served, and other requests are not held up', async () => {
    await api.close();
    api = await startApi({ registrationConcurrency: { maxInFlight: 2, maxQueued: 1 } });
    let open: () => void = () => undefined;
    const blocked = new Promise<void>((r) => (open = r));
    onDescribe = () => blocked;
    const pending = ['i-1', 'i-2', 'i-3'].map((id) => post('/v1/register', registration(id)));
    await new Promise((r) => setTimeout(r, 200));
    expect([api.registrations.inFlight, api.registrations.queued]).toEqual([2, 1]);
    const shed = await post('/v1/register', registration('i-4'));
    expect(shed).toMatchObject({ status: 503, body: { error: 'busy' } });
    expect(Number(shed.headers?.['retry-after'])).toBeGreaterThanOrEqual(1);
    // Registrations have their own bound: other requests are still answered at once.
    expect((await post('/v1/health', '{}')).status).toBe(401);
    open();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect([api.registrations.inFlight, api.registrations.queued]).toEqual([0, 0]);
  });
});

test('a registration whose agent hung up while it was queued does nothing when its turn comes (its body is read only then): no lookup, nothing written', async () => {
  await api.close();
  api = await startApi({ registrationConcurrency: { maxInFlight: 1, maxQueued: 5 } });
  let open: () => void = () => undefined;
  const blocked = new Promise<void>((r) => (open = r));
  onDescribe = () => blocked;
  const first = post('/v1/register', registration('i-1'));
  await new Promise((r) => setTimeout(r, 100));
  const gaveUp = request({ host: '127.0.0.1', port: api.address?.port, method: 'POST', path: '/v1/register', ca: pki.caCertPem, servername: 'localhost', minVersion: 'TLSv1.3', agent: false });
  gaveUp.on('error', () => undefined);
  gaveUp.end(registration('i-2'));
  await new Promise((r) => setTimeout(r, 200));
  expect(api.registrations.queued).toBe(1);
  gaveUp.destroy();
  await new Promise((r) => setTimeout(r, 100));
  open();
  expect((await first).status).toBe(200);
  await new Promise((r) => setTimeout(r, 100));
  expect(described).toEqual([instanceWorkflowId(SHARD, 'i-1')]);
  expect(s3.keys(`shard/${SHARD}/nonce/`)).toHaveLength(1);
  expect([api.registrations.inFlight, api.registrations.queued]).toEqual([0, 0]);
});

describe('a request lives until its deadline or its agent hangs up, and no longer', () => {
  test('a registration whose S3 write never answers is given up at the deadline: 503 with Retry-After, the write aborted, its slot freed, nothing signalled; the retry completes it', async () => {
    await api.close();
    api = await startApi({ requestDeadlineMs: 300, registrationConcurrency: { maxInFlight: 1, maxQueued: 5 } });
    s3.hangOn = /\/nonce\//;
    const body = registration();
    const res = await post('/v1/register', body);
    expect(res).toMatchObject({ status: 503, body: { error: 'deadline' } });
    expect(res.headers?.['retry-after']).toBe('1');
    expect(s3.aborted).toEqual([expect.stringContaining(`shard/${SHARD}/nonce/`)]);
    expect(sent).toEqual([]);
    expect([api.registrations.inFlight, api.registrations.queued]).toEqual([0, 0]);
    s3.hangOn = undefined;
    expect((await post('/v1/register', body)).status).toBe(200);
    expect(sent).toEqual([expect.objectContaining({ signal: 'agentRegistered' })]);
    expect(api.registrationStats.flush()).toMatch(/1 answered, 1 past the deadline, 0 hung up/);
  });

  test('an agent that hangs up mid-registration: its S3 write is aborted, nothing is logged or signalled, and its slot goes to the next one at once', async () => {
    await api.close();
    api = await startApi({ registrationConcurrency: { maxInFlight: 1, maxQueued: 5 } });
    s3.hangOn = /\/nonce\//;
    const gaveUp = request({ host: '127.0.0.1', port: api.address?.port, method: 'POST', path: '/v1/register', ca: pki.caCertPem, servername: 'localhost', minVersion: 'TLSv1.3', agent: false });
    gaveUp.on('error', () => undefined);
    gaveUp.end(registration('i-1'));
    await eventuallyTrue(() => api.registrations.inFlight === 1 && described.length === 1);
    gaveUp.destroy();
    await eventuallyTrue(() => s3.aborted.length === 1);
    s3.hangOn = undefined;
    expect((await post('/v1/register', registration('i-2'))).status).toBe(200);
    expect(s3.keys(`shard/${SHARD}/certlog/default.`)).toHaveLength(1);
    expect(sent.map((s) => s.workflowId)).toEqual([instanceWorkflowId(SHARD, 'i-2')]);
    expect(api.registrationStats.flush()).toMatch(/1 answered, 0 past the deadline, 1 hung up/);
  });
});

async function eventuallyTrue(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a TLS 1.2 client is refused at the handshake', async () => {
  const outcome = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: api.address?.port, ca: pki.caCertPem, servername: 'localhost', maxVersion: 'TLSv1.2' });
    socket.once('secureConnect', () => {
      resolve(`connected with ${socket.getProtocol()}`);
      socket.destroy();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  expect(outcome).toMatch(/PROTOCOL_VERSION/);
});

describe('health tracking across leadership changes', () => {
  test('gaining leadership seeds the tracker with the registered instances; a silent one is unhealthy after 3 intervals', async () => {
    running = ['i-1', 'i-2'];
    gate.set({ leader: true, epoch: 2 });
    await api.seeding;
    expect(api.tracker.size).toBe(2);
    clock += 60_000;
    api.tracker.report('i-1', { status: 'healthy' });
    clock += 2 * 60_000;
    expect(api.tracker.check().map((t) => t.instanceId)).toEqual(['i-2']);
    await flush();
    expect(sent.map((s) => [s.workflowId, (s.arg as HealthTransition).status, s.arg.leaderEpoch])).toEqual([[instanceWorkflowId(SHARD, 'i-2'), 'unhealthy', 2]]);
  });

  test('an instance only its group shows in service yet (visibility lagging) is seeded too', async () => {
    running = ['i-1'];
    inService = ['i-1', 'i-3'];
    gate.set({ leader: true, epoch: 2 });
    await api.seeding;
    expect(api.tracker.size).toBe(2);
    expect(api.tracker.state('i-3')).toBeDefined();
  });

  test('the same epoch again (the leader workflow continued as new) keeps what the tracker knew', async () => {
    api.tracker.report('i-1', { status: 'healthy' });
    gate.set({ leader: false, epoch: 1 });
    gate.set({ leader: true, epoch: 1 });
    await api.seeding;
    expect(api.tracker.state('i-1')).toBeDefined();
    gate.set({ leader: true, epoch: 3 });
    await api.seeding;
    expect(api.tracker.state('i-1')).toBeUndefined();
  });
});

describe('/v1/files: only to an instance whose workflow still runs', () => {
  const TOKEN = `${VIEW.secretsPrefix}files/default/web/etc/app/token`;

  /** The key and certificate an agent of `instanceId` holds after registering. */
  async function agentTls(instanceId: string): Promise<{ key: string; cert: string; serialNumber: string }> {
    const key = generateKeyPairSync('ed25519');
    const issued = await x509.issueCertificate({
      caCertPem: pki.caCertPem,
      caKey: pki.caKey,
      publicKey: key.publicKey,
      commonName: instanceId,
      organization: VIEW.clusterId,
      organizationalUnit: SHARD,
      usage: 'client',
      uris: [agentUri({ cluster: VIEW.clusterId, shard: SHARD, tenant: 'default', group: 'web', instanceId })],
      validityDays: 90,
      now: clock,
    });
    return { key: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: issued.pem, serialNumber: issued.serialNumber };
  }

  const getFiles = (tls: { key: string; cert: string }) => callAgentApi({ port: api.address?.port, ca: pki.caCertPem, servername: 'localhost', ...tls }, 'GET', '/v1/files');
  const rejections = async () => {
    await api.context.rejections.flush();
    return s3.json<AuditEntry>(`shard/${SHARD}/audit/`).filter((e) => e.action === 'agent.files.rejected');
  };

  beforeEach(() => secrets.values.set(TOKEN, 't0k3n'));

  test('a running instance gets the CA bundle and its secrets; Temporal is asked once per 30 s', async () => {
    const tls = await agentTls('i-1');
    const first = await getFiles(tls);
    expect(first.status).toBe(200);
    expect(first.body.files?.map((f) => [f.path, f.source])).toEqual([
      ['/etc/nstance/ca.crt', 'cluster-ca'],
      ['/etc/app/token', TOKEN],
    ]);
    expect((await getFiles(tls)).status).toBe(200);
    expect(described).toEqual([instanceWorkflowId(SHARD, 'i-1')]);
    clock += 30_000;
    expect((await getFiles(tls)).status).toBe(200);
    expect(described).toHaveLength(2);
  });

  test("a group's secret files are listed and read once per TTL, however many agents fetch them at once", async () => {
    const agents = await Promise.all(['i-1', 'i-2', 'i-3', 'i-4'].map((id) => agentTls(id)));
    const answers = await Promise.all([...agents, ...agents].map((tls) => getFiles(tls)));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(answers.every((a) => a.body.files?.some((f) => f.source === TOKEN))).toBe(true);
    expect([secrets.lists, secrets.reads]).toEqual([1, 1]);
    // A rotated value is served once the TTL (30 s by default) has passed.
    secrets.values.set(TOKEN, 'r0tated');
    clock += 29_000;
    expect((await getFiles(agents[0])).status).toBe(200);
    expect(secrets.lists).toBe(1);
    clock += 1_000;
    await getFiles(agents[0]);
    expect([secrets.lists, secrets.reads]).toEqual([2, 2]);
  });

  test("a terminated instance's certificate gets 403 and an audit entry once the cached answer expires, and no secret is read", async () => {
    const tls = await agentTls('i-1');
    expect((await getFiles(tls)).status).toBe(200);
    statuses.set(instanceWorkflowId(SHARD, 'i-1'), 'COMPLETED');
    // The cache is the bound on staleness: within it the answer stands.
    clock += 29_999;
    expect((await getFiles(tls)).status).toBe(200);
    clock += 1;
    const readsBefore = secrets.reads;
    const res = await getFiles(tls);
    expect(res).toMatchObject({ status: 403, body: { error: 'instance-not-running', message: expect.stringMatching(/i-1.*COMPLETED/) } });
    expect(res.body.files).toBeUndefined();
    expect(secrets.reads).toBe(readsBefore);
    expect(await rejections()).toEqual([
      expect.objectContaining({
        tenant: 'default',
        group: 'web',
        instanceIds: ['i-1'],
        details: expect.objectContaining({ reason: 'instance-not-running', count: 1, samples: [expect.objectContaining({ workflowStatus: 'COMPLETED', serialNumber: tls.serialNumber })] }),
      }),
    ]);
    // A refusal is not cached as success: every later request is refused too.
    expect((await getFiles(tls)).status).toBe(403);
  });

  test('a certificate for an instance this shard has no workflow for is refused the same way', async () => {
    statuses.set(instanceWorkflowId(SHARD, 'i-9'), 'NOT_FOUND');
    const res = await getFiles(await agentTls('i-9'));
    expect(res).toMatchObject({ status: 403, body: { error: 'instance-not-running', message: expect.stringMatching(/no workflow/) } });
    expect((await rejections()).map((e) => (e.details?.samples as { workflowStatus?: string }[])[0]?.workflowStatus)).toEqual(['NOT_FOUND']);
  });
});

describe('agent identity over time: renewal, and a terminated instance refused on every endpoint', () => {
  const DAY_MS = 24 * 3600 * 1000;
  const call = (tls: { key: string; cert: string }, method: 'GET' | 'POST', path: string, body?: unknown) =>
    callAgentApi({ port: api.address?.port, ca: pki.caCertPem, servername: 'localhost', ...tls }, method, path, body === undefined ? undefined : JSON.stringify(body));
  const newPublicKey = () => {
    const pair = generateKeyPairSync('ed25519');
    return { key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }) as string };
  };

  test('in the second half of its life a certificate renews: same identity, the new key, logged with the serial it replaces, and it authenticates', async () => {
    // Issued 46 days ago (real time too: TLS checks the validity against the real clock).
    const current = await agentCertificate('i-1', clock - 46 * DAY_MS);
    const next = newPublicKey();
    const res = await call(current, 'POST', '/v1/renew', { instanceId: 'i-1', publicKey: next.publicKey });
    expect(res.status).toBe(200);
    const body = res.body as { certificate: string; serialNumber: string; notAfter: string };
    const cert = new X509Certificate(body.certificate);
    expect(cert.subject.split('\n')).toContain('CN=i-1');
    expect(cert.subjectAltName).toBe(`URI:${agentUri({ cluster: VIEW.clusterId, shard: SHARD, tenant: 'default', group: 'web', instanceId: 'i-1' })}`);
    expect(cert.checkIssued(new X509Certificate(pki.caCertPem))).toBe(true);
    expect(cert.publicKey.export({ type: 'spki', format: 'pem' })).toBe(next.publicKey);
    expect(body.serialNumber).not.toBe(current.serialNumber);
    expect(Date.parse(body.notAfter)).toBeGreaterThan(clock + 89 * DAY_MS);
    expect(s3.json<CertLogEntry>(`shard/${SHARD}/certlog/default.`)).toEqual([expect.objectContaining({ id: 'i-1', serialNumber: body.serialNumber, renewalOf: current.serialNumber, leaderEpoch: 1 })]);
    expect(s3.json<AuditEntry>(`shard/${SHARD}/audit/`)).toEqual([expect.objectContaining({ action: 'agent.renew', details: expect.objectContaining({ renewalOf: current.serialNumber, serialNumber: body.serialNumber }) })]);
    expect((await call({ key: next.key, cert: body.certificate }, 'POST', '/v1/health', { instanceId: 'i-1', status: 'healthy' })).status).toBe(200);
  });

  test('renewal is refused early in a certificate\'s life, for another instance, and from a deposed leader', async () => {
    const current = await agentCertificate('i-1');
    const early = await call(current, 'POST', '/v1/renew', { instanceId: 'i-1', publicKey: newPublicKey().publicKey });
    expect(early).toMatchObject({ status: 409, body: { error: 'renewal-not-due', message: expect.stringMatching(/renew from/) } });
    clock += 46 * DAY_MS;
    expect(await call(current, 'POST', '/v1/renew', { instanceId: 'i-2', publicKey: newPublicKey().publicKey })).toMatchObject({ status: 403, body: { error: 'instance-mismatch' } });
    gate.set({ leader: false, epoch: 1 });
    expect(await call(current, 'POST', '/v1/renew', { instanceId: 'i-1', publicKey: newPublicKey().publicKey })).toMatchObject({ status: 503 });
    expect(s3.keys(`shard/${SHARD}/certlog/default.`)).toEqual([]);
  });

  test("a terminated instance's certificate is refused on every mTLS endpoint, audited, and costs one describe however often its agent asks", async () => {
    const tls = await agentCertificate('i-1');
    expect((await call(tls, 'POST', '/v1/health', { instanceId: 'i-1', status: 'healthy' })).status).toBe(200);
    statuses.set(instanceWorkflowId(SHARD, 'i-1'), 'TERMINATED');
    clock += 46 * DAY_MS;
    const describedBefore = described.length;
    for (const [method, path, body] of [
      ['POST', '/v1/health', { instanceId: 'i-1', status: 'healthy' }],
      ['GET', '/v1/files', undefined],
      ['POST', '/v1/renew', { instanceId: 'i-1', publicKey: newPublicKey().publicKey }],
      ['POST', '/v1/health', { instanceId: 'i-1', status: 'healthy' }],
    ] as const) {
      const res = await call(tls, method, path, body);
      expect([path, res.status, res.body.error]).toEqual([path, 403, 'instance-not-running']);
    }
    expect(described.length - describedBefore).toBe(1);
    expect(s3.keys(`shard/${SHARD}/certlog/default.`)).toEqual([]);
    await api.context.rejections.flush();
    const refused = s3.json<AuditEntry>(`shard/${SHARD}/audit/`).filter((e) => e.details?.reason === 'instance-not-running');
    expect(refused.map((e) => e.action).sort()).toEqual(['agent.auth.rejected', 'agent.files.rejected']);
  });
});

/** An agent certificate as registration issues it (90 days, from the fake clock unless told). */
async function agentCertificate(instanceId: string, issuedAt = clock): Promise<{ key: string; cert: string; serialNumber: string }> {
  const key = generateKeyPairSync('ed25519');
  const issued = await x509.issueCertificate({
    caCertPem: pki.caCertPem,
    caKey: pki.caKey,
    publicKey: key.publicKey,
    commonName: instanceId,
    organization: VIEW.clusterId,
    organizationalUnit: SHARD,
    usage: 'client',
    uris: [agentUri({ cluster: VIEW.clusterId, shard: SHARD, tenant: 'default', group: 'web', instanceId })],
    validityDays: 90,
    now: issuedAt,
  });
  return { key: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: issued.pem, serialNumber: issued.serialNumber };
}
