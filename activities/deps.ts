import type { Client } from '@temporalio/client';
import type { InstanceWorkflowInput } from '../common/types';
import type { AwsClients } from '../adapters/aws/clients';
import type { ShardConfigCaches } from '../adapters/s3/config-cache';
import type { Ec2RateLimits } from '../adapters/aws/token-bucket';
import type { InstanceObserver } from '../adapters/ec2/instance-observer';
import type { SubnetAddressCache } from '../adapters/ec2/subnets';
import type { TargetDrainWatch } from '../adapters/elbv2/drain-watch';
import type { CapacityCooldown } from '../adapters/ec2/capacity-cooldown';

/** What userdata needs to register: `{{ .Nonce }}` and `{{ .Server.CACert }}`. */
export interface RegistrationMaterial {
  nonce: string;
  caCertificate: string;
}

/**
 * What identifies one launch across its retries: a retried RunInstances reuses the
 * ClientToken, and EC2 then requires every other parameter (UserData included) to be
 * the same as in the first attempt.
 */
export interface LaunchAttempt {
  /** The instance workflow's id: the nonce's jti is derived from it. */
  workflowId: string;
  /** When the launch activity was first scheduled (the same for all of its attempts): the nonce's iat. */
  issuedAtMs: number;
}

export interface ActivityDeps {
  aws: AwsClients;
  bucket: string;
  temporal: Client;
  /**
   * The worker's in-memory copies of the shard config (shared with the nonce issuer and the agent
   * API). Without it the group activities keep their own.
   */
  configs?: ShardConfigCaches;
  /**
   * EC2's token buckets as this process may spend them. A shard worker passes its share of the
   * shard's buckets (ShardEc2Limits); unset, the process holds whole buckets of its own.
   */
  ec2Limits?: Ec2RateLimits;
  /** The worker's batched view of EC2 instances (one is made per createActivities when unset). */
  instanceObserver?: InstanceObserver;
  /** The worker's free-address counts per subnet (one is made per createActivities when unset). */
  subnetAddresses?: SubnetAddressCache;
  /** The worker's batched poll of draining targets (one is made per createActivities when unset). */
  drainWatch?: TargetDrainWatch;
  /** Instance types without capacity, per subnet, skipped by every launch for a cool-down (one per createActivities when unset). */
  capacityCooldown?: CapacityCooldown;
  /**
   * Seam for agent registration: mints the single-use nonce put in userdata, with the CA certificate agents trust.
   * It must return the same material for the same `launch`, since every attempt of one launch must render
   * identical RunInstances parameters (see LaunchAttempt).
   */
  issueRegistrationNonce?: (input: InstanceWorkflowInput, launch: LaunchAttempt) => Promise<RegistrationMaterial>;
  /** How often polling activities (instance state, target draining) look again. */
  pollIntervalMs?: number;
  /**
   * Instances per DescribeInstances page when garbage collection lists the shard (default 1000, EC2's
   * maximum; EC2 accepts 5 to 1000). Tests set a small one to make a listing span several pages.
   */
  gcDescribePageSize?: number;
}
