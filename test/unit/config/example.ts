/** Shared fixtures: Nstance's example config (../shared/examples, or the repo's copy), as text and as data. */
import * as fs from 'fs';
import { parse } from 'jsonc-parser';
import { findExampleConfig } from '../../../scripts/seed/example-config';
import { ConfigValidationError, parseConfigText } from '../../../common/config';

export const examplePath = findExampleConfig(__dirname);
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

/** The validation error a config text is rejected with (it must be rejected). */
export function configErrorOf(text: string, file = 'config.jsonc'): ConfigValidationError {
  try {
    parseConfigText(text, file);
  } catch (e) {
    if (e instanceof ConfigValidationError) return e;
    throw e;
  }
  throw new Error('expected the config to be rejected');
}
