export const SEED_DEFAULTS = {
  name: 'nstance-demo',
  bucket: 'nstance-demo',
  vpcCidr: '10.0.0.0/16',
  subnetCidrs: ['10.0.1.0/24', '10.0.2.0/24'] as const,
  leaderIp: '10.0.1.10',
  instanceProfileName: 'nstance-agent',
  targetGroupName: 'web',
  targetGroupPort: 443,
  imageNamePattern: 'al2023-ami-2023.*-arm64',
  imageArchitecture: 'arm64',
  encryptionKeySecretId: 'nstance/demo/encryption-key',
} as const;

