// Virtual Nodes v2 as the second kind of virtual node: prerequisites refused before any
// change, the cluster extension installed over ARM and its nodes Ready, samples and a later
// step's pod running as container groups, Linux from v2 and Windows from the real connector
// in one step, and remove / cleanup / sweep leaving nothing. v2's agent is closed, so its
// nodes come from the stand-in (local-aks/virtual-nodes-v2.ts); the connector is the real one.
import { describe, expect, it } from 'vitest'
import { IDS, NODE_RESOURCE_GROUP_SCOPE, type LocalAks } from '../local-aks/local-aks.js'
import { RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { api, SMP } from '../local-aks/kube-raw.js'
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
import { sleep } from '../../src/util/async.js'
import type { StepResult } from '../local-aks/runner.js'

const V2_NODES = ['aci-virtual-nodes-virtualnode-0', 'aci-virtual-nodes-virtualnode-1']
/** The ClusterRoleBinding that gives the user credential ARM hands out cluster-admin (local-aks/cluster.ts). */
const USER_BINDING = 'local-aks-cluster-user'
const WINDOWS_NODE = 'virtual-kubelet-aci-connector-windows-eastus'

describe('Virtual Nodes v2', () => {
  let env: LocalAks
  useLocalAks({ providerInitiallyRegistered: true }, e => (env = e))

  const run = (inputs: Record<string, string>): Promise<StepResult> => oidcStep(env, inputs)
  /** command: remove with v2 succeeds and leaves no extension. */
  const removeV2 = async (): Promise<StepResult> => {
    const removed = await run({ command: 'remove', 'virtual-node-kind': 'v2' })
    expectSuccess(removed)
    expect(env.azure.state().extensions).toEqual([])
    return removed
  }
  const v2Nodes = async (): Promise<string[]> =>
    (await env.core.listNode({ labelSelector: 'virtualization=virtualnode2' })).items.map(n => n.metadata?.name ?? '').sort()
  // Changes to Azure: PUT, DELETE, and a POST that is not a read (credentials) or a token request.
  const writes = (): string[] => armWrites(env)

  it('every prerequisite a cluster breaks is refused before any change, each naming its fix', async () => {
    env.azure.knobs.setClusterNetwork({
      networkPlugin: 'azure',
      networkPluginMode: 'overlay',
      networkPolicy: undefined,
      vmSize: 'Standard_DS2_v2',
      authorizedIpRanges: ['203.0.113.0/24'],
      workloadIdentity: false
    })
    env.azure.knobs.setKubernetesConfigurationState('NotRegistered')
    // Registering ACI is a subscription-wide write: it must wait until every prerequisite has passed.
    env.azure.knobs.setProviderState('NotRegistered')
    const before = writes().length
    const result = await run({ 'virtual-node-kind': 'v2' })
    expect(result.exitCode).toBe(1)
    for (const fix of [
      'az provider register --namespace Microsoft.KubernetesConfiguration --wait',
      'networkProfile.networkPluginMode is overlay',
      `az aks update -g ${IDS.resourceGroup} -n ${IDS.clusterName} --network-policy calico`,
      `az aks nodepool add -g ${IDS.resourceGroup} --cluster-name ${IDS.clusterName} -n vnpool --node-vm-size Standard_D4s_v5`,
      `az aks update -g ${IDS.resourceGroup} -n ${IDS.clusterName} --api-server-authorized-ip-ranges ""`,
      '--enable-oidc-issuer --enable-workload-identity'
    ])
      expect(result.log).toContain(fix)
    // Only the sign-in's own token request: no PUT, DELETE or POST on a resource (no provider registration either).
    expect(writes().slice(before)).toEqual([])
    expect(result.log).not.toContain('registering it')
    expect(env.azure.state().extensions).toEqual([])

    env.azure.knobs.setClusterNetwork({
      networkPlugin: 'kubenet',
      networkPluginMode: undefined,
      networkPolicy: 'calico',
      vmSize: 'Standard_D4s_v5',
      authorizedIpRanges: [],
      workloadIdentity: true
    })
    env.azure.knobs.setKubernetesConfigurationState('Registered')
    const kubenet = await run({ 'virtual-node-kind': 'v2' })
    expect(kubenet.exitCode).toBe(1)
    expect(kubenet.log).toContain('networkProfile.networkPlugin is kubenet: Virtual Nodes v2 needs Azure CNI with a node subnet')
    expect(env.azure.state().extensions).toEqual([])
  })

  it('v2 with 2 nodes: Ready, the sample runs as a container group with its IP, a later pod runs on v2; a re-run changes nothing; remove leaves nothing', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    const inputs = { 'virtual-node-kind': 'v2', 'virtual-nodes': '2', 'deploy-samples': 'true', 'grant-connector-role': 'true' }
    const main = await run(inputs)
    expectSuccess(main)
    // The subnet VirtualNodes.py makes: the first free /16, delegated to ACI.
    expect(env.azure.state().subnets).toContainEqual({
      name: 'virtualnodes-aci-subnet',
      addressPrefix: '10.225.0.0/16',
      delegations: [{ name: 'aci-delegation', serviceName: 'Microsoft.ContainerInstance/containerGroups' }]
    })
    expect(env.azure.state().extensions).toMatchObject([{ name: 'aci-virtual-nodes', state: 'Succeeded', settings: { replicaCount: '2' } }])
    expect(main.log).toContain('(grant-connector-role)')
    const v2Grants = (): unknown[] => env.azure.rbac.assignments().filter(a => a.description?.includes('to Virtual Nodes v2 of AKS cluster'))
    // v2's documented custom role (Docs/SecurityCustomizations.md), not Contributor on the node resource group.
    expect(v2Grants()).toMatchObject([
      { roleName: `Virtual nodes on ACI (aks-aci-connector-action) ${IDS.subscriptionId}/${IDS.nodeResourceGroup}`, scope: NODE_RESOURCE_GROUP_SCOPE }
    ])
    expect(await v2Nodes()).toEqual(V2_NODES)
    for (const n of V2_NODES) expect(isReady(await node(env, n))).toBe(true)
    expect(JSON.parse(main.outputs.nodes)).toEqual(V2_NODES.map(n => ({ node: n, os: 'Linux', kind: 'v2' })))
    expect(main.summary).toContain('| Linux | Virtual Nodes v2 | `aci-virtual-nodes-virtualnode-0` | ✅ Ready')
    // The sample's container group, tagged with this cluster's kube-system UID through v2's customtags annotation.
    const uid = (await env.core.readNamespace({ name: 'kube-system' })).metadata?.uid ?? ''
    const groups = env.azure.aci.groups()
    expect(groups).toHaveLength(1)
    expect(groups[0]).toMatchObject({ resourceGroup: IDS.nodeResourceGroup, state: 'Running', tags: { 'aks-aci-connector-action-cluster': uid } })
    expect(JSON.parse(main.outputs['sample-pod-ips'])).toEqual({ linux: [groups[0]!.ip] })
    // In the delegated subnet the action made: a private address of 10.225.0.0/16.
    expect(groups[0]!.ip).toMatch(/^10\.225\.0\.\d+$/)

    // A later step's pod, placed with the placement output.
    const placement = JSON.parse(main.outputs.placement).linux as {
      nodeSelector: Record<string, string>
      tolerations: object[]
      annotations: Record<string, string>
    }
    await env.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'later-step', annotations: placement.annotations },
        spec: {
          nodeSelector: placement.nodeSelector,
          tolerations: placement.tolerations,
          containers: [{ name: 'app', image: 'mcr.microsoft.com/azuredocs/aci-helloworld', resources: { requests: { cpu: '250m', memory: '256Mi' } } }]
        }
      }
    })
    const later = await waitFor('the later pod Running on v2', async () => {
      const p = await env.core.readNamespacedPod({ name: 'later-step', namespace: 'default' })
      return p.status?.phase === 'Running' ? p : undefined
    })
    expect(V2_NODES).toContain(later.spec?.nodeName)
    expect(env.azure.aci.groups()).toHaveLength(2)

    const againBefore = writes().length
    const again = await run(inputs)
    expectSuccess(again)
    expect(again.log).toContain('Extension aci-virtual-nodes is Succeeded with 2 node(s): no change.')
    // Converged: nothing in Azure is written again (no extension or subnet PUT, no role).
    expect(writes().slice(againBefore)).toEqual([])

    const dryBefore = writes().length
    const dry = await run({ command: 'remove', 'virtual-node-kind': 'v2', 'dry-run': 'true' })
    expectSuccess(dry)
    expect(JSON.parse(dry.outputs.swept)).toMatchObject({ dryRun: true, extensions: ['aci-virtual-nodes'], nodes: V2_NODES })
    expect(writes().slice(dryBefore)).toEqual([])
    expect(await v2Nodes()).toEqual(V2_NODES)
    expect(env.azure.aci.groups()).toHaveLength(2)

    const removed = await removeV2()
    expect(await v2Nodes()).toEqual([])
    expect(env.azure.aci.groups()).toEqual([])
    // The extension's identity went with it, so the role granted to it went too.
    expect(v2Grants()).toEqual([])
    expect(removed.log).toMatch(/role assignment "Virtual nodes on ACI \(aks-aci-connector-action\) \S+" on \S+ for \S+: removed/)
    await waitFor('no pod left in default', async () => (await env.core.listNamespacedPod({ namespace: 'default' })).items.length === 0 || undefined)
  })

  it('os-type Both with v2: Linux from v2, Windows from the real connector, both samples; cleanup: true removes it all in the post step', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    const { main, post } = await job(
      env,
      { ...OIDC_SIGN_IN, 'virtual-node-kind': 'v2', 'os-type': 'Both', 'deploy-samples': 'true', 'grant-connector-role': 'true', cleanup: 'true' },
      { failLaterStep: true }
    )
    expectSuccess(main)
    expect(JSON.parse(main.outputs.nodes)).toEqual(
      expect.arrayContaining([
        { node: WINDOWS_NODE, os: 'Windows', kind: 'connector' },
        { node: V2_NODES[0], os: 'Linux', kind: 'v2' }
      ])
    )
    const ips = JSON.parse(main.outputs['sample-pod-ips']) as { linux: string[]; windows: string[] }
    expect(ips.linux).toHaveLength(1)
    expect(Object.keys(ips).sort()).toEqual(['linux', 'windows'])
    // Each sample ran on its own kind of node (the post step has removed them since).
    expect(main.log).toMatch(new RegExp(`aci-helloworld: aci-helloworld-\\S+ ${ips.linux[0]!.replace(/\./g, '\\.')} on ${V2_NODES[0]}`))
    expect(main.log).toMatch(new RegExp(`nanoserver-iis: nanoserver-iis-\\S+ +on ${WINDOWS_NODE}`))
    expect(post?.log).toContain('extension aci-virtual-nodes: removed')
    expectSuccess(post)
    expect(env.azure.state().extensions).toEqual([])
    expect(await v2Nodes()).toEqual([])
    expect(await node(env, WINDOWS_NODE)).toBeUndefined()
    expect(await releasesIn(env)).toEqual([])
    expect(env.azure.aci.groups()).toEqual([])
    await expectNoSecretLeak(env, [main, post])
  })

  it('an extension whose provisioning fails is reported with its message and what is left; a remove takes it', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    env.azure.knobs.failNextExtension('Helm installation failed : Unable to create the virtualnode StatefulSet : timed out waiting for the condition')
    const result = await run({ 'virtual-node-kind': 'v2', 'grant-connector-role': 'true' })
    expect(result.exitCode).toBe(1)
    expect(result.log).toContain('Extension aci-virtual-nodes (microsoft.virtualnodes) ended Failed:')
    expect(result.log).toContain('Helm installation failed : Unable to create the virtualnode StatefulSet')
    expect(result.log).toContain('Installed so far: Virtual Nodes v2 extension aci-virtual-nodes (created by this run)')
    await removeV2()
  })

  it('a refusal that goes away mid-wait (an API server restart, its authorization caches filling) is not reported as missing read access', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    // The nodes come only after the restart, so the action is waiting on its watches through it.
    env.v2.knobs.registerNodes = false
    const rbac = env.cluster.kc.makeApiClient(RbacAuthorizationV1Api)
    const binding = await rbac.readClusterRoleBinding({ name: USER_BINDING })
    let result: StepResult | undefined
    try {
      const running = run({ 'virtual-node-kind': 'v2', 'grant-connector-role': 'true', 'wait-timeout': '5m' }).then(r => (result = r))
      await waitFor('the extension provisioned', async () => env.azure.state().extensions.some(e => e.state === 'Succeeded') || undefined, 120_000)
      await sleep(2_000)
      // A restarted API server refuses (403) what RBAC allows until its caches have synced; that
      // moment is a fraction of a second here, so the binding is taken away for a few seconds
      // around the restart to make the refusal certain to be seen.
      await rbac.deleteClusterRoleBinding({ name: USER_BINDING })
      await env.cluster.restartApiServer()
      await sleep(4_000)
      await rbac.createClusterRoleBinding({ body: { metadata: { name: USER_BINDING }, roleRef: binding.roleRef, subjects: binding.subjects } })
      // The extension's agent registers its node now (what the extension manager did at install, once the nodes can come).
      env.v2.knobs.registerNodes = true
      const extension = env.azure.state().extensions.find(e => e.name === 'aci-virtual-nodes')
      env.v2.installed('aci-virtual-nodes', extension?.settings ?? {})
      await running
    } finally {
      env.v2.knobs.registerNodes = true
      await rbac
        .readClusterRoleBinding({ name: USER_BINDING })
        .catch(() => rbac.createClusterRoleBinding({ body: { metadata: { name: USER_BINDING }, roleRef: binding.roleRef, subjects: binding.subjects } }))
    }
    expectSuccess(result ?? null)
    expect(result?.log).toMatch(/Watching \S+ was refused for \d+ s and is allowed again: a transient refusal/)
    expect(result?.log).not.toContain('may lack read access')
    await removeV2()
  })

  it('a v2 node whose infrastructure pod cannot pull its image fails the wait at once with the reason', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    // The nodes' StatefulSet pods (node name = pod name) run on the agent node, whose
    // kubelet cannot pull an image tag no registry has: it reports ErrImagePull, then ImagePullBackOff.
    env.v2.knobs.registerNodes = false
    try {
      await env.core.createNamespace({ body: { metadata: { name: 'vn-system' } } }).catch(() => undefined)
      await env.core.createNamespacedPod({
        namespace: 'vn-system',
        body: {
          metadata: { name: V2_NODES[0] },
          spec: { containers: [{ name: 'kubelet', image: 'mcr.microsoft.com/aci/virtual-node-2-kubelet:no-such-tag' }] }
        }
      })
      const started = Date.now()
      const result = await run({ 'virtual-node-kind': 'v2', 'grant-connector-role': 'true', 'wait-timeout': '5m' })
      expect(result.exitCode).toBe(1)
      expect(result.log).toMatch(
        /the infrastructure pod vn-system\/aci-virtual-nodes-virtualnode-0 of v2 node aci-virtual-nodes-virtualnode-0 cannot start: container kubelet is (ErrImagePull|ImagePullBackOff)/
      )
      expect(result.log).toContain('The extension stays installed')
      expect(Date.now() - started).toBeLessThan(120_000)
    } finally {
      env.v2.knobs.registerNodes = true
      await env.core.deleteNamespacedPod({ name: V2_NODES[0]!, namespace: 'vn-system', gracePeriodSeconds: 0 }).catch(() => undefined)
    }
    await removeV2()
  })

  it('sweep takes a v2 extension whose nodes are dead and the container groups they left; a dry run only lists them', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    const result = await run({ 'virtual-node-kind': 'v2', 'deploy-samples': 'true', 'grant-connector-role': 'true' })
    expectSuccess(result)
    expect(env.azure.aci.groups()).toHaveLength(1)
    // The agent dies; its node has been NotReady for 10 minutes (the node lifecycle controller would say so after 40 s).
    env.v2.crash('aci-virtual-nodes')
    const long = new Date(Date.now() - 10 * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z')
    await api(
      env.cluster.kc,
      'PATCH',
      `/api/v1/nodes/${V2_NODES[0]}/status`,
      {
        status: {
          conditions: [
            {
              type: 'Ready',
              status: 'Unknown',
              reason: 'NodeStatusUnknown',
              message: 'Kubelet stopped posting node status.',
              lastHeartbeatTime: long,
              lastTransitionTime: long
            }
          ]
        }
      },
      SMP
    )

    const before = writes().length
    const dry = await run({ command: 'sweep', 'connector-name': '*', 'virtual-node-kind': 'v2', 'dry-run': 'true' })
    expectSuccess(dry)
    const group = env.azure.aci.groups()[0]!
    expect(JSON.parse(dry.outputs.swept)).toMatchObject({
      dryRun: true,
      extensions: ['aci-virtual-nodes'],
      nodes: [V2_NODES[0]],
      containerGroups: [`${IDS.nodeResourceGroup}/${group.name}`]
    })
    expect(writes().slice(before)).toEqual([])

    const swept = await run({ command: 'sweep', 'connector-name': '*', 'virtual-node-kind': 'v2' })
    expectSuccess(swept)
    expect(env.azure.state().extensions).toEqual([])
    expect(await v2Nodes()).toEqual([])
    expect(env.azure.aci.groups()).toEqual([])
    // What the scheduled job's output says went: the same items the dry run listed.
    expect(JSON.parse(swept.outputs.swept)).toMatchObject({
      dryRun: false,
      extensions: ['aci-virtual-nodes'],
      nodes: [V2_NODES[0]],
      containerGroups: [`${IDS.nodeResourceGroup}/${group.name}`]
    })
  })
})
