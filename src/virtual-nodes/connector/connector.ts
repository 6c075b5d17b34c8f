// The Virtual Kubelet ACI connector: Helm values for the current chart, install with
// `helm upgrade --install` (so a re-run converges), and removal in the order that leaves
// nothing billing in ACI: pods off the virtual node first, then the release, then the node.
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node'
import { connectorDeploymentName, type ConnectorNames } from '../naming.js'
import { ignoreNotFound, type Kube } from '../../kubernetes/kube.js'
import { runChecked, runProcess, lastLines, readableEcho, whenCancelled } from '../../tools/process.js'
import type { ArmClient } from '../../azure/arm.js'
import { Deadline, pollUntil } from '../../util/async.js'
import { coalescedLister, type ContainerGroupLister } from '../../azure/container-groups.js'
import { ClusterView, podEntry, type PodEntry } from '../../kubernetes/cluster-view.js'
import { podRef, recordPods } from '../attribution.js'

/**
 * Release statuses an install takes away and installs afresh (an interrupted first install,
 * an interrupted uninstall): a run that finds one creates the connector, so its cleanup removes it.
 */
export const REINSTALLED_STATUSES = ['pending-install', 'uninstalling']

/** Helm keeps its release records here, as the old CLI did (the chart makes its own namespace). */
export const RELEASE_NAMESPACE = 'default'
const HELM_TIMEOUT_MS = 5 * 60_000
/** How often an install looks whether a terminating namespace of the same name is gone (the namespace controller finishes within seconds). */
const NAMESPACE_POLL_MS = 250
/** ARM is asked less and less often while a drain waits (a stuck connector would otherwise cost an ARM read every poll). */
const ACI_CHECK_FIRST_MS = 1_000
const ACI_CHECK_MAX_MS = 16_000

export interface ConnectorSettings {
  tenantId: string
  subscriptionId: string
  aciResourceGroup: string
  location: string
  masterUri: string
  enableRBAC: boolean
  imageTag?: string
  /** Service principal the connector runs as; absent = managed identity / azure.json. */
  clientId?: string
  clientSecret?: string
  managedIdentityClientId?: string
}

/** Values for `virtual-kubelet-azure-aci` 1.6.4 (https://github.com/virtual-kubelet/azure-aci/blob/v1.6.4/charts/virtual-kubelet/values.yaml). */
/**
 * YAML 1.1's plain scalars that are not strings (integers, floats, booleans such as yes/no/on/off, null, ~),
 * as sigs.k8s.io/yaml (go-yaml v2) resolves them: anything not starting with a letter, and those words.
 */
const YAML_NON_STRING_WORDS = /^(y|yes|n|no|true|false|on|off|null)$/i

/**
 * A value for a template slot that renders it unquoted: the azure-aci chart writes
 * `value: {{ .aciResourceGroup }}` (v1.6.4 charts/virtual-kubelet/templates/deployment.yaml),
 * so a resource group named `12345` or `yes` would become a number or a boolean and the
 * Deployment would be refused. Such a value is passed already quoted (a JSON string is a
 * YAML string); any other value as it is.
 */
export function unquotedSlotValue(value: string): string {
  return /^[A-Za-z][-\w.()]*$/.test(value) && !YAML_NON_STRING_WORDS.test(value) ? value : JSON.stringify(value)
}

export function renderValues(c: ConnectorNames, s: ConnectorSettings): Record<string, unknown> {
  return {
    provider: 'azure',
    nodeName: c.node,
    nodeOsType: c.os,
    namespace: c.namespace,
    ...(s.imageTag ? { image: { tag: s.imageTag } } : {}),
    taint: { enabled: true, key: 'virtual-kubelet.io/provider', value: 'azure', effect: 'NoSchedule' },
    rbac: { install: s.enableRBAC },
    providers: {
      azure: {
        targetAKS: true,
        tenantId: s.tenantId,
        subscriptionId: s.subscriptionId,
        aciResourceGroup: unquotedSlotValue(s.aciResourceGroup),
        aciRegion: unquotedSlotValue(s.location),
        masterUri: s.masterUri,
        ...(s.clientId ? { clientId: s.clientId, clientKey: s.clientSecret ?? '' } : {}),
        ...(s.managedIdentityClientId ? { managedIdentityID: s.managedIdentityClientId } : {})
      }
    }
  }
}

export interface HelmContext {
  helm: string
  kubeconfig: string
  /** Where the 0600 values file lives for the seconds helm needs it. */
  workDir: string
}

/**
 * helm's own environment settings (helm v4.3.1 pkg/cli/environment.go, pkg/cmd/root.go)
 * that the action must not inherit from the job: HELM_DEBUG makes helm print the release's
 * values and manifest (the chart's Secret holds the client secret in base64); the HELM_KUBE*
 * settings and HELM_NAMESPACE would point it at another cluster, user or namespace than the
 * kubeconfig the action hands it; HELM_DRIVER would keep releases elsewhere than the Secrets
 * teardown reads; HELM_MAX_HISTORY would override --history-max. Registry, repository,
 * cache and plugin settings pass through (a private OCI chart needs them).
 */
export const HELM_ENV_OVERRIDES = /^HELM_(DEBUG|NAMESPACE|KUBE[A-Z_]*|DRIVER|MAX_HISTORY)$/

export function helmEnv(ctx: HelmContext, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const kept = Object.fromEntries(Object.entries(env).filter(([name]) => !HELM_ENV_OVERRIDES.test(name.toUpperCase())))
  return { ...kept, KUBECONFIG: ctx.kubeconfig }
}

/** Values go through a 0600 file that is deleted right after helm read it (they hold the client secret). */
export async function withValuesFile<T>(workDir: string, values: Record<string, unknown>, use: (file: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(workDir, 'values-'))
  const file = path.join(dir, 'values.json')
  // A cancel ends helm and exits without running this finally: the hook removes the values (they may hold a secret).
  const unhook = whenCancelled(() => fs.rm(dir, { recursive: true, force: true }))
  try {
    await fs.writeFile(file, JSON.stringify(values), { mode: 0o600 })
    return await use(file)
  } finally {
    unhook()
    await fs.rm(dir, { recursive: true, force: true })
  }
}

export function installArgs(c: ConnectorNames, chart: string, valuesFile: string, kubeconfig: string): string[] {
  return ['upgrade', '--install', c.release, chart, '--namespace', RELEASE_NAMESPACE, '--kubeconfig', kubeconfig, '--values', valuesFile, '--history-max', '5']
}

/**
 * The chart templates its Namespace, so a namespace of that name that Helm does not own
 * (or one still terminating after a removal) blocks the install: wait for a terminating
 * one, refuse a foreign one with what to do.
 */
export async function checkNamespaceFree(kube: Kube, c: ConnectorNames, timeoutMs: number): Promise<void> {
  const free = await pollUntil(
    async () => {
      const ns = await ignoreNotFound(kube.core.readNamespace({ name: c.namespace }))
      if (!ns) return true
      if (ns.metadata?.deletionTimestamp) return undefined
      const owner = ns.metadata?.annotations?.['meta.helm.sh/release-name']
      if (owner === c.release) return true
      throw new Error(
        `Namespace ${c.namespace} exists and is not owned by Helm release ${c.release}${owner ? ` (owner: ${owner})` : ''}; the chart must create it. ` +
          `Delete it (\`kubectl delete namespace ${c.namespace}\`) if it is left over, or choose another connector-name.`
      )
    },
    Date.now() + timeoutMs,
    NAMESPACE_POLL_MS
  )
  if (!free) {
    throw new Error(`Namespace ${c.namespace} is still terminating from an earlier removal; re-run when it is gone (\`kubectl get namespace ${c.namespace}\`).`)
  }
}

/**
 * Why a release whose chart and values are unchanged must still be upgraded: its connector
 * Deployment is gone (deleted by hand) or has no available replica (crash-looping, say,
 * after a fix outside the cluster). The chart renders a new certificate into its Secret on
 * every upgrade and the Deployment carries that Secret's checksum, so an upgrade always
 * rolls the connector pod (azure-aci v1.6.4 charts/virtual-kubelet/templates/secrets.yaml,
 * deployment.yaml).
 */
export async function connectorRolloutReason(kube: Kube, c: ConnectorNames): Promise<string | undefined> {
  const name = connectorDeploymentName(c.release)
  const found = await ignoreNotFound(kube.apps.readNamespacedDeployment({ name, namespace: c.namespace }))
  if (!found) return `its Deployment ${c.namespace}/${name} is missing`
  return (found.status?.availableReplicas ?? 0) > 0 ? undefined : `its connector ${c.namespace}/${name} is not available, and an upgrade restarts it`
}

/**
 * A helm that was stopped mid-way (cancelled job, timeout) leaves its release `pending-*`,
 * and every later `helm upgrade` fails with "another operation is in progress". Put the
 * release back in a state an upgrade can start from, so a re-run converges.
 */
export async function recoverPendingRelease(
  kube: Kube,
  ctx: HelmContext,
  c: ConnectorNames,
  status: string | undefined,
  timeoutMs: number,
  aciResourceGroup: string
): Promise<void> {
  const release = c.release
  if (status && REINSTALLED_STATUSES.includes(status)) {
    core.warning(`Release ${release} was left ${status} by an interrupted helm; uninstalling it before installing again.`)
    // The whole removal: the chart's namespace must be gone before it can be created again.
    await removeConnector(kube, ctx, c, timeoutMs, aciResourceGroup)
  } else if (status === 'pending-upgrade' || status === 'pending-rollback') {
    core.warning(`Release ${release} was left ${status} by an interrupted helm; rolling it back to its last revision before upgrading.`)
    await runChecked(`helm rollback ${release}`, ctx.helm, ['rollback', release, '--namespace', RELEASE_NAMESPACE, '--kubeconfig', ctx.kubeconfig], {
      env: helmEnv(ctx),
      timeoutMs: HELM_TIMEOUT_MS
    })
  }
}

export async function installConnector(ctx: HelmContext, c: ConnectorNames, chart: string, values: Record<string, unknown>): Promise<void> {
  await withValuesFile(ctx.workDir, values, async file => {
    await runChecked(`helm upgrade --install ${c.release}`, ctx.helm, installArgs(c, chart, file, ctx.kubeconfig), {
      env: helmEnv(ctx),
      timeoutMs: HELM_TIMEOUT_MS,
      echo: readableEcho('helm')
    })
  })
}

/** `helm uninstall`; false when the release was not there. */
export async function uninstallRelease(ctx: HelmContext, release: string, helmNamespace = RELEASE_NAMESPACE): Promise<boolean> {
  const result = await runProcess(ctx.helm, ['uninstall', release, '--namespace', helmNamespace, '--kubeconfig', ctx.kubeconfig], {
    env: helmEnv(ctx),
    timeoutMs: HELM_TIMEOUT_MS
  })
  if (result.code === 0) {
    core.info(lastLines(result.stdout, 3))
    return true
  }
  if (/not found/i.test(result.stderr)) return false
  throw new Error(`helm uninstall ${release} failed${result.timedOut ? ' (timed out)' : ''}:\n${lastLines(result.stderr, 10)}`)
}

/** Every pod bound to `node`, DaemonSet pods included (a direct list: what a removal records and deletes). */
export async function podsBoundTo(kube: Kube, node: string): Promise<V1Pod[]> {
  return (await kube.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items
}

/**
 * Pods a removal must delete. DaemonSet pods are left out, as `kubectl drain
 * --ignore-daemonsets` does: their controller recreates them at once, and they go with the
 * node (deleteOrphanedPods).
 */
export function drainable(pods: V1Pod[]): V1Pod[] {
  return pods.filter(p => !p.metadata?.ownerReferences?.some(o => o.kind === 'DaemonSet'))
}

/** The name the connector gives a pod's container group (azure-aci v1.6.4 pkg/provider/aci.go containerGroupName). */
export function containerGroupNameOf(pod: { namespace: string; name: string }): string {
  return `${pod.namespace}-${pod.name}`
}

/** A pod a drain waits for: still on the node as the view sees it, or deleted by the removal and not yet seen gone. */
function leftOnNode(view: ClusterView, node: string, deleted: PodEntry[]): PodEntry[] {
  const onNode = view.podsOn(node).filter(p => !p.daemonSet)
  const unseen = deleted.filter(p => view.pod(p.uid) === undefined && !view.podGone(p.uid))
  return [...onNode, ...unseen]
}

/**
 * Waits until the deleted pods are off `node`; false at the deadline. The connector
 * deletes a pod's container group first and confirms the pod afterwards (after the pod's
 * grace period); with ARM at hand, once ACI holds no group of the remaining pods, they are
 * only bookkeeping and are deleted at once. Waits on the step's shared view of the
 * cluster, so no request is made per check; ACI is asked less and less often.
 */
async function waitDrained(
  view: ClusterView,
  kube: Kube,
  node: string,
  deleted: PodEntry[],
  timeoutMs: number,
  aci?: { list: ContainerGroupLister; resourceGroup: string }
): Promise<boolean> {
  let nextAciCheck = 0
  let aciInterval = ACI_CHECK_FIRST_MS
  const drained = await view.until(async () => {
    const left = leftOnNode(view, node, deleted)
    if (left.length === 0) return true
    if (!aci || !left.every(p => p.deleting || view.pod(p.uid) === undefined) || Date.now() < nextAciCheck) return undefined
    nextAciCheck = Date.now() + aciInterval
    aciInterval = Math.min(aciInterval * 2, ACI_CHECK_MAX_MS)
    const groups = await aci.list(aci.resourceGroup).catch(() => undefined)
    // A group is a pod's when its UID tag is the pod's (another cluster's pod may share the name in a shared group).
    const holds = (p: PodEntry): boolean => groups?.some(g => (g.uid ? g.uid === p.uid : g.name === containerGroupNameOf(p) && g.node === node)) ?? true
    if (!groups || left.some(holds)) return undefined
    await forceDeletePods(kube, left)
    return true
  }, Date.now() + timeoutMs)
  return drained === true
}

export interface RemovalReport {
  os: string
  release: string
  node: string
  releaseRemoved: boolean
  nodeRemoved: boolean
  podsEvicted: number
  podsForced: string[]
  /** Container groups tagged for the node that were still in ACI after the uninstall; undefined when not checked. */
  containerGroupsDeleted?: string[]
}

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

/**
 * Cordon, delete every pod on the virtual node and wait for the connector to delete
 * their container groups, then uninstall the release and delete the node. Each step
 * is skipped when its object is gone, so removing twice succeeds.
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
    const report: RemovalReport = { os: c.os, release: c.release, node: c.node, releaseRemoved: false, nodeRemoved: false, podsEvicted: 0, podsForced: [] }
    // The drain and the namespace wait share the time given, they do not each take all of it.
    const until = Date.now() + drainTimeoutMs
    const node = await ignoreNotFound(kube.core.readNode({ name: c.node }))
    if (node) {
      // Cordon first, or controllers would put replacement pods straight back on the node.
      await kube.core.patchNode({ name: c.node, body: { spec: { unschedulable: true } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
      const bound = await podsBoundTo(kube, c.node)
      // Before a pod goes, its UID is what proves its container group ours in a shared resource group (attribution.ts).
      await recordPods(kube, c.node, aciResourceGroup, bound.map(podRef))
      const pods = drainable(bound)
      report.podsEvicted = pods.length
      if (pods.length > 0) core.info(`Deleting ${pods.length} pod(s) on ${c.node} so the connector removes their ACI container groups`)
      await Promise.all(pods.map(p => ignoreNotFound(kube.core.deleteNamespacedPod({ name: p.metadata?.name ?? '', namespace: p.metadata?.namespace ?? '' }))))
      if (
        pods.length > 0 &&
        !(await waitDrained(view, kube, c.node, pods.map(podEntry), drainTimeoutMs, aci ? { list: aci, resourceGroup: aciResourceGroup } : undefined))
      ) {
        const left = drainable(await podsBoundTo(kube, c.node))
        report.podsForced = left.map(p => `${p.metadata?.namespace}/${p.metadata?.name}`)
        core.warning(
          `The connector did not confirm deleting ${left.length} pod(s) on ${c.node} in time; deleting them from Kubernetes anyway. ` +
            `Their ACI container groups may still run (and bill) in resource group ${aciResourceGroup}: check \`az container list -g ${aciResourceGroup} -o table\`.`
        )
        await forceDeletePods(kube, left.map(podEntry))
      }
    }
    report.releaseRemoved = await uninstallRelease(ctx, c.release, c.helmNamespace)
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
  const report: RemovalReport = { os: c.os, release: c.release, node: c.node, releaseRemoved: false, nodeRemoved: false, podsEvicted: 0, podsForced: [] }
  const bound = await podsBoundTo(kube, c.node)
  await recordPods(kube, c.node, aciResourceGroup, bound.map(podRef))
  report.podsForced = bound.map(p => `${p.metadata?.namespace}/${p.metadata?.name}`)
  report.nodeRemoved = Boolean(await ignoreNotFound(kube.core.deleteNode({ name: c.node })))
  await deleteOrphanedPods(kube, c.node)
  return report
}

/**
 * Pods still bound to the deleted node (the DaemonSet pods a drain skips) can never run
 * again. Kubernetes' pod garbage collector would delete them some time later
 * (kube-controller-manager PodGC, orphaned pods); a removal deletes them now, so it leaves
 * nothing behind. Their container groups are swept over ARM afterwards.
 */
export async function deleteOrphanedPods(kube: Kube, node: string): Promise<void> {
  const left = (await kube.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items
  if (left.length === 0) return
  core.info(
    `Deleting ${left.length} pod(s) still bound to the deleted node ${node}: ${left.map(p => `${p.metadata?.namespace}/${p.metadata?.name}`).join(', ')}`
  )
  await forceDeletePods(kube, left.map(podEntry))
}

/** Deletes pods without waiting for a kubelet to confirm (grace period 0); gone ones are skipped. */
export async function forceDeletePods(kube: Kube, pods: Array<{ namespace: string; name: string }>): Promise<void> {
  await Promise.all(pods.map(p => ignoreNotFound(kube.core.deleteNamespacedPod({ name: p.name, namespace: p.namespace, gracePeriodSeconds: 0 }))))
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
