// Taking AKS's virtual-node add-on away when this action enabled it, in the order the AKS
// docs give (virtual-nodes-cli.md "Remove virtual nodes": the pods on the virtual node first,
// then `az aks disable-addons --addons virtual-node`): drain its node (the connector deletes
// each pod's container group), disable the add-on with a PUT of the cluster as az does, wait
// for the update, delete the Node object the connector leaves, delete the container groups
// in the node resource group still tagged for that node (the connector tags each group with
// its node, azure-aci v1.6.4 pkg/provider/aci.go; the node resource group is this cluster's
// alone), and the role this action granted the add-on's identity on the VNet. An add-on that
// this action cannot prove it enabled is listed and left.
import * as core from '@actions/core'
import type { ArmClient } from '../../azure/arm.js'
import { deleteContainerGroup, GROUP_DELETE_CONCURRENCY, listContainerGroups } from '../../azure/container-groups.js'
import { resourceGroupOf } from '../../azure/network.js'
import { removeGrantedRoles } from '../granted-roles.js'
import {
  getCluster,
  updateManagedCluster,
  VIRTUAL_NODE_ADDON_KEY,
  waitClusterSucceeded,
  type ClusterInfo,
  type VirtualNodeAddon
} from '../../kubernetes/cluster.js'
import { ignoreNotFound, type Kube } from '../../kubernetes/kube.js'
import { deleteOrphanedPods, notReadySince } from '../../kubernetes/pods.js'
import { errorText, pool } from '../../util/async.js'
import { drainForTeardown } from '../drain.js'
import { forgetInstall, installKey, type InstallRecord } from '../installs.js'
import type { TeardownItem } from '../report.js'
import { samplesOnNodes } from '../samples.js'
import { ADDON_NODE } from './placement.js'

export const ADDON_KIND = 'addon'
export const ADDON_RECORD_KEY = installKey(ADDON_KIND, VIRTUAL_NODE_ADDON_KEY)
/** The AKS docs' sample's grace for a virtual node that stopped reporting (as for the other kinds). */
export const ADDON_NOT_READY_GRACE_MS = 5 * 60_000

/** The description of the role grant-connector-role gives the add-on's identity on the cluster's own VNet. */
export function addonGrantDescription(cluster: string): string {
  return `Granted by aks-aci-connector-action (grant-connector-role) to the virtual-node add-on of AKS cluster ${cluster}`
}

export interface AddonFinding {
  /** The add-on (enabled), or undefined when only its node is left. */
  addon?: VirtualNodeAddon
  /** Its node, when the cluster has it. */
  node?: { name: string; notReadySince?: Date }
  reason: string
}

/** Whether the add-on in the cluster is the one this action enabled: its record names it with the identity AKS gave that instance. */
export function provenOurs(addon: VirtualNodeAddon | undefined, record: InstallRecord | undefined): boolean {
  if (!record) return false
  if (!addon?.enabled) return true
  // A record made before AKS reported the identity proves less; one that names another identity is another instance.
  return !record.identity || !addon.identity?.objectId || record.identity === addon.identity.objectId
}

/**
 * The add-on as the cluster and ARM have it now (ARM read fresh: the post step's snapshot may
 * be older than the main step's enabling), and whether it is provably this action's. Reads only.
 */
export async function findAddon(
  arm: ArmClient,
  cluster: Pick<ClusterInfo, 'resourceGroup' | 'name'>,
  kube: Kube,
  record: InstallRecord | undefined
): Promise<{ target?: AddonFinding; left: TeardownItem[] }> {
  const [fresh, node] = await Promise.all([getCluster(arm, cluster.resourceGroup, cluster.name), ignoreNotFound(kube.core.readNode({ name: ADDON_NODE }))])
  const addon = fresh.virtualNodeAddon?.enabled ? fresh.virtualNodeAddon : undefined
  const nodeFound = node ? { name: ADDON_NODE, notReadySince: notReadySince(node) } : undefined
  if (!addon && !nodeFound) return { left: [] }
  if (!provenOurs(addon, record)) {
    const left: TeardownItem[] = addon
      ? [
          {
            kind: 'add-on',
            name: VIRTUAL_NODE_ADDON_KEY,
            detail: `AKS's virtual-node add-on (subnet ${addon.subnetName ?? '?'}), not enabled by this action (no record of it${record ? ' for this instance' : ''}); disable it with \`az aks disable-addons -g ${cluster.resourceGroup} -n ${cluster.name} --addons virtual-node\``,
            outcome: 'left'
          }
        ]
      : []
    return { left }
  }
  const reason = addon
    ? `AKS's virtual-node add-on (${VIRTUAL_NODE_ADDON_KEY}, subnet ${addon.subnetName ?? '?'}), enabled by this action${record?.identity ? ` (identity ${record.identity})` : ''}`
    : `node ${ADDON_NODE} of the virtual-node add-on this action enabled, which is disabled now`
  return { target: { addon, node: nodeFound, reason }, left: [] }
}

export interface AddonRemoval {
  dryRun: boolean
  deadline: number
  clusterLabel: string
  /** The cluster's VNet, when it is the user's own (where a role was granted). */
  vnetId?: string
}

/** The pods on the add-on's node and its samples, gone first (their container groups go with them). */
async function drainAddonNode(kube: Kube, arm: ArmClient, nodeResourceGroup: string, opts: AddonRemoval): Promise<TeardownItem[]> {
  return drainForTeardown(kube, arm, {
    // Drained whatever its state: the add-on's connector still runs until the add-on is disabled.
    nodes: [{ name: ADDON_NODE, ready: true }],
    samples: await samplesOnNodes(kube, [ADDON_NODE]),
    sampleFor: 'the add-on',
    provider: 'the connector',
    groupsWhere: (node: string) =>
      `resource group ${nodeResourceGroup}: check \`az container list -g ${nodeResourceGroup} --query "[?tags.NodeName=='${node}'].name" -o table\``,
    dryRun: opts.dryRun,
    deadline: opts.deadline
  })
}

/** Disables the add-on as az does (enabled false, config null) and waits for the cluster's update. */
async function disableAddon(arm: ArmClient, cluster: Pick<ClusterInfo, 'resourceGroup' | 'name'>, deadline: number): Promise<void> {
  core.info(`Disabling AKS's virtual-node add-on (${VIRTUAL_NODE_ADDON_KEY}); waiting for the cluster's update.`)
  await updateManagedCluster(arm, cluster.resourceGroup, cluster.name, p => {
    const profiles = { ...(p.addonProfiles ?? {}) }
    const key = Object.keys(profiles).find(k => k.toLowerCase() === VIRTUAL_NODE_ADDON_KEY.toLowerCase()) ?? VIRTUAL_NODE_ADDON_KEY
    // azure-cli acs addonconfiguration.py update_addons with enable=False: config None, enabled False.
    profiles[key] = { ...profiles[key], enabled: false, config: null }
    p.addonProfiles = profiles
  })
  await waitClusterSucceeded(arm, cluster.resourceGroup, cluster.name, deadline)
}

/** The container groups in the node resource group still tagged for the add-on's node (now gone). */
async function addonGroups(arm: ArmClient, nodeResourceGroup: string, dryRun: boolean): Promise<TeardownItem[]> {
  const verb: TeardownItem['outcome'] = dryRun ? 'would remove' : 'removed'
  let groups
  try {
    groups = (await listContainerGroups(arm, nodeResourceGroup)).filter(g => g.node === ADDON_NODE)
  } catch (err) {
    return [
      {
        kind: 'container group',
        name: `${nodeResourceGroup}/*`,
        detail: `could not list container groups in ${nodeResourceGroup}: check with \`az container list -g ${nodeResourceGroup} -o table\``,
        outcome: 'failed',
        error: errorText(err)
      }
    ]
  }
  const deletions = dryRun
    ? groups.map(() => ({ ok: true as const }))
    : await pool(groups, GROUP_DELETE_CONCURRENCY, g => deleteContainerGroup(arm, nodeResourceGroup, g.name))
  return groups.map((g, i) => {
    const d = deletions[i]!
    return {
      kind: 'container group' as const,
      name: `${nodeResourceGroup}/${g.name}`,
      detail: `tagged for node ${ADDON_NODE}, in the cluster's own node resource group, and the node is gone`,
      outcome: d.ok ? verb : 'failed',
      error: d.ok ? undefined : (d as { error: string }).error
    }
  })
}

/** The role grant-connector-role gave the add-on's identity on the cluster's own VNet: it goes with the add-on. */
function addonRoles(arm: ArmClient, vnetId: string | undefined, principalId: string | undefined, opts: AddonRemoval): Promise<TeardownItem[]> {
  if (!vnetId || !principalId) return Promise.resolve([])
  return removeGrantedRoles(
    arm,
    { scope: vnetId, rg: resourceGroupOf(vnetId) ?? '', description: addonGrantDescription(opts.clusterLabel), principalId },
    "granted by grant-connector-role to the add-on's identity, which goes with the add-on",
    opts.dryRun
  )
}

/** Removes the add-on this action enabled, workloads first (or, in a dry run, lists what would go). */
export async function removeAddon(
  kube: Kube,
  arm: ArmClient,
  cluster: Pick<ClusterInfo, 'resourceGroup' | 'name' | 'nodeResourceGroup'>,
  target: AddonFinding,
  opts: AddonRemoval
): Promise<TeardownItem[]> {
  const verb: TeardownItem['outcome'] = opts.dryRun ? 'would remove' : 'removed'
  const items = target.node ? await drainAddonNode(kube, arm, cluster.nodeResourceGroup, opts) : []
  if (target.addon) {
    const item: TeardownItem = { kind: 'add-on', name: VIRTUAL_NODE_ADDON_KEY, detail: target.reason, outcome: verb }
    items.push(item)
    if (!opts.dryRun) {
      try {
        await disableAddon(arm, cluster, opts.deadline)
      } catch (err) {
        Object.assign(item, { outcome: 'failed', error: errorText(err) })
        return items
      }
    }
  }
  if (target.node) {
    const item: TeardownItem = { kind: 'node', name: ADDON_NODE, detail: "the add-on's virtual node, which its connector leaves", outcome: verb }
    items.push(item)
    if (!opts.dryRun) {
      await ignoreNotFound(kube.core.deleteNode({ name: ADDON_NODE })).catch(err => Object.assign(item, { outcome: 'failed', error: errorText(err) }))
      await deleteOrphanedPods(kube, ADDON_NODE)
    }
  }
  items.push(...(await addonGroups(arm, cluster.nodeResourceGroup, opts.dryRun)))
  items.push(...(await addonRoles(arm, opts.vnetId, target.addon?.identity?.objectId, opts)))
  if (!opts.dryRun && !items.some(i => i.outcome === 'failed')) await forgetInstall(kube, ADDON_KIND, VIRTUAL_NODE_ADDON_KEY)
  return items
}
