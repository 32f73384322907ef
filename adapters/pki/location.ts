import type { NstanceConfig } from '../../common/config';
import { CA_ENTRY, DEFAULT_CA_TTL_HOURS, ttlMs, type CaEntryConfig } from '../../common/config/certificates';
import { renderTemplate, type TemplateData } from '../../common/template';
import type { PkiLocation } from './cluster-ca';
import type { CaSubject } from './x509';

/** Where a shard's config says the cluster PKI's secrets live; `bucket` is the bucket holding cluster/. */
export function pkiLocation(config: Pick<NstanceConfig, 'cluster'> & Partial<Pick<NstanceConfig, 'certificates' | 'defaults'>>, bucket: string): PkiLocation {
  const ca = config.certificates?.[CA_ENTRY] as CaEntryConfig | undefined;
  return { clusterId: config.cluster.id, secrets: config.cluster.secrets, bucket, ...(ca ? { ca: caSubject(ca, config.cluster.id, config.defaults?.vars ?? {}) } : {}) };
}

/** `certificates.ca` rendered as Nstance renders it: cluster-wide values only (the load checks that). */
export function caSubject(ca: CaEntryConfig, clusterId: string, vars: Record<string, string>): CaSubject {
  const data: TemplateData = { Cluster: { ID: clusterId }, Vars: vars };
  const one = (text: string, field: string) => renderTemplate(text, data, `certificates.ca.${field}`);
  const list = (values: string[] | undefined, field: string) => values?.map((v, i) => one(v, `${field}[${i}]`));
  return {
    commonName: ca.cn === undefined ? undefined : one(ca.cn, 'cn'),
    organization: list(ca.organization, 'organization'),
    country: list(ca.country, 'country'),
    province: list(ca.province, 'province'),
    locality: list(ca.locality, 'locality'),
    street: list(ca.street, 'street'),
    postalCode: list(ca.postal_code, 'postal_code'),
    validityMs: ttlMs(ca.ttl, DEFAULT_CA_TTL_HOURS),
  };
}
