import type { NstanceConfig } from '../../common/config';
import type { PkiLocation } from './cluster-ca';

/** Where a shard's config says the cluster PKI's secrets live; `bucket` is the bucket holding cluster/. */
export function pkiLocation(config: Pick<NstanceConfig, 'cluster'>, bucket: string): PkiLocation {
  return { clusterId: config.cluster.id, secrets: config.cluster.secrets, bucket };
}
