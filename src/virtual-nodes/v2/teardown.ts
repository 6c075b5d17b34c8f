// Taking Virtual Nodes v2 away, in the order that leaves nothing billing (the v2 docs:
// removing the extension orphans the container groups of pods still running): the pods on
// its nodes (the agent deletes their groups), the extension (waited until ARM has it no
// more), the Node objects it leaves, then the container groups proven this cluster's by the
// tag this action's placement puts on them. What it takes is read from ARM and the cluster.
import * as core from '@actions/core'
import type { V1Node } from '@kubernetes/client-node'
import { ArmError, type ArmClient } from '../../azure/arm.js'
import { deleteContainerGroup, GROUP_DELETE_CONCURRENCY, listContainerGroups } from '../../azure/container-groups.js'
import { resourceGroupScope } from '../../azure/role-assignments.js'
import { removeGrantedRoles } from '../granted-roles.js'
import type { ClusterInfo } from '../../kubernetes/cluster.js'
import { ignoreNotFound, type Kube } from '../../kubernetes/kube.js'
import { nodeIsReady, notReadySince } from '../../kubernetes/pods.js'
import { errorText, pool } from '../../util/async.js'
import { drainForTeardown } from '../drain.js'
import type { TeardownItem } from '../report.js'
import { actionSamples } from '../samples.js'
import { deleteExtension, listV2Extensions, V2_EXTENSION_NAME, type Extension } from './extension.js'
import { v2GrantDescription } from './install.js'
import { nodesOfExtension, OWNER_TAG, V2_NODE_LABEL, V2_NODE_LABEL_VALUE } from './nodes.js'
import { deleteV2Namespace, V2_HELM_RELEASE } from './helm-release.js'
import { uninstallRelease, type HelmContext } from '../../kubernetes/helm.js'

/** A node of the Helm route's release (helm-release.ts). */
const isV2HelmNode = (n: V1Node): boolean => nodesOfExtension(V2_HELM_RELEASE, [n]).length > 0

/** A sweep takes an extension only when every node of it has been NotReady this long (as for connector nodes). */
export const V2_NOT_READY_GRACE_MS = 5 * 60_000

/** One v2 install a teardown takes: its extension (when ARM still has one) or its Helm release (helm-kind.ts), and its nodes. */
export interface V2Target {
  extension?: Extension
  release?: { name: string; namespace: string }
  nodes: V1Node[]
  reason: string
}

/** What a teardown found of Virtual Nodes v2: what it takes, and what it lists and leaves. */
export interface V2Findings {
  targets: V2Target[]
  /** v2 extensions and nodes this action did not install (another name, a Helm install): never touched. */
  left: TeardownItem[]
}

/** A sweep's limits on what it takes: the grace for NotReady nodes counted from `now`, the age, the name. */
export interface V2SweepScope {
  now: number
  olderThanMs?: number
  /** The connector-name glob, over the extension's name. */
  matches?: (name: string) => boolean
}

/**
 * This action's v2 install as the cluster and ARM have it: its extension (proven by
 * `isOurs`, never by its name alone) with its nodes, and nodes of it that no extension serves
 * any more and that are NotReady (Node objects the chart leaves after a scale down or an
 * uninstall, Docs/NodeCustomizations.md), when the record says the extension was this
 * action's. Any other microsoft.virtualnodes extension, and v2 nodes of another, are listed,
 * left. A sweep takes the extension only when every node of it has been NotReady for the
 * grace period, it is older than older-than, and its name matches the glob. Reads only.
 */
export async function findV2Targets(
  arm: ArmClient,
  cluster: V2Cluster,
  kube: Kube,
  owner: { isOurs: (e: Extension) => Promise<boolean>; recorded: boolean },
  sweep?: V2SweepScope
): Promise<V2Findings> {
  const [extensions, v2Nodes] = await Promise.all([
    listV2ExtensionsIfAny(arm, cluster),
    kube.core.listNode({ labelSelector: `${V2_NODE_LABEL}=${V2_NODE_LABEL_VALUE}` }).then(l => l.items)
  ])
  const grace = (n: V1Node): boolean => {
    const since = notReadySince(n)
    return since !== undefined && (!sweep || sweep.now - since.getTime() >= V2_NOT_READY_GRACE_MS)
  }
  const oldEnough = (e: Extension): boolean =>
    !sweep?.olderThanMs || (e.createdAt !== undefined && sweep.now - new Date(e.createdAt).getTime() >= sweep.olderThanMs)
  const targets: V2Target[] = []
  const left: TeardownItem[] = []
  const claimed = new Set<string>()
  for (const e of extensions) {
    const nodes = nodesOfExtension(e.name, v2Nodes)
    for (const n of nodes) claimed.add(n.metadata?.name ?? '')
    if (!(await owner.isOurs(e))) {
      left.push({
        kind: 'extension',
        name: e.name,
        detail: `a microsoft.virtualnodes extension this action cannot prove it created (no record of it${e.name === V2_EXTENSION_NAME ? ' for this instance' : ''}); remove it with \`az k8s-extension delete -g ${cluster.resourceGroup} -c ${cluster.name} -t managedClusters -n ${e.name}\``,
        outcome: 'left'
      })
      continue
    }
    if (sweep && !(nodes.length > 0 && nodes.every(grace) && oldEnough(e) && (sweep.matches?.(e.name) ?? true))) continue
    targets.push({
      extension: e,
      nodes,
      reason: `extension ${e.name} (microsoft.virtualnodes, ${e.provisioningState}) with ${nodes.length} node(s)${sweep ? ', every one NotReady for 5 min or more' : ''}`
    })
  }
  // The Helm route's nodes are its own teardown's (helm-kind.ts).
  const unclaimed = v2Nodes.filter(n => !claimed.has(n.metadata?.name ?? '') && !isV2HelmNode(n))
  const ours = new Set(owner.recorded ? nodesOfExtension(V2_EXTENSION_NAME, unclaimed) : [])
  const stale = unclaimed.filter(n => ours.has(n) && grace(n))
  if (stale.length > 0)
    targets.push({ nodes: stale, reason: `node(s) of extension ${V2_EXTENSION_NAME}, which is gone, NotReady (left after an uninstall or a scale down)` })
  for (const n of unclaimed.filter(x => !ours.has(x)))
    left.push({
      kind: 'node',
      name: n.metadata?.name ?? '',
      detail: 'a v2 node this action cannot prove it installed (another extension or a Helm install of v2)',
      outcome: 'left'
    })
  return { targets, left }
}

/** The v2 extensions, or none where Microsoft.KubernetesConfiguration was never registered (then the cluster can have none). */
async function listV2ExtensionsIfAny(arm: ArmClient, cluster: V2Cluster): Promise<Extension[]> {
  try {
    return await listV2Extensions(arm, cluster)
  } catch (err) {
    if (err instanceof ArmError && err.code === 'MissingSubscriptionRegistration') return []
    throw err
  }
}

/** What a teardown needs to know of the cluster (the post step has no fresh ClusterInfo). */
export type V2Cluster = Pick<ClusterInfo, 'resourceGroup' | 'name' | 'nodeResourceGroup'>

export interface V2RemovalOptions {
  /** helm, for a target with a release. */
  helm?: HelmContext
  dryRun: boolean
  deadline: number
  clusterUid: string
  /** resource-group/cluster-name, as grant-connector-role's description names the cluster. */
  clusterLabel: string
}

/**
 * The role grant-connector-role gave an extension's identity on the node resource group: it
 * goes with the extension, whose identity AKS deletes with it (a dry run lists it). Found by
 * its principal and the description this action gives it.
 */
function grantedV2Roles(arm: ArmClient, cluster: V2Cluster, principalId: string, opts: V2RemovalOptions): Promise<TeardownItem[]> {
  return removeGrantedRoles(
    arm,
    {
      scope: resourceGroupScope(arm, cluster.nodeResourceGroup),
      rg: cluster.nodeResourceGroup,
      description: v2GrantDescription(opts.clusterLabel),
      principalId
    },
    "granted by grant-connector-role to the v2 extension's identity, which goes with the extension",
    opts.dryRun
  )
}

/**
 * The samples and the pods on the v2 nodes, gone before the extension (the v2 docs: removing
 * the extension orphans the container groups of pods still running). Each Ready node is
 * drained as a connector's is (drain.ts: cordoned first, so a Deployment's replacement pods
 * cannot land back on it; its pods deleted and waited for while the agent deletes their
 * container groups, until wait-timeout); a pod on a node that is not Ready has no agent to
 * confirm it and is deleted without grace.
 */
async function drainV2Nodes(kube: Kube, arm: ArmClient, cluster: V2Cluster, targets: V2Target[], opts: V2RemovalOptions): Promise<TeardownItem[]> {
  const nodes = targets.flatMap(t => t.nodes)
  const samples = nodes.length ? (await actionSamples(kube)).filter(d => d.spec?.template.spec?.nodeSelector?.[V2_NODE_LABEL] === V2_NODE_LABEL_VALUE) : []
  return drainForTeardown(kube, arm, {
    nodes: nodes.map(n => ({ name: n.metadata?.name ?? '', ready: nodeIsReady(n) })),
    samples,
    sampleFor: 'Virtual Nodes v2',
    provider: 'the agent',
    groupsWhere: () => `resource group ${cluster.nodeResourceGroup}: check \`az container list -g ${cluster.nodeResourceGroup} -o table\``,
    dryRun: opts.dryRun,
    deadline: opts.deadline
  })
}

/**
 * Removes the v2 targets in the order that leaves nothing billing (the v2 docs: removing the
 * extension orphans container groups, so the workloads go first): samples and pods on the
 * nodes (drained), each extension (waited until ARM has it no more), the Node objects, then
 * the container groups tagged for this cluster once no v2 node of it is left. A dry run lists
 * the same and changes nothing.
 */
export async function removeV2(kube: Kube, arm: ArmClient, cluster: V2Cluster, targets: V2Target[], opts: V2RemovalOptions): Promise<TeardownItem[]> {
  const verb: TeardownItem['outcome'] = opts.dryRun ? 'would remove' : 'removed'
  const items = await drainV2Nodes(kube, arm, cluster, targets, opts)
  for (const t of targets) {
    if (t.extension) {
      const item: TeardownItem = { kind: 'extension', name: t.extension.name, detail: t.reason, outcome: verb }
      items.push(item)
      if (!opts.dryRun) {
        try {
          core.info(`Deleting extension ${t.extension.name}; waiting until it is gone.`)
          await deleteExtension(arm, cluster, t.extension.name, opts.deadline)
        } catch (err) {
          Object.assign(item, { outcome: 'failed', error: errorText(err) })
          continue
        }
      }
      if (t.extension.principalId) items.push(...(await grantedV2Roles(arm, cluster, t.extension.principalId, opts)))
    }
    if (t.release && !(await uninstallV2Release(kube, t.release, t.reason, opts, items))) continue
    for (const n of t.nodes) {
      const name = n.metadata?.name ?? ''
      const of = t.extension
        ? ` of extension ${t.extension.name}`
        : t.release
          ? ` of Helm release ${t.release.namespace}/${t.release.name} (the chart leaves its Node objects)`
          : ''
      const item: TeardownItem = { kind: 'node', name, detail: `Virtual Nodes v2 node${of}`, outcome: verb }
      items.push(item)
      if (!opts.dryRun) await ignoreNotFound(kube.core.deleteNode({ name })).catch(err => Object.assign(item, { outcome: 'failed', error: errorText(err) }))
    }
  }
  items.push(...(await orphanedV2Groups(kube, arm, cluster, opts, targets)))
  return items
}

/**
 * `helm uninstall` of a v2 release, then its namespace when this action made it; false when
 * the uninstall failed (its nodes are then left: their agent may still run).
 */
async function uninstallV2Release(
  kube: Kube,
  release: { name: string; namespace: string },
  reason: string,
  opts: V2RemovalOptions,
  items: TeardownItem[]
): Promise<boolean> {
  const item: TeardownItem = {
    kind: 'release',
    name: `${release.namespace}/${release.name}`,
    detail: reason,
    outcome: opts.dryRun ? 'would remove' : 'removed'
  }
  items.push(item)
  if (opts.dryRun) return true
  try {
    if (!opts.helm) throw new Error('helm is not at hand')
    await uninstallRelease(opts.helm, release.name, release.namespace)
    if (await deleteV2Namespace(kube, opts.deadline)) core.info(`Deleted namespace ${release.namespace} (this action made it for the release).`)
    return true
  } catch (err) {
    Object.assign(item, { outcome: 'failed', error: errorText(err) })
    return false
  }
}

/**
 * Container groups tagged OWNER_TAG = this cluster's UID are its v2 pods'. Once the cluster
 * has no v2 extension and no v2 Node object left (after a removal; in a dry run, none but
 * those it would take), none of those pods can be left, so every such group is orphaned and
 * deleted. While anything of v2 remains (a node only briefly NotReady, another install), the
 * groups may be its pods': kept.
 */
export async function orphanedV2Groups(kube: Kube, arm: ArmClient, cluster: V2Cluster, opts: V2RemovalOptions, taken: V2Target[]): Promise<TeardownItem[]> {
  const [extensions, nodes] = await Promise.all([
    listV2ExtensionsIfAny(arm, cluster),
    kube.core.listNode({ labelSelector: `${V2_NODE_LABEL}=${V2_NODE_LABEL_VALUE}` }).then(l => l.items)
  ])
  const goingExtensions = new Set(opts.dryRun ? taken.flatMap(t => (t.extension ? [t.extension.name] : [])) : [])
  const goingNodes = new Set(opts.dryRun ? taken.flatMap(t => t.nodes.map(n => n.metadata?.name ?? '')) : [])
  const remaining = [
    ...extensions.filter(e => !goingExtensions.has(e.name)).map(e => `extension ${e.name}`),
    ...nodes.filter(n => !goingNodes.has(n.metadata?.name ?? '')).map(n => `node ${n.metadata?.name ?? ''}`)
  ]
  const rg = cluster.nodeResourceGroup
  let groups
  try {
    groups = await listContainerGroups(arm, rg)
  } catch (err) {
    // With nothing of v2 found, a group left by an earlier v2 is only possible, not known: a note, not a failure.
    if (taken.length === 0) {
      core.info(`Could not look in ${rg} for container groups an earlier Virtual Nodes v2 left (${errorText(err).split('\n')[0]}).`)
      return []
    }
    return [
      {
        kind: 'container group',
        name: `${rg}/*`,
        detail: `could not list container groups in ${rg}: check with \`az container list -g ${rg} -o table\``,
        outcome: 'failed',
        error: errorText(err)
      }
    ]
  }
  const ours = groups.filter(g => g.tags?.[OWNER_TAG] === opts.clusterUid)
  // A pod without the placement annotation gets a group v2 tags with nothing that names this
  // cluster (v2 documents no such tag): it cannot be proven this cluster's. Each group in the
  // node resource group that is neither tagged so nor a connector's (NodeName) may be one: listed.
  const unproven: TeardownItem[] =
    taken.length > 0
      ? groups
          .filter(g => g.tags?.[OWNER_TAG] === undefined && g.node === undefined)
          .map(g => ({
            kind: 'container group' as const,
            name: `${rg}/${g.name}`,
            detail: `may be the group of a v2 pod that had no placement annotation (it carries neither ${OWNER_TAG} nor a connector's NodeName tag): if it is, \`az container delete -g ${rg} -n ${g.name} --yes\``,
            outcome: 'left' as const
          }))
      : []
  if (remaining.length > 0)
    return [
      ...(ours.length > 0 && taken.length > 0
        ? [
            {
              kind: 'container group' as const,
              name: `${rg}/(${ours.length} tagged ${OWNER_TAG})`,
              detail: `Virtual Nodes v2 is still there (${remaining.join(', ')}): their pods may own these`,
              outcome: 'kept' as const
            }
          ]
        : []),
      ...unproven
    ]
  const verb: TeardownItem['outcome'] = opts.dryRun ? 'would remove' : 'removed'
  const deletions = opts.dryRun
    ? ours.map(() => ({ ok: true as const }))
    : await pool(ours, GROUP_DELETE_CONCURRENCY, g => deleteContainerGroup(arm, rg, g.name))
  const deleted = ours.map((g, i): TeardownItem => {
    const d = deletions[i]!
    return {
      kind: 'container group' as const,
      name: `${rg}/${g.name}`,
      detail: `tagged ${OWNER_TAG}=${opts.clusterUid} (this cluster's v2 pods), and no v2 node of the cluster is left`,
      outcome: d.ok ? verb : 'failed',
      error: d.ok ? undefined : (d as { error: string }).error
    }
  })
  return [...deleted, ...unproven]
}
