// What AKS's virtual-node add-on needs of a cluster, checked over ARM before anything
// changes, each failure naming the setting and the command that fixes it. From
// MicrosoftDocs/azure-aks-docs articles/aks/virtual-nodes.md ("Virtual nodes require AKS
// clusters with Azure CNI networking"; not supported: "Using API server authorized ip ranges
// for AKS") and virtual-nodes-cli.md (a subnet of the cluster's VNet for the virtual nodes,
// given to `az aks enable-addons --subnet-name`), and the regions the connector it runs accepts
// (aci-regions.ts). The connector delegates the subnet to ACI itself when it starts (azure-aci
// v1.6.4 pkg/network/aci_network.go setupNetwork), so the subnet must be free for that: not a
// node pool's, delegated to nothing else.
import { firstFreeCidr, type Subnet, type VirtualNetwork, ACI_DELEGATION_SERVICE } from '../../azure/network.js'
import { readClusterVnet, type ClusterVnet } from '../cluster-vnet.js'
import { regionProblem } from '../aci-regions.js'

/** The size of the subnet the AKS docs make for the add-on (virtual-nodes-cli.md: 10.241.0.0/16). */
const DOCS_SUBNET_PREFIX = 16

export type AddonFacts = ClusterVnet

/** The cluster's VNet, as the add-on's checks need it (cluster-vnet.ts). */
export const readAddonFacts = readClusterVnet

export interface AddonVerdict {
  problems: string[]
  vnet?: VirtualNetwork
  subnet?: Subnet
}

/** Every add-on prerequisite the facts break, each with its fix; the subnet to give the add-on. Pure. */
export function judgeAddonPrerequisites(f: AddonFacts, subnetName: string): AddonVerdict {
  const c = f.cluster
  const rgc = `-g ${c.resourceGroup} -n ${c.name}`
  const problems: string[] = []
  const plugin = (c.network.networkPlugin ?? '').toLowerCase()
  if (plugin !== 'azure')
    problems.push(
      `networkProfile.networkPlugin is ${c.network.networkPlugin ?? '(none)'}: AKS's virtual nodes need Azure CNI networking (network plugin azure). ` +
        `A cluster's network plugin cannot be changed to it in place; create one with \`az aks create ${rgc} --network-plugin azure --vnet-subnet-id <subnet>\`, or use virtual-node-kind: connector, which needs no VNet.`
    )
  if (c.network.authorizedIpRanges.length > 0)
    problems.push(
      `apiServerAccessProfile.authorizedIPRanges is set (${c.network.authorizedIpRanges.join(', ')}): AKS's virtual nodes do not support API server authorized IP ranges. ` +
        `Fix: \`az aks update ${rgc} --api-server-authorized-ip-ranges ""\`.`
    )
  const region = regionProblem(c.location)
  if (region) problems.push(`The cluster is in ${c.location}, but ${region}.`)
  if (plugin !== 'azure') return { problems }
  if (!f.vnet) {
    problems.push(`The cluster's VNet: ${f.vnetProblem ?? 'not found'}.`)
    return { problems }
  }
  const vnet = f.vnet
  const subnet = vnet.subnets.find(s => s.name === subnetName)
  const where = `-g ${vnet.resourceGroup} --vnet-name ${vnet.name} -n ${subnetName}`
  if (!subnet) {
    const free = firstFreeCidr(vnet, DOCS_SUBNET_PREFIX)
    problems.push(
      `VNet ${vnet.name} has no subnet ${subnetName} for the virtual nodes. ` +
        (free
          ? `Fix: \`az network vnet subnet create ${where} --address-prefixes ${free}\`, or set subnet-name to a free subnet of the VNet.`
          : `The VNet has no free /${DOCS_SUBNET_PREFIX} left (address space ${vnet.addressPrefixes.join(', ')}): add address space, then create the subnet.`)
    )
    return { problems, vnet }
  }
  const poolSubnets = new Set(c.network.agentPools.map(p => p.vnetSubnetId?.toLowerCase()).filter(Boolean))
  if (subnet.id && poolSubnets.has(subnet.id.toLowerCase()))
    problems.push(
      `Subnet ${subnetName} is a node pool's subnet; the virtual nodes need a subnet of their own. Set subnet-name to another subnet of VNet ${vnet.name}.`
    )
  const other = subnet.delegations.filter(d => d.toLowerCase() !== ACI_DELEGATION_SERVICE.toLowerCase())
  if (other.length > 0)
    problems.push(
      `Subnet ${subnetName} is delegated to ${other.join(', ')}, and ACI needs it delegated to ${ACI_DELEGATION_SERVICE} alone. ` +
        `Set subnet-name to a free subnet, or \`az network vnet subnet update ${where} --remove delegations\`.`
    )
  return { problems, vnet, subnet }
}
