// The cluster's virtual network, as the kinds that put container groups into it need it
// (the add-on, Virtual Nodes v2 through Helm): the VNet of the node pools' own subnet (a
// cluster made with --vnet-subnet-id), else the one AKS made in the node resource group.
import type { ArmClient } from '../azure/arm.js'
import { getVirtualNetwork, listVirtualNetworks, vnetIdOf, type VirtualNetwork } from '../azure/network.js'
import type { ClusterInfo } from '../kubernetes/cluster.js'
import { errorText } from '../util/async.js'

export interface ClusterVnet {
  cluster: ClusterInfo
  /** The cluster's VNet, when it could be found. */
  vnet?: VirtualNetwork
  /** The VNet is the user's own (the node pools name a subnet of it), not the one AKS made in the node resource group. */
  ownVnet: boolean
  vnetProblem?: string
}

/** One read per step: virtual-node-kind auto's probes and the chosen kind's prerequisites look at the same cluster object. */
const readsOf = new WeakMap<ClusterInfo, Promise<ClusterVnet>>()

/** Reads the cluster's VNet, once per cluster object (a step's). Reads only. */
export function readClusterVnet(arm: ArmClient, cluster: ClusterInfo): Promise<ClusterVnet> {
  let read = readsOf.get(cluster)
  if (!read) readsOf.set(cluster, (read = readVnet(arm, cluster)))
  return read
}

async function readVnet(arm: ArmClient, cluster: ClusterInfo): Promise<ClusterVnet> {
  const poolSubnet = cluster.network.agentPools.find(p => p.vnetSubnetId)?.vnetSubnetId
  try {
    if (poolSubnet) return { cluster, vnet: await getVirtualNetwork(arm, vnetIdOf(poolSubnet)), ownVnet: true }
    const vnets = await listVirtualNetworks(arm, cluster.nodeResourceGroup)
    if (vnets.length === 1) return { cluster, vnet: vnets[0], ownVnet: false }
    return {
      cluster,
      ownVnet: false,
      vnetProblem: `expected the one VNet AKS makes in the node resource group ${cluster.nodeResourceGroup}, found ${vnets.length}${vnets.length ? ` (${vnets.map(v => v.name).join(', ')})` : ''}`
    }
  } catch (err) {
    return {
      cluster,
      ownVnet: Boolean(poolSubnet),
      vnetProblem: `could not read the cluster's VNet (${errorText(err)}); the sign-in identity needs Reader on it`
    }
  }
}
