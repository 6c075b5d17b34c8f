// Virtual Nodes v2 through its Helm chart: the chart chosen by the cluster's Kubernetes minor
// (Docs/VersionCompatibility.md of github.com/microsoft/virtualnodesOnAzureContainerInstances)
// and each prerequisite the chart's README and Docs/SecurityCustomizations.md state, refused
// with its fix.
import { describe, expect, it } from 'vitest'
import type { ClusterInfo } from '../../src/kubernetes/cluster.js'
import { chartForCluster, kubernetesMinor, minorsOfChartVersion, V2_CHARTS } from '../../src/virtual-nodes/v2/helm-chart.js'
import { judgeV2HelmPrerequisites, type V2HelmFacts } from '../../src/virtual-nodes/v2/helm-prerequisites.js'

const VNET_ID = '/subscriptions/s/resourceGroups/rg-network/providers/Microsoft.Network/virtualNetworks/corp-vnet'
const NODE_SUBNET = `${VNET_ID}/subnets/aks-nodes`
const CG_SUBNET = `${VNET_ID}/subnets/cg`

const cluster = (over: Partial<ClusterInfo> = {}, network: Partial<ClusterInfo['network']> = {}): ClusterInfo => ({
  id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c',
  name: 'c',
  resourceGroup: 'rg',
  location: 'eastus',
  kubernetesVersion: '1.34.4',
  fqdn: 'c.hcp.eastus.azmk8s.io',
  nodeResourceGroup: 'MC_rg_c_eastus',
  enableRBAC: true,
  localAccountsDisabled: false,
  kubeletIdentityClientId: 'kubelet-client',
  kubeletIdentityObjectId: 'kubelet-object',
  network: {
    networkPlugin: 'azure',
    authorizedIpRanges: [],
    workloadIdentity: false,
    agentPools: [{ name: 'nodepool1', vmSize: 'Standard_D4s_v5', osType: 'Linux', vnetSubnetId: NODE_SUBNET }],
    ...network
  },
  ...over
})

const facts = (c: ClusterInfo = cluster(), over: Partial<V2HelmFacts> = {}): V2HelmFacts => ({
  cluster: c,
  net: {
    cluster: c,
    ownVnet: true,
    vnet: {
      id: VNET_ID,
      name: 'corp-vnet',
      resourceGroup: 'rg-network',
      addressPrefixes: ['10.224.0.0/12'],
      subnets: [
        { name: 'aks-nodes', id: NODE_SUBNET, addressPrefixes: ['10.224.0.0/16'], delegations: [], natGateway: false },
        { name: 'cg', id: CG_SUBNET, addressPrefixes: ['10.225.0.0/16'], delegations: ['Microsoft.ContainerInstance/containerGroups'], natGateway: false }
      ]
    }
  },
  vmSizes: [
    { name: 'Standard_D4s_v5', numberOfCores: 4, memoryInMB: 16384 },
    { name: 'Standard_DS2_v2', numberOfCores: 2, memoryInMB: 7168 }
  ],
  extensions: [],
  releases: [],
  releaseIsOurs: false,
  access: [
    { scope: '/subscriptions/s/resourceGroups/MC_rg_c_eastus', action: 'Microsoft.ContainerInstance/containerGroups/write', allowed: true },
    { scope: CG_SUBNET, action: 'Microsoft.Network/virtualNetworks/subnets/join/action', allowed: true }
  ],
  userChart: false,
  ...over
})

describe('the Virtual Nodes v2 chart for a Kubernetes version', () => {
  it.each([
    ['1.34.4', '1.3409.26080501'],
    ['v1.33.2', '1.3409.26080501'],
    ['1.32.9', '1.3307.26033004'],
    ['1.31.1', '1.3012.25080101'],
    ['1.29.0', '1.3012.25080101']
  ])('Kubernetes %s gets chart %s (the newest that Docs/VersionCompatibility.md verifies with its minor)', (k8s, version) => {
    const found = chartForCluster(k8s)
    expect(found).toMatchObject({ chart: { version, url: expect.stringContaining(`/virtualnode-${version}/virtualnode-${version}.tgz`) } })
  })

  it.each(['1.35.2', '1.28.15', 'v2.0.0', 'latest'])('Kubernetes %s has no chart: the problem names every chart and its minors, and the fixes', k8s => {
    const found = chartForCluster(k8s)
    expect('problem' in found && found.problem).toContain(
      `the cluster runs Kubernetes ${k8s}, and no published Virtual Nodes v2 chart is verified with it: the charts support AKS 1.29 to 1.34`
    )
    expect('problem' in found && found.problem).toContain('1.3012.25080101: 1.29, 1.30, 1.31, 1.32')
    expect('problem' in found && found.problem).toContain('az aks get-upgrades')
  })

  it('every pinned chart has a SHA-256 of 64 hex digits and serves the minors Docs/VersionCompatibility.md gives its series', () => {
    for (const chart of V2_CHARTS) expect(chart.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(V2_CHARTS.map(c => [c.version, minorsOfChartVersion(c.version)])).toEqual([
      ['1.3409.26080501', [33, 34]],
      ['1.3307.26033004', [32, 33, 34]],
      ['1.3012.25080101', [29, 30, 31, 32]]
    ])
  })

  it('reads the minor of a Kubernetes version and the minors of a chart series', () => {
    expect(kubernetesMinor('v1.33.2')).toBe(33)
    expect(kubernetesMinor('1.30')).toBe(30)
    expect(kubernetesMinor('2.1.0')).toBeUndefined()
    expect(minorsOfChartVersion('1.3307.26010101')).toEqual([32, 33])
    expect(minorsOfChartVersion('1.3208.25061201')).toEqual([32])
    expect(minorsOfChartVersion('0.1.0')).toEqual([])
  })
})

describe('Virtual Nodes v2 (Helm) prerequisites', () => {
  it('a cluster in its own VNet with a delegated cg subnet and a 4-core pool: no problem, the published chart, the subnet to use', () => {
    const v = judgeV2HelmPrerequisites(facts(), 'cg', false)
    expect(v.problems).toEqual([])
    expect(v.chart?.version).toBe('1.3409.26080501')
    expect(v.subnet?.name).toBe('cg')
    expect(v.missing).toEqual([])
  })

  it.each([
    ['kubenet', cluster({}, { networkPlugin: 'kubenet' }), 'networkProfile.networkPlugin is kubenet: Virtual Nodes v2 needs Azure CNI Node Subnet'],
    ['Azure CNI overlay', cluster({}, { networkPluginMode: 'overlay' }), 'networkProfile.networkPlugin is azure in overlay mode'],
    ['authorized IP ranges', cluster({}, { authorizedIpRanges: ['1.2.3.4/32'] }), 'az aks update -g rg -n c --api-server-authorized-ip-ranges ""'],
    ['Kubernetes 1.35', cluster({ kubernetesVersion: '1.35.0' }), 'no published Virtual Nodes v2 chart is verified with it'],
    [
      'a 2-core pool only',
      cluster({}, { agentPools: [{ name: 'small', vmSize: 'Standard_DS2_v2', osType: 'Linux', vnetSubnetId: NODE_SUBNET }] }),
      'No Linux node pool has 4 cores and 16 GB'
    ],
    ['no kubelet identity', cluster({ kubeletIdentityObjectId: undefined }), 'has no kubelet managed identity']
  ])('%s is refused with its fix', (_, c, problem) => {
    const v = judgeV2HelmPrerequisites(facts(c), 'cg', false)
    expect(v.problems.join('\n')).toContain(problem)
  })

  it('no subnet of that name: refused with the command that makes it delegated in the first free /16', () => {
    const v = judgeV2HelmPrerequisites(facts(), 'aci', false)
    expect(v.problems).toEqual([
      expect.stringContaining(
        "VNet corp-vnet has no subnet aci for the container groups (the chart's aciSubnetName). Fix: `az network vnet subnet create -g rg-network --vnet-name corp-vnet -n aci --address-prefixes 10.226.0.0/16 --delegations Microsoft.ContainerInstance/containerGroups`"
      )
    ])
  })

  it('a subnet not delegated, or a node pool’s own subnet: refused', () => {
    const f = facts()
    f.net.vnet!.subnets[1]!.delegations = []
    expect(judgeV2HelmPrerequisites(f, 'cg', false).problems.join('\n')).toContain(
      'Subnet cg is not delegated; the chart needs it delegated to Microsoft.ContainerInstance/containerGroups alone. Fix: `az network vnet subnet update -g rg-network --vnet-name corp-vnet -n cg --delegations Microsoft.ContainerInstance/containerGroups`'
    )
    expect(judgeV2HelmPrerequisites(facts(), 'aks-nodes', false).problems.join('\n')).toContain("Subnet aks-nodes is a node pool's subnet")
  })

  it('the cluster’s VNet cannot be read: refused with why', () => {
    const f = facts()
    f.net = { cluster: f.cluster, ownVnet: false, vnetProblem: 'VNet corp-vnet: 403 AuthorizationFailed' }
    expect(judgeV2HelmPrerequisites(f, 'cg', false).problems).toEqual(["The cluster's VNet: VNet corp-vnet: 403 AuthorizationFailed."])
  })

  it('a v2 extension or another v2 release on the cluster (also one of this action’s name it did not make): refused (one admission webhook per cluster); this action’s own release is not a problem', () => {
    const ext = facts(cluster(), { extensions: [{ name: 'team-vn2', id: 'x', properties: { extensionType: 'microsoft.virtualnodes' } } as never] })
    expect(judgeV2HelmPrerequisites(ext, 'cg', false).problems.join('\n')).toContain('has the Virtual Nodes v2 extension team-vn2')
    const other = facts(cluster(), { releases: [{ name: 'virtualnode', namespace: 'default', record: {} as never }] })
    expect(judgeV2HelmPrerequisites(other, 'cg', false).problems.join('\n')).toContain(
      'already has a Virtual Nodes v2 Helm release this action did not install, default/virtualnode'
    )
    const ours = facts(cluster(), { releases: [{ name: 'aci-vn2', namespace: 'vn2', record: {} as never }], releaseIsOurs: true })
    expect(judgeV2HelmPrerequisites(ours, 'cg', false).problems).toEqual([])
    // The same name, not made by this action (no record that it created it): someone else's, not taken over.
    const sameName = facts(cluster(), { releases: [{ name: 'aci-vn2', namespace: 'vn2', record: {} as never }], releaseIsOurs: false })
    expect(judgeV2HelmPrerequisites(sameName, 'cg', false).problems.join('\n')).toContain(
      'already has a Virtual Nodes v2 Helm release this action did not install, vn2/aci-vn2'
    )
  })

  it('what the kubelet identity lacks is refused without grant-connector-role, and listed to grant with it', () => {
    const f = facts()
    f.access[0]!.allowed = false
    f.access[1]!.allowed = undefined
    const refused = judgeV2HelmPrerequisites(f, 'cg', false)
    expect(refused.problems).toEqual([
      expect.stringContaining('kubelet identity kubelet-client may not create container groups at /subscriptions/s/resourceGroups/MC_rg_c_eastus')
    ])
    expect(refused.problems[0]).toContain('--role Contributor --scope /subscriptions/s/resourceGroups/MC_rg_c_eastus`, or set grant-connector-role: true')
    const granted = judgeV2HelmPrerequisites(f, 'cg', true)
    expect(granted.problems).toEqual([])
    expect(granted.missing.map(m => m.scope)).toEqual(['/subscriptions/s/resourceGroups/MC_rg_c_eastus'])
  })

  it('a chart of the user’s own: no published chart is picked; one whose series does not serve the cluster’s minor is refused', () => {
    const own = judgeV2HelmPrerequisites(facts(cluster({ kubernetesVersion: '1.35.1' }), { userChart: true, userChartVersion: undefined }), 'cg', false)
    expect(own.problems).toEqual([])
    expect(own.chart).toBeUndefined()
    const old = judgeV2HelmPrerequisites(facts(cluster(), { userChart: true, userChartVersion: '1.3012.25080101' }), 'cg', false)
    expect(old.problems).toEqual([
      expect.stringContaining('v2-chart-url is chart version 1.3012.25080101, which Docs/VersionCompatibility.md verifies with AKS 1.29, 1.30, 1.31, 1.32')
    ])
  })
})
