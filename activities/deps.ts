import type { Client } from '@temporalio/client';
import type { InstanceWorkflowInput } from '../common/types';
import type { AwsClients } from './aws/clients';
import type { Ec2RateLimits } from './aws/token-bucket';

export interface ActivityDeps {
  aws: AwsClients;
  bucket: string;
  temporal: Client;
  ec2Limits?: Ec2RateLimits;
  /** Seam for agent registration: mints the single-use nonce put in userdata. */
  issueRegistrationNonce?: (input: InstanceWorkflowInput) => Promise<string>;
  /** How often polling activities (instance state, target draining) look again. */
  pollIntervalMs?: number;
}
