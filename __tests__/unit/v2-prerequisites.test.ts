// Virtual Nodes v2's prerequisites as VirtualNodes.py (azure-cli-extensions k8s-extension
// partner_extensions) and the v2 docs state them: each broken one refused with its fix,
// the ACI subnet reused or placed in the first free /16.
import { describe, expect, it } from 'vitest'
import { firstFreeCidr as freeCidr } from '../../src/azure/network.js'
import { judgeV2Prerequisites, type V2Facts } from '../../src/virtual-nodes/v2/prerequisites.js'

/** v2's subnet is a /16 (VirtualNodes.py ACI_SUBNET_PREFIX). */
const firstFreeCidr = (vnet: Parameters<typeof freeCidr>[0]): string | undefined => freeCidr(vnet, 16)
import type { ClusterInfo } from '../../src/kubernetes/cluster.js'

const cluster = (network: Partial<ClusterInfo['network']> = {}): ClusterInfo => ({
  id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c',
  name: 'c',
  resourceGroup: 'rg',
  location: 'eastus',
  kubernetesVersion: '1.34.4',
  fqdn: 'c.hcp.eastus.azmk8s.io',
  nodeResourceGroup: 'MC_rg_c_eastus',
  enableRBAC: true,
  localAccountsDisabled: false,
  network: {
    networkPlugin: 'azure',
    networkPolicy: 'calico',
    authorizedIpRanges: [],
    workloadIdentity: true,
    agentPools: [{ name: 'nodepool1', vmSize: 'Standard_D4s_v5', osType: 'Linux' }],
    ...network
  }
})

const facts = (c: ClusterInfo, over: Partial<V2Facts> = {}): V2Facts => ({
  cluster: c,
  vmSizes: [
    { name: 'Standard_D4s_v5', numberOfCores: 4, memoryInMB: 16384 },
    { name: 'Standard_DS2_v2', numberOfCores: 2, memoryInMB: 7168 }
  ],
  providers: { 'Microsoft.KubernetesConfiguration': 'Registered' },
  vnets: [
    {
      id: '/subscriptions/s/resourceGroups/MC_rg_c_eastus/providers/Microsoft.Network/virtualNetworks/aks-vnet-1',
      name: 'aks-vnet-1',
      resourceGroup: 'MC_rg_c_eastus',
      addressPrefixes: ['10.224.0.0/12'],
      subnets: [{ name: 'aks-subnet', addressPrefixes: ['10.224.0.0/16'], delegations: [], natGateway: false }]
    }
  ],
  ...over
})

describe('Virtual Nodes v2 prerequisites', () => {
  it('a cluster that meets them: no problem, the subnet is made in the first free /16, and a missing NAT gateway is a warning', () => {
    const v = judgeV2Prerequisites(facts(cluster()))
    expect(v.problems).toEqual([])
    expect(v.subnet).toMatchObject({ action: 'create', prefix: '10.225.0.0/16' })
    expect(v.warnings.join('\n')).toContain('has no NAT gateway')
  })

  it.each([
    ['kubenet', { networkPlugin: 'kubenet' }, 'networkProfile.networkPlugin is kubenet'],
    ['Azure CNI Overlay', { networkPluginMode: 'overlay' }, 'networkProfile.networkPluginMode is overlay'],
    ['no network policy', { networkPolicy: undefined }, '--network-policy calico'],
    ['Azure network policy', { networkPolicy: 'azure' }, 'networkProfile.networkPolicy is azure'],
    ['a small node pool', { agentPools: [{ name: 'small', vmSize: 'Standard_DS2_v2', osType: 'Linux' }] }, 'small (Standard_DS2_v2: 2 cores, 7 GB)'],
    [
      'a big pool that is Windows (the v2 nodes run on Linux nodes only)',
      {
        agentPools: [
          { name: 'small', vmSize: 'Standard_DS2_v2', osType: 'Linux' },
          { name: 'win', vmSize: 'Standard_D4s_v5', osType: 'Windows' }
        ]
      },
      'No Linux node pool has 4 cores and 16 GB (small (Standard_DS2_v2: 2 cores, 7 GB))'
    ],
    ['authorized IP ranges', { authorizedIpRanges: ['203.0.113.0/24'] }, '--api-server-authorized-ip-ranges ""'],
    ['no workload identity', { workloadIdentity: false }, '--enable-oidc-issuer --enable-workload-identity'],
    [
      'a BYO VNet outside the node resource group',
      {
        agentPools: [
          {
            name: 'p',
            vmSize: 'Standard_D4s_v5',
            osType: 'Linux',
            vnetSubnetId: '/subscriptions/s/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s'
          }
        ]
      },
      'uses a subnet in resource group net-rg'
    ]
  ])('refuses %s, naming the fix', (_what, network, fix) => {
    const v = judgeV2Prerequisites(facts(cluster(network as Partial<ClusterInfo['network']>)))
    expect(v.problems).toHaveLength(1)
    expect(v.problems[0]).toContain(fix)
  })

  it('refuses an unregistered Microsoft.KubernetesConfiguration with the register command', () => {
    const v = judgeV2Prerequisites(facts(cluster(), { providers: { 'Microsoft.KubernetesConfiguration': 'NotRegistered' } }))
    expect(v.problems).toEqual([expect.stringContaining('az provider register --namespace Microsoft.KubernetesConfiguration --wait')])
  })

  it('reuses a delegated virtualnodes-aci-subnet, refuses one not delegated, and wants exactly one VNet', () => {
    const base = facts(cluster())
    const withSubnet = (delegations: string[], natGateway = true): V2Facts => ({
      ...base,
      vnets: [
        {
          ...base.vnets[0]!,
          subnets: [...base.vnets[0]!.subnets, { name: 'virtualnodes-aci-subnet', addressPrefixes: ['10.225.0.0/16'], delegations, natGateway }]
        }
      ]
    })
    const reused = judgeV2Prerequisites(withSubnet(['Microsoft.ContainerInstance/containerGroups']))
    expect(reused).toMatchObject({ problems: [], warnings: [], subnet: { action: 'reuse' } })
    expect(judgeV2Prerequisites(withSubnet([])).problems[0]).toContain('--delegations Microsoft.ContainerInstance/containerGroups')
    expect(judgeV2Prerequisites({ ...base, vnets: [] }).problems[0]).toContain('Expected exactly one VNet')
  })

  it('finds the first /16 no subnet overlaps, or none', () => {
    const subnets = (p: string[]) => p.map((x, i) => ({ name: `s${i}`, addressPrefixes: [x], delegations: [], natGateway: false }))
    expect(firstFreeCidr({ addressPrefixes: ['10.224.0.0/12'], subnets: subnets(['10.224.0.0/16', '10.225.128.0/24']) })).toBe('10.226.0.0/16')
    expect(firstFreeCidr({ addressPrefixes: ['10.0.0.0/16'], subnets: subnets(['10.0.0.0/24']) })).toBeUndefined()
    expect(firstFreeCidr({ addressPrefixes: ['10.0.0.0/24', '172.16.0.0/15'], subnets: [] })).toBe('172.16.0.0/16')
  })
})
