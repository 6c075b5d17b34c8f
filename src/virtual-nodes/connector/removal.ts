// The removal of connectors that are installed, shared by `command: remove`, the sweep and
// the post step's cleanup. What goes was read from the cluster (targets.ts). Then, in the
// order that leaves nothing billing: the samples, each connector in parallel (drain, helm
// uninstall, node), and the container groups their nodes left, deleted only where they are
// provably this cluster's (attribution.ts). A dry run lists the same and changes nothing.
import * as core from '@actions/core'
import type { V1Deployment } from '@kubernetes/client-node'
import { distinctResourceGroups, sameResourceGroup, type ArmClient } from '../../azure/arm.js'
import { deleteContainerGroup, GROUP_DELETE_CONCURRENCY, listCommand, type ContainerGroupLister } from '../../azure/container-groups.js'
import type { ClusterView } from '../../kubernetes/cluster-view.js'
import { uninstallRelease, type HelmContext } from '../../kubernetes/helm.js'
import { ignoreNotFound, type Kube } from '../../kubernetes/kube.js'
import { deleteOrphanedPods, podsBoundTo } from '../../kubernetes/pods.js'
import { Deadline, pool, settleAll, type Settled } from '../../util/async.js'
import { drainNode, withRemovalContext, type RemovalContext } from '../drain.js'
import { failedItemsError, type RemovalReport, type TeardownItem } from '../report.js'
import { deleteSampleDeployment, samplesOnNodes } from '../samples.js'
import {
  forgetNodes,
  livePodOf,
  planGroupCleanup,
  podRef,
  readPodRecord,
  recordedPods,
  recordPods,
  type GroupFinding,
  type GroupPlan,
  type NodeRecord
} from './attribution.js'
import { ADDON_NODE_PREFIX } from './installed.js'
import { RELEASE_NAMESPACE, type ConnectorNames } from './names.js'
import type { RemovalTarget } from './targets.js'

/** The name the connector gives a pod's container group (azure-aci v1.6.4 pkg/provider/aci.go containerGroupName). */
export function containerGroupNameOf(pod: { namespace: string; name: string }): string {
  return `${pod.namespace}-${pod.name}`
}

/** Whether ACI still holds a group of any of `left` on `node` (by its UID tag: another cluster's pod may share the name in a shared group). */
function connectorGroupsHeld(aci: ContainerGroupLister, resourceGroup: string, node: string) {
  return async (left: Array<{ uid: string; namespace: string; name: string }>): Promise<boolean | undefined> => {
    const groups = await aci(resourceGroup).catch(() => undefined)
    if (!groups) return undefined
    return left.some(p => groups.some(g => (g.uid ? g.uid === p.uid : g.name === containerGroupNameOf(p) && g.node === node)))
  }
}

function emptyReport(c: ConnectorNames): RemovalReport {
  return { os: c.os, node: c.node, installedAs: c.release, installRemoved: false, nodeRemoved: false, podsEvicted: 0, podsForced: [] }
}

/**
 * Drains the virtual node (the connector deletes each pod's container group), then uninstalls
 * the release and deletes the node. Each step is skipped when its object is gone, so removing
 * twice succeeds.
 */
export async function removeConnector(
  kube: Kube,
  ctx: HelmContext,
  c: ConnectorNames,
  drainTimeoutMs: number,
  aciResourceGroup: string,
  arm?: ArmClient,
  shared?: RemovalContext
): Promise<RemovalReport> {
  return withRemovalContext(kube, shared, arm, async ({ view, aci }) => {
    const report = emptyReport(c)
    // The drain and the namespace wait share the time given, they do not each take all of it.
    const until = Date.now() + drainTimeoutMs
    const drained = await drainNode(kube, view, c.node, {
      timeoutMs: drainTimeoutMs,
      // Before a pod goes, its UID is what proves its container group ours in a shared resource group (attribution.ts).
      beforeDelete: bound => recordPods(kube, c.node, aciResourceGroup, bound.map(podRef)),
      groupsHeld: aci ? connectorGroupsHeld(aci, aciResourceGroup, c.node) : undefined,
      groupsWhere: `resource group ${aciResourceGroup}: check \`az container list -g ${aciResourceGroup} -o table\``
    })
    report.podsEvicted = drained.evicted
    report.podsForced = drained.forced
    report.installRemoved = await uninstallRelease(ctx, c.release, c.helmNamespace ?? RELEASE_NAMESPACE)
    report.nodeRemoved = Boolean(await ignoreNotFound(kube.core.deleteNode({ name: c.node })))
    if (report.nodeRemoved) await deleteOrphanedPods(kube, c.node)
    await waitNamespaceGone(view, kube, c.namespace, Math.max(Deadline.MIN_WAIT_MS, until - Date.now()))
    return report
  })
}

/**
 * A virtual node whose connector is gone (no release serves it): nothing would confirm a
 * drain, so its pods are recorded (their UIDs prove their container groups ours), the node
 * is deleted and the pods bound to it with it; their groups are deleted over ARM afterwards.
 */
export async function removeNodeWithoutConnector(kube: Kube, c: ConnectorNames, aciResourceGroup: string): Promise<RemovalReport> {
  const report = emptyReport(c)
  const bound = await podsBoundTo(kube, c.node)
  await recordPods(kube, c.node, aciResourceGroup, bound.map(podRef))
  report.podsForced = bound.map(p => `${p.metadata?.namespace}/${p.metadata?.name}`)
  report.nodeRemoved = Boolean(await ignoreNotFound(kube.core.deleteNode({ name: c.node })))
  await deleteOrphanedPods(kube, c.node)
  return report
}

/**
 * Waits for the connector namespace (the chart's) to finish terminating, on the shared view;
 * one that is not terminating is not ours to wait for (read directly, so a view a moment
 * behind cannot make it look so).
 */
async function waitNamespaceGone(view: ClusterView, kube: Kube, namespace: string, timeoutMs: number): Promise<void> {
  const ns = await ignoreNotFound(kube.core.readNamespace({ name: namespace }))
  if (!ns) return
  if (!ns.metadata?.deletionTimestamp) {
    core.info(`Namespace ${namespace} exists but is not being deleted (Helm did not own it); left alone.`)
    return
  }
  const uid = ns.metadata.uid ?? ''
  const gone = await view.until(() => (view.namespaceGone(uid) ? true : undefined), Date.now() + timeoutMs)
  if (!gone) core.warning(`Namespace ${namespace} is still terminating; it will go by itself (\`kubectl get namespace ${namespace}\`).`)
}

export interface RemovalResult {
  items: TeardownItem[]
  removals: RemovalReport[]
  /** Resource groups whose container groups could not be listed: they may still bill. */
  unchecked: Array<{ resourceGroup: string; error: string }>
}

export interface RemovalOptions {
  timeoutMs: number
  dryRun: boolean
  nodeResourceGroup: string
  /** Without ARM (a sign-in that failed in the post step) ACI cannot be checked. */
  arm?: ArmClient
  /**
   * A sweep: also the container groups in these resource groups tagged for any virtual
   * node the cluster does not have (their node is long gone), under the same attribution.
   */
  orphansIn?: string[]
  /** A sweep narrowed by name, os-type or location: whether a gone node's groups are in its scope. */
  orphanOf?: (node: string) => boolean
}

/**
 * Connectors removed at once. A removal is almost all waiting (the drain, helm uninstall,
 * the namespace), and what it asks of others is bounded apart from how many run:
 * - ARM: drains into one resource group share its lists (at most four a second,
 *   container-groups.ts coalescedLister), and the groups left are deleted
 *   GROUP_DELETE_CONCURRENCY at a time;
 * - the API server: every removal waits on one shared watch of pods and namespaces
 *   (cluster-view.ts), so what it sends is its own few writes and helm's, about one request
 *   in flight each. Kubernetes' default API Priority and Fairness gives the priority level
 *   of ordinary users' requests (global-default, 20 of 245 shares of the server's 600
 *   seats, k8s.io/apiserver v0.37.1 pkg/apis/flowcontrol/bootstrap/default.go) 49 seats;
 *   16 removals stay well inside them, beside whatever else the cluster serves;
 * - the runner: one helm process each (tens of MB), which a 2-core runner runs 16 of easily.
 */
export const MAX_PARALLEL_REMOVALS = 16

const ageOf = (d: Date | undefined, now: number): number | undefined => (d ? Math.max(0, now - d.getTime()) : undefined)

/** The samples and pods a removal takes first, as teardown items (pod items per node, so a failed removal marks its pods). */
interface Collected {
  samples: V1Deployment[]
  items: TeardownItem[]
  podItems: Map<string, TeardownItem[]>
}

async function collectItems(kube: Kube, targets: RemovalTarget[], verb: TeardownItem['outcome']): Promise<Collected> {
  const [samples, bound] = await settleAll([
    samplesOnNodes(
      kube,
      targets.map(t => t.names.node)
    ),
    settleAll(targets.map(t => (t.node ? podsBoundTo(kube, t.names.node) : Promise.resolve([])))).then(lists => lists.flat())
  ])
  const items: TeardownItem[] = samples.map(d => ({
    kind: 'sample',
    name: `${d.metadata?.namespace}/${d.metadata?.name}`,
    detail: `sample Deployment this action made for ${d.spec?.template.spec?.nodeSelector?.['kubernetes.io/hostname'] ?? ''}`,
    outcome: verb
  }))
  const podItems = new Map<string, TeardownItem[]>()
  for (const p of bound) {
    const node = p.spec?.nodeName ?? ''
    const item: TeardownItem = {
      kind: 'pod',
      name: `${p.metadata?.namespace}/${p.metadata?.name}`,
      detail: `bound to ${node}; deleted so its container group goes too`,
      outcome: verb
    }
    items.push(item)
    podItems.set(node, [...(podItems.get(node) ?? []), item])
  }
  return { samples, items, podItems }
}

/** A removed target's node: the connector's own removal, or the node alone when no release serves it. */
function removeTarget(kube: Kube, helmCtx: HelmContext, t: RemovalTarget, opts: RemovalOptions, shared: RemovalContext): Promise<RemovalReport> {
  return t.release
    ? removeConnector(kube, helmCtx, t.names, opts.timeoutMs, t.aciResourceGroup, opts.arm, shared)
    : removeNodeWithoutConnector(kube, t.names, t.aciResourceGroup)
}

/** The samples first (their controller would otherwise recreate their pods as they are drained), then every target, up to MAX_PARALLEL_REMOVALS at once. */
async function runRemovals(
  kube: Kube,
  helmCtx: HelmContext,
  targets: RemovalTarget[],
  opts: RemovalOptions,
  samples: V1Deployment[]
): Promise<Array<Settled<RemovalReport>>> {
  return withRemovalContext(kube, undefined, opts.arm, async shared => {
    await Promise.all(samples.map(d => deleteSampleDeployment(kube, d)))
    return pool(targets, Math.min(targets.length, MAX_PARALLEL_REMOVALS), t => removeTarget(kube, helmCtx, t, opts, shared))
  })
}

/** Each target's release and node as items with how their removal went; the removals that ran, for the summary. */
function reportRemovals(
  targets: RemovalTarget[],
  results: Array<Settled<RemovalReport>>,
  found: Collected,
  verb: TeardownItem['outcome'],
  opts: RemovalOptions
): RemovalReport[] {
  const now = Date.now()
  const removals: RemovalReport[] = []
  for (const r of results)
    if (r.ok)
      core.info(
        `${r.value.os}: release ${r.value.installedAs} ${r.value.installRemoved ? 'uninstalled' : 'was not there'}, node ${r.value.node} ${r.value.nodeRemoved ? 'deleted' : 'was not there'}`
      )
  targets.forEach((t, i) => {
    const r = results[i]
    const outcome: TeardownItem['outcome'] = !r ? verb : r.ok ? 'removed' : 'failed'
    const error = r && !r.ok ? r.error : undefined
    // A pod went with its node's removal: when that failed, the pod may still be there.
    if (outcome === 'failed') for (const item of found.podItems.get(t.names.node) ?? []) Object.assign(item, { outcome, error })
    if (r?.ok) removals.push({ ...r.value, containerGroupsDeleted: opts.arm ? [] : undefined })
    if (t.release)
      found.items.push({
        kind: 'release',
        name: `${t.names.helmNamespace ?? 'default'}/${t.names.release}`,
        ageMs: ageOf(t.release.firstDeployed, now),
        detail: t.reason,
        outcome,
        error
      })
    if (t.node || (r?.ok && r.value.nodeRemoved))
      found.items.push({
        kind: 'node',
        name: t.names.node,
        ageMs: ageOf(t.node?.metadata?.creationTimestamp ? new Date(t.node.metadata.creationTimestamp) : undefined, now),
        detail: t.release ? `${t.names.os} virtual node of connector ${t.connector}` : t.reason,
        outcome,
        error: t.release ? undefined : error
      })
  })
  return removals
}

/** What the ACI resource groups hold of the removed nodes, sorted by attribution, with what it was judged by. */
interface GroupLook {
  plan: GroupPlan
  record: Map<string, NodeRecord>
  /** Nodes the cluster keeps. */
  staying: Set<string>
  /** Virtual nodes the cluster has now. */
  present: Set<string>
  /** Groups proven ours but kept: their node's removal failed and their pod may still run (holdBackGroups). */
  held: GroupFinding[]
}

/**
 * The container groups of the removed nodes (and, for a sweep, of nodes that are gone),
 * sorted by attribution. What proves a group ours outside MC_: the pods this cluster has
 * (in a dry run, the ones still bound), and those removals recorded before their drain.
 */
async function lookForGroups(kube: Kube, arm: ArmClient, resourceGroups: string[], targetNodes: Set<string>, opts: RemovalOptions): Promise<GroupLook> {
  const [record, virtualNodes] = await settleAll([
    readPodRecord(kube),
    // Groups are tagged only with virtual nodes' names: the cluster's other nodes need not be listed.
    kube.core.listNode({ labelSelector: 'type=virtual-kubelet' }).then(l => l.items.map(n => n.metadata?.name ?? ''))
  ])
  const known = recordedPods(record)
  // The target nodes count as going (after a real removal they are gone).
  const staying = new Set(virtualNodes.filter(n => !targetNodes.has(n)))
  const isCandidate = (g: { node?: string }): boolean =>
    g.node !== undefined &&
    !g.node.startsWith(ADDON_NODE_PREFIX) &&
    (targetNodes.has(g.node) || (opts.orphansIn !== undefined && !staying.has(g.node) && (opts.orphanOf?.(g.node) ?? true)))
  // A live pod proves its group ours too: each candidate's own pod is looked up, never the cluster's every pod.
  return {
    plan: await planGroupCleanup(arm, resourceGroups, isCandidate, opts.nodeResourceGroup, known, g => livePodOf(kube, g)),
    record,
    staying,
    present: new Set(virtualNodes),
    held: []
  }
}

/**
 * Deletes (or in a dry run lists) the groups proven this cluster's, says which the connector
 * deleted itself as it drained (seen before, gone now), and lists the unattributable ones.
 * Returns the nodes whose groups failed to go.
 */
async function cleanUpGroups(
  arm: ArmClient,
  after: GroupLook,
  before: GroupLook | undefined,
  result: RemovalResult,
  opts: RemovalOptions
): Promise<Set<string | undefined>> {
  const { plan } = after
  const key = (f: GroupFinding): string => `${f.resourceGroup.toLowerCase()}/${f.group.name}`
  const stillListed = new Set([...plan.ours, ...plan.notAttributable, ...after.held].map(key))
  for (const f of before?.plan.ours ?? []) {
    if (stillListed.has(key(f)) || plan.unchecked.some(u => sameResourceGroup(u.resourceGroup, f.resourceGroup))) continue
    result.items.push({
      kind: 'container group',
      name: `${f.resourceGroup}/${f.group.name}`,
      detail: `${f.reason}; deleted by the connector with its pod`,
      outcome: 'removed'
    })
  }
  const verb: TeardownItem['outcome'] = opts.dryRun ? 'would remove' : 'removed'
  const deletions = opts.dryRun
    ? plan.ours.map(() => ({ ok: true as const, value: undefined }))
    : await pool(plan.ours, GROUP_DELETE_CONCURRENCY, f => deleteContainerGroup(arm, f.resourceGroup, f.group.name))
  plan.ours.forEach((f, i) => {
    const d = deletions[i]!
    const size = f.group.cpu !== undefined ? ` (${f.group.cpu} CPU, ${f.group.memoryInGB ?? 0} GB)` : ''
    result.items.push({
      kind: 'container group',
      name: `${f.resourceGroup}/${f.group.name}`,
      detail: `${f.reason}${size}`,
      outcome: d.ok ? verb : 'failed',
      error: d.ok ? undefined : d.error
    })
    if (d.ok && !opts.dryRun) {
      core.info(`Deleted container group ${f.group.name} in ${f.resourceGroup} (left by ${f.group.node ?? ''})`)
      result.removals.find(r => r.node === f.group.node)?.containerGroupsDeleted?.push(f.group.name)
    }
  })
  for (const f of plan.notAttributable)
    result.items.push({ kind: 'container group', name: `${f.resourceGroup}/${f.group.name}`, detail: `not attributable: ${f.reason}`, outcome: 'left' })
  return new Set(plan.ours.filter((_f, i) => !deletions[i]!.ok).map(f => f.group.node))
}

/**
 * The groups of a node whose removal failed while the node is still there: its pods may
 * still run in them (a removal that fails before its drain leaves them running), so they
 * are listed as left, never deleted under a running pod; a re-run drains first.
 */
function holdBackGroups(look: GroupLook, failedNodes: Set<string>, result: RemovalResult): Set<string | undefined> {
  const held = (f: GroupFinding): boolean => f.group.node !== undefined && failedNodes.has(f.group.node) && look.present.has(f.group.node)
  for (const f of look.plan.ours.filter(held))
    result.items.push({
      kind: 'container group',
      name: `${f.resourceGroup}/${f.group.name}`,
      detail: `its node ${f.group.node ?? ''} is still there and its removal failed before its pods were drained, so its pod may still run in it; re-run the remove`,
      outcome: 'kept'
    })
  look.held = look.plan.ours.filter(held)
  look.plan.ours = look.plan.ours.filter(f => !held(f))
  return new Set(look.held.map(f => f.group.node))
}

/** Drops the pod record of each removed node once ACI was checked and holds no group of it that failed to go. */
async function forgetRecords(kube: Kube, look: GroupLook, resourceGroups: string[], stillThere: Set<string | undefined>): Promise<void> {
  const checked = resourceGroups.filter(rg => !look.plan.unchecked.some(u => sameResourceGroup(u.resourceGroup, rg)))
  const done = [...look.record.entries()]
    .filter(([node, r]) => !look.staying.has(node) && !stillThere.has(node) && checked.some(rg => sameResourceGroup(rg, r.aciResourceGroup)))
    .map(([node]) => node)
  await forgetNodes(kube, done)
}

/**
 * Removes `targets` (or, with dryRun, lists what would go), then the container groups
 * their nodes left where they are provably this cluster's. Never throws for one item:
 * each item's outcome says how it went (`failed` with its error), and ACI that could not
 * be checked is returned in `unchecked`; the caller fails the step on either.
 */
export async function removeTargets(kube: Kube, helmCtx: HelmContext, targets: RemovalTarget[], opts: RemovalOptions): Promise<RemovalResult> {
  const verb: TeardownItem['outcome'] = opts.dryRun ? 'would remove' : 'removed'
  const targetNodes = new Set(targets.map(t => t.names.node))
  const found = await collectItems(kube, targets, verb)
  const resourceGroups = distinctResourceGroups([...targets.map(t => t.aciResourceGroup), ...(opts.orphansIn ?? [])])
  const look = (arm: ArmClient): Promise<GroupLook> => lookForGroups(kube, arm, resourceGroups, targetNodes, opts)
  // Before a real removal too, so the summary names the groups the connector deletes as it drains.
  const before = opts.arm && !opts.dryRun && resourceGroups.length > 0 ? await look(opts.arm) : undefined
  const results = opts.dryRun || targets.length === 0 ? [] : await runRemovals(kube, helmCtx, targets, opts, found.samples)
  const result: RemovalResult = { items: found.items, removals: reportRemovals(targets, results, found, verb, opts), unchecked: [] }
  if (resourceGroups.length === 0) return result
  if (!opts.arm) {
    result.unchecked = resourceGroups.map(resourceGroup => ({ resourceGroup, error: 'not signed in to Azure' }))
    return result
  }
  const after = await look(opts.arm)
  result.unchecked = after.plan.unchecked
  const failedNodes = new Set(targets.filter((_t, i) => results[i] && !results[i].ok).map(t => t.names.node))
  const held = holdBackGroups(after, failedNodes, result)
  const stillThere = new Set([...held, ...(await cleanUpGroups(opts.arm, after, before, result, opts))])
  if (!opts.dryRun) await forgetRecords(kube, after, resourceGroups, stillThere)
  return result
}

/**
 * ACI that could not be checked after a removal: its container groups may still bill. A
 * failure (the default), or with verify-aci: false a warning; both say how to check.
 */
export function uncheckedAciError(unchecked: RemovalResult['unchecked'], targets: RemovalTarget[], verifyAci: boolean): Error | undefined {
  if (unchecked.length === 0) return undefined
  const lines = unchecked.map(u => {
    const nodes = targets.filter(t => sameResourceGroup(t.aciResourceGroup, u.resourceGroup)).map(t => t.names.node)
    return (
      `- ${u.resourceGroup} (${u.error.split('\n')[0]}): check with \`${listCommand(u.resourceGroup, nodes)}\`, ` +
      `then \`az container delete -g ${u.resourceGroup} -n <name> --yes\` for each group tagged for ${nodes.join(', ') || 'a virtual node that is gone'}`
    )
  })
  const message = `ACI could not be checked for container groups the removed virtual nodes left; they may still bill:\n${lines.join('\n')}`
  if (verifyAci)
    return new Error(`${message}\nGive the sign-in identity read access (Reader) to those resource groups and re-run, or set verify-aci: false to only warn.`)
  core.warning(message)
  return undefined
}

/** Everything a finished teardown must fail the step for (items that failed, ACI not checked), as one error; undefined when none. */
export function teardownError(result: RemovalResult, targets: RemovalTarget[], verifyAci: boolean, rerun: string): Error | undefined {
  const problems = [failedItemsError(result.items, rerun), uncheckedAciError(result.unchecked, targets, verifyAci)].filter((e): e is Error => e !== undefined)
  return problems.length > 0 ? new Error(problems.map(e => e.message).join('\n\n')) : undefined
}
