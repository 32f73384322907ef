/**
 * The agent's termination-notice probe against a fake IMDS on loopback: IMDSv2
 * tokens, the spot instance-action document, and IMDS absent or hung (no notice,
 * never an error). The agent's report then carries the notice.
 */
import { createServer } from 'node:net';
import { Agent } from '../../client/agent/agent';
import { ImdsNotices, parseInstanceAction, type NoticeSource, type TerminationNotice } from '../../client/agent/imds';
import { FakeImds } from '../support/fake-imds';

let imds: FakeImds;
beforeAll(async () => {
  imds = await new FakeImds().start();
});
afterAll(async () => {
  await imds.close();
});

const deadline = '2030-01-02T03:04:05.000Z';

describe('ImdsNotices', () => {
  test('no notice: a 404 after an IMDSv2 token, which is reused for later polls', async () => {
    const notices = new ImdsNotices({ baseUrl: imds.url('quiet') });
    expect(await notices.poll()).toBeUndefined();
    expect(await notices.poll()).toBeUndefined();
    const seen = imds.requestsOf('quiet');
    expect(seen.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'PUT /latest/api/token 200',
      'GET /latest/meta-data/spot/instance-action 404',
      'GET /latest/meta-data/spot/instance-action 404',
    ]);
    expect(seen[1].token).toBeDefined();
    expect(seen[2].token).toBe(seen[1].token);
  });

  test('a spot instance-action becomes a notice with its deadline', async () => {
    const notices = new ImdsNotices({ baseUrl: imds.url('spot') });
    expect(await notices.poll()).toBeUndefined();
    imds.setInstanceAction('spot', { action: 'terminate', time: '2030-01-02T03:04:05Z' });
    expect(await notices.poll()).toEqual({ deadline, reason: 'spot interruption (terminate)' });
  });

  test('an expired token is replaced once (401, then a new token)', async () => {
    imds.setInstanceAction('expiring', { action: 'stop', time: deadline });
    const notices = new ImdsNotices({ baseUrl: imds.url('expiring') });
    expect((await notices.poll())?.deadline).toBe(deadline);
    imds.expireTokens();
    expect((await notices.poll())?.reason).toBe('spot interruption (stop)');
    expect(imds.requestsOf('expiring').map((r) => `${r.method} ${r.status}`)).toEqual(['PUT 200', 'GET 200', 'GET 401', 'PUT 200', 'GET 200']);
  });

  test('off EC2 (nothing listens) it is quietly no notice, said once', async () => {
    const port = await closedPort();
    const lines: string[] = [];
    const notices = new ImdsNotices({ baseUrl: `http://127.0.0.1:${port}`, log: (l) => lines.push(l) });
    expect(await notices.poll()).toBeUndefined();
    expect(await notices.poll()).toBeUndefined();
    expect(lines).toEqual([expect.stringMatching(/^no termination notices from IMDS at http:\/\/127\.0\.0\.1:\d+ .*not on EC2\?$/)]);
  });

  test('a hung IMDS times out into no notice', async () => {
    imds.stall('hung');
    const notices = new ImdsNotices({ baseUrl: imds.url('hung'), timeoutMs: 200 });
    expect(await notices.poll()).toBeUndefined();
  });

  test('an answer that is not an instance-action is no notice', async () => {
    expect(() => parseInstanceAction('<html>')).toThrow(/not JSON/);
    expect(() => parseInstanceAction('{"action":"terminate"}')).toThrow(/no valid "time"/);
    expect(parseInstanceAction(`{"action":"hibernate","time":"${deadline}"}`)).toEqual({ deadline, reason: 'spot interruption (hibernate)' });
  });
});

describe('Agent: the notice in its health report', () => {
  const source = (found: () => TerminationNotice | undefined): NoticeSource => ({ poll: async () => found() });

  test('a notice is new once per deadline, and every report carries it from then on', async () => {
    let current: TerminationNotice | undefined;
    const agent = new Agent({ registerAddress: '10.0.0.1:8443', stateDir: '/nonexistent', notices: source(() => current) });
    expect(await agent.checkNotice()).toBeUndefined();
    expect(agent.healthReport()).toEqual({ status: 'healthy' });
    current = { deadline, reason: 'spot interruption (terminate)' };
    expect(await agent.checkNotice()).toEqual(current);
    expect(await agent.checkNotice()).toBeUndefined();
    expect(agent.healthReport()).toEqual({ status: 'healthy', terminationNotice: current });
    // IMDS stops answering (the host is going away): the notice stands.
    current = undefined;
    expect(await agent.checkNotice()).toBeUndefined();
    expect(agent.healthReport().terminationNotice?.deadline).toBe(deadline);
  });

  test("the probe's verdict is kept, and its own notice wins", async () => {
    const own = { deadline: '2031-01-01T00:00:00.000Z', reason: 'simulated' };
    let probe: () => { status: 'healthy' | 'unhealthy'; reason?: string; terminationNotice?: TerminationNotice } = () => ({ status: 'unhealthy', reason: 'disk full' });
    const agent = new Agent({ registerAddress: '10.0.0.1:8443', stateDir: '/nonexistent', probe: () => probe(), notices: source(() => ({ deadline })) });
    await agent.checkNotice();
    expect(agent.healthReport()).toEqual({ status: 'unhealthy', reason: 'disk full', terminationNotice: { deadline } });
    probe = () => ({ status: 'healthy', terminationNotice: own });
    expect(agent.healthReport().terminationNotice).toEqual(own);
  });
});

/** A loopback port nobody listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
