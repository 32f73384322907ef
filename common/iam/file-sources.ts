/**
 * The bucket keys that `storage` files read (templates' `files`, kind storage): each source as written,
 * or, when it is rendered per instance, everything under its literal beginning. A source that starts
 * with a template can name any key, so it needs the whole bucket; the policy says so in its reason.
 */
import type { NstanceConfig } from '../config';

export function storageFileKeys(config: NstanceConfig): string[] {
  const keys = new Set<string>();
  for (const template of Object.values(config.templates)) {
    for (const file of Object.values(template.files ?? {})) {
      if (file.kind !== 'storage' || file.source === undefined) continue;
      const templated = file.source.indexOf('{{');
      keys.add(templated < 0 ? file.source : `${file.source.slice(0, templated)}*`);
    }
  }
  return [...keys].sort();
}
