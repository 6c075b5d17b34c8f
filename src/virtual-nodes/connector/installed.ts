// What is installed, read from the cluster itself: the connector releases from Helm's own
// records (with each release's values: node, OS, ACI resource group and region), and the
// virtual nodes an ACI connector registered. Teardown acts on these, never on names
// rebuilt from today's inputs: a connector installed with another location, OS or ACI
// resource group than the inputs of the job that removes it is still found.
import type { V1Node, V1Secret } from '@kubernetes/client-node'
import { decodeReleaseRecord } from '../../kubernetes/helm-releases.js'
import { listPaged, type Kube } from '../../kubernetes/kube.js'
export { globToRegExp } from '../../util/glob.js'
import { normalizeLocation } from '../../azure/clouds.js'
import type { OsType } from '../naming.js'
import { NODE_NAME_PREFIX, type ConnectorNames } from './names.js'

/**
 * Charts an Azure ACI connector is installed from: today's (virtual-kubelet/azure-aci
 * charts/virtual-kubelet, name virtual-kubelet-azure-aci) and the one `az aks
 * install-connector` used (virtual-kubelet-for-aks). The generic `virtual-kubelet` chart
 * serves every provider, so it counts only with `provider: azure` in its values.
 */
export const ACI_CONNECTOR_CHARTS = ['virtual-kubelet-azure-aci', 'virtual-kubelet-for-aks']
export const GENERIC_VIRTUAL_KUBELET_CHART = 'virtual-kubelet'
/** The managed virtual-node add-on's node; it belongs to AKS, never to a teardown. */
export const ADDON_NODE_PREFIX = 'virtual-node-aci-'
/**
 * Taints an ACI connector puts on its node: today's chart `virtual-kubelet.io/provider=azure`
 * (azure-aci v1.6.4 charts/virtual-kubelet/values.yaml taint), the old CLI's `azure.com/aci`
 * (azure-cli acs custom.py `_helm_install_or_upgrade_aci_connector`, node_taint).
 */
const ACI_TAINTS: Array<{ key: string; value?: string }> = [{ key: 'virtual-kubelet.io/provider', value: 'azure' }, { key: 'azure.com/aci' }]

export interface InstalledConnector extends ConnectorNames {
  /** Where Helm keeps the release record. */
  helmNamespace: string
  connector: string
  chart: string
  /** Helm's status of the newest revision (deployed, failed, pending-*, uninstalling). */
  status: string
  firstDeployed: Date
  /** The ACI resource group the connector was given; the cluster's node resource group when it was given none. */
  aciResourceGroup: string
  /** Normalized region, from the values or the release name. */
  region?: string
}

/** The connector name in a release named as the old CLI did (`<connector>-<linux|windows>-<region>`), else the release name. */
export function connectorNameOf(release: string): string {
  return /^(.+)-(linux|windows)-[a-z0-9]+$/.exec(release)?.[1] ?? release
}

/** `virtual-kubelet-<connector>-<linux|windows>-<region>` -> its parts; undefined for any other name. */
export function parseNodeName(node: string): { connector: string; os: OsType; region: string } | undefined {
  if (!node.startsWith(NODE_NAME_PREFIX)) return undefined
  const m = /^(.+)-(linux|windows)-([a-z0-9]+)$/.exec(node.slice(NODE_NAME_PREFIX.length))
  return m ? { connector: m[1]!, os: m[2] === 'windows' ? 'Windows' : 'Linux', region: m[3]! } : undefined
}

/** A string value; one the action passed pre-quoted for an unquoted template slot (release.ts unquotedSlotValue) is read back unquoted. */
const text = (v: unknown): string | undefined => {
  if (typeof v !== 'string' || !v.trim()) return undefined
  const t = v.trim()
  if (/^".*"$/.test(t)) {
    try {
      return JSON.parse(t) as string
    } catch {
      return t
    }
  }
  return t
}
const section = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {})

/**
 * A release's connector settings from its values: today's chart keeps them at the top and
 * under `providers.azure` (azure-aci v1.6.4 charts/virtual-kubelet/values.yaml), the old
 * CLI's chart under `env` (env.nodeName, env.nodeOsType, env.aciResourceGroup, env.aciRegion).
 */
export function connectorValues(
  release: string,
  config: Record<string, unknown>
): { node: string; os: OsType; namespace?: string; aciResourceGroup?: string; region?: string } {
  const env = section(config.env)
  const azure = section(section(config.providers).azure)
  const osText = text(config.nodeOsType) ?? text(env.nodeOsType) ?? (/-windows-/.test(release) ? 'Windows' : 'Linux')
  const region = text(azure.aciRegion) ?? text(env.aciRegion) ?? /-(?:linux|windows)-([a-z0-9]+)$/.exec(release)?.[1]
  return {
    // The old CLI named the node virtual-kubelet-<release> and passed it as env.nodeName.
    node: text(config.nodeName) ?? text(env.nodeName) ?? `${NODE_NAME_PREFIX}${release}`,
    os: osText.toLowerCase() === 'windows' ? 'Windows' : 'Linux',
    namespace: text(config.namespace),
    aciResourceGroup: text(azure.aciResourceGroup) ?? text(env.aciResourceGroup),
    region: region ? normalizeLocation(region) : undefined
  }
}

/** Whether a release record is an Azure ACI connector's. */
export function isAciConnectorChart(chart: string | undefined, config: Record<string, unknown>): boolean {
  if (!chart) return false
  if (ACI_CONNECTOR_CHARTS.includes(chart)) return true
  return chart === GENERIC_VIRTUAL_KUBELET_CHART && text(config.provider) === 'azure'
}

/**
 * Every ACI connector release in the cluster, from Helm's records in any namespace (the
 * newest revision of each), uninstalled ones left out. `nodeResourceGroup` stands in where
 * a release was given no ACI resource group: the connector then uses the cluster's own
 * (from the node's azure.json).
 */
export async function findConnectorReleases(kube: Kube, nodeResourceGroup: string): Promise<InstalledConnector[]> {
  const secrets = await listPaged(page =>
    kube.core.listSecretForAllNamespaces({ labelSelector: 'owner=helm', fieldSelector: 'type=helm.sh/release.v1', ...page })
  )
  const newest = new Map<string, V1Secret>()
  for (const s of secrets) {
    const key = `${s.metadata?.namespace}/${s.metadata?.labels?.name}`
    const current = newest.get(key)
    if (!current || Number(s.metadata?.labels?.version) > Number(current.metadata?.labels?.version)) newest.set(key, s)
  }
  const releases: InstalledConnector[] = []
  for (const s of newest.values()) {
    const record = decodeReleaseRecord(s)
    const config = record?.config ?? {}
    const status = record?.status ?? s.metadata?.labels?.status ?? 'unknown'
    if (!record || !isAciConnectorChart(record.chart, config) || status === 'uninstalled') continue
    const release = s.metadata?.labels?.name ?? ''
    const helmNamespace = s.metadata?.namespace ?? 'default'
    const v = connectorValues(release, config)
    releases.push({
      release,
      helmNamespace,
      connector: connectorNameOf(release),
      os: v.os,
      node: v.node,
      namespace: v.namespace ?? helmNamespace,
      chart: record.chart ?? '',
      status,
      firstDeployed: new Date(record.firstDeployed ?? s.metadata?.creationTimestamp ?? Date.now()),
      aciResourceGroup: v.aciResourceGroup ?? nodeResourceGroup,
      region: v.region
    })
  }
  return releases.sort((a, b) => a.release.localeCompare(b.release))
}

/** Whether a node is an Azure ACI connector's virtual node (not another provider's, not the add-on's). */
export function isAciConnectorNode(node: V1Node): boolean {
  const name = node.metadata?.name ?? ''
  if (name.startsWith(ADDON_NODE_PREFIX)) return false
  if (node.metadata?.labels?.type !== 'virtual-kubelet') return false
  return (node.spec?.taints ?? []).some(t => ACI_TAINTS.some(a => a.key === t.key && (a.value === undefined || a.value === t.value)))
}

/** The virtual nodes an ACI connector registered. */
export async function findConnectorNodes(kube: Kube): Promise<V1Node[]> {
  return (await kube.core.listNode({ labelSelector: 'type=virtual-kubelet' })).items.filter(isAciConnectorNode)
}
