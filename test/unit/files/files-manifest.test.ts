/** The files digest both ends compute, what counts as stale, and the bounded report the agent sends. */
import { mkdtempSync, rmSync, writeFileSync, chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentKeyPair, filesReport, heldManifest } from '../../../client/agent/held-files';
import { contentSha256, fileSetHash, MAX_REPORTED_FILES, parseReportedFiles, staleFiles } from '../../../common/files-manifest';

const a = { path: '/etc/a', mode: '0600', sha256: contentSha256('a') };
const b = { path: '/etc/b', mode: '0644', sha256: contentSha256('b') };

test('one digest for a set, whatever the order; content and mode both count', () => {
  expect(fileSetHash([a, b])).toBe(fileSetHash([b, a]));
  expect(fileSetHash([a, b])).not.toBe(fileSetHash([a, { ...b, sha256: contentSha256('b2') }]));
  expect(fileSetHash([a, b])).not.toBe(fileSetHash([a, { ...b, mode: '0600' }]));
  expect(fileSetHash([a])).not.toBe(fileSetHash([a, b]));
});

test('stale: changed, missing, extra', () => {
  const expected = [a, { ...b, sha256: contentSha256('new') }, { path: '/etc/c', mode: '0644', sha256: contentSha256('c') }];
  expect(staleFiles(expected, [a, b, { path: '/etc/old', mode: '0600', sha256: '' }])).toEqual({ changed: ['/etc/b'], missing: ['/etc/c'], extra: ['/etc/old'] });
  expect(staleFiles([a, b], [a, b])).toEqual({ changed: [], missing: [], extra: [] });
});

test('a report is checked and bounded', () => {
  expect(parseReportedFiles({ hash: fileSetHash([a]) })).toEqual({ hash: fileSetHash([a]) });
  expect(parseReportedFiles({ hash: 'x' })).toBe('"files.hash" must be a hex sha256');
  const many = Array.from({ length: MAX_REPORTED_FILES + 1 }, (_, i) => ({ ...a, path: `/f${i}` }));
  expect(parseReportedFiles({ hash: fileSetHash([a]), held: many })).toContain(`at most ${MAX_REPORTED_FILES} entries`);
  expect(parseReportedFiles({ hash: fileSetHash([a]), held: [{ path: '/x', mode: 'rw', sha256: '' }] })).toBe('"files.held[0].mode" must be an octal mode');
});

describe('the agent side', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'held-files-'));
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/a'), 'a', { mode: 0o600 });
    chmodSync(join(root, 'etc/a'), 0o600);
    writeFileSync(join(root, 'etc/b'), 'b');
    chmodSync(join(root, 'etc/b'), 0o644);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  test('held files are hashed from disk: an edited, re-moded or deleted file no longer matches', async () => {
    const delivered = [{ path: '/etc/a', mode: '0600' }, { path: '/etc/b', mode: '0644' }];
    expect(await heldManifest(root, delivered)).toEqual([a, b]);
    writeFileSync(join(root, 'etc/b'), 'edited');
    chmodSync(join(root, 'etc/a'), 0o640);
    rmSync(join(root, 'etc/b'));
    expect(await heldManifest(root, delivered)).toEqual([{ ...a, mode: '0640' }, { ...b, sha256: '' }]);
  });

  test('the per-file list goes only when the digests differ, and at most MAX_REPORTED_FILES of it', () => {
    expect(filesReport([a, b], fileSetHash([a, b]))).toEqual({ hash: fileSetHash([a, b]) });
    expect(filesReport([a, b], 'other')).toEqual({ hash: fileSetHash([a, b]), held: [a, b] });
    const many = Array.from({ length: MAX_REPORTED_FILES + 10 }, (_, i) => ({ ...a, path: `/f${i}` }));
    const report = filesReport(many, undefined);
    expect(report.held).toHaveLength(MAX_REPORTED_FILES);
    expect(report.truncated).toBe(true);
    expect(JSON.stringify(report).length).toBeLessThan(64 * 1024);
  });

  test("an agent-made key pair is written 0600/.pub and reused when asked again", async () => {
    const request = { path: '/etc/app/tls', keyPath: '/etc/app/tls.key', publicKeyPath: '/etc/app/tls.pub' };
    const first = await agentKeyPair(root, request);
    expect(first).toContain('BEGIN PUBLIC KEY');
    expect(readFileSync(join(root, 'etc/app/tls.pub'), 'utf8')).toBe(first);
    expect(readFileSync(join(root, 'etc/app/tls.key'), 'utf8')).toContain('BEGIN PRIVATE KEY');
    expect(await agentKeyPair(root, request)).toBe(first);
  });
});
