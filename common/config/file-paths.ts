/**
 * Where a template's files land on the instance, and the load-time checks on it: a `key.name`
 * stays in its certificate's directory, no two files of a template (a certificate's `.crt`,
 * `.key` and `.pub` included) land on one path, and none lands on a file the agent writes itself.
 * The agent writes a file at `<files root>/<path>` with the path normalised as absolute, so
 * "app/x" and "/app/x" are the same file.
 */
import { posix } from 'node:path';
import { nonEmpty } from './fields';
import type { FileConfig } from './files';
import { formatPath, type ConfigPath, type IssueList } from './issues';

/** The CA certificate the agent API delivers to every instance. */
export const CA_BUNDLE_PATH = '/etc/nstance/ca.crt';
/** The agent's default state directory (its key, certificate, identity and ledgers). */
export const AGENT_STATE_DIR = '/var/lib/nstance-agent';

/** The path on the instance (under the files root) that a file name means. */
export function instancePath(name: string): string {
  return posix.normalize(`/${name}`);
}

/** A `key.name`: a file name in the certificate's directory, not a path. */
export function keyNameProblem(name: string): string | undefined {
  if (name.includes('/') || name.includes('\0')) return `invalid key name "${name}": a file name in the certificate's directory (e.g. "kubelet.key"), not a path`;
  if (name === '.' || name === '..' || /^\.+(pub|key)?$/.test(name)) return `invalid key name "${name}": name a file, e.g. "kubelet.key"`;
  return undefined;
}

export const keyNameSchema = nonEmpty().superRefine((name, ctx) => {
  const problem = keyNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

function dirname(path: string): string {
  const at = path.lastIndexOf('/');
  return at < 0 ? '' : path.slice(0, at + 1);
}

/**
 * Where the certificate and key of a certificate file go, as Nstance lays them out: `<path>.crt`
 * and `<path>.key` (a path ending in `.crt` or `.pem` is the certificate's own; the key goes
 * beside it), `.pub` beside the key when the agent makes it; `key.name` renames the key pair.
 */
export function certificatePaths(path: string, file: Pick<FileConfig, 'key'>): { certPath: string; keyPath: string; publicKeyPath?: string } {
  const own = /\.(crt|pem)$/.exec(path);
  const base = own ? path.slice(0, own.index) : path;
  const certPath = own ? path : `${path}.crt`;
  const keyBase = file.key?.name ? `${dirname(path)}${file.key.name.replace(/\.(pub|key)$/, '')}` : base;
  return { certPath, keyPath: `${keyBase}.key`, ...(file.key ? { publicKeyPath: `${keyBase}.pub` } : {}) };
}

type PathedFile = Pick<FileConfig, 'kind' | 'key'>;

/** Every path one file of a template writes, with the config field that decides it. */
function landings(name: string, file: PathedFile, at: ConfigPath): { path: string; field: ConfigPath }[] {
  if (file.kind !== 'certificate') return [{ path: instancePath(name), field: at }];
  const paths = certificatePaths(name, file);
  const keyField = file.key?.name ? [...at, 'key', 'name'] : at;
  return [
    { path: instancePath(paths.certPath), field: at },
    { path: instancePath(paths.keyPath), field: keyField },
    ...(paths.publicKeyPath ? [{ path: instancePath(paths.publicKeyPath), field: keyField }] : []),
  ];
}

function reservedProblem(path: string): string | undefined {
  if (path === CA_BUNDLE_PATH) return `${path} is the cluster CA certificate the agent receives itself: choose another path`;
  if (path === AGENT_STATE_DIR || path.startsWith(`${AGENT_STATE_DIR}/`)) return `${path} is in the agent's state directory (${AGENT_STATE_DIR}): choose another path`;
  return undefined;
}

/** Refuses colliding and reserved paths in each template's files, naming the field. */
export function checkFilePaths(config: { templates: Record<string, { files?: Record<string, PathedFile> }> }, list: IssueList): void {
  for (const [templateName, template] of Object.entries(config.templates)) {
    const taken = new Map<string, ConfigPath>();
    for (const [name, file] of Object.entries(template.files ?? {})) {
      for (const { path, field } of landings(name, file, ['templates', templateName, 'files', name])) {
        const reserved = reservedProblem(path);
        if (reserved) list.add(field, reserved);
        const first = taken.get(path);
        if (first) list.add(field, `writes ${path}, which ${formatPath(first)} writes too: give each file its own path`);
        else taken.set(path, field);
      }
    }
  }
}
