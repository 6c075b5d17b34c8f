// The removal of connectors that are installed, shared by `command: remove` and the post
// step's cleanup. What goes is read from the cluster (installed.ts): the connector's Helm
// releases with their own node, OS, region and ACI resource group, and virtual nodes of
// the connector left without a release. Then, in the order that leaves nothing billing:
// the samples, each connector in parallel (drain, helm uninstall, node; connector.ts
// removeConnector), and the container groups their nodes left, deleted only where they are
// provably this cluster's (attribution.ts). A dry run lists the same and changes nothing.
import * as core from '@actions/core'
import type { V1Node } from '@kubernetes/client-node'
import type { ArmClient } from '../azure/arm.js'
import { pool, settleAll, type Settled } from '../util/async.js'
import { distinctResourceGroups, forgetNodes, podRef, readPodRecord, recordedPods, sameResourceGroup, type NodeRecord } from './attribution.js'
import { deleteContainerGroup, listCommand, planGroupCleanup, type ContainerGroupRef, type GroupFinding, type GroupPlan } from '../azure/container-groups.js'
import {
  podsBoundTo,
  removeConnector,
  removeNodeWithoutConnector,
  withRemovalContext,
  type HelmContext,
  type RemovalContext,
  type RemovalReport
} from './connector/connector.js'
import { ADDON_NODE_PREFIX, findConnectorNodes, findConnectorReleases, notReadySince, parseNodeName, type InstalledConnector } from './installed.js'
import type { Kube } from '../kubernetes/kube.js'
import { connectorNamespace, NODE_NAME_PREFIX, type ConnectorNames, type OsType } from './naming.js'
import { deleteSampleDeployment, samplesOnNodes } from './samples.js'
import type { TeardownItem } from '../runner/summary.js'

/** One connector to remove: its release (when Helm still has one) and its node (when it is there). */
export interface RemovalTarget {
  names: ConnectorNames
  connector: string
  aciResourceGroup: string
  release?: InstalledConnector
  node?: V1Node
  /** Why it is removed, as the log and summary say it. */
  reason: string
}

/** What a removal may take; every part given narrows it. */
export interface RemovalScope {
  /** Connector names taken: the connector-name input (remove), its glob (sweep). */
  connector?: (name: string) => boolean
  /** Exactly these releases and nodes (the post step: what its main step created). */
  only?: { releases: string[]; nodes: string[] }
  /** os-type, when the user gave it. */
  os?: OsType[]
  /** location, when the user gave it (normalized). */
  location?: string
  /** aci-resource-group, when the user gave it. */
  aciResourceGroup?: string
  /** older-than (sweep): releases first deployed, and nodes created, at least this long ago. */
  olderThanMs?: number
  /** Also nodes whose name does not follow virtual-kubelet-<connector>-<os>-<region> (sweep with `*`). */
  unnamedNodes?: boolean
  /** A node no release serves is taken only after it has been NotReady this long (sweep). */
  notReadyForMs?: number
  now?: number
}

function inScope(scope: RemovalScope, connector: string | undefined, os: OsType | undefined, region: string | undefined): boolean {
  return (
    (!scope.connector || (connector !== undefined && scope.connector(connector))) &&
    (!scope.os || (os !== undefined && scope.os.includes(os))) &&
    (scope.location === undefined || region === scope.location)
  )
}

const oldEnough = (scope: RemovalScope, since: Date | undefined): boolean =>
  scope.olderThanMs === undefined || (since !== undefined && (scope.now ?? Date.now()) - since.getTime() >= scope.olderThanMs)

/**
 * The connectors in `scope` that are installed: every ACI connector release Helm has (any
 * namespace, any OS, any region, today's chart and the old CLI's), and every ACI virtual
 * node of the connector that no release serves (a removal that stopped after the
 * uninstall, a release deleted by hand). Reads only.
 */
export async function findRemovalTargets(kube: Kube, scope: RemovalScope, nodeResourceGroup: string): Promise<RemovalTarget[]> {
  const [releases, nodes, record] = await settleAll([findConnectorReleases(kube, nodeResourceGroup), findConnectorNodes(kube), readPodRecord(kube)])
  const nodeByName = new Map(nodes.map(n => [n.metadata?.name ?? '', n]))
  const targets: RemovalTarget[] = releases
    .filter(
      r =>
        inScope(scope, r.connector, r.os, r.region) &&
        oldEnough(scope, r.firstDeployed) &&
        (!scope.only || scope.only.releases.includes(r.release)) &&
        (scope.aciResourceGroup === undefined || sameResourceGroup(r.aciResourceGroup, scope.aciResourceGroup))
    )
    .map(r => ({
      names: { os: r.os, release: r.release, node: r.node, namespace: r.namespace, helmNamespace: r.helmNamespace },
      connector: r.connector,
      aciResourceGroup: r.aciResourceGroup,
      release: r,
      node: nodeByName.get(r.node),
      reason:
        `Helm release ${r.helmNamespace}/${r.release} (chart ${r.chart}, ${r.status}) of connector ${r.connector}: ${r.os} node ${r.node}` +
        `${r.region ? ` in ${r.region}` : ''}, container groups in ${r.aciResourceGroup}`
    }))
  // Every release's node is served, also one out of scope: its connector is someone's.
  const served = new Set(releases.map(r => r.node))
  const now = scope.now ?? Date.now()
  for (const n of nodes) {
    const name = n.metadata?.name ?? ''
    const parsed = parseNodeName(name)
    if (served.has(name)) continue
    if (parsed ? !inScope(scope, parsed.connector, parsed.os, parsed.region) : !scope.unnamedNodes) continue
    if (scope.only && !scope.only.nodes.includes(name)) continue
    const created = n.metadata?.creationTimestamp ? new Date(n.metadata.creationTimestamp) : undefined
    if (!oldEnough(scope, created)) continue
    const since = notReadySince(n)
    if (scope.notReadyForMs !== undefined && (!since || now - since.getTime() < scope.notReadyForMs)) continue
    // Its release is gone; the ACI group is the one recorded when it was drained, else the cluster's own.
    const aciResourceGroup = record.get(name)?.aciResourceGroup ?? nodeResourceGroup
    if (scope.aciResourceGroup !== undefined && !sameResourceGroup(aciResourceGroup, scope.aciResourceGroup)) continue
    const release = name.slice(NODE_NAME_PREFIX.length)
    targets.push({
      names: { os: parsed?.os ?? 'Linux', release, node: name, namespace: connectorNamespace(release) },
      connector: parsed?.connector ?? release,
      aciResourceGroup,
      node: n,
      reason:
        `ACI virtual node of connector ${parsed?.connector ?? '(unknown)'} that no Helm release serves` +
        `${since ? `, not Ready since ${since.toISOString()}` : ''}; container groups in ${aciResourceGroup}`
    })
  }
  return targets
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

/**
 * Container groups deleted at once: each is one ARM DELETE of about a second, so 8 at a
 * time stay under the 10 a second ARM refills a principal's delete bucket with
 * (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling);
 * ACI allows 100 deletes per 5 minutes a subscription
 * (https://learn.microsoft.com/azure/container-instances/container-instances-resource-and-quota-limits),
 * beyond which ARM's 429 and its Retry-After are honoured (arm.ts).
 */
export const GROUP_DELETE_CONCURRENCY = 8

/** Logs each item as one line: what, name, outcome, why. */
export function logItems(items: TeardownItem[]): void {
  for (const item of items)
    core.info(
      `${item.outcome === 'failed' ? '✗' : '•'} ${item.kind} ${item.name}: ${item.outcome}${item.error ? ` (${item.error.split('\n')[0]})` : ''} - ${item.detail}`
    )
}

const ageOf = (d: Date | undefined, now: number): number | undefined => (d ? Math.max(0, now - d.getTime()) : undefined)

/** A removed target's node: the connector's own removal, or the node alone when no release serves it. */
function removeTarget(kube: Kube, helmCtx: HelmContext, t: RemovalTarget, opts: RemovalOptions, shared: RemovalContext): Promise<RemovalReport> {
  return t.release
    ? removeConnector(kube, helmCtx, t.names, opts.timeoutMs, t.aciResourceGroup, opts.arm, shared)
    : removeNodeWithoutConnector(kube, t.names, t.aciResourceGroup)
}

/**
 * Removes `targets` (or, with dryRun, lists what would go), then the container groups
 * their nodes left where they are provably this cluster's. Never throws for one item:
 * each item's outcome says how it went (`failed` with its error), and ACI that could not
 * be checked is returned in `unchecked`; the caller fails the step on either.
 */
export async function removeTargets(kube: Kube, helmCtx: HelmContext, targets: RemovalTarget[], opts: RemovalOptions): Promise<RemovalResult> {
  const now = Date.now()
  const verb: TeardownItem['outcome'] = opts.dryRun ? 'would remove' : 'removed'
  const targetNodes = new Set(targets.map(t => t.names.node))
  const [samples, bound] = await settleAll([
    samplesOnNodes(kube, [...targetNodes]),
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
    const item: TeardownItem = {
      kind: 'pod',
      name: `${p.metadata?.namespace}/${p.metadata?.name}`,
      detail: `bound to ${p.spec?.nodeName ?? ''}; deleted so its container group goes too`,
      outcome: verb
    }
    items.push(item)
    podItems.set(p.spec?.nodeName ?? '', [...(podItems.get(p.spec?.nodeName ?? '') ?? []), item])
  }

  const resourceGroups = distinctResourceGroups([...targets.map(t => t.aciResourceGroup), ...(opts.orphansIn ?? [])])
  /**
   * The container groups of the removed nodes (and, for a sweep, of nodes that are gone),
   * sorted by attribution. What proves a group ours outside MC_: the pods this cluster has
   * (in a dry run, the ones still bound), and those removals recorded before their drain.
   */
  const look = async (): Promise<{ plan: GroupPlan; record: Map<string, NodeRecord>; staying: Set<string> }> => {
    const [record, allPods, clusterNodes] = await settleAll([
      readPodRecord(kube),
      kube.core.listPodForAllNamespaces().then(l => l.items),
      kube.core.listNode().then(l => l.items.map(n => n.metadata?.name ?? ''))
    ])
    const known = recordedPods(record)
    for (const p of allPods) {
      const ref = podRef(p)
      if (ref.uid) known.set(ref.uid, `${ref.namespace}/${ref.name}`)
    }
    // The target nodes count as going (after a real removal they are gone).
    const staying = new Set(clusterNodes.filter(n => !targetNodes.has(n)))
    const isCandidate = (g: ContainerGroupRef): boolean =>
      g.node !== undefined && !g.node.startsWith(ADDON_NODE_PREFIX) && (targetNodes.has(g.node) || (opts.orphansIn !== undefined && !staying.has(g.node)))
    return { plan: await planGroupCleanup(opts.arm!, resourceGroups, isCandidate, opts.nodeResourceGroup, known), record, staying }
  }
  // Before a real removal too, so the summary names the groups the connector deletes as it drains.
  const before = opts.arm && !opts.dryRun && resourceGroups.length > 0 ? await look() : undefined

  let results: Array<Settled<RemovalReport>> = []
  if (!opts.dryRun) {
    if (targets.length > 0)
      results = await withRemovalContext(kube, undefined, opts.arm, async shared => {
        // The samples first: their controller would otherwise recreate their pods as they are drained.
        await Promise.all(samples.map(d => deleteSampleDeployment(kube, d)))
        return pool(targets, Math.min(targets.length, MAX_PARALLEL_REMOVALS), t => removeTarget(kube, helmCtx, t, opts, shared))
      })
  }
  const removals: RemovalReport[] = []
  for (const r of results)
    if (r.ok)
      core.info(
        `${r.value.os}: release ${r.value.release} ${r.value.releaseRemoved ? 'uninstalled' : 'was not there'}, node ${r.value.node} ${r.value.nodeRemoved ? 'deleted' : 'was not there'}`
      )
  targets.forEach((t, i) => {
    const r = results[i]
    const outcome: TeardownItem['outcome'] = !r ? verb : r.ok ? 'removed' : 'failed'
    const error = r && !r.ok ? r.error : undefined
    // A pod went with its node's removal: when that failed, the pod may still be there.
    if (outcome === 'failed') for (const item of podItems.get(t.names.node) ?? []) Object.assign(item, { outcome, error })
    if (r?.ok) removals.push({ ...r.value, containerGroupsDeleted: opts.arm ? [] : undefined })
    if (t.release)
      items.push({
        kind: 'release',
        name: `${t.names.helmNamespace ?? 'default'}/${t.names.release}`,
        ageMs: ageOf(t.release.firstDeployed, now),
        detail: t.reason,
        outcome,
        error
      })
    if (t.node || (r?.ok && r.value.nodeRemoved))
      items.push({
        kind: 'node',
        name: t.names.node,
        ageMs: ageOf(t.node?.metadata?.creationTimestamp ? new Date(t.node.metadata.creationTimestamp) : undefined, now),
        detail: t.release ? `${t.names.os} virtual node of connector ${t.connector}` : t.reason,
        outcome,
        error: t.release ? undefined : error
      })
  })

  const result: RemovalResult = { items, removals, unchecked: [] }
  if (resourceGroups.length === 0) return result
  if (!opts.arm) {
    result.unchecked = resourceGroups.map(resourceGroup => ({ resourceGroup, error: 'not signed in to Azure' }))
    return result
  }
  const arm = opts.arm
  const { plan, record, staying } = await look()
  result.unchecked = plan.unchecked
  // Groups the connector deleted itself as it drained their pods: removed too, and said so.
  const key = (f: GroupFinding): string => `${f.resourceGroup.toLowerCase()}/${f.group.name}`
  const stillListed = new Set([...plan.ours, ...plan.notAttributable].map(key))
  for (const f of before?.plan.ours ?? []) {
    if (stillListed.has(key(f)) || plan.unchecked.some(u => sameResourceGroup(u.resourceGroup, f.resourceGroup))) continue
    items.push({
      kind: 'container group',
      name: `${f.resourceGroup}/${f.group.name}`,
      detail: `${f.reason}; deleted by the connector with its pod`,
      outcome: 'removed'
    })
  }

  const deletions = opts.dryRun
    ? plan.ours.map(() => ({ ok: true as const, value: undefined }))
    : await pool(plan.ours, GROUP_DELETE_CONCURRENCY, f => deleteContainerGroup(arm, f.resourceGroup, f.group.name))
  plan.ours.forEach((f, i) => {
    const d = deletions[i]!
    const size = f.group.cpu !== undefined ? ` (${f.group.cpu} CPU, ${f.group.memoryInGB ?? 0} GB)` : ''
    items.push({
      kind: 'container group',
      name: `${f.resourceGroup}/${f.group.name}`,
      detail: `${f.reason}${size}`,
      outcome: d.ok ? verb : 'failed',
      error: d.ok ? undefined : d.error
    })
    if (d.ok && !opts.dryRun) {
      core.info(`Deleted container group ${f.group.name} in ${f.resourceGroup} (left by ${f.group.node ?? ''})`)
      removals.find(r => r.node === f.group.node)?.containerGroupsDeleted?.push(f.group.name)
    }
  })
  for (const f of plan.notAttributable)
    items.push({ kind: 'container group', name: `${f.resourceGroup}/${f.group.name}`, detail: `not attributable: ${f.reason}`, outcome: 'left' })

  if (!opts.dryRun) {
    // A record is needed until ACI was checked and holds no group of its node that failed to go.
    const checked = resourceGroups.filter(rg => !plan.unchecked.some(u => sameResourceGroup(u.resourceGroup, rg)))
    const stillThere = new Set(plan.ours.filter((_f, i) => !deletions[i]!.ok).map(f => f.group.node))
    const done = [...record.entries()]
      .filter(([node, r]) => !staying.has(node) && !stillThere.has(node) && checked.some(rg => sameResourceGroup(rg, r.aciResourceGroup)))
      .map(([node]) => node)
    await forgetNodes(kube, done)
  }
  return result
}

/** The items that failed, as one error that says how to finish; undefined when none did. */
export function failedItemsError(items: TeardownItem[], rerun: string): Error | undefined {
  const failed = items.filter(i => i.outcome === 'failed')
  if (failed.length === 0) return undefined
  return new Error(
    `Could not remove ${failed.length} item(s); what is listed may still be there (container groups still bill):\n` +
      `${failed.map(i => `- ${i.kind} ${i.name}: ${(i.error ?? '').split('\n')[0]}`).join('\n')}\n${rerun}`
  )
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

/** The swept/removed output: what went (or would), and what was left as not attributable. */
export function teardownOutput(items: TeardownItem[], dryRun: boolean, withExtensions = false): string {
  const taken = (kind: TeardownItem['kind']): string[] =>
    items
      .filter(i => i.kind === kind && (i.outcome === 'removed' || i.outcome === 'would remove'))
      .map(i => i.name)
      .sort()
  return JSON.stringify({
    dryRun,
    releases: taken('release'),
    // Virtual Nodes v2's extensions, when the teardown looked for them (virtual-node-kind: v2).
    ...(withExtensions ? { extensions: taken('extension') } : {}),
    nodes: taken('node'),
    containerGroups: taken('container group'),
    notAttributable: items
      .filter(i => i.kind === 'container group' && i.outcome === 'left')
      .map(i => i.name)
      .sort()
  })
}
