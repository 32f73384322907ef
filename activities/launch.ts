import type { TemplateData } from '../common/template';
import type { InstanceWorkflowInput } from '../common/types';
import type { RegistrationMaterial } from './deps';

/** The values `{{ .X }}` references in args and userdata resolve to. */
export function launchTemplateData(
  input: InstanceWorkflowInput,
  imageIds: Record<string, string>,
  registration: RegistrationMaterial,
): TemplateData {
  return {
    Image: imageIds,
    Nonce: registration.nonce,
    Server: { RegistrationAddr: input.launch.registrationAddress ?? '', CACert: registration.caCertificate },
    Vars: input.launch.vars,
    Instance: { ID: input.instanceId, Kind: input.launch.kind, Type: input.launch.instanceType },
    Cluster: { ID: input.clusterId },
    Shard: { ID: input.shard },
    Group: input.group,
    Tenant: input.tenant,
  };
}

/** Nstance's architecture names versus EC2's. */
export const EC2_ARCHITECTURE: Record<'amd64' | 'arm64', string> = { amd64: 'x86_64', arm64: 'arm64' };
