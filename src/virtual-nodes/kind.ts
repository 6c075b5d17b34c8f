// A kind of virtual node: the one seam the install pipeline, the teardown commands and the
// post step's cleanup drive. Each kind lives in its own folder and is listed once, in
// kinds.ts, with the operating systems it serves; nothing here names one.
import * as core from '@actions/core'
import type { ArmClient } from '../azure/arm.js'
import type { GrantedRole } from '../azure/role-assignments.js'
import type { ClusterInfo } from '../kubernetes/cluster.js'
import type { HelmContext } from '../kubernetes/helm.js'
import type { Kube } from '../kubernetes/kube.js'
import type { Deadline } from '../util/async.js'
import type { OsType } from './naming.js'
import type { InstallItemKind, NodeStatus, RemovalReport, TeardownItem } from './report.js'
import type { SamplePlacement } from './samples.js'

/** What a kind keeps for the post step between the main step and its cleanup (saved with the step's state; JSON). */
export interface KindRecord<T> {
  get(): T | undefined
  /** Saves at once: a kind records what it is about to install before it installs it. Undefined clears it. */
  set(value: T | undefined): void
}

export type Command = 'install' | 'remove' | 'sweep'

/** The inputs every kind reads; each kind states its own beside them (kinds.ts joins them, the runner fills them in). */
export interface CommonInputs {
  command: Command
  resourceGroup: string
  clusterName: string
  /** connector-name: a name; with command: sweep, a glob over the names of what each kind installed. */
  connectorName: string
  /** os-type was given: a teardown takes only those OS; without it, every OS installed. */
  osTypesGiven: boolean
  /** install: let the action assign a kind's identity the role it lacks. */
  grantConnectorRole: boolean
  /** The post step removes what this run installed. */
  cleanup: boolean
  /** remove, sweep: list what would go, change nothing. */
  dryRun: boolean
  /** remove, sweep, cleanup: fail when ACI could not be checked for container groups left behind. */
  verifyAci: boolean
  /** sweep: only what was installed at least this long ago; undefined = any age. */
  olderThanMs?: number
  /** location (normalized), when given: a teardown takes only what runs in that region. */
  location?: string
}

/**
 * A remove or sweep narrowed by location to a region other than the cluster's, for a kind
 * that runs in the cluster's region only (v2, the add-on): it is not looked for (said so).
 */
export function outsideGivenLocation(inputs: CommonInputs, cluster: { location: string }, label: string): boolean {
  const given = inputs.location
  if (given === undefined || given === cluster.location.toLowerCase().replace(/\s+/g, '')) return false
  core.info(`location is ${given}; ${label} runs in the cluster's region ${cluster.location}, so it is not looked for.`)
  return true
}

/** What a kind adds to the run's report (the runner's RunReport has these). */
export interface KindReport {
  /** The chart an install used. */
  chart?: string
  /** Role assignments grant-connector-role made (or found) on this run. */
  roles?: GrantedRole[]
}

/** What every kind works with once the step has signed in and reached the cluster. */
export interface KindContext<I extends CommonInputs = CommonInputs> {
  inputs: I
  /** ARM with the step's sign-in. In the post step, a sign-in that failed makes each call fail with why. */
  arm: ArmClient
  kube: Kube
  cluster: ClusterInfo
  /** helm with the kubeconfig it runs with, and the work dir for its values files. */
  helm: HelmContext
  /** wait-timeout, counted from the step's start. */
  deadline: Deadline
  /** UID of the cluster's kube-system namespace: names this cluster apart from any other. */
  clusterUid: string
  /** Object ID of the signed-in identity, when its token says. */
  signedInObjectId?: string
  report: KindReport
  /** Runs one timed phase of the job summary. */
  phase<T>(name: string, work: () => Promise<T>): Promise<T>
}

/** Where a sample of one OS goes on a node of this kind. */
export interface SampleTarget {
  os: OsType
  /** The node it is expected on (for the log). */
  node: string
  placement: SamplePlacement
  /** The sample container's resource requests, where the kind sizes its sandbox by them. */
  requests?: Record<string, string>
}

/** A virtual node an install will make, known before it runs (the node-names and release-names outputs). */
export interface PlannedNode {
  os: OsType
  node: string
  /** The Helm release that serves it, when one does. */
  release?: string
}

/** What a kind's teardown found and did; problems fail the step once every kind has had its turn. */
export interface KindTeardown {
  items: TeardownItem[]
  removals: RemovalReport[]
  problems: Error[]
  /** The virtual nodes a remove found (the node-names and release-names outputs). */
  found?: PlannedNode[]
}

/** A wait in which some nodes failed: every failure in one message, and the nodes that did turn Ready (for the summary). */
export class NodesNotReadyError extends Error {
  constructor(
    message: string,
    readonly ready: NodeStatus[]
  ) {
    super(message)
    this.name = 'NodesNotReadyError'
  }
}

export interface VirtualNodeKind {
  /** As kinds.ts lists it, and as the nodes output names it. */
  readonly name: string
  /** As the log and summary name it. */
  readonly label: string
  /** The kinds of installation its teardown looks for (the keys of the swept output). */
  readonly installs: InstallItemKind[]
  /** Checks what this kind needs; throws with every problem (and its fix) before anything changes. */
  checkPrerequisites(): Promise<void>
  /** The virtual nodes an install makes. */
  planned(): PlannedNode[]
  /** Installs this kind's virtual nodes, or converges what is there. */
  install(): Promise<void>
  /** Waits until this kind's nodes are Ready; fails fast with the reason. */
  waitReady(): Promise<NodeStatus[]>
  /** Where the samples go. */
  samples(): SampleTarget[]
  /** More to say about a sample that failed (the role to grant, say), or undefined. */
  sampleHint(message: string): string | undefined
  /** This kind's part of the placement output, per OS. */
  placement(): Record<string, unknown>
  /** What this run has installed so far, one phrase each, for a failure's "Installed so far". */
  installedSoFar(): string[]
  /** command: remove: what is installed, read from the cluster and Azure (a dry run only lists it). */
  remove(): Promise<KindTeardown>
  /** command: sweep: what is dead or old, and the container groups it left. */
  sweep(): Promise<KindTeardown>
  /** The post step with cleanup: true: what this run's main step installed, from its record. */
  cleanup(): Promise<KindTeardown>
}

/**
 * What a kind's folder exports as its implementation of the seam, for the OS it is given,
 * with its own record for the post step (each kind reads back only what it wrote).
 */
export type KindFactory<I extends CommonInputs> = (ctx: KindContext<I>, os: OsType[], record: KindRecord<unknown>) => Omit<VirtualNodeKind, 'name' | 'label'>

/** What a look at a cluster says of a kind, for virtual-node-kind: auto (reads only). */
export interface KindProbe {
  /** What of this kind the cluster already has, as a phrase; undefined: none. */
  installed?: string
  /** Why this kind cannot be installed on the cluster, each with its fix; empty: it can. */
  problems: string[]
}

/** What a kind's folder exports (its kind.ts). */
export interface KindModule<I extends CommonInputs> {
  create: KindFactory<I>
  /** For virtual-node-kind: auto: whether the cluster has this kind, or could. Reads only. */
  probe?: (ctx: KindContext<I>) => Promise<KindProbe>
  /**
   * command: remove on a cluster ARM no longer has (nothing in it can be read): what this kind
   * may have left outside the cluster, listed, never deleted. `clusterGone` says why.
   */
  whenClusterGone?: (arm: ArmClient, inputs: I, clusterGone: string) => Promise<TeardownItem[]>
}
