// A kind of virtual node: the one seam the install pipeline and the teardown commands drive.
// Two kinds implement it: the Virtual Kubelet ACI connector (connector/kind.ts: Linux and
// Windows, a Helm release per OS) and Virtual Nodes v2 (v2/kind.ts: Linux, the AKS cluster
// extension Microsoft.virtualnodes). One step may use both (virtual-node-kind: v2 with
// os-type: Both), each doing its own part of every phase.
import type { ArmClient } from '../azure/arm.js'
import type { ClusterInfo } from '../kubernetes/cluster.js'
import type { Kube } from '../kubernetes/kube.js'
import type { Deadline } from '../util/async.js'
import type { Inputs } from '../runner/inputs.js'
import type { PostState } from '../runner/state.js'
import type { RunReport, TeardownItem } from '../runner/summary.js'
import type { HelmContext, RemovalReport } from './connector/connector.js'
import type { NodeStatus } from './readiness.js'
import type { ConnectorNames, OsType } from './naming.js'
import type { SamplePlacement } from './samples.js'

/** What every kind works with once the step has signed in and reached the cluster. */
export interface KindContext {
  inputs: Inputs
  arm: ArmClient
  kube: Kube
  cluster: ClusterInfo
  helmCtx: HelmContext
  /** wait-timeout, counted from the step's start. */
  deadline: Deadline
  /** UID of the cluster's kube-system namespace. */
  clusterUid: string
  /** The region ACI container groups go to. */
  location: string
  /** The connector's ACI resource group (the node resource group unless aci-resource-group says otherwise). */
  aciResourceGroup: string
  /** Object ID of the signed-in identity. */
  signedInObjectId?: string
  report: RunReport
  /** What the post step needs; a kind records what it installs here before it installs it. */
  post: PostState
  /** Runs one timed phase of the job summary. */
  phase<T>(name: string, work: () => Promise<T>): Promise<T>
  savePost(): void
}

/** Where a sample of one OS goes on a node of this kind. */
export interface SampleTarget {
  os: OsType
  node: string
  /** Selector, tolerations and annotations when not the connector's own node pinning. */
  placement?: SamplePlacement
  /** The sample container's resource requests, where the kind sizes its sandbox by them. */
  requests?: Record<string, string>
}

/** What a kind's teardown found and did; problems fail the step once every kind has had its turn. */
export interface KindTeardown {
  items: TeardownItem[]
  removals: RemovalReport[]
  problems: Error[]
  /** The releases and nodes a connector removal found (the release-names and node-names outputs). */
  found?: ConnectorNames[]
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
  readonly name: 'connector' | 'v2'
  /** Checks what this kind needs; throws with every problem (and its fix) before anything changes. */
  checkPrerequisites(): Promise<void>
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
  /** command: remove: what is installed, read from the cluster and Azure (a dry run only lists it). */
  remove(): Promise<KindTeardown>
  /** command: sweep: what is dead or old, and the container groups it left. */
  sweep(): Promise<KindTeardown>
}
