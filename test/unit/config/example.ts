/** Shared fixtures: the example config from ../shared/examples, as text and as data. */
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'jsonc-parser';

const EXAMPLE = path.join('examples', 'config.example.jsonc');

// The example lives beside the repo (../shared), but worktrees and CI checkouts sit at
// different depths, so look upwards instead of hard-coding the number of "..".
function findExample(): string {
  const fromEnv = process.env.NSTANCE_EXAMPLE_CONFIG;
  if (fromEnv) return fromEnv;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    for (const candidate of [path.join(dir, 'shared', EXAMPLE), path.join(dir, EXAMPLE)]) {
      if (fs.existsSync(candidate)) return candidate;
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`cannot find shared/${EXAMPLE} above ${__dirname}; set NSTANCE_EXAMPLE_CONFIG`);
}

export const examplePath = findExample();
export const exampleText = fs.readFileSync(examplePath, 'utf8');

/** A fresh, mutable copy of the example as plain data (comments dropped). */
export function exampleData(): Record<string, unknown> {
  return parse(exampleText, [], { allowTrailingComma: true }) as Record<string, unknown>;
}

type Node = Record<string, unknown>;

function parent(root: Node, dotted: string): [Node, string] {
  const keys = dotted.split('.');
  const last = keys.pop() as string;
  let node = root;
  for (const key of keys) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Node;
  }
  return [node, last];
}

/** Sets `a.b.c` (creating objects on the way); keys with dots are not needed here. */
export function setPath(root: Node, dotted: string, value: unknown): Node {
  const [node, key] = parent(root, dotted);
  node[key] = value;
  return root;
}

export function deletePath(root: Node, dotted: string): Node {
  const [node, key] = parent(root, dotted);
  delete node[key];
  return root;
}

/** The example with edits applied, as JSON text. */
export function exampleWith(...edits: ((c: Node) => void)[]): string {
  const data = exampleData();
  for (const edit of edits) edit(data);
  return JSON.stringify(data, null, 2);
}
