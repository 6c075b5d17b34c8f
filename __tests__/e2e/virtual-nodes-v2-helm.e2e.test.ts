// Virtual Nodes v2 through its Helm chart (the route for a cluster whose VNet is its own, which
// the extension refuses) and virtual-node-kind auto. The chart is the published one, vendored
// (local-aks/charts/README.md), installed by the real helm; its closed images run a stand-in
// process and the v2 stand-in (local-aks/virtual-nodes-v2.ts) registers each running
// infrastructure pod's node; container groups land in the delegated subnet of the cluster's VNet.
import { describe, expect, it } from 'vitest'
import { IDS, SUBSCRIPTION_SCOPE, type LocalAks } from '../local-aks/local-aks.js'
import type { StepResult } from '../local-aks/runner.js'
import { runChecked } from '../local-aks/proc.js'
import { armWrites, expectSuccess, isReady, job, namespaceExists, node, OIDC_SIGN_IN, oidcStep, releasesIn, useLocalAks, waitFor } from './helpers.js'

const HELM_NODE = 'aci-vn2-virtualnode-0'
const OWN_VNET_GROUP = 'rg-network'
/** The cluster the chart serves: Azure CNI in a VNet of its own, a 4-core 16 GB pool. */
const OWN_VNET_CLUSTER = {
  networkPlugin: 'azure' as const,
  networkPolicy: undefined,
  vmSize: 'Standard_D4s_v5',
  authorizedIpRanges: [] as string[],
  workloadIdentity: false
}

describe('Virtual Nodes v2 through its Helm chart, and virtual-node-kind auto', () => {
  let env: LocalAks
  useLocalAks({ providerInitiallyRegistered: true }, e => (env = e))

  const run = (inputs: Record<string, string>): Promise<StepResult> => oidcStep(env, inputs)
  const chart = (): Record<string, string> => ({ 'v2-chart-url': env.v2Chart.url, 'v2-chart-sha256': env.v2Chart.sha256 })
  const writes = (): string[] => armWrites(env)
  const helmRuns = async (verb: string): Promise<number> => (await env.argvLog()).split('\n').filter(l => l.startsWith(`helm ${verb}`)).length
  const ownVnetCluster = async (): Promise<void> => {
    env.azure.knobs.setClusterNetwork(OWN_VNET_CLUSTER)
    env.azure.knobs.setOwnVnet(OWN_VNET_GROUP)
    await env.agent.setMachine(4, 16)
    mayGrantOnVnetGroup()
  }
  /** The chart's route grants the kubelet identity a role on the VNet's group too: a team that uses it lets its CI principal do that. */
  const mayGrantOnVnetGroup = (): void =>
    env.azure.assignRole({ clientId: IDS.oidcClientId, role: 'User Access Administrator', scope: `${SUBSCRIPTION_SCOPE}/resourceGroups/${OWN_VNET_GROUP}` })

  it('on a cluster with its own VNet: refused until the subnet is delegated, then installed, a re-run changes nothing, a remove leaves nothing', async () => {
    await ownVnetCluster()
    const before = writes().length
    const refused = await run({ 'virtual-node-kind': 'v2-helm', ...chart() })
    expect(refused.exitCode).toBe(1)
    expect(refused.log).toContain('does not meet what Virtual Nodes v2 through its Helm chart needs; nothing was changed')
    expect(refused.log).toMatch(/has no subnet cg for the container groups .*--delegations Microsoft\.ContainerInstance\/containerGroups/)
    expect(refused.log).toMatch(/kubelet identity \S+ may not create container groups/)
    expect(writes().slice(before)).toEqual([])

    env.azure.knobs.addSubnet('cg', '10.225.0.0/16', ['Microsoft.ContainerInstance/containerGroups'])
    const inputs = { 'virtual-node-kind': 'v2-helm', ...chart(), 'grant-connector-role': 'true', 'deploy-samples': 'true' }
    const installed = await run(inputs)
    expectSuccess(installed)
    expect(await releasesIn(env, 'vn2')).toEqual(['aci-vn2'])
    expect(isReady(await node(env, HELM_NODE))).toBe(true)
    expect(JSON.parse(installed.outputs.nodes)).toEqual([{ node: HELM_NODE, os: 'Linux', kind: 'v2-helm' }])
    // The chart's own objects, as it renders them (release aci-vn2 in vn2).
    expect((await env.apps.readNamespacedStatefulSet({ name: 'aci-vn2-virtualnode', namespace: 'vn2' })).spec?.replicas).toBe(1)
    // The kubelet identity got the least role on the node resource group and the VNet's group.
    const kubelet = env.azure.objectId(IDS.kubeletIdentityClientId)
    expect(
      env.azure.rbac
        .assignments()
        .filter(a => a.principalId === kubelet)
        .map(a => a.scope.split('/').pop())
    ).toEqual(expect.arrayContaining([IDS.nodeResourceGroup, OWN_VNET_GROUP]))
    // The sample's container group: in the cg subnet of the cluster's own VNet, tagged for this cluster by the chart's customTags.
    const uid = (await env.core.readNamespace({ name: 'kube-system' })).metadata?.uid ?? ''
    const [group] = env.azure.aci.groups()
    expect(env.azure.aci.groups()).toHaveLength(1)
    expect(group).toMatchObject({ resourceGroup: IDS.nodeResourceGroup, state: 'Running', tags: { 'aks-aci-connector-action-cluster': uid } })
    expect(group!.ip).toMatch(/^10\.225\.0\.\d+$/)

    const writesBefore = writes().length
    const upgradesBefore = await helmRuns('upgrade')
    const again = await run(inputs)
    expectSuccess(again)
    expect(again.log).toContain('Release vn2/aci-vn2 is up to date (same chart, same values): no helm upgrade.')
    // Nor a download: the chart's version is in its file name, and the release already has it.
    expect(installed.log).toContain('matches v2-chart-sha256')
    expect(again.log).not.toContain('matches v2-chart-sha256')
    expect(await helmRuns('upgrade')).toBe(upgradesBefore)
    expect(writes().slice(writesBefore)).toEqual([])

    const removed = await run({ command: 'remove' })
    expectSuccess(removed)
    expect(JSON.parse(removed.outputs.swept)).toMatchObject({ releases: ['vn2/aci-vn2'], nodes: [HELM_NODE] })
    // The kubelet identity outlives the release: its roles stay, listed with the command that deletes them.
    expect(removed.log.match(/granted by grant-connector-role to the cluster's kubelet identity for Virtual Nodes v2 \(Helm\); left in place/g)).toHaveLength(2)
    expect(
      env.azure.rbac
        .assignments()
        .filter(a => a.principalId === kubelet)
        .map(a => a.scope.split('/').pop())
    ).toEqual(expect.arrayContaining([IDS.nodeResourceGroup, OWN_VNET_GROUP]))
    expect(await releasesIn(env, 'vn2')).toEqual([])
    expect(await node(env, HELM_NODE)).toBeUndefined()
    expect(env.azure.aci.groups()).toEqual([])
    // The remove waits until the namespace is gone: an install right after must not find it terminating.
    expect(await namespaceExists(env, 'vn2')).toBe(false)
  })

  it('a Kubernetes version no published chart supports is refused before anything changes, naming the versions there are', async () => {
    await ownVnetCluster()
    env.azure.knobs.setKubernetesVersion('1.35.2')
    try {
      const before = writes().length
      const helmBefore = await helmRuns('')
      const refused = await run({ 'virtual-node-kind': 'v2-helm', 'grant-connector-role': 'true' })
      expect(refused.exitCode).toBe(1)
      expect(refused.log).toContain(
        'The cluster runs Kubernetes 1.35.2, and no published Virtual Nodes v2 chart is verified with it: the charts support AKS 1.29 to 1.34 (1.3409.26080501: 1.33, 1.34; 1.3307.26033004: 1.32, 1.33, 1.34; 1.3012.25080101: 1.29, 1.30, 1.31, 1.32'
      )
      expect(writes().slice(before)).toEqual([])
      expect(await helmRuns('')).toBe(helmBefore)
    } finally {
      env.azure.knobs.setKubernetesVersion('v1.34.4'.slice(1))
    }
  })

  it('a release of the chart another team made, even under the name this action uses, is listed and left by a remove, and an install does not take it over', async () => {
    await ownVnetCluster()
    env.azure.knobs.addSubnet('cg', '10.225.0.0/16', ['Microsoft.ContainerInstance/containerGroups'])
    const helm = (args: string[]): Promise<string> =>
      runChecked(env.bins.helm4, [...args, '--kubeconfig', env.cluster.adminKubeconfigPath], {
        env: { ...process.env, HOME: process.env.HOME ?? '/root' },
        timeoutMs: 120_000
      })
    await helm(['upgrade', '--install', 'aci-vn2', env.v2Chart.file, '--namespace', 'vn2', '--create-namespace', '--set', 'replicaCount=1'])
    try {
      await waitFor(`${HELM_NODE} Ready`, async () => isReady(await node(env, HELM_NODE)) || undefined)
      const removed = await run({ command: 'remove' })
      expectSuccess(removed)
      expect(removed.log).toContain(
        'a Virtual Nodes v2 Helm release this action cannot prove it installed (no record that it made it); remove it with `helm uninstall aci-vn2 -n vn2`'
      )
      expect(JSON.parse(removed.outputs.swept)).toMatchObject({ releases: [], nodes: [] })
      expect(await releasesIn(env, 'vn2')).toEqual(['aci-vn2'])
      expect(isReady(await node(env, HELM_NODE))).toBe(true)

      const before = writes().length
      const refused = await run({ 'virtual-node-kind': 'v2-helm', ...chart(), 'grant-connector-role': 'true' })
      expect(refused.exitCode).toBe(1)
      expect(refused.log).toContain('already has a Virtual Nodes v2 Helm release this action did not install, vn2/aci-vn2')
      expect(writes().slice(before)).toEqual([])
      expect(await releasesIn(env, 'vn2')).toEqual(['aci-vn2'])
    } finally {
      await helm(['uninstall', 'aci-vn2', '--namespace', 'vn2'])
      await env.core.deleteNode({ name: HELM_NODE }).catch(() => undefined)
      await env.core.deleteNamespace({ name: 'vn2' }).catch(() => undefined)
      await waitFor('namespace vn2 gone', async () => !(await namespaceExists(env, 'vn2')) || undefined)
    }
  })

  it('auto: the connector on a kubenet cluster, the add-on where its subnet is, the extension where v2 fits it, the chart on a VNet of its own (cleanup: true: the post step takes it); none fits: every kind’s reasons', async () => {
    const chose = async (inputs: Record<string, string>, label: string): Promise<StepResult> => {
      const r = await run({ 'virtual-node-kind': 'auto', 'grant-connector-role': 'true', ...chart(), ...inputs })
      expectSuccess(r)
      expect(r.log).toContain(`virtual-node-kind auto chose ${label} for Linux`)
      expect(r.summary).toContain(`virtual-node-kind auto chose ${label} for Linux`)
      expectSuccess(await run({ command: 'remove' }))
      return r
    }
    // A cluster as az aks create makes it by default: kubenet, a 2-core pool.
    env.azure.knobs.setClusterNetwork({
      networkPlugin: 'kubenet',
      networkPolicy: undefined,
      vmSize: 'Standard_DS2_v2',
      workloadIdentity: false,
      authorizedIpRanges: []
    })
    env.azure.knobs.setOwnVnet(undefined)
    await env.agent.setMachine(2, 7)
    const connector = await chose({}, 'ACI connector')
    expect(connector.log).toMatch(/not: AKS's virtual-node add-on \(networkProfile\.networkPlugin is kubenet/)

    // Azure CNI with the subnet the AKS docs make for the add-on.
    env.azure.knobs.setClusterNetwork({ networkPlugin: 'azure' })
    env.azure.knobs.addSubnet('myVirtualNodeSubnet', '10.226.0.0/16')
    await chose({}, "AKS's virtual-node add-on")

    // What the extension needs (Calico, a 4-core pool, workload identity), and no add-on subnet.
    env.azure.knobs.setClusterNetwork({ networkPolicy: 'calico', vmSize: 'Standard_D4s_v5', workloadIdentity: true })
    await env.agent.setMachine(4, 16)
    env.azure.knobs.removeSubnet('myVirtualNodeSubnet')
    await chose({}, 'Virtual Nodes v2')

    // A VNet of its own with the chart's delegated subnet: the extension refuses it, the chart serves it.
    env.azure.knobs.setOwnVnet(OWN_VNET_GROUP)
    mayGrantOnVnetGroup()
    env.azure.knobs.addSubnet('cg', '10.225.0.0/16', ['Microsoft.ContainerInstance/containerGroups'])
    // This time as a pull request's job would run it: cleanup: true, and a later step that fails; the post step takes what auto chose.
    const { main, post } = await job(
      env,
      { ...OIDC_SIGN_IN, 'virtual-node-kind': 'auto', 'grant-connector-role': 'true', ...chart(), cleanup: 'true' },
      { failLaterStep: true }
    )
    expectSuccess(main)
    expect(main.log).toContain('virtual-node-kind auto chose Virtual Nodes v2 (Helm chart) for Linux')
    expect(JSON.parse(main.outputs.nodes)).toEqual([{ node: HELM_NODE, os: 'Linux', kind: 'v2-helm' }])
    expectSuccess(post)
    expect(await releasesIn(env, 'vn2')).toEqual([])
    expect(await node(env, HELM_NODE)).toBeUndefined()
    expect(await namespaceExists(env, 'vn2')).toBe(false)

    // Kubenet in a region the connector does not run in: no kind fits.
    env.azure.knobs.setClusterNetwork({ networkPlugin: 'kubenet', networkPolicy: undefined })
    env.azure.knobs.setLocation('israelnorthwest')
    try {
      const before = writes().length
      const none = await run({ 'virtual-node-kind': 'auto', 'grant-connector-role': 'true', ...chart() })
      expect(none.exitCode).toBe(1)
      expect(none.log).toContain(
        'virtual-node-kind auto: this cluster meets the prerequisites of no kind of virtual node; nothing was changed. What each needs:'
      )
      for (const label of ["AKS's virtual-node add-on", 'Virtual Nodes v2', 'Virtual Nodes v2 (Helm chart)', 'ACI connector'])
        expect(none.log).toContain(`- ${label}:`)
      expect(none.log).toContain('The cluster is in israelnorthwest, but')
      expect(writes().slice(before)).toEqual([])
    } finally {
      env.azure.knobs.setLocation('eastus')
    }
  })
})
