// AKS's virtual-node add-on as the third kind of virtual node, and a teardown that finds
// every kind without being told: prerequisites refused before any change; the add-on enabled
// over ARM as az does it, its node Ready (the real azure-aci connector, deployed by the local
// AKS when ARM enables the add-on, local-aks/virtual-node-addon.ts), the sample in its subnet;
// Linux from the add-on and Windows from the connector; another team's add-on and v2
// extension left alone; a remove naming only the cluster taking what each kind installed.
import { describe, expect, it } from 'vitest'
import { IDS, SUBSCRIPTION_SCOPE, type LocalAks } from '../local-aks/local-aks.js'
import type { StepResult } from '../local-aks/runner.js'
import {
  armWrites,
  expectNoSecretLeak,
  expectSuccess,
  isReady,
  job,
  node,
  OIDC_SIGN_IN,
  oidcStep,
  releasesIn,
  useLocalAks,
  V2_READY_CLUSTER,
  waitFor
} from './helpers.js'

const ADDON_NODE = 'virtual-node-aci-linux'
const WINDOWS_NODE = 'virtual-kubelet-aci-connector-windows-eastus'
const V2_NODE = 'aci-virtual-nodes-virtualnode-0'
/** The subnet for the add-on, in the cluster VNet's free space (as the AKS docs make one with az network vnet subnet create). */
const ADDON_SUBNET = { name: 'myVirtualNodeSubnet', prefix: '10.226.0.0/16' }

describe("AKS's virtual-node add-on, and a teardown that finds every kind", () => {
  let env: LocalAks
  useLocalAks({ providerInitiallyRegistered: true }, e => (env = e))

  const run = (inputs: Record<string, string>): Promise<StepResult> => oidcStep(env, inputs)
  // Changes to Azure: PUT, DELETE, and a POST that is not a read (credentials) or a token request.
  const writes = (): string[] => armWrites(env)
  const virtualNodes = async (): Promise<string[]> =>
    (await env.core.listNode()).items
      .map(n => n.metadata?.name ?? '')
      .filter(n => n !== 'aks-nodepool1-00000000-vmss000000' && !n.startsWith('aks-'))
      .sort()
  const installRecord = async (): Promise<Record<string, string>> =>
    (await env.core.readNamespacedConfigMap({ name: 'aks-aci-connector-action-installs', namespace: 'default' }).catch(() => ({ data: {} }))).data ?? {}

  it('refuses a cluster the add-on cannot use before any change, every problem with its fix', async () => {
    env.azure.knobs.setClusterNetwork({ ...V2_READY_CLUSTER, networkPlugin: 'kubenet', authorizedIpRanges: ['203.0.113.0/24'] })
    const before = writes().length
    const kubenet = await run({ 'virtual-node-kind': 'addon' })
    expect(kubenet.exitCode).toBe(1)
    expect(kubenet.log).toContain("networkProfile.networkPlugin is kubenet: AKS's virtual nodes need Azure CNI networking")
    expect(kubenet.log).toContain(`az aks update -g ${IDS.resourceGroup} -n ${IDS.clusterName} --api-server-authorized-ip-ranges ""`)

    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    const noSubnet = await run({ 'virtual-node-kind': 'addon' })
    expect(noSubnet.exitCode).toBe(1)
    expect(noSubnet.log).toContain(
      `az network vnet subnet create -g ${IDS.nodeResourceGroup} --vnet-name aks-vnet-12345678 -n myVirtualNodeSubnet --address-prefixes 10.225.0.0/16`
    )
    expect(noSubnet.log).toContain('nothing was changed')
    expect(writes().slice(before)).toEqual([])
    expect(env.azure.state().addon.enabled).toBe(false)
  })

  it('on a VNet of your own: grant-connector-role is checked before any write, then Contributor on the VNet (as az assigns it) goes to the add-on identity and with the add-on', async () => {
    const vnetGroup = 'rg-addon-network'
    const vnetGroupScope = `${SUBSCRIPTION_SCOPE}/resourceGroups/${vnetGroup}`
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    env.azure.knobs.setOwnVnet(vnetGroup)
    env.azure.knobs.addSubnet(ADDON_SUBNET.name, ADDON_SUBNET.prefix)
    try {
      const inputs = { 'virtual-node-kind': 'addon', 'grant-connector-role': 'true' }
      const before = writes().length
      const refused = await run(inputs)
      expect(refused.exitCode).toBe(1)
      expect(refused.log).toContain(
        `grant-connector-role: the sign-in identity may not assign roles on ${vnetGroupScope}/providers/Microsoft.Network/virtualNetworks/`
      )
      expect(writes().slice(before)).toEqual([])
      expect(env.azure.state().addon.enabled).toBe(false)

      env.azure.assignRole({ clientId: IDS.oidcClientId, role: 'User Access Administrator', scope: vnetGroupScope })
      expectSuccess(await run(inputs))
      const identity = env.azure.state().addon.identity?.objectId
      const onVnet = (): string[] =>
        env.azure.rbac
          .assignments()
          .filter(a => a.principalId === identity && a.scope.includes('/virtualNetworks/'))
          .map(a => a.roleName)
      // Contributor, as az assigns it: the add-on's connector reads and delegates the subnet itself.
      expect(onVnet()).toEqual(['Contributor'])
      expect(isReady(await node(env, ADDON_NODE))).toBe(true)

      const removed = await run({ command: 'remove' })
      expectSuccess(removed)
      expect(env.azure.state().addon.enabled).toBe(false)
      expect(onVnet()).toEqual([])
    } finally {
      env.azure.knobs.setOwnVnet(undefined)
    }
  })

  it('enables the add-on: its node Ready, the sample in its subnet; a re-run changes nothing; a remove naming only the cluster takes it, workloads first', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    env.azure.knobs.addSubnet(ADDON_SUBNET.name, ADDON_SUBNET.prefix)
    const main = await run({ 'virtual-node-kind': 'addon', 'deploy-samples': 'true' })
    expectSuccess(main)
    expect(env.azure.state().addon).toMatchObject({ enabled: true, subnetName: ADDON_SUBNET.name })
    expect(isReady(await node(env, ADDON_NODE))).toBe(true)
    expect(JSON.parse(main.outputs.nodes)).toEqual([{ node: ADDON_NODE, os: 'Linux', kind: 'addon' }])
    expect(JSON.parse(main.outputs.placement).linux).toMatchObject({ node: ADDON_NODE, kind: 'addon', nodeSelector: { type: 'virtual-kubelet' } })
    // The real connector put the sample's container group into the add-on's subnet (delegating it to ACI first).
    const groups = env.azure.aci.groups()
    expect(groups).toHaveLength(1)
    expect(groups[0]).toMatchObject({ resourceGroup: IDS.nodeResourceGroup, tags: { NodeName: ADDON_NODE } })
    expect(JSON.parse(main.outputs['sample-pod-ips']).linux[0]).toMatch(/^10\.226\.0\.\d+$/)
    expect(Object.keys(await installRecord())).toEqual(['addon.aciConnectorLinux'])

    const againBefore = writes().length
    const again = await run({ 'virtual-node-kind': 'addon', 'deploy-samples': 'true' })
    expectSuccess(again)
    expect(again.log).toContain("AKS's virtual-node add-on is enabled already (subnet myVirtualNodeSubnet), by this action")
    expect(writes().slice(againBefore)).toEqual([])

    const dryBefore = writes().length
    const dry = await run({ command: 'remove', 'dry-run': 'true' })
    expectSuccess(dry)
    expect(JSON.parse(dry.outputs.swept)).toMatchObject({ dryRun: true, addons: ['aciConnectorLinux'], nodes: [ADDON_NODE] })
    expect(writes().slice(dryBefore)).toEqual([])

    const removed = await run({ command: 'remove' })
    expectSuccess(removed)
    expect(removed.log).toMatch(/pod default\/aci-helloworld-\S+: removed/)
    expect(env.azure.state().addon.enabled).toBe(false)
    expect(await node(env, ADDON_NODE)).toBeUndefined()
    expect(env.azure.aci.groups()).toEqual([])
    expect(await installRecord()).toEqual({})
  })

  it('os-type Both with the add-on: Linux from it, Windows from the real connector; cleanup: true takes both in the post step', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    const { main, post } = await job(
      env,
      { ...OIDC_SIGN_IN, 'virtual-node-kind': 'addon', 'os-type': 'Both', 'deploy-samples': 'true', 'grant-connector-role': 'true', cleanup: 'true' },
      { failLaterStep: true }
    )
    expectSuccess(main)
    expect(JSON.parse(main.outputs.nodes)).toEqual(
      expect.arrayContaining([
        { node: ADDON_NODE, os: 'Linux', kind: 'addon' },
        { node: WINDOWS_NODE, os: 'Windows', kind: 'connector' }
      ])
    )
    expect(main.summary).toContain("## AKS virtual nodes (AKS's virtual-node add-on and the ACI connector): install succeeded")
    expectSuccess(post)
    expect(env.azure.state().addon.enabled).toBe(false)
    expect(await virtualNodes()).toEqual([])
    expect(await releasesIn(env)).toEqual([])
    expect(env.azure.aci.groups()).toEqual([])
    await expectNoSecretLeak(env, [main, post])
  })

  it('a remove naming only the cluster, after installs of each kind, leaves nothing billing', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    expectSuccess(await run({ 'os-type': 'Windows', 'deploy-samples': 'true', 'grant-connector-role': 'true' }))
    expectSuccess(await run({ 'virtual-node-kind': 'v2', 'deploy-samples': 'true', 'grant-connector-role': 'true', 'samples-namespace': 'v2-samples' }))
    expectSuccess(await run({ 'virtual-node-kind': 'addon', 'deploy-samples': 'true', 'samples-namespace': 'addon-samples' }))
    expect(await virtualNodes()).toEqual([V2_NODE, WINDOWS_NODE, ADDON_NODE].sort())
    expect(env.azure.aci.groups().length).toBeGreaterThanOrEqual(3)

    const removed = await run({ command: 'remove' })
    expectSuccess(removed)
    expect(JSON.parse(removed.outputs.swept)).toMatchObject({
      extensions: ['aci-virtual-nodes'],
      addons: ['aciConnectorLinux'],
      releases: ['default/aci-connector-windows-eastus']
    })
    expect(env.azure.state().extensions).toEqual([])
    expect(env.azure.state().addon.enabled).toBe(false)
    expect(await releasesIn(env)).toEqual([])
    expect(await virtualNodes()).toEqual([])
    // Nothing left billing in ACI.
    expect(env.azure.aci.groups()).toEqual([])
  })

  it("another team's add-on and its v2 extension named as this action names its own are listed and left by remove and sweep; an install uses the add-on without owning it", async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    env.azure.knobs.enableAddonAsOther(ADDON_SUBNET.name)
    env.azure.knobs.putExtensionAsOther('aci-virtual-nodes', 1)
    // ARM finishes their operations when asked about them (state()), as any client polls.
    await waitFor(
      'the other team’s nodes Ready',
      async () => (env.azure.state() && isReady(await node(env, ADDON_NODE)) && isReady(await node(env, V2_NODE))) || undefined,
      120_000
    )

    const before = writes().length
    const removed = await run({ command: 'remove' })
    expectSuccess(removed)
    expect(removed.log).toContain("AKS's virtual-node add-on was not enabled by this action; it is left as it is")
    expect(removed.log).toContain('Virtual Nodes v2 this action cannot prove it installed is left as it is: extension aci-virtual-nodes')
    expect(JSON.parse(removed.outputs.swept)).toMatchObject({ extensions: [], addons: [], nodes: [] })
    const swept = await run({ command: 'sweep', 'connector-name': '*' })
    expectSuccess(swept)
    expect(JSON.parse(swept.outputs.swept)).toMatchObject({ extensions: [], addons: [], nodes: [] })
    expect(writes().slice(before)).toEqual([])

    const used = await run({ 'virtual-node-kind': 'addon' })
    expectSuccess(used)
    expect(used.log).toContain("not by this action: it is used as it is, and this action's teardown leaves it")
    expect(writes().slice(before)).toEqual([])
    expectSuccess(await run({ command: 'remove', 'virtual-node-kind': 'addon' }))
    expect(env.azure.state().addon.enabled).toBe(true)
    expect(env.azure.state().extensions).toMatchObject([{ name: 'aci-virtual-nodes' }])
    expect(isReady(await node(env, ADDON_NODE))).toBe(true)
  })
})
