// Draining a virtual node before what serves it goes, as every kind must: a pod still on the
// node when its provider is removed keeps its container group running (and billing) with
// nothing left to delete it. Cordon, delete the pods (DaemonSet pods aside, as `kubectl
// drain --ignore-daemonsets` does), and wait for the provider to confirm each, on the
// step's shared view of the cluster; with ARM at hand a drain ends as soon as ACI holds no
// group of the pods left.
import * as core from '@actions/core'
import { PatchStrategy, setHeaderOptions, type V1Deployment, type V1Pod } from '@kubernetes/client-node'
import type { ArmClient } from '../azure/arm.js'
import { coalescedLister, type ContainerGroupLister } from '../azure/container-groups.js'
import { ClusterView, podEntry, type PodEntry } from '../kubernetes/cluster-view.js'
import { ignoreNotFound, type Kube } from '../kubernetes/kube.js'
import { drainable, forceDeletePods, podsBoundTo } from '../kubernetes/pods.js'
import type { TeardownItem } from './report.js'
import { deleteSampleDeployment } from './samples.js'

/** ARM is asked less and less often while a drain waits (a stuck provider would otherwise cost an ARM read every check). */
const ACI_CHECK_FIRST_MS = 1_000
const ACI_CHECK_MAX_MS = 16_000

/** What removals running at once share: the view of the cluster they wait on and (signed in to Azure) a lister of container groups. */
export interface RemovalContext {
  view: ClusterView
  aci?: ContainerGroupLister
}

/** Runs `work` with a shared context of its own when the caller has none (a single removal outside a teardown). */
export async function withRemovalContext<T>(
  kube: Kube,
  given: RemovalContext | undefined,
  arm: ArmClient | undefined,
  work: (r: RemovalContext) => Promise<T>
): Promise<T> {
  if (given) return work(given)
  const view = await ClusterView.start(kube)
  try {
    return await work({ view, aci: arm ? coalescedLister(arm) : undefined })
  } finally {
    view.stop()
  }
}

export interface DrainOptions {
  timeoutMs: number
  /** Called with every pod bound to the node before any is deleted (the connector records their UIDs). */
  beforeDelete?: (bound: V1Pod[]) => Promise<void>
  /**
   * Whether ACI still holds a container group of any of these pods; undefined when it cannot
   * tell. Once it says no, the pods left are only bookkeeping and are deleted at once.
   */
  groupsHeld?: (left: PodEntry[]) => Promise<boolean | undefined>
  /** Where the groups of pods deleted without confirmation may still run, and how to check (for the warning). */
  groupsWhere: string
}

export interface DrainResult {
  /** Pods deleted for the provider to take down. */
  evicted: number
  /** Pods deleted without the provider's confirmation (at the deadline): their groups may remain. */
  forced: string[]
}

/** A pod a drain waits for: still on the node as the view sees it, or deleted by the drain and not yet seen gone. */
function leftOnNode(view: ClusterView, node: string, deleted: PodEntry[]): PodEntry[] {
  const onNode = view.podsOn(node).filter(p => !p.daemonSet)
  const unseen = deleted.filter(p => view.pod(p.uid) === undefined && !view.podGone(p.uid))
  return [...onNode, ...unseen]
}

/**
 * Waits until the deleted pods are off `node`; false at the deadline. A provider deletes a
 * pod's container group first and confirms the pod afterwards (after the pod's grace
 * period); once ACI holds no group of the remaining pods, they are deleted at once. Waits
 * on the shared view, so no request is made per check; ACI is asked less and less often.
 */
async function waitDrained(view: ClusterView, kube: Kube, node: string, deleted: PodEntry[], opts: DrainOptions): Promise<boolean> {
  let nextAciCheck = 0
  let aciInterval = ACI_CHECK_FIRST_MS
  const drained = await view.until(async () => {
    const left = leftOnNode(view, node, deleted)
    if (left.length === 0) return true
    if (!opts.groupsHeld || !left.every(p => p.deleting || view.pod(p.uid) === undefined) || Date.now() < nextAciCheck) return undefined
    nextAciCheck = Date.now() + aciInterval
    aciInterval = Math.min(aciInterval * 2, ACI_CHECK_MAX_MS)
    if ((await opts.groupsHeld(left).catch(() => undefined)) !== false) return undefined
    await forceDeletePods(kube, left)
    return true
  }, Date.now() + opts.timeoutMs)
  return drained === true
}

/**
 * Cordons `node` (or controllers would put replacement pods straight back), deletes every
 * pod on it but DaemonSet pods, and waits for the provider to confirm; what is left at the
 * deadline is deleted without grace, with a warning naming where its groups may still run.
 * A node that is not there drains nothing.
 */
export async function drainNode(kube: Kube, view: ClusterView, node: string, opts: DrainOptions): Promise<DrainResult> {
  const result: DrainResult = { evicted: 0, forced: [] }
  if (!(await ignoreNotFound(kube.core.readNode({ name: node })))) return result
  await kube.core.patchNode({ name: node, body: { spec: { unschedulable: true } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
  // Followed from before the pods are deleted, so no deletion is missed.
  await view.watchNode(node)
  const bound = await podsBoundTo(kube, node)
  await opts.beforeDelete?.(bound)
  const pods = drainable(bound)
  result.evicted = pods.length
  if (pods.length === 0) return result
  core.info(`Deleting ${pods.length} pod(s) on ${node} so their ACI container groups go with them`)
  await Promise.all(pods.map(p => ignoreNotFound(kube.core.deleteNamespacedPod({ name: p.metadata?.name ?? '', namespace: p.metadata?.namespace ?? '' }))))
  if (await waitDrained(view, kube, node, pods.map(podEntry), opts)) return result
  const left = drainable(await podsBoundTo(kube, node))
  result.forced = left.map(p => `${p.metadata?.namespace}/${p.metadata?.name}`)
  core.warning(
    `The provider of ${node} did not confirm deleting ${left.length} pod(s) in time; deleting them from Kubernetes anyway. ` +
      `Their ACI container groups may still run (and bill) in ${opts.groupsWhere}.`
  )
  await forceDeletePods(kube, left.map(podEntry))
  return result
}

/** What a kind's teardown drains: its nodes (with whether each is Ready), the samples on them, and how to word the items. */
export interface TeardownDrain {
  nodes: Array<{ name: string; ready: boolean }>
  samples: V1Deployment[]
  /** The kind's label for the sample's detail ("Virtual Nodes v2", "the add-on"). */
  sampleFor: string
  /** What deletes a pod's container group ("the agent", "the connector"). */
  provider: string
  /** Where its groups run and how to check, per node (for the warning of a drain that ends unconfirmed). */
  groupsWhere: (node: string) => string
  dryRun: boolean
  deadline: number
}

/**
 * A teardown's drain, workloads first (the docs of every kind: removing what serves a node
 * leaves the container groups of pods still on it): the samples and every pod on the nodes
 * as items; then, unless a dry run, the samples deleted, the pods of a node that is not
 * Ready deleted without grace (no provider is left to confirm them), each Ready node
 * drained. A pod its provider did not confirm says its group may remain.
 */
export async function drainForTeardown(kube: Kube, arm: ArmClient, d: TeardownDrain): Promise<TeardownItem[]> {
  const verb: TeardownItem['outcome'] = d.dryRun ? 'would remove' : 'removed'
  const pods = (await Promise.all(d.nodes.map(n => podsBoundTo(kube, n.name)))).flat()
  const items: TeardownItem[] = [
    ...d.samples.map(s => ({
      kind: 'sample' as const,
      name: `${s.metadata?.namespace}/${s.metadata?.name}`,
      detail: `sample Deployment this action made for ${d.sampleFor}`,
      outcome: verb
    })),
    ...pods.map(p => ({
      kind: 'pod' as const,
      name: `${p.metadata?.namespace}/${p.metadata?.name}`,
      detail: `bound to ${p.spec?.nodeName ?? ''}; deleted first, so ${d.provider} deletes its container group`,
      outcome: verb
    }))
  ]
  if (d.dryRun) return items
  await Promise.all(d.samples.map(s => deleteSampleDeployment(kube, s)))
  const ready = d.nodes.filter(n => n.ready).map(n => n.name)
  const forced = pods.filter(p => !ready.includes(p.spec?.nodeName ?? '')).map(podEntry)
  await forceDeletePods(kube, forced)
  const drained = await withRemovalContext(kube, undefined, arm, ({ view }) =>
    Promise.all(ready.map(node => drainNode(kube, view, node, { timeoutMs: Math.max(0, d.deadline - Date.now()), groupsWhere: d.groupsWhere(node) })))
  )
  const unconfirmed = new Set([...forced.map(p => `${p.namespace}/${p.name}`), ...drained.flatMap(r => r.forced)])
  for (const item of items)
    if (item.kind === 'pod' && unconfirmed.has(item.name))
      item.detail = `${item.detail.split(';')[0]}; deleted without ${d.provider}'s confirmation: its container group may remain (looked for below)`
  return items
}
