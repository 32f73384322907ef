/**
 * Domain types shared by workflows, activities and the CLI. Plain data only:
 * everything here crosses the Temporal payload boundary.
 */

/** An instance's life, in order. Later issues add the phases between running and draining. */
export const PHASES = [
  'provisioning',
  'running',
  'registered',
  'in-service',
  'draining',
  'terminating',
  'terminated',
  'failed',
] as const;
export type Phase = (typeof PHASES)[number];

export interface ImageSpec {
  filters: { name: string; values: string[] }[];
  owners: string[];
  sort: 'creation-date' | 'name';
  order: 'asc' | 'desc';
  fallback?: string[];
}

export interface GroupRef {
  shard: string;
  tenant: string;
  group: string;
}

/** What an instance workflow is started with. The group's spec travels by value so
 *  an instance is launched with the config its group decided on. */
export interface InstanceWorkflowInput extends GroupRef {
  clusterId: string;
  instanceId: string;
  groupWorkflowId: string;
  launch: LaunchSpec;
  /** Image ids the group resolved (cached, refreshed every image_refresh_interval). */
  imageIds?: Record<string, string>;
  lifecycle?: LifecycleSpec;
  /** Set by continue-as-new: an instance already in service picks up where the last run left off. */
  resume?: InServiceResume;
  /** Launched by the group's start batch: the workflow skips its own launch. */
  launched?: LaunchedInstance;
  /** The group's batch may have launched it already: the workflow's own launch looks for it by tag first. */
  findExisting?: boolean;
  /**
   * With `launched`: the batch audited the creation and gave the group the instance, so the workflow does
   * neither, nor waits for EC2 to show it running. Its agent's registration shows that; one that dies before
   * registering is caught by the group's observation of EC2, or by the registration timeout.
   */
  launchReported?: boolean;
}

/** What an in-service instance workflow carries into its next run. */
export interface InServiceResume {
  launched: LaunchedInstance;
  status: InstanceUpdate;
  /** Workflow time it entered service: expiry counts from here. */
  since: number;
  /** Highest leadership epoch heard from the agent API. */
  leaderEpoch: number;
}

export interface TargetGroupRef {
  arn: string;
  port: number;
}

/** Timers and load balancing for one instance's life. */
export interface LifecycleSpec {
  registrationTimeoutMs: number;
  drainTimeoutMs: number;
  targetGroups: TargetGroupRef[];
  expiry?: { eligibleAgeMs: number; forcedAgeMs: number };
}

/** Everything needed to launch one instance of a group, resolved from config. */
export interface LaunchSpec {
  kind: string;
  /** The config template it comes from (for the Web UI; absent in specs resolved before it was recorded). */
  template?: string;
  arch: 'amd64' | 'arm64';
  /** The preferred type (the first of instanceTypes when there is a list). */
  instanceType: string;
  /**
   * Ordered fallback types (instance_types, or instance_requirements as resolved): on
   * InsufficientInstanceCapacity the launch tries the next, then the pool's next subnet. Absent: instanceType only.
   */
  instanceTypes?: string[];
  subnetPool: string;
  subnetIds: string[];
  args: Record<string, unknown>;
  vars: Record<string, string>;
  userdata?: string;
  images: Record<string, ImageSpec>;
  registrationAddress?: string;
}

export interface LaunchedInstance {
  ec2InstanceId: string;
  privateIp?: string;
  launchedAt?: string;
  state: string;
  subnetId?: string;
  imageId?: string;
  /** The type EC2 launched (a fallback type when the preferred one had no capacity). */
  instanceType?: string;
  /** true when the instance already existed (a retried attempt found what it had made). */
  adopted: boolean;
}

export type Health = 'healthy' | 'unhealthy' | 'termination-notice';

/** Why the group removes an instance. */
export type RemovalReason =
  | 'scale-down'
  | 'drain-requested'
  | 'lost'
  | 'unhealthy'
  | 'termination-notice'
  | 'replace-requested'
  | 'expired-eligible'
  | 'expired-forced'
  /** An instance workflow that reports to the group but is not one of its members (started by a run whose state was lost). */
  | 'not-a-member'
  /** Launched from a spec that hashes differently from the group's current one (see LaunchFingerprint). */
  | 'drift';
export type Expiry = 'eligible' | 'forced';

/** A transition reported by an instance workflow to its group. */
export interface InstanceUpdate {
  instanceId: string;
  phase: Phase;
  ec2InstanceId?: string;
  privateIp?: string;
  launchedAt?: string;
  /** The instance type it was launched as (recorded on the member; drift compares the spec's list, never this). */
  instanceType?: string;
  error?: string;
  /** From agent health transitions (absent until the agent reported). */
  health?: Health;
  /**
   * When the host is reclaimed (ISO time), from a termination notice (spot interruption).
   * Kept once heard, whatever health says later: the group times the drain by it.
   */
  noticeDeadline?: string;
  /** Set by the instance's own age timers. */
  expiry?: Expiry;
}

/** The group's view of one of its instances. */
export interface Member extends InstanceUpdate {
  /** Creation order within the group: scale-down removes the lowest first (oldest). */
  seq: number;
  /** Set by group runs before fleet-scale state (kept so their carried members still type). */
  createdAt?: string;
  /** Set once the group asked this instance to go away. */
  leaving?: boolean;
  /** EC2 shows it stopped or terminated although we did not ask: replace at once. */
  lost?: boolean;
  /** An operator asked for a replacement (`nstance instance replace`). */
  replaceRequested?: boolean;
  /** Being replaced (create-before-destroy): why, and from which creation on a member counts as its replacement. */
  replacing?: { reason: RemovalReason; sinceSeq: number };
  /** The launch version (the group's table of what its members were launched from) this member was started with. */
  launch?: number;
  /** As a replacement, it took over from a member being replaced: it counts as the replacement of no other. */
  tookOver?: boolean;
  /** Status query only: the hashed fields on which this member's launch differs from the group's current one. */
  drift?: DriftField[];
}

/**
 * The fields whose change replaces members (Nstance's "infra" hash), in Nstance's names. Vars and files
 * are left out: a change to them is pushed to running instances, not rotated. `image` counts only where
 * the group rotates on a new image (rotate_on_image_change).
 */
export const DRIFT_FIELDS = ['args', 'instance_type', 'subnet_pool', 'userdata', 'kind', 'arch'] as const;
export type HashedField = (typeof DRIFT_FIELDS)[number];
export type DriftField = HashedField | 'image';

/** A digest of each hashed field of a group's resolved launch spec (computed where config is resolved). */
export interface LaunchFingerprint {
  fields: Record<HashedField, string>;
}

/** One entry of a group's table of what its members were launched from (Member.launch is its id). */
export interface LaunchVersion {
  id: number;
  fields: LaunchFingerprint['fields'];
  /** Image ids by config image name, as the members of this version were started with. */
  images: Record<string, string>;
}

export interface GroupStatus extends GroupRef {
  desired: number;
  running: number;
  pending: number;
  draining: number;
  /** Of `running`, those in service (registered with their target groups). */
  inService: number;
  /** Members staying (not leaving) whose agent is unhealthy. Absent from runs before it was counted. */
  unhealthy?: number;
  /** Every member the group holds; `members` is one page of them (see StatusPage). */
  total: number;
  /** A page of members, oldest first. */
  members: Member[];
  configured: boolean;
  lastError?: string;
  backoffUntil?: string;
  /** What members were launched from (Member.launch refers to these); absent before drift rotation. */
  launches?: LaunchVersion[];
  /** How the workflow itself is doing, for benchmarks and the curious. Absent from runs before fleet scale. */
  diagnostics?: GroupDiagnostics;
  /** How far a rotation has to go, counted over every member (counts-only answers too). Absent from workers before it was counted. */
  rotation?: GroupRotation;
}

export interface GroupRotation {
  /** Members staying, not yet being replaced, whose launch differs from what the group would launch now, and the fields that differ. */
  drifted: number;
  driftFields: DriftField[];
  /** Members being replaced now, by reason. */
  replacing: Partial<Record<RemovalReason, number>>;
  /** The run has not judged its members' drift yet (it has just continued as new, or is rebuilding its members): drifted members may be missing from these counts. */
  unjudged?: true;
}

export interface GroupDiagnostics {
  /** Reconcile passes this run has made. */
  passes: number;
  /** Events in this run's history so far. */
  historyLength: number;
  /** Size of the JSON this run would carry across continue-as-new now. */
  carriedStateBytes: number;
  /** Whether the run is still rebuilding its members from visibility and EC2 (it decides nothing until done). */
  rebuilding: boolean;
}

/** Which members a status query returns: a page (default the first 200), optionally filtered. */
export interface StatusPage {
  offset?: number;
  /** 0 returns counts only. */
  limit?: number;
  instanceIds?: string[];
  phases?: Phase[];
}

/**
 * One instance's record in S3 (`shard/<shard>/instance/<tenant>.<id>.json`), as its group last
 * heard of it: what other tools read to see the fleet from the bucket alone.
 */
export interface InstanceRecord {
  shard: string;
  tenant: string;
  group: string;
  id: string;
  phase: Phase;
  ec2InstanceId?: string;
  privateIp?: string;
  launchedAt?: string;
  health?: Health;
  expiry?: Expiry;
  /** Why it is being replaced, when it is (drift, expiry, health…). */
  replacing?: RemovalReason;
  leaving?: boolean;
  /** Workflow time of the transition this record was written for. */
  updatedAt: string;
}

export interface AuditEntry {
  shard: string;
  action: string;
  /** Who asked: a CLI user, a workflow, the garbage collector. */
  actor: string;
  at: string;
  workflowId?: string;
  tenant?: string;
  group?: string;
  instanceIds?: string[];
  ec2InstanceIds?: string[];
  details?: Record<string, unknown>;
}

/** A group's desired state, resolved from config by an activity and carried in the group workflow. */
export interface GroupSpec {
  clusterId: string;
  size: number;
  launch: LaunchSpec;
  reconcileIntervalMs: number;
  /** Minimum spacing between two instance creations in the group. */
  createRateLimitMs: number;
  drainTimeoutMs: number;
  imageRefreshMs: number;
  lifecycle: LifecycleSpec;
  /** Instances over size EC2 may hold while members are replaced (default 1; absent in specs carried from before). */
  maxSurge?: Amount;
  /** Members that may be removed before their replacement serves (default 0). */
  maxUnavailable?: Amount;
  /** What members launched from this spec are hashed from (absent in specs carried from before drift rotation). */
  fingerprint?: LaunchFingerprint;
  /** Whether a newly resolved image id alone rotates the group (default false, as in Nstance). */
  rotateOnImageChange?: boolean;
}

/** A count, or a percentage of the group's size (`max_surge: "10%"`). */
export type Amount = { count: number } | { percent: number };

export type GroupSpecResult =
  | { found: true; spec: GroupSpec }
  /** The group is gone from config: its instances are to be removed. */
  | { found: false; reconcileIntervalMs: number };
