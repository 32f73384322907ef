/**
 * `instance_requirements` (attribute-based selection) resolved to an ordered type list: EC2's
 * GetInstanceTypesFromInstanceRequirements where the endpoint has it (moto does not), otherwise every
 * type from DescribeInstanceTypes (a few paginated calls), filtered here by the same attributes. Sorted
 * smallest first (vCPUs, then memory, then name), cut at max_types. Cached per worker for an hour: types
 * do not change between launches, and at 2,000 launches the resolution must not be per launch.
 */
import {
  DescribeInstanceTypesCommand,
  GetInstanceTypesFromInstanceRequirementsCommand,
  type EC2Client,
  type InstanceTypeInfo,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import type { InstanceRequirementsConfig } from '../../common/config/aws-access';
import { awsErrorCode, withAwsErrors } from '../aws/errors';
import type { RateLimiter } from '../aws/token-bucket';

export const REQUIREMENTS_CACHE_MS = 60 * 60_000;
const ARCH = { amd64: 'x86_64', arm64: 'arm64' } as const;

interface Candidate {
  type: string;
  vcpus: number;
  memoryMib: number;
  burstable: boolean;
}

/** `m5*`, `t3` (a family), `*.metal`: EC2's ExcludedInstanceTypes syntax. */
function excluded(type: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => {
    const pattern = p.includes('.') || p.includes('*') ? p : `${p}.*`;
    return new RegExp(`^${pattern.replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`).test(type);
  });
}

export function matchesRequirements(c: Candidate, r: InstanceRequirementsConfig): boolean {
  if (c.vcpus < r.vcpu.min || (r.vcpu.max !== undefined && c.vcpus > r.vcpu.max)) return false;
  if (c.memoryMib < r.memory_mib.min || (r.memory_mib.max !== undefined && c.memoryMib > r.memory_mib.max)) return false;
  if (r.burstable === 'excluded' && c.burstable) return false;
  if (r.burstable === 'required' && !c.burstable) return false;
  return !excluded(c.type, r.excluded_types ?? []);
}

export function orderCandidates(list: Candidate[], r: InstanceRequirementsConfig): string[] {
  return list
    .filter((c) => matchesRequirements(c, r))
    .sort((a, b) => a.vcpus - b.vcpus || a.memoryMib - b.memoryMib || a.type.localeCompare(b.type))
    .slice(0, r.max_types)
    .map((c) => c.type);
}

function candidateOf(info: InstanceTypeInfo): Candidate | undefined {
  if (!info.InstanceType) return undefined;
  return {
    type: info.InstanceType,
    vcpus: info.VCpuInfo?.DefaultVCpus ?? 0,
    memoryMib: info.MemoryInfo?.SizeInMiB ?? 0,
    burstable: info.BurstablePerformanceSupported === true,
  };
}

export interface RequirementsDeps {
  ec2: Pick<EC2Client, 'send'>;
  describeLimit: RateLimiter;
}

export class InstanceRequirementsResolver {
  private readonly cache = new Map<string, { at: number; types: Promise<string[]> }>();

  constructor(
    private readonly deps: RequirementsDeps,
    private readonly now: () => number = Date.now,
  ) {}

  /** The ordered types for `requirements` on `arch`; a requirement nothing matches is a config error. */
  resolve(requirements: InstanceRequirementsConfig, arch: 'amd64' | 'arm64', where: string): Promise<string[]> {
    const key = JSON.stringify([requirements, arch]);
    const hit = this.cache.get(key);
    if (hit && this.now() - hit.at < REQUIREMENTS_CACHE_MS) return hit.types;
    const types = this.lookUp(requirements, arch, where);
    this.cache.set(key, { at: this.now(), types });
    types.catch(() => this.cache.delete(key));
    return types;
  }

  private async lookUp(r: InstanceRequirementsConfig, arch: 'amd64' | 'arm64', where: string): Promise<string[]> {
    const infos = await this.describeAll(ARCH[arch]);
    let allowed: Set<string> | undefined;
    try {
      allowed = await this.fromEc2Selection(r, ARCH[arch]);
    } catch (err) {
      // Endpoints without attribute-based selection (moto answers with an HTML page) fall back to filtering
      // the described types here; only a refusal or throttling is worth surfacing (and retrying).
      if (['UnauthorizedOperation', 'AccessDenied', 'RequestLimitExceeded', 'Throttling'].includes(awsErrorCode(err) ?? '')) throw err;
    }
    const candidates = infos.map(candidateOf).filter((c): c is Candidate => c !== undefined && (!allowed || allowed.has(c.type)));
    const types = orderCandidates(candidates, r);
    if (types.length === 0) {
      throw ApplicationFailure.create({
        type: 'ConfigInvalid',
        nonRetryable: true,
        message: `${where}.instance_requirements: no ${arch} instance type in this region has ${r.vcpu.min}${r.vcpu.max ? `-${r.vcpu.max}` : '+'} vCPUs and ${r.memory_mib.min}${r.memory_mib.max ? `-${r.memory_mib.max}` : '+'} MiB (burstable ${r.burstable}${r.excluded_types?.length ? `, excluding ${r.excluded_types.join(', ')}` : ''})`,
      });
    }
    return types;
  }

  private async fromEc2Selection(r: InstanceRequirementsConfig, architecture: string): Promise<Set<string>> {
    const names = new Set<string>();
    let token: string | undefined;
    do {
      await this.deps.describeLimit.take();
      const out = await this.deps.ec2.send(
        new GetInstanceTypesFromInstanceRequirementsCommand({
          ArchitectureTypes: [architecture as 'arm64'],
          VirtualizationTypes: ['hvm'],
          InstanceRequirements: {
            VCpuCount: { Min: r.vcpu.min, Max: r.vcpu.max },
            MemoryMiB: { Min: r.memory_mib.min, Max: r.memory_mib.max },
            BurstablePerformance: r.burstable,
            ExcludedInstanceTypes: r.excluded_types,
          },
          NextToken: token,
        }),
      );
      for (const t of out.InstanceTypes ?? []) if (t.InstanceType) names.add(t.InstanceType);
      token = out.NextToken;
    } while (token);
    return names;
  }

  private async describeAll(architecture: string): Promise<InstanceTypeInfo[]> {
    const all: InstanceTypeInfo[] = [];
    let token: string | undefined;
    do {
      await this.deps.describeLimit.take();
      const out = await withAwsErrors('DescribeInstanceTypes', () =>
        this.deps.ec2.send(new DescribeInstanceTypesCommand({ Filters: [{ Name: 'processor-info.supported-architecture', Values: [architecture] }], MaxResults: 100, NextToken: token })),
      );
      all.push(...(out.InstanceTypes ?? []).filter((t) => t.ProcessorInfo?.SupportedArchitectures?.includes(architecture as 'arm64') ?? true));
      token = out.NextToken;
    } while (token);
    return all;
  }
}
