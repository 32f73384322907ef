/**
 * A template's `files` (Nstance's schema), rendered for one instance as /v1/files delivers them:
 * `secret` from the configured store, `storage` from the cluster bucket, `env`/`json`/`string`
 * rendered from the template with the instance's values. Secret and storage contents are held for
 * the files TTL (one read per name however many agents ask), so a changed value reaches agents
 * within one TTL plus their next fetch. `certificate` files are rendered into what to ask the CA
 * for (certificate-spec.ts); CertificateFiles issues them. A file that cannot be rendered is left out and named in `problems`;
 * the others are still delivered.
 */
import type { ObjectStore } from '../../adapters/s3/objects';
import type { SecretStore } from '../../adapters/secrets/store';
import { resolveGroup, type DynamicGroups, type NstanceConfig } from '../../common/config';
import type { CertificateConfig } from '../../common/config/certificates';
import type { FileConfig } from '../../common/config/files';
import { certificateFileSpec, certificatePaths, type CertificateFileSpec } from './certificate-spec';
import { renderDeep, renderTemplate, type TemplateData } from '../../common/template';
import { secretsCacheTtlMs } from '../../common/config/secrets';
import { TtlCache } from './ttl-cache';

export interface InstanceFileRequest {
  config: NstanceConfig;
  dynamic: DynamicGroups;
  store: SecretStore;
  objects: ObjectStore;
  instanceId: string;
  tenant: string;
  group: string;
  caCertPem: string;
  registrationAddress?: string;
  /** The TTL used instead when caching is off (cache_ttl 0): a health report's look reads a store at most once per it. */
  uncachedTtlMs?: number;
}

export interface RenderedFile {
  path: string;
  mode: string;
  content: string;
  /** Where it came from (a secret's location, an object, the template), never a value. */
  source: string;
}

export interface RenderedFiles {
  files: RenderedFile[];
  /** The `certificate` files, rendered into what to ask the CA for (issued by CertificateFiles). */
  certificates: CertificateFileSpec[];
  problems: string[];
  /**
   * Every path the template's `files` name for the instance (a certificate file's certificate, key and
   * public key), delivered or not this time (a render problem, a certificate not yet issued): what the
   * agent keeps. Absent when the group is not in the config: then the agent removes nothing.
   */
  declared?: string[];
}

/** Default modes: secrets owner-only, rendered text readable. */
const DEFAULT_MODE: Record<FileConfig['kind'], string> = { secret: '0600', storage: '0600', certificate: '0600', env: '0600', json: '0644', string: '0644' };

export function fileTemplateData(request: InstanceFileRequest, resolved: { kind: string; instanceType: string; vars: Record<string, string> }): TemplateData {
  return {
    // Image ids are resolved by the group workflow, not here: a file naming one fails to render (and is reported).
    Image: {},
    Server: { RegistrationAddr: request.registrationAddress ?? '', CACert: request.caCertPem },
    Vars: resolved.vars,
    Instance: { ID: request.instanceId, Kind: resolved.kind, Type: resolved.instanceType },
    Cluster: { ID: request.config.cluster.id },
    Shard: { ID: request.config.shard.id },
    Group: request.group,
    Tenant: request.tenant,
  };
}

function renderEnv(template: Record<string, unknown>, data: TemplateData, where: string): string {
  return `${Object.keys(template)
    .sort()
    .map((name) => `${name}=${renderTemplate(String(template[name]), data, `${where}.${name}`)}`)
    .join('\n')}\n`;
}

export class TemplateFiles {
  /** One cache per TTL in use (the default, or cluster.secrets.cache_ttl), as SecretFiles has. */
  private readonly caches = new Map<number, TtlCache<string, string | undefined>>();

  constructor(private readonly options: { ttlMs: number; now?: () => number }) {}

  private cached(key: string, load: () => Promise<string | undefined>, request: InstanceFileRequest): Promise<string | undefined> {
    const configured = secretsCacheTtlMs(request.config.cluster.secrets);
    const ttlMs = (configured ?? this.options.ttlMs) || (request.uncachedTtlMs ?? 0);
    if (ttlMs <= 0) return load();
    let cache = this.caches.get(ttlMs);
    if (!cache) {
      cache = new TtlCache({ ttlMs, now: this.options.now, maxEntries: 5000 });
      this.caches.set(ttlMs, cache);
    }
    return cache.get(key, load);
  }

  async forInstance(request: InstanceFileRequest): Promise<RenderedFiles> {
    const resolved = resolveGroup(request.config, request.dynamic, request.tenant, request.group);
    // A group removed from config: its instances are on their way out, and get only the CA bundle.
    if (!resolved) return { files: [], certificates: [], problems: [] };
    const files = request.config.templates[resolved.template]?.files ?? {};
    const data = fileTemplateData(request, resolved);
    const declared = Object.entries(files).flatMap(([path, file]) => {
      if (file.kind !== 'certificate') return [path];
      const paths = certificatePaths(path, file);
      return [paths.certPath, paths.keyPath, ...(paths.publicKeyPath ? [paths.publicKeyPath] : [])];
    });
    const out: RenderedFiles = { files: [], certificates: [], problems: [], declared };
    await Promise.all(
      Object.entries(files).map(async ([path, file]) => {
        const where = `templates.${resolved.template}.files.${path}`;
        try {
          if (file.kind === 'certificate') {
            const entryName = String(file.template);
            const entry = request.config.certificates?.[entryName] as CertificateConfig | undefined;
            if (!entry) throw new Error(`certificates.${entryName} is not defined`);
            out.certificates.push(certificateFileSpec(path, file, entryName, entry, data, where));
            return;
          }
          const rendered = await this.render(file, data, where, request);
          if (rendered) out.files.push({ path, mode: file.mode ?? DEFAULT_MODE[file.kind], ...rendered });
        } catch (err) {
          out.problems.push(`${where}: ${(err as Error).message}`);
        }
      }),
    );
    out.files.sort((a, b) => a.path.localeCompare(b.path));
    out.certificates.sort((a, b) => a.path.localeCompare(b.path));
    return out;
  }

  private async render(file: FileConfig, data: TemplateData, where: string, request: InstanceFileRequest): Promise<{ content: string; source: string } | undefined> {
    switch (file.kind) {
      case 'secret': {
        const name = renderTemplate(file.source ?? '', data, `${where}.source`);
        const location = request.store.locate(name);
        const value = await this.cached(`secret\u0000${location}`, () => request.store.get(name), request);
        if (value === undefined) throw new Error(`secret ${location} does not exist`);
        return { content: value, source: location };
      }
      case 'storage': {
        const key = renderTemplate(file.source ?? '', data, `${where}.source`);
        const location = `s3://${request.objects.bucket}/${key}`;
        const value = await this.cached(`storage\u0000${location}`, async () => (await request.objects.read(key))?.text, request);
        if (value === undefined) throw new Error(`${location} does not exist`);
        return { content: value, source: location };
      }
      case 'env':
        return { content: renderEnv(file.template as Record<string, unknown>, data, `${where}.template`), source: `template:${where}` };
      case 'json':
        return { content: `${JSON.stringify(renderDeep(file.template, data, `${where}.template`), null, 2)}\n`, source: `template:${where}` };
      case 'string':
        return { content: renderTemplate(String(file.template), data, `${where}.template`), source: `template:${where}` };
      case 'certificate':
        return undefined;
    }
  }
}
