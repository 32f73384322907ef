/**
 * One files fetch: GET /v1/files; for certificate files whose key is made here, the pair is made (or
 * reused) on disk, only the public keys are submitted (POST /v1/keys) and the files fetched once more;
 * then every file is written atomically (file-writer.ts) and the files this agent wrote that the
 * template no longer declares are removed (written-files.ts).
 */
import { writeFileAtomically } from './file-writer';
import { agentKeyPair, type KeyRequest } from './held-files';
import type { WrittenFiles } from './written-files';

export interface DeliveredFile {
  path: string;
  mode: string;
  content: string;
  source: string;
}

/** `declared`: every path the template names now; absent, nothing is removed. */
interface FilesAnswer {
  files: DeliveredFile[];
  keyRequests?: KeyRequest[];
  hash?: string;
  declared?: string[];
}

export async function fetchAndWriteFiles(io: {
  call: (method: string, path: string, body?: unknown) => Promise<unknown>;
  instanceId: string;
  root: string;
  written: WrittenFiles;
  log: (line: string) => void;
}): Promise<{ files: DeliveredFile[]; hash?: string }> {
  let out = (await io.call('GET', '/v1/files')) as FilesAnswer;
  if (out.keyRequests && out.keyRequests.length > 0) {
    const publicKeys: Record<string, string> = {};
    await io.written.record(out.keyRequests.flatMap((r) => [r.keyPath, r.publicKeyPath]));
    for (const request of out.keyRequests) publicKeys[request.path] = await agentKeyPair(io.root, request);
    await io.call('POST', '/v1/keys', { instanceId: io.instanceId, publicKeys });
    io.log(`submitted public keys for ${Object.keys(publicKeys).join(', ')}`);
    out = (await io.call('GET', '/v1/files')) as FilesAnswer;
  }
  await io.written.record(out.files.map((f) => f.path));
  for (const file of out.files) await writeFileAtomically(io.root, file);
  if (out.declared) {
    const removed = await io.written.prune(new Set([...out.declared, ...out.files.map((f) => f.path)]));
    if (removed.length > 0) io.log(`removed ${removed.join(', ')}: no longer in the template's files`);
  }
  return { files: out.files, hash: out.hash };
}
