// Virtual Nodes v2's prerequisites as VirtualNodes.py (azure-cli-extensions k8s-extension
// partner_extensions) and the v2 docs state them: each broken one refused with its fix,
// the ACI subnet reused or placed in the first free /16.
import { describe, expect, it } from 'vitest'
import type { V1Node } from '@kubernetes/client-node'
import { firstFreeCidr, judgeV2Prerequisites, type V2Facts } from '../../src/virtual-nodes/v2/prerequisites.js'
import type { ClusterInfo } from '../../src/kubernetes/cluster.js'
import { v2FullName, v2NodeNames, extensionBody } from '../../src/virtual-nodes/v2/extension.js'
import { findV2Targets, nodesOfExtension, v2Placement } from '../../src/virtual-nodes/v2/v2.js'
import type { ArmClient } from '../../src/azure/arm.js'
import type { Kube } from '../../src/kubernetes/kube.js'
import { parseInputs } from '../../src/runner/inputs.js'
import { kindsFor } from '../../src/runner/pipeline.js'
import { connectorOsTypes } from '../../src/virtual-nodes/connector/kind.js'
import type { KindContext } from '../../src/virtual-nodes/kind.js'

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
  virtualNodeAddon: false,
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

describe('Virtual Nodes v2 names, body and placement', () => {
  it('names nodes after the chart fullname rule, and finds only an extension own nodes', () => {
    expect(v2FullName('aci-virtual-nodes')).toBe('aci-virtual-nodes-virtualnode')
    expect(v2FullName('myvirtualnode')).toBe('myvirtualnode')
    expect(v2NodeNames('vn', 2)).toEqual(['vn-virtualnode-0', 'vn-virtualnode-1'])
    const n = (name: string, v2 = true): V1Node => ({ metadata: { name, labels: v2 ? { virtualization: 'virtualnode2' } : ({} as Record<string, string>) } })
    expect(
      nodesOfExtension('vn', [n('vn-virtualnode-0'), n('vn-virtualnode-x'), n('vn-virtualnode-1', false), n('other-virtualnode-0')]).map(x => x.metadata?.name)
    ).toEqual(['vn-virtualnode-0'])
  })

  it('sends what az k8s-extension create sends, and places pods with the selector, toleration and owner tag', () => {
    expect(extensionBody(3)).toEqual({
      properties: {
        extensionType: 'microsoft.virtualnodes',
        autoUpgradeMinorVersion: true,
        scope: { cluster: { releaseNamespace: 'vn-system' } },
        configurationSettings: { replicaCount: '3', aciSubnetName: 'virtualnodes-aci-subnet' }
      }
    })
    expect(v2Placement('uid-1')).toEqual({
      nodeSelector: { 'kubernetes.io/os': 'linux', virtualization: 'virtualnode2' },
      tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Exists', effect: 'NoSchedule' }],
      annotations: { 'microsoft.containerinstance.virtualnode.customtags': 'aks-aci-connector-action-cluster=uid-1' }
    })
  })

  it('reads virtual-node-kind and virtual-nodes, refusing what does not fit', () => {
    const read = (extra: Record<string, string>) => (name: string) => ({ 'resource-group': 'rg', 'cluster-name': 'c', ...extra })[name] ?? ''
    expect(parseInputs(read({ 'virtual-node-kind': 'v2', 'virtual-nodes': '3' }))).toMatchObject({ virtualNodeKind: 'v2', v2NodeCount: 3 })
    expect(parseInputs(read({}))).toMatchObject({ virtualNodeKind: 'connector', v2NodeCount: 1 })
    expect(() => parseInputs(read({ 'virtual-node-kind': 'v3' }))).toThrow('virtual-node-kind: "v3" is not valid')
    expect(() => parseInputs(read({ 'virtual-node-kind': 'v2', 'virtual-nodes': '0' }))).toThrow('virtual-nodes: "0" is not valid; use a whole number')
    expect(() => parseInputs(read({ 'virtual-nodes': '2' }))).toThrow('it applies to virtual-node-kind: v2 only')
  })
})

describe('kinds of virtual node a step works with', () => {
  const read = (extra: Record<string, string>) => (name: string) => ({ 'resource-group': 'rg', 'cluster-name': 'c', ...extra })[name] ?? ''
  const kinds = (extra: Record<string, string>, connectors: Array<'Linux' | 'Windows'> = []): string[] => {
    const inputs = parseInputs(read(extra))
    // Only what building the kinds reads; none of their methods runs here.
    const ctx = { inputs, arm: { access: { tenantId: 't', subscriptionId: 's' } }, cluster: { fqdn: 'f', enableRBAC: true } } as unknown as KindContext
    return kindsFor(
      ctx,
      connectors.map(os => ({ os, release: `r-${os}`, node: `n-${os}`, namespace: 'ns' }))
    ).map(k => k.name)
  }

  it('install: v2 serves Linux and the connector the rest; the default is the connector alone', () => {
    expect(kinds({}, ['Linux'])).toEqual(['connector'])
    expect(kinds({ 'virtual-node-kind': 'v2' }, connectorOsTypes(parseInputs(read({ 'virtual-node-kind': 'v2' }))))).toEqual(['v2'])
    const both = parseInputs(read({ 'virtual-node-kind': 'v2', 'os-type': 'Both' }))
    expect(connectorOsTypes(both)).toEqual(['Windows'])
    expect(kinds({ 'virtual-node-kind': 'v2', 'os-type': 'Both' }, ['Windows'])).toEqual(['v2', 'connector'])
    expect(kinds({ 'virtual-node-kind': 'v2', 'os-type': 'Windows' }, ['Windows'])).toEqual(['connector'])
  })

  it('remove and sweep: v2 adds the v2 teardown; os-type Linux with v2 takes no connector', () => {
    expect(kinds({ command: 'remove' })).toEqual(['connector'])
    expect(kinds({ command: 'remove', 'virtual-node-kind': 'v2' })).toEqual(['v2', 'connector'])
    expect(kinds({ command: 'remove', 'virtual-node-kind': 'v2', 'os-type': 'Linux' })).toEqual(['v2'])
    expect(kinds({ command: 'sweep', 'virtual-node-kind': 'v2', 'os-type': 'Windows' })).toEqual(['connector'])
  })
})

describe('what a v2 teardown takes', () => {
  const node = (name: string, ready: boolean, since = '2020-01-01T00:00:00Z'): V1Node => ({
    metadata: { name, labels: { virtualization: 'virtualnode2' }, creationTimestamp: new Date(since) },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'Unknown', lastTransitionTime: new Date(since) }] }
  })
  const fakes = (extensions: Array<{ name: string }>, nodes: V1Node[]) => ({
    arm: {
      subscriptionPath: (p: string) => `/subscriptions/s${p}`,
      get: async () => ({
        value: extensions.map(e => ({ name: e.name, properties: { extensionType: 'microsoft.virtualnodes', provisioningState: 'Succeeded' } }))
      })
    } as unknown as ArmClient,
    kube: { core: { listNode: async () => ({ items: nodes }) } } as unknown as Kube
  })
  const cluster = { resourceGroup: 'rg', name: 'c', nodeResourceGroup: 'MC_rg' }

  it("takes only this action's extension and its nodes; another extension and other v2 nodes are listed and left", async () => {
    const { arm, kube } = fakes(
      [{ name: 'aci-virtual-nodes' }, { name: 'team-vn' }],
      [node('aci-virtual-nodes-virtualnode-0', true), node('team-vn-virtualnode-0', true), node('helm-virtualnode-0', false)]
    )
    const found = await findV2Targets(arm, cluster, kube)
    expect(found.targets.map(t => [t.extension?.name, t.nodes.map(n => n.metadata?.name)])).toEqual([
      ['aci-virtual-nodes', ['aci-virtual-nodes-virtualnode-0']]
    ])
    expect(found.left.map(i => `${i.kind} ${i.name} ${i.outcome}`)).toEqual(['extension team-vn left', 'node helm-virtualnode-0 left'])
  })

  it('a sweep takes the extension only when every node is dead long enough; leftover nodes of it once the extension is gone', async () => {
    const now = Date.parse('2020-01-01T00:10:00Z')
    const alive = fakes([{ name: 'aci-virtual-nodes' }], [node('aci-virtual-nodes-virtualnode-0', false), node('aci-virtual-nodes-virtualnode-1', true)])
    expect((await findV2Targets(alive.arm, cluster, alive.kube, { now })).targets).toEqual([])
    const dead = fakes(
      [{ name: 'aci-virtual-nodes' }],
      [node('aci-virtual-nodes-virtualnode-0', false), node('aci-virtual-nodes-virtualnode-1', false, '2020-01-01T00:08:00Z')]
    )
    expect((await findV2Targets(dead.arm, cluster, dead.kube, { now })).targets).toEqual([])
    const gone = fakes([], [node('aci-virtual-nodes-virtualnode-3', false)])
    expect((await findV2Targets(gone.arm, cluster, gone.kube, { now })).targets.map(t => t.nodes.map(n => n.metadata?.name))).toEqual([
      ['aci-virtual-nodes-virtualnode-3']
    ])
  })
})
