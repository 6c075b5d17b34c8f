// `command: sweep`: what a scheduled teardown finds without being told names, read from the
// cluster (installed.ts): ACI connector releases whose connector name matches the glob
// (first deployed at least `older-than` ago), ACI virtual nodes of a matching connector that
// no release serves, that are that old and have been NotReady for a grace period, and the
// container groups of virtual nodes that are gone, deleted only where they are provably
// this cluster's (attribution.ts). Each goes by the same removal as `command: remove`.
import { distinctResourceGroups, type ArmClient } from '../../azure/arm.js'
import type { HelmContext } from '../../kubernetes/helm.js'
import type { Kube } from '../../kubernetes/kube.js'
import type { OsType } from '../naming.js'
import { readPodRecord } from './attribution.js'
import { findConnectorReleases, globToRegExp } from './installed.js'
import { removeTargets, type RemovalResult } from './removal.js'
import { findRemovalTargets, nodeInScope, type RemovalScope, type RemovalTarget } from './targets.js'

/**
 * How long a virtual node no release serves must have been NotReady before a sweep takes
 * it. Kubernetes itself waits as long before it evicts pods from a NotReady node (the
 * DefaultTolerationSeconds admission plugin gives every pod a 300 s toleration for
 * node.kubernetes.io/not-ready and unreachable); a connector pod that restarts, or is rolled
 * by an upgrade, leaves its node NotReady for far less.
 */
export const NOT_READY_GRACE_MS = 5 * 60_000

export interface SweepOptions {
  glob: string
  /** os-type and location, when given: they narrow a sweep as they narrow a remove. */
  os?: OsType[]
  location?: string
  olderThanMs?: number
  dryRun: boolean
  timeoutMs: number
  nodeResourceGroup: string
  /** The aci-resource-group input: also looked through for orphaned groups. */
  aciResourceGroup?: string
  now?: number
}

export function sweepScope(opts: Pick<SweepOptions, 'glob' | 'olderThanMs' | 'now' | 'os' | 'location'>): RemovalScope {
  const pattern = globToRegExp(opts.glob)
  return {
    connector: name => pattern.test(name),
    os: opts.os,
    location: opts.location,
    // A node whose name does not say its connector, OS and region cannot be narrowed by them.
    unnamedNodes: opts.glob === '*' && !opts.os && opts.location === undefined,
    olderThanMs: opts.olderThanMs,
    notReadyForMs: NOT_READY_GRACE_MS,
    now: opts.now
  }
}

/** What a sweep takes, and the resource groups it looks through for orphaned container groups. Reads only. */
export async function planSweep(kube: Kube, opts: SweepOptions): Promise<{ targets: RemovalTarget[]; resourceGroups: string[] }> {
  const [targets, releases, record] = await Promise.all([
    findRemovalTargets(kube, sweepScope(opts), opts.nodeResourceGroup),
    findConnectorReleases(kube, opts.nodeResourceGroup),
    readPodRecord(kube)
  ])
  // Where this cluster's connectors put container groups: its own node resource group, each
  // release's ACI group, the groups recorded by earlier removals, and the one the user names.
  const resourceGroups = [
    opts.nodeResourceGroup,
    ...releases.map(r => r.aciResourceGroup),
    ...[...record.values()].map(r => r.aciResourceGroup),
    ...(opts.aciResourceGroup ? [opts.aciResourceGroup] : [])
  ]
  return { targets, resourceGroups: distinctResourceGroups(resourceGroups) }
}

/** Removes (or, with dryRun, lists) what planSweep found; each item says how it went. */
export async function runSweep(
  kube: Kube,
  arm: ArmClient,
  helm: HelmContext,
  plan: { targets: RemovalTarget[]; resourceGroups: string[] },
  opts: SweepOptions
): Promise<RemovalResult> {
  return removeTargets(kube, helm, plan.targets, {
    timeoutMs: opts.timeoutMs,
    dryRun: opts.dryRun,
    nodeResourceGroup: opts.nodeResourceGroup,
    arm,
    orphansIn: plan.resourceGroups,
    // A gone node's groups go whatever its connector's name (the glob picks live connectors); os-type and location narrow them too.
    orphanOf: node => nodeInScope({ os: opts.os, location: opts.location, unnamedNodes: !opts.os && opts.location === undefined }, node)
  })
}
