import { uiBaseUrl, workflowListUrl, workflowRunUrl } from '../../client/cli/ui-links';

describe('Web UI links', () => {
  it('derives the dev server UI from the Temporal address (frontend port + 1000)', () => {
    expect(uiBaseUrl(undefined, '127.0.0.1:7233', {})).toBe('http://127.0.0.1:8233');
    expect(uiBaseUrl(undefined, 'temporal:17233', {})).toBe('http://temporal:18233');
    expect(uiBaseUrl(undefined, 'localhost', {})).toBe('http://localhost:8233');
    expect(uiBaseUrl(undefined, '0.0.0.0:7233', {})).toBe('http://127.0.0.1:8233');
  });

  it("uses Temporal Cloud's UI for a cloud endpoint", () => {
    expect(uiBaseUrl(undefined, 'my-ns.a1b2c.tmprl.cloud:7233', {})).toBe('https://cloud.temporal.io');
  });

  it('prefers --ui-url, then NSTANCE_UI_URL, and rejects what is not a URL', () => {
    expect(uiBaseUrl('https://temporal.example.internal/', '127.0.0.1:7233', { NSTANCE_UI_URL: 'http://other:1' })).toBe('https://temporal.example.internal');
    expect(uiBaseUrl(undefined, '127.0.0.1:7233', { NSTANCE_UI_URL: 'http://other:1' })).toBe('http://other:1');
    expect(() => uiBaseUrl('temporal-ui', '127.0.0.1:7233', {})).toThrow('--ui-url: "temporal-ui" is not an http(s) URL');
  });

  it("links a run's history, escaping the workflow id", () => {
    expect(workflowRunUrl('http://h:8233', 'default', { workflowId: 'nstance:s:group:default/web', runId: 'r-1' })).toBe(
      'http://h:8233/namespaces/default/workflows/nstance%3As%3Agroup%3Adefault%2Fweb/r-1/history',
    );
  });

  it('links a workflow by id through the list when its run is unknown', () => {
    expect(workflowRunUrl('http://h:8233', 'default', { workflowId: 'a"b' })).toBe(workflowListUrl('http://h:8233', 'default', 'WorkflowId = "a\\"b"'));
  });
});
