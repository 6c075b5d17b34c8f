// AKS's virtual-node add-on's prerequisites as the AKS docs state them (virtual-nodes.md,
// virtual-nodes-cli.md): each broken one refused with its fix; and whether an add-on in the
// cluster is provably the one this action enabled.
import { describe, expect, it } from 'vitest'
import type { ClusterInfo } from '../../src/kubernetes/cluster.js'
import { judgeAddonPrerequisites, type AddonFacts } from '../../src/virtual-nodes/addon/prerequisites.js'
import { provenOurs } from '../../src/virtual-nodes/addon/teardown.js'

const MC = 'MC_rg_c_eastus'
const vnetId = `/subscriptions/s/resourceGroups/${MC}/providers/Microsoft.Network/virtualNetworks/aks-vnet-1`

const cluster = (network: Partial<ClusterInfo['network']> = {}, location = 'eastus'): ClusterInfo => ({
  id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c',
  name: 'c',
  resourceGroup: 'rg',
  location,
  kubernetesVersion: '1.34.4',
  fqdn: 'c.hcp.eastus.azmk8s.io',
  nodeResourceGroup: MC,
  enableRBAC: true,
  localAccountsDisabled: false,
  network: {
    networkPlugin: 'azure',
    authorizedIpRanges: [],
    workloadIdentity: false,
    agentPools: [{ name: 'nodepool1', vmSize: 'Standard_D4s_v5', osType: 'Linux' }],
    ...network
  }
})

const facts = (c: ClusterInfo, subnets: Array<{ name: string; prefix: string; delegations?: string[] }> = []): AddonFacts => ({
  cluster: c,
  ownVnet: false,
  vnet: {
    id: vnetId,
    name: 'aks-vnet-1',
    resourceGroup: MC,
    addressPrefixes: ['10.224.0.0/12'],
    subnets: [
      { name: 'aks-subnet', id: `${vnetId}/subnets/aks-subnet`, addressPrefixes: ['10.224.0.0/16'], delegations: [], natGateway: false },
      ...subnets.map(s => ({
        name: s.name,
        id: `${vnetId}/subnets/${s.name}`,
        addressPrefixes: [s.prefix],
        delegations: s.delegations ?? [],
        natGateway: false
      }))
    ]
  }
})

describe('virtual-node add-on prerequisites', () => {
  it('a cluster that meets them: no problem, and the subnet to give the add-on', () => {
    const v = judgeAddonPrerequisites(facts(cluster(), [{ name: 'vn', prefix: '10.226.0.0/16' }]), 'vn')
    expect(v.problems).toEqual([])
    expect(v.subnet?.name).toBe('vn')
    // A subnet already delegated to ACI (by the connector, on an earlier enable) is fine.
    expect(
      judgeAddonPrerequisites(facts(cluster(), [{ name: 'vn', prefix: '10.226.0.0/16', delegations: ['Microsoft.ContainerInstance/containerGroups'] }]), 'vn')
        .problems
    ).toEqual([])
  })

  it('refuses kubenet (Azure CNI is needed), naming the way out', () => {
    const [p] = judgeAddonPrerequisites(facts(cluster({ networkPlugin: 'kubenet' })), 'vn').problems
    expect(p).toContain("networkProfile.networkPlugin is kubenet: AKS's virtual nodes need Azure CNI networking")
    expect(p).toContain('virtual-node-kind: connector')
  })

  it('refuses API server authorized IP ranges, with the command that clears them', () => {
    const ps = judgeAddonPrerequisites(facts(cluster({ authorizedIpRanges: ['203.0.113.0/24'] }), [{ name: 'vn', prefix: '10.226.0.0/16' }]), 'vn').problems
    expect(ps).toEqual([expect.stringContaining('az aks update -g rg -n c --api-server-authorized-ip-ranges ""')])
  })

  it('refuses a region the connector it runs does not accept', () => {
    const ps = judgeAddonPrerequisites(facts(cluster({}, 'moonbase1'), [{ name: 'vn', prefix: '10.226.0.0/16' }]), 'vn').problems
    expect(ps).toEqual([expect.stringMatching(/^The cluster is in moonbase1, but /)])
  })

  it('refuses a missing subnet with the command that makes one in the first free /16', () => {
    const [p] = judgeAddonPrerequisites(facts(cluster()), 'myVirtualNodeSubnet').problems
    expect(p).toContain(`az network vnet subnet create -g ${MC} --vnet-name aks-vnet-1 -n myVirtualNodeSubnet --address-prefixes 10.225.0.0/16`)
  })

  it("refuses a node pool's own subnet, and a subnet delegated to another service", () => {
    const pooled = cluster({ agentPools: [{ name: 'nodepool1', vmSize: 'x', osType: 'Linux', vnetSubnetId: `${vnetId}/subnets/aks-subnet` }] })
    expect(judgeAddonPrerequisites(facts(pooled), 'aks-subnet').problems).toEqual([expect.stringContaining("Subnet aks-subnet is a node pool's subnet")])
    const [p] = judgeAddonPrerequisites(facts(cluster(), [{ name: 'vn', prefix: '10.226.0.0/16', delegations: ['Microsoft.Web/serverFarms'] }]), 'vn').problems
    expect(p).toContain('Subnet vn is delegated to Microsoft.Web/serverFarms')
    expect(p).toContain('--remove delegations')
  })

  it('refuses a cluster whose VNet could not be found, saying why', () => {
    const f: AddonFacts = { cluster: cluster(), ownVnet: false, vnetProblem: `expected the one VNet AKS makes in the node resource group ${MC}, found 0` }
    expect(judgeAddonPrerequisites(f, 'vn').problems).toEqual([
      `The cluster's VNet: expected the one VNet AKS makes in the node resource group ${MC}, found 0.`
    ])
  })
})

describe('whose add-on it is', () => {
  const record = (identity?: string) => ({ kind: 'addon', name: 'aciConnectorLinux', identity, installedAt: '2026-12-01T00:00:00Z', users: [] })
  it("is this action's only when its record names it, with the identity AKS gave this instance", () => {
    const addon = { enabled: true, subnetName: 'vn', identity: { objectId: 'oid-1' } }
    expect(provenOurs(addon, undefined)).toBe(false)
    expect(provenOurs(addon, record('oid-1'))).toBe(true)
    // Disabled and enabled again by someone else: AKS made another identity.
    expect(provenOurs(addon, record('oid-0'))).toBe(false)
    // Recorded before AKS reported the identity (a run stopped mid-way): the record alone.
    expect(provenOurs(addon, record())).toBe(true)
  })
})
