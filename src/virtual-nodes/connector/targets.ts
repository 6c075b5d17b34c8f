// What a connector teardown takes, read from the cluster (installed.ts), never rebuilt from
// inputs: the connector's Helm releases with their own node, OS, region and ACI resource
// group, and virtual nodes of the connector left without a release. Every input given only
// narrows it (RemovalScope).
import type { V1Node } from '@kubernetes/client-node'
import { sameResourceGroup } from '../../azure/arm.js'
import type { Kube } from '../../kubernetes/kube.js'
import { notReadySince } from '../../kubernetes/pods.js'
import { settleAll } from '../../util/async.js'
import type { OsType } from '../naming.js'
import { readPodRecord } from './attribution.js'
import { findConnectorNodes, findConnectorReleases, parseNodeName, type InstalledConnector } from './installed.js'
import { connectorNamespace, NODE_NAME_PREFIX, type ConnectorNames } from './names.js'

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

/** Whether a virtual node's name puts it in `scope` (a name that does not parse: only when the scope takes unnamed nodes). */
export function nodeInScope(scope: RemovalScope, name: string): boolean {
  const parsed = parseNodeName(name)
  return parsed ? inScope(scope, parsed.connector, parsed.os, parsed.region) : scope.unnamedNodes === true
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
