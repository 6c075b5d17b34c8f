// Virtual Nodes v2, the second kind of virtual node: Linux nodes from the AKS cluster
// extension Microsoft.virtualnodes (github.com/microsoft/virtualnodesOnAzureContainerInstances),
// beside the Virtual Kubelet ACI connector (Windows, or all of it for kind connector).
// Install: prerequisites, the ACI subnet, the extension, its provisioning, its identity's
// role, then the requested nodes Ready. Remove: the pods on its nodes (the agent deletes
// their container groups), the extension (waited until gone), the Node objects it left,
// then container groups proven this cluster's by the tag this action's placement puts on
// them.
import * as core from '@actions/core'
import type { V1Node, V1Pod, V1Toleration } from '@kubernetes/client-node'
import { ArmError, type ArmClient } from '../../azure/arm.js'
import { deleteContainerGroup, listContainerGroups } from '../../azure/container-groups.js'
import type { ClusterInfo } from '../../kubernetes/cluster.js'
import { ignoreNotFound, watchUntil, watchUntilAborted, type Kube } from '../../kubernetes/kube.js'
import { errorText, pool } from '../../util/async.js'
import type { TeardownItem } from '../../runner/summary.js'
import {
  AUTHORIZATION_API_VERSION,
  grantContributor,
  grantedRoles,
  principalMayCreateGroups,
  resourceGroupScope,
  roleDeleteCommand,
  type GrantedRole
} from '../connector/connector-access.js'
import { forceDeletePods, podsBoundTo, withRemovalContext } from '../connector/connector.js'
import { podEntry, type PodEntry } from '../../kubernetes/cluster-view.js'
import { actionSamples, deleteSampleDeployment, type SamplePlacement } from '../samples.js'
import { GROUP_DELETE_CONCURRENCY } from '../removal.js'
import { nodeIsReady, podFailureReason, type NodeStatus } from '../readiness.js'
import { notReadySince } from '../installed.js'
import {
  deleteExtension,
  extensionMessages,
  getExtension,
  listV2Extensions,
  putExtension,
  v2FullName,
  V2_EXTENSION_NAME,
  V2_NAMESPACE,
  waitForProvisioning,
  type Extension
} from './extension.js'
import { checkV2Prerequisites, ensureAciSubnet } from './prerequisites.js'

/**
 * How pods select a v2 node and tolerate its taint (Microsoft Learn articles/aks/virtual-nodes-v2.md;
 * the chart's README: nodeSelector `virtualization: virtualnode2`, toleration
 * `virtual-kubelet.io/provider` Exists NoSchedule).
 */
export const V2_NODE_LABEL = 'virtualization'
export const V2_NODE_LABEL_VALUE = 'virtualnode2'
export const V2_TOLERATION: V1Toleration = { key: 'virtual-kubelet.io/provider', operator: 'Exists', effect: 'NoSchedule' }
/**
 * A pod annotation v2 turns into ARM tags on the pod's container group
 * (Docs/PodCustomizations.md "Using Custom ARM Tags": `microsoft.containerinstance.virtualnode.customtags`,
 * `key1=value1;key2=value2`). v2 tags its groups with nothing documented that names the
 * cluster, so the action's placement adds OWNER_TAG = the cluster's kube-system UID: a
 * teardown then proves a group this cluster's by that tag alone, in any resource group.
 */
export const CUSTOM_TAGS_ANNOTATION = 'microsoft.containerinstance.virtualnode.customtags'
export const OWNER_TAG = 'aks-aci-connector-action-cluster'
/** The sample's requests on v2: a v2 pod asks for what its container group needs, as the v2 README's first pod does (100m CPU, 128Mi). */
export const V2_SAMPLE_REQUESTS = { cpu: '100m', memory: '128Mi' }
/** How long a removal waits for the pods on v2 nodes to go (the agent deletes each one's container group first). */
const POD_DRAIN_MS = 90_000
/** A sweep takes an extension only when every node of it has been NotReady this long (as for connector nodes). */
export const V2_NOT_READY_GRACE_MS = 5 * 60_000

/** What a pod needs to run on a v2 node, and to have its container group attributed to this cluster. */
export function v2Placement(clusterUid: string): SamplePlacement {
  return {
    nodeSelector: { 'kubernetes.io/os': 'linux', [V2_NODE_LABEL]: V2_NODE_LABEL_VALUE },
    tolerations: [V2_TOLERATION],
    annotations: { [CUSTOM_TAGS_ANNOTATION]: `${OWNER_TAG}=${clusterUid}` }
  }
}

export const isV2Node = (n: V1Node): boolean => n.metadata?.labels?.[V2_NODE_LABEL] === V2_NODE_LABEL_VALUE

/** The v2 nodes of an extension: labelled as v2 and named `<fullname>-<i>` (node name = the StatefulSet pod's name). */
export function nodesOfExtension(extensionName: string, nodes: V1Node[]): V1Node[] {
  const prefix = `${v2FullName(extensionName)}-`
  return nodes.filter(n => isV2Node(n) && (n.metadata?.name ?? '').startsWith(prefix) && /^\d+$/.test((n.metadata?.name ?? '').slice(prefix.length)))
}

export interface V2InstallContext {
  arm: ArmClient
  cluster: ClusterInfo
  nodeCount: number
  grantRole: boolean
  clusterLabel: string
  deadline: number
}

export interface V2InstallResult {
  extension: Extension
  /** Whether this run created the extension (cleanup removes only that). */
  created: boolean
  role?: GrantedRole
}

/** Checks what v2 needs; throws with every problem before anything changes. */
export async function checkV2(arm: ArmClient, cluster: ClusterInfo): Promise<() => Promise<void>> {
  // First: an unregistered Microsoft.KubernetesConfiguration is one of them, and the extensions cannot be listed without it.
  const subnet = await checkV2Prerequisites(arm, cluster)
  // Microsoft Learn articles/aks/virtual-nodes-v2.md limitations: one v2 extension per cluster.
  const other = (await listV2Extensions(arm, cluster)).find(e => e.name !== V2_EXTENSION_NAME)
  if (other)
    throw new Error(
      `Cluster ${cluster.name} already has a Virtual Nodes v2 extension, ${other.name} (${other.provisioningState}), and v2 supports one per cluster; nothing was changed. ` +
        `Use its nodes as they are (select virtualization: virtualnode2), or remove it first: \`az k8s-extension delete -g ${cluster.resourceGroup} -c ${cluster.name} -t managedClusters -n ${other.name}\`.`
    )
  return () => ensureAciSubnet(arm, subnet)
}

/**
 * Creates (or converges) the extension and waits for its provisioning and for its identity
 * to hold a role that may create container groups in the node resource group. A re-run with
 * the same node count finds it Succeeded and changes nothing.
 */
export async function installV2(
  ctx: V2InstallContext,
  makeSubnet: () => Promise<void>,
  record: (created: boolean) => void = () => undefined
): Promise<V2InstallResult> {
  const { arm, cluster } = ctx
  const name = V2_EXTENSION_NAME
  let existing = await getExtension(arm, cluster, name)
  if (existing?.provisioningState === 'Deleting') {
    // A remove (another job's, or an interrupted one) is taking it away: ARM refuses a PUT until it is gone.
    core.info(`Extension ${name} is being deleted; waiting until it is gone before creating it again.`)
    await deleteExtension(arm, cluster, name, ctx.deadline)
    existing = undefined
  }
  if (existing && !['Succeeded', 'Failed', 'Canceled'].includes(existing.provisioningState)) {
    // Still provisioning (a concurrent or cancelled run): its outcome decides whether a PUT is needed.
    core.info(`Extension ${name} is ${existing.provisioningState}; waiting for it before deciding what to change.`)
    existing = await waitForProvisioning(arm, cluster, name, ctx.deadline).catch(() => getExtension(arm, cluster, name))
  }
  const upToDate = existing?.provisioningState === 'Succeeded' && existing.replicaCount === ctx.nodeCount
  record(existing === undefined)
  await makeSubnet()
  if (upToDate) core.info(`Extension ${name} is Succeeded with ${ctx.nodeCount} node(s): no change.`)
  else {
    core.info(
      existing
        ? `Extension ${name} is ${existing.provisioningState}${existing.replicaCount ? ` with ${existing.replicaCount} node(s)` : ''}; updating it to ${ctx.nodeCount} node(s).`
        : `Creating extension ${name} (microsoft.virtualnodes) with ${ctx.nodeCount} node(s) in ${V2_NAMESPACE}.`
    )
    await putExtension(arm, cluster, name, ctx.nodeCount)
  }
  const extension = await waitForProvisioning(arm, cluster, name, ctx.deadline, e => {
    const said = extensionMessages(e)
    core.info(`Extension ${name}: ${e.provisioningState}${said ? `\n${said}` : ''}`)
  })
  const role = await ensureExtensionAccess(ctx, extension)
  return { extension, created: existing === undefined, role }
}

/**
 * The extension's identity (aksAssignedIdentity) must be allowed to create container groups
 * in the node resource group, where v2 puts them (README.md of the v2 repository, "Update
 * AKS' Managed Identity": Contributor on the MC_ group). grant-connector-role assigns it.
 */
async function ensureExtensionAccess(ctx: V2InstallContext, e: Extension): Promise<GrantedRole | undefined> {
  const rg = ctx.cluster.nodeResourceGroup
  if (!e.principalId) {
    core.info(`Extension ${e.name} reports no identity (aksAssignedIdentity); its access to ${rg} is not checked.`)
    return undefined
  }
  let allowed: boolean
  try {
    allowed = await principalMayCreateGroups(ctx.arm, rg, e.principalId)
  } catch (err) {
    core.warning(`Could not check the role of extension ${e.name}'s identity ${e.principalId} on ${rg} (${errorText(err)}).`)
    return undefined
  }
  if (allowed) {
    core.info(`Extension ${e.name}'s identity ${e.principalId} may create container groups in ${rg}.`)
    return undefined
  }
  const scope = resourceGroupScope(ctx.arm, rg)
  if (ctx.grantRole) {
    const role = await grantContributor(ctx.arm, rg, e.principalId, 'ServicePrincipal', v2GrantDescription(ctx.clusterLabel))
    core.info(`${role.outcome === 'created' ? 'Assigned' : 'Found'} Contributor on ${scope} for extension ${e.name}'s identity (grant-connector-role).`)
    return role
  }
  throw new Error(
    `Extension ${e.name} is installed, but its identity ${e.principalId} may not create container groups in ${rg}: pods on its nodes would stay Pending. ` +
      `Assign it Contributor there: \`az role assignment create --assignee-object-id ${e.principalId} --assignee-principal-type ServicePrincipal --role Contributor --scope ${scope}\`, ` +
      'or set grant-connector-role: true; then re-run this step (it converges). To take the extension away instead, run the action with command: remove.'
  )
}

/** The description of a role grant-connector-role gives an extension's identity; a removal deletes it with the extension (whose identity goes too). */
export function v2GrantDescription(cluster: string): string {
  return `Granted by aks-aci-connector-action (grant-connector-role) to Virtual Nodes v2 of AKS cluster ${cluster}`
}

/**
 * Waits until every node in `names` is registered with the v2 label and Ready. Each node is
 * the StatefulSet pod of the same name in vn-system (node name = pod name,
 * Helm/virtualnode/templates/deployment.yaml NodeName from metadata.name): one of those that
 * cannot start (CrashLoopBackOff, ImagePullBackOff) fails the wait at once with its reason.
 */
export async function waitForV2Nodes(kube: Kube, names: string[], timeoutMs: number): Promise<NodeStatus[]> {
  const started = Date.now()
  const ready = new Map<string, NodeStatus>()
  const seen = new Map<string, V1Node>()
  const done = await watchUntil<true | { failure: string; pod: string }>(timeoutMs, (settle, signal) => {
    void watchUntilAborted<V1Pod>(
      kube,
      `/api/v1/namespaces/${V2_NAMESPACE}/pods`,
      {},
      (type, pod) => {
        const name = pod.metadata?.name ?? ''
        const failure = type === 'DELETED' || !names.includes(name) || ready.has(name) ? undefined : podFailureReason(pod)
        if (failure) settle({ failure: `the infrastructure pod ${V2_NAMESPACE}/${name} of v2 node ${name} cannot start: ${failure}`, pod: name })
      },
      signal
    )
    void watchUntilAborted<V1Node>(
      kube,
      '/api/v1/nodes',
      { labelSelector: `${V2_NODE_LABEL}=${V2_NODE_LABEL_VALUE}` },
      (type, n) => {
        const name = n.metadata?.name ?? ''
        if (!names.includes(name) || type === 'DELETED') return
        seen.set(name, n)
        if (nodeIsReady(n) && !ready.has(name))
          ready.set(name, {
            os: 'Linux',
            kind: 'v2',
            node: name,
            ready: true,
            waitedMs: Date.now() - started,
            labels: n.metadata?.labels ?? {},
            taints: (n.spec?.taints ?? []).map(t => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`)
          })
        if (ready.size === names.length) settle(true)
      },
      signal
    )
  })
  if (done === true) return names.map(n => ready.get(n)!)
  if (done)
    throw new Error(
      `Virtual Nodes v2: ${done.failure}.\nMore: kubectl -n ${V2_NAMESPACE} describe pod ${done.pod}; kubectl -n ${V2_NAMESPACE} logs ${done.pod} --all-containers. ` +
        'The extension stays installed: fix the cause and re-run this step (it converges), or run the action with command: remove.'
    )
  const missing = names.filter(n => !ready.has(n)).map(n => `${n} (${seen.has(n) ? 'registered, not Ready' : 'not registered'})`)
  const pods = (await kube.core.listNamespacedPod({ namespace: V2_NAMESPACE }).catch(() => ({ items: [] as V1Pod[] }))).items
  const podText = pods.map(p => `pod ${p.metadata?.name}: ${p.status?.phase ?? 'unknown'}${p.status?.reason ? ` ${p.status.reason}` : ''}`).join('\n')
  throw new Error(
    `Virtual Nodes v2: ${missing.join(', ')} after ${Math.round(timeoutMs / 1000)} s.\n${podText || `no pods in ${V2_NAMESPACE}`}\n` +
      `More: kubectl -n ${V2_NAMESPACE} get pods,statefulsets; kubectl -n ${V2_NAMESPACE} logs <pod> --all-containers. ` +
      'The extension stays installed: re-run this step to keep waiting, or run the action with command: remove.'
  )
}

/** One v2 install a teardown takes: its extension (when ARM still has one) and its nodes. */
export interface V2Target {
  extension?: Extension
  nodes: V1Node[]
  reason: string
}

/** What a teardown found of Virtual Nodes v2: what it takes, and what it lists and leaves. */
export interface V2Findings {
  targets: V2Target[]
  /** v2 extensions and nodes this action did not install (another name, a Helm install): never touched. */
  left: TeardownItem[]
}

/**
 * This action's v2 install as the cluster and ARM have it: the extension it names
 * (V2_EXTENSION_NAME) with its nodes, and nodes of that name that no extension serves and
 * that are NotReady (Node objects the chart leaves after a scale down or an uninstall,
 * Docs/NodeCustomizations.md). Any other microsoft.virtualnodes extension, and v2 nodes of
 * another name, are not provably this action's: listed, left. `sweep` takes the extension
 * only when every node of it has been NotReady for the grace period (stale nodes as long).
 * Reads only.
 */
export async function findV2Targets(arm: ArmClient, cluster: V2Cluster, kube: Kube, sweep?: { now: number }): Promise<V2Findings> {
  const [extensions, allNodes] = await Promise.all([listV2ExtensionsIfAny(arm, cluster), kube.core.listNode().then(l => l.items)])
  const v2Nodes = allNodes.filter(isV2Node)
  const grace = (n: V1Node): boolean => {
    const since = notReadySince(n)
    return since !== undefined && (!sweep || sweep.now - since.getTime() >= V2_NOT_READY_GRACE_MS)
  }
  const targets: V2Target[] = []
  const left: TeardownItem[] = []
  const claimed = new Set<string>()
  for (const e of extensions) {
    const nodes = nodesOfExtension(e.name, v2Nodes)
    for (const n of nodes) claimed.add(n.metadata?.name ?? '')
    if (e.name !== V2_EXTENSION_NAME) {
      left.push({
        kind: 'extension',
        name: e.name,
        detail: `a microsoft.virtualnodes extension this action did not create (it names its own ${V2_EXTENSION_NAME}); remove it with \`az k8s-extension delete -g ${cluster.resourceGroup} -c ${cluster.name} -t managedClusters -n ${e.name}\``,
        outcome: 'left'
      })
      continue
    }
    if (sweep && !(nodes.length > 0 && nodes.every(grace))) continue
    targets.push({
      extension: e,
      nodes,
      reason: `extension ${e.name} (microsoft.virtualnodes, ${e.provisioningState}) with ${nodes.length} node(s)${sweep ? ', every one NotReady for 5 min or more' : ''}`
    })
  }
  const unclaimed = v2Nodes.filter(n => !claimed.has(n.metadata?.name ?? ''))
  const ours = new Set(nodesOfExtension(V2_EXTENSION_NAME, unclaimed))
  const stale = unclaimed.filter(n => ours.has(n) && grace(n))
  if (stale.length > 0)
    targets.push({ nodes: stale, reason: `node(s) of extension ${V2_EXTENSION_NAME}, which is gone, NotReady (left after an uninstall or a scale down)` })
  for (const n of unclaimed.filter(x => !ours.has(x)))
    left.push({
      kind: 'node',
      name: n.metadata?.name ?? '',
      detail: 'a v2 node this action did not install (another extension or a Helm install of v2)',
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
async function grantedV2Roles(arm: ArmClient, cluster: V2Cluster, principalId: string, opts: V2RemovalOptions): Promise<TeardownItem[]> {
  const granted = (await grantedRoles(arm, cluster.nodeResourceGroup, v2GrantDescription(opts.clusterLabel))).filter(r => r.principalId === principalId && r.id)
  return Promise.all(
    granted.map(async role => {
      const item: TeardownItem = {
        kind: 'role assignment',
        name: `Contributor on ${cluster.nodeResourceGroup} for ${principalId}`,
        detail: "granted by grant-connector-role to the v2 extension's identity, which goes with the extension",
        outcome: opts.dryRun ? 'would remove' : 'removed'
      }
      if (!opts.dryRun)
        await arm
          .delete(role.id!, AUTHORIZATION_API_VERSION)
          .catch((err: unknown) => Object.assign(item, { outcome: 'failed', error: `${errorText(err)}; delete it with \`${roleDeleteCommand(role)}\`` }))
      return item
    })
  )
}

/**
 * Removes the v2 targets in the order that leaves nothing billing (the v2 docs: removing the
 * extension orphans container groups, so the workloads go first): samples and pods on the
 * nodes, each extension (waited until ARM has it no more), the Node objects, then the
 * container groups tagged for this cluster once no v2 node of it is left. A dry run lists
 * the same and changes nothing.
 */
export async function removeV2(kube: Kube, arm: ArmClient, cluster: V2Cluster, targets: V2Target[], opts: V2RemovalOptions): Promise<TeardownItem[]> {
  const verb: TeardownItem['outcome'] = opts.dryRun ? 'would remove' : 'removed'
  const items: TeardownItem[] = []
  const nodeNames = targets.flatMap(t => t.nodes.map(n => n.metadata?.name ?? ''))
  const [samples, pods] = await Promise.all([
    nodeNames.length ? actionSamples(kube).then(list => list.filter(d => d.spec?.template.spec?.nodeSelector?.[V2_NODE_LABEL] === V2_NODE_LABEL_VALUE)) : [],
    Promise.all(nodeNames.map(n => podsBoundTo(kube, n))).then(lists => lists.flat())
  ])
  const sampleItems = samples.map(d => ({
    kind: 'sample' as const,
    name: `${d.metadata?.namespace}/${d.metadata?.name}`,
    detail: 'sample Deployment this action made for Virtual Nodes v2',
    outcome: verb
  }))
  const podItems = pods.map(p => ({
    kind: 'pod' as const,
    name: `${p.metadata?.namespace}/${p.metadata?.name}`,
    detail: `bound to v2 node ${p.spec?.nodeName ?? ''}; deleted first, so the agent deletes its container group`,
    outcome: verb as TeardownItem['outcome'],
    error: undefined as string | undefined
  }))
  items.push(...sampleItems, ...podItems)
  if (!opts.dryRun) {
    await Promise.all(samples.map(d => deleteSampleDeployment(kube, d)))
    // A pod on a node that is not Ready has no agent to confirm its deletion (nor to delete its
    // container group): it is deleted without grace, and its group is found by its tag below.
    const readyNodes = new Set(targets.flatMap(t => t.nodes.filter(nodeIsReady).map(n => n.metadata?.name ?? '')))
    const onReady = pods.filter(p => readyNodes.has(p.spec?.nodeName ?? ''))
    await Promise.all([
      ...onReady.map(p => ignoreNotFound(kube.core.deleteNamespacedPod({ name: p.metadata?.name ?? '', namespace: p.metadata?.namespace ?? '' }))),
      forceDeletePods(kube, pods.filter(p => !onReady.includes(p)).map(podEntry))
    ])
    // Waited for on one watch of the cluster; one still there after the wait is deleted without grace too.
    const stuck = await withRemovalContext(kube, undefined, undefined, async ({ view }) => {
      const left = (): PodEntry[] => onReady.map(podEntry).filter(p => view.pod(p.uid) !== undefined)
      await view.until(() => (left().length === 0 ? true : undefined), Math.min(opts.deadline, Date.now() + POD_DRAIN_MS))
      return left()
    })
    await forceDeletePods(kube, stuck)
  }
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
    for (const n of t.nodes) {
      const name = n.metadata?.name ?? ''
      const item: TeardownItem = { kind: 'node', name, detail: `Virtual Nodes v2 node${t.extension ? ` of extension ${t.extension.name}` : ''}`, outcome: verb }
      items.push(item)
      if (!opts.dryRun) await ignoreNotFound(kube.core.deleteNode({ name })).catch(err => Object.assign(item, { outcome: 'failed', error: errorText(err) }))
    }
  }
  items.push(...(await orphanedV2Groups(kube, arm, cluster, opts, targets)))
  return items
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
  if (remaining.length > 0)
    return ours.length > 0 && taken.length > 0
      ? [
          {
            kind: 'container group',
            name: `${rg}/(${ours.length} tagged ${OWNER_TAG})`,
            detail: `Virtual Nodes v2 is still there (${remaining.join(', ')}): their pods may own these`,
            outcome: 'kept'
          }
        ]
      : []
  const verb: TeardownItem['outcome'] = opts.dryRun ? 'would remove' : 'removed'
  const deletions = opts.dryRun
    ? ours.map(() => ({ ok: true as const }))
    : await pool(ours, GROUP_DELETE_CONCURRENCY, g => deleteContainerGroup(arm, rg, g.name))
  return ours.map((g, i) => {
    const d = deletions[i]!
    return {
      kind: 'container group' as const,
      name: `${rg}/${g.name}`,
      detail: `tagged ${OWNER_TAG}=${opts.clusterUid} (this cluster's v2 pods), and no v2 node of the cluster is left`,
      outcome: d.ok ? verb : 'failed',
      error: d.ok ? undefined : (d as { error: string }).error
    }
  })
}
