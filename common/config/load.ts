/** Reading config files: JSONC (Nstance's native format) or YAML, then validation. */
import { getNodeValue, Node, parseTree, ParseError, ParseErrorCode } from 'jsonc-parser';
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { ConfigValidationError, friendlyErrorMap, IssueList, addZodIssues } from './issues';
import { configSchema, NstanceConfig } from './schema';
import { checkConfigReferences } from './validate';
import { checkNstanceConstraints } from './constraints';

const JSONC_ERRORS: Partial<Record<ParseErrorCode, string>> = {
  [ParseErrorCode.InvalidSymbol]: 'unexpected character',
  [ParseErrorCode.InvalidNumberFormat]: 'invalid number',
  [ParseErrorCode.PropertyNameExpected]: 'expected a property name in double quotes',
  [ParseErrorCode.ValueExpected]: 'expected a value',
  [ParseErrorCode.ColonExpected]: 'expected ":"',
  [ParseErrorCode.CommaExpected]: 'expected "," (is a comma missing between entries?)',
  [ParseErrorCode.CloseBraceExpected]: 'expected "}"',
  [ParseErrorCode.CloseBracketExpected]: 'expected "]"',
  [ParseErrorCode.EndOfFileExpected]: 'unexpected content after the end of the document',
  [ParseErrorCode.InvalidCommentToken]: 'invalid comment',
  [ParseErrorCode.UnexpectedEndOfComment]: 'unterminated comment',
  [ParseErrorCode.UnexpectedEndOfString]: 'unterminated string',
  [ParseErrorCode.UnexpectedEndOfNumber]: 'unterminated number',
  [ParseErrorCode.InvalidUnicode]: 'invalid unicode escape',
  [ParseErrorCode.InvalidEscapeCharacter]: 'invalid escape character',
  [ParseErrorCode.InvalidCharacter]: 'invalid character in string',
};

function lineColumn(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `${line}:${offset - lineStart + 1}`;
}

export function isYamlFile(file: string): boolean {
  return /\.ya?ml$/i.test(file);
}

// JSON.parse and jsonc-parser keep the last of duplicate keys; an earlier entry
// silently vanishing is exactly the kind of typo-driven surprise we refuse.
function findDuplicateKeys(node: Node, path: (string | number)[], text: string, list: IssueList): void {
  if (node.type === 'object') {
    const seen = new Set<string>();
    for (const prop of node.children ?? []) {
      const [keyNode, valueNode] = prop.children ?? [];
      if (!keyNode) continue;
      const key = String(keyNode.value);
      if (seen.has(key)) list.add([...path, key], `duplicate key at ${lineColumn(text, keyNode.offset)}: the later value would silently replace the earlier one`);
      seen.add(key);
      if (valueNode) findDuplicateKeys(valueNode, [...path, key], text, list);
    }
  } else if (node.type === 'array') {
    (node.children ?? []).forEach((child, i) => findDuplicateKeys(child, [...path, i], text, list));
  }
}

function parseJsonc(text: string, list: IssueList): unknown {
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: true });
  for (const e of errors) {
    list.add([], `syntax error at line ${lineColumn(text, e.offset)}: ${JSONC_ERRORS[e.error] ?? `parse error ${e.error}`}`);
  }
  if (errors.length > 0 || !tree) return undefined;
  findDuplicateKeys(tree, [], text, list);
  return getNodeValue(tree);
}

// The YAML twin of findDuplicateKeys: the parser's own check names a line, not the field.
function findYamlDuplicateKeys(node: unknown, path: (string | number)[], lineCounter: LineCounter, list: IssueList): void {
  if (isMap(node)) {
    const seen = new Set<string>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (seen.has(key)) {
        const at = isScalar(pair.key) && pair.key.range ? lineCounter.linePos(pair.key.range[0]) : undefined;
        list.add([...path, key], `duplicate key${at ? ` at ${at.line}:${at.col}` : ''}: the later value would silently replace the earlier one`);
      }
      seen.add(key);
      findYamlDuplicateKeys(pair.value, [...path, key], lineCounter, list);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => findYamlDuplicateKeys(item, [...path, i], lineCounter, list));
  }
}

function parseYaml(text: string, list: IssueList): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  for (const e of doc.errors) {
    const pos = lineCounter.linePos(e.pos[0]);
    list.add([], `syntax error at line ${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`);
  }
  if (doc.errors.length > 0) return undefined;
  const before = list.issues.length;
  findYamlDuplicateKeys(doc.contents, [], lineCounter, list);
  if (list.issues.length > before) return undefined;
  return doc.toJS();
}

/**
 * Parses a JSONC (default) or YAML (`.yaml`/`.yml`) document into plain data.
 * Throws ConfigValidationError with line:column for syntax errors.
 */
export function parseDocumentText(text: string, file: string): unknown {
  const list = new IssueList(file);
  const value = isYamlFile(file) ? parseYaml(text, list) : parseJsonc(text, list);
  list.throwIfAny();
  if (value === undefined || value === null) throw new ConfigValidationError([{ file, path: '', message: 'the file is empty; expected an object' }]);
  return value;
}

/** Validates already-parsed data as a config (schema, then cross-references). */
export function validateConfigValue(value: unknown, file: string): NstanceConfig {
  const list = new IssueList(file);
  const result = configSchema.safeParse(value, { error: friendlyErrorMap });
  if (!result.success) {
    addZodIssues(list, result.error);
    throw new ConfigValidationError(list.issues);
  }
  const config = result.data;
  checkConfigReferences(config, list);
  checkNstanceConstraints(config, list);
  list.throwIfAny();
  return config;
}

/** Parses and validates a config.jsonc (or YAML) text; `file` names it in every error. */
export function parseConfigText(text: string, file: string): NstanceConfig {
  return validateConfigValue(parseDocumentText(text, file), file);
}
