/**
 * The subset of Go's text/template that Nstance configs use: `{{ .A.B }}` field
 * lookups, with Go's `{{-` / `-}}` whitespace trimming. Anything else (pipelines,
 * if/range, functions) is rejected rather than passed through, so a config written
 * for a richer renderer fails loudly at load time instead of booting broken userdata.
 */

export interface TemplateData {
  readonly [key: string]: string | TemplateData;
}

interface Action {
  /** Offsets of the whole `{{ ... }}` in the source, after trimming is applied. */
  start: number;
  end: number;
  path: string[];
}

const FIELD_PATH = /^(?:\.[A-Za-z_][A-Za-z0-9_]*)+$/;

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function prefix(where: string | undefined): string {
  return where ? `${where}: ` : '';
}

function scan(text: string, where?: string): Action[] {
  const actions: Action[] = [];
  let from = 0;
  for (;;) {
    const open = text.indexOf('{{', from);
    if (open < 0) return actions;
    const close = text.indexOf('}}', open + 2);
    if (close < 0) {
      throw new Error(`${prefix(where)}unclosed "{{" on line ${lineOf(text, open)}`);
    }
    let inner = text.slice(open + 2, close);
    let start = open;
    let end = close + 2;
    // Go only treats "-" as a trim marker when followed/preceded by whitespace.
    if (/^-\s/.test(inner)) {
      inner = inner.slice(1);
      while (start > 0 && /\s/.test(text[start - 1])) start--;
    }
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      while (end < text.length && /\s/.test(text[end])) end++;
    }
    const expr = inner.trim();
    if (!FIELD_PATH.test(expr)) {
      const shown = text.slice(open, close + 2);
      throw new Error(
        `${prefix(where)}unsupported template syntax ${JSON.stringify(shown)} on line ${lineOf(text, open)}: ` +
          'only field references such as {{ .Image.name }} or {{ .Vars.Name }} are allowed',
      );
    }
    actions.push({ start, end, path: expr.slice(1).split('.') });
    from = close + 2;
  }
}

/** Every `{{ .A.B }}` in `text`, as path segments (["A", "B"]), in order of appearance. */
export function templateReferences(text: string, where?: string): string[][] {
  return scan(text, where).map((a) => a.path);
}

/** True when `text` has any `{{`, i.e. needs rendering at all. */
export function hasTemplate(text: string): boolean {
  return text.includes('{{');
}

function lookup(data: TemplateData, path: readonly string[]): string | TemplateData | undefined {
  let node: string | TemplateData | undefined = data;
  for (const key of path) {
    if (node === undefined || typeof node === 'string') return undefined;
    node = Object.prototype.hasOwnProperty.call(node, key) ? node[key] : undefined;
  }
  return node;
}

/** Renders `text`; `where` names the source (e.g. `template "web" userdata`) in errors. */
export function renderTemplate(text: string, data: TemplateData, where: string): string {
  const actions = scan(text, where);
  let out = '';
  let last = 0;
  for (const action of actions) {
    const ref = `.${action.path.join('.')}`;
    const value = lookup(data, action.path);
    if (value === undefined) throw new Error(`${where}: unknown reference ${ref}`);
    if (typeof value !== 'string') {
      const keys = Object.keys(value).sort();
      throw new Error(
        `${where}: reference ${ref} is not a value; use one of its fields: ${keys.map((k) => `${ref}.${k}`).join(', ') || '(none)'}`,
      );
    }
    out += text.slice(last, action.start) + value;
    last = action.end;
  }
  return out + text.slice(last);
}

/**
 * Renders every string inside a JSON-like value (RunInstances args), leaving keys
 * and non-string leaves alone. `where` is extended with the path of each string.
 */
export function renderDeep(value: unknown, data: TemplateData, where: string): unknown {
  if (typeof value === 'string') return hasTemplate(value) ? renderTemplate(value, data, where) : value;
  if (Array.isArray(value)) return value.map((v, i) => renderDeep(v, data, `${where}[${i}]`));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = renderDeep(v, data, `${where}.${k}`);
    return out;
  }
  return value;
}
