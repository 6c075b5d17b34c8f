// `command: sweep`: what a scheduled teardown finds without being told names. Connector
// releases whose connector name matches a glob (and that are older than `older-than`),
// virtual nodes that no release serves and that are not Ready, and ACI container groups
// tagged for a virtual node that is gone. Each connector goes by the same ordered removal
// as `command: remove`; then the dead nodes; then the orphaned container groups.
import * as core from '@actions/core'
import type { V1Node, V1Secret } from '@kubernetes/client-node'
import type { ArmClient } from './arm.js'
import { deleteContainerGroup, listContainerGroups, type ContainerGroupRef } from './container-groups.js'
import { decodeReleaseRecord } from './helm-releases.js'
import { deleteOrphanedPods, removeConnector, type HelmContext } from './connector.js'
import { ignoreNotFound, type Kube } from './kube.js'
import type { ConnectorNames, OsType } from './naming.js'
import { nodeIsReady } from './readiness.js'
import { errorText } from './async.js'

/**
 * Charts a virtual-kubelet ACI connector was installed from: today's, and the ones
 * `az aks install-connector` used (virtual-kubelet-for-aks, then virtual-kubelet).
 */
export const CONNECTOR_CHARTS = ['virtual-kubelet-azure-aci', 'virtual-kubelet-for-aks', 'virtual-kubelet']
/** The managed virtual-node add-on's node; it belongs to AKS, never to a sweep. */
export const ADDON_NODE_PREFIX = 'virtual-node-aci-'
/** Removals at once: each runs helm and waits for pods; more would only queue on the API server. */
const SWEEP_CONCURRENCY = 3

export interface ConnectorRelease {
  release: string
  /** Where Helm keeps the release record. */
  helmNamespace: string
  connector: string
  os: OsType
  node: string
  /** The chart's namespace for the connector pod. */
  namespace: string
  chart: string
  firstDeployed: Date
}

export interface SweepPlan {
  releases: ConnectorRelease[]
  deadNodes: Array<{ name: string; created?: Date }>
  orphanGroups: Array<ContainerGroupRef & { created?: Date }>
}

export interface SweepItem {
  kind: 'release' | 'node' | 'container group'
  name: string
  ageMs?: number
  detail: string
  outcome: 'would remove' | 'removed' | 'failed'
  error?: string
}

/** The connector name in a release named as the old CLI did (`<connector>-<linux|windows>-<region>`), else the release name. */
export function connectorNameOf(release: string): string {
  return /^(.+)-(linux|windows)-[a-z0-9]+$/.exec(release)?.[1] ?? release
}

/** `*` any run of characters, `?` one; everything else literal. */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`
  )
}

/** Every connector release in the cluster, from Helm's records in any namespace (the newest revision of each). */
export async function findConnectorReleases(kube: Kube): Promise<ConnectorRelease[]> {
  const secrets = (await kube.core.listSecretForAllNamespaces({ labelSelector: 'owner=helm', fieldSelector: 'type=helm.sh/release.v1' })).items
  const newest = new Map<string, V1Secret>()
  for (const s of secrets) {
    const key = `${s.metadata?.namespace}/${s.metadata?.labels?.name}`
    const current = newest.get(key)
    if (!current || Number(s.metadata?.labels?.version) > Number(current.metadata?.labels?.version)) newest.set(key, s)
  }
  const releases: ConnectorRelease[] = []
  for (const s of newest.values()) {
    const record = decodeReleaseRecord(s)
    if (!record?.chart || !CONNECTOR_CHARTS.includes(record.chart) || record.status === 'uninstalled') continue
    const release = s.metadata?.labels?.name ?? ''
    const config = record.config ?? {}
    const os: OsType = String(config.nodeOsType ?? (/-windows-/.test(release) ? 'Windows' : 'Linux')).toLowerCase() === 'windows' ? 'Windows' : 'Linux'
    releases.push({
      release,
      helmNamespace: s.metadata?.namespace ?? 'default',
      connector: connectorNameOf(release),
      os,
      // The old CLI's charts named the node virtual-kubelet-<release>; today's take nodeName.
      node: typeof config.nodeName === 'string' && config.nodeName ? config.nodeName : `virtual-kubelet-${release}`,
      namespace: typeof config.namespace === 'string' && config.namespace ? config.namespace : (s.metadata?.namespace ?? 'default'),
      chart: record.chart,
      firstDeployed: new Date(record.firstDeployed ?? s.metadata?.creationTimestamp ?? Date.now())
    })
  }
  return releases.sort((a, b) => a.release.localeCompare(b.release))
}

function created(o: { metadata?: { creationTimestamp?: Date | string } }): Date | undefined {
  const t = o.metadata?.creationTimestamp
  return t ? new Date(t) : undefined
}

/** What a sweep would remove; reads only. */
export async function planSweep(
  kube: Kube,
  arm: ArmClient,
  aciResourceGroup: string,
  glob: string,
  olderThanMs: number | undefined,
  now = Date.now()
): Promise<SweepPlan> {
  const pattern = globToRegExp(glob)
  const all = await findConnectorReleases(kube)
  const releases = all.filter(r => pattern.test(r.connector) && (olderThanMs === undefined || now - r.firstDeployed.getTime() >= olderThanMs))
  const nodes = (await kube.core.listNode({ labelSelector: 'type=virtual-kubelet' })).items
  const served = new Set(all.map(r => r.node))
  const deadNodes = nodes
    .filter((n: V1Node) => !(n.metadata?.name ?? '').startsWith(ADDON_NODE_PREFIX) && !served.has(n.metadata?.name ?? '') && !nodeIsReady(n))
    .map(n => ({ name: n.metadata?.name ?? '', created: created(n) }))
  const gone = new Set([...releases.map(r => r.node), ...deadNodes.map(n => n.name)])
  const staying = new Set((await kube.core.listNode()).items.map(n => n.metadata?.name ?? '').filter(n => !gone.has(n)))
  // Groups tagged for a node that is not in the cluster (or is about to go); untagged groups are not a connector's.
  const orphanGroups = (await listContainerGroups(arm, aciResourceGroup)).filter(
    g => g.node !== undefined && !staying.has(g.node) && !g.node.startsWith(ADDON_NODE_PREFIX)
  )
  return { releases, deadNodes, orphanGroups }
}

/** Runs `work` over `items` with at most `limit` at once; never rejects (results say how each went). */
async function pool<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<Array<{ ok: true; value: R } | { ok: false; error: string }>> {
  const results: Array<{ ok: true; value: R } | { ok: false; error: string }> = new Array(items.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      try {
        results[i] = { ok: true, value: await work(items[i]!) }
      } catch (err) {
        results[i] = { ok: false, error: errorText(err) }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  return results
}

const age = (d: Date | undefined, now: number): number | undefined => (d ? now - d.getTime() : undefined)

/**
 * Carries the plan out (or, with dryRun, only reports it). One item failing does not stop
 * the others; the caller fails the step when any item failed.
 */
export async function runSweep(
  kube: Kube,
  arm: ArmClient,
  helm: HelmContext,
  aciResourceGroup: string,
  plan: SweepPlan,
  dryRun: boolean,
  timeoutMs: number,
  now = Date.now()
): Promise<SweepItem[]> {
  const outcome = (ok: boolean): SweepItem['outcome'] => (dryRun ? 'would remove' : ok ? 'removed' : 'failed')
  const items: SweepItem[] = []

  const releaseResults = dryRun
    ? plan.releases.map(() => ({ ok: true as const, value: undefined }))
    : await pool(plan.releases, SWEEP_CONCURRENCY, r => {
        const names: ConnectorNames = { os: r.os, release: r.release, node: r.node, namespace: r.namespace, helmNamespace: r.helmNamespace }
        return removeConnector(kube, helm, names, timeoutMs, aciResourceGroup, arm)
      })
  plan.releases.forEach((r, i) => {
    const res = releaseResults[i]!
    items.push({
      kind: 'release',
      name: `${r.helmNamespace}/${r.release}`,
      ageMs: age(r.firstDeployed, now),
      detail: `${r.os} connector ${r.connector}, chart ${r.chart}, node ${r.node}`,
      outcome: outcome(res.ok),
      error: res.ok ? undefined : res.error
    })
  })

  const nodeResults = dryRun
    ? plan.deadNodes.map(() => ({ ok: true as const, value: undefined }))
    : await pool(plan.deadNodes, SWEEP_CONCURRENCY, async n => {
        await ignoreNotFound(kube.core.deleteNode({ name: n.name }))
        await deleteOrphanedPods(kube, n.name)
      })
  plan.deadNodes.forEach((n, i) => {
    const res = nodeResults[i]!
    items.push({
      kind: 'node',
      name: n.name,
      ageMs: age(n.created, now),
      detail: 'not Ready, served by no connector release',
      outcome: outcome(res.ok),
      error: res.ok ? undefined : res.error
    })
  })

  // After the removals: the connectors have deleted the groups of the pods they drained.
  const groups = dryRun ? plan.orphanGroups : groupsStillThere(plan.orphanGroups, await listContainerGroups(arm, aciResourceGroup))
  const groupResults = dryRun
    ? groups.map(() => ({ ok: true as const, value: undefined }))
    : await pool(groups, SWEEP_CONCURRENCY, g => deleteContainerGroup(arm, aciResourceGroup, g.name))
  groups.forEach((g, i) => {
    const res = groupResults[i]!
    const size = g.cpu !== undefined ? `, ${g.cpu} CPU, ${g.memoryInGB ?? 0} GB` : ''
    items.push({
      kind: 'container group',
      name: `${aciResourceGroup}/${g.name}`,
      detail: `tagged for node ${g.node ?? ''}${size}`,
      outcome: outcome(res.ok),
      error: res.ok ? undefined : res.error
    })
  })

  for (const item of items)
    core.info(`${item.outcome === 'failed' ? '✗' : '•'} ${item.kind} ${item.name}: ${item.outcome}${item.error ? ` (${item.error.split('\n')[0]})` : ''}`)
  return items
}

function groupsStillThere(planned: ContainerGroupRef[], now: ContainerGroupRef[]): ContainerGroupRef[] {
  const names = new Set(now.map(g => g.name))
  return planned.filter(g => names.has(g.name))
}
