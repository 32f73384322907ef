import type { Client } from '@temporalio/client';
import type { InstanceWorkflowInput } from '../common/types';

/** What userdata needs to register: `{{ .Nonce }}` and `{{ .Server.CACert }}`. */
export interface RegistrationMaterial {
  nonce: string;
  caCertificate: string;
}
import type { AwsClients } from './aws/clients';
import type { Ec2RateLimits } from './aws/token-bucket';

export interface ActivityDeps {
  aws: AwsClients;
  bucket: string;
  temporal: Client;
  ec2Limits?: Ec2RateLimits;
  /** Seam for agent registration: mints the single-use nonce put in userdata, with the CA certificate agents trust. */
  issueRegistrationNonce?: (input: InstanceWorkflowInput) => Promise<RegistrationMaterial>;
  /** How often polling activities (instance state, target draining) look again. */
  pollIntervalMs?: number;
}
