// Teardown on a cluster several jobs share, and a teardown that drains before it deletes:
// two pull-request jobs on one cluster (v2 and the Windows connector at their default
// names), v2's drain, a post step that goes on past one kind's failure, a connector removal
// that fails before its drain, an unset node count, an extension still provisioning or
// already failed, and a sweep that keeps to older-than and the name glob.
import { describe, expect, it } from 'vitest'
import { AdmissionregistrationV1Api } from '@kubernetes/client-node'
import { api, SMP } from '../local-aks/kube-raw.js'
import { IDS, type LocalAks } from '../local-aks/local-aks.js'
import { runMain, runPost, type StepResult } from '../local-aks/runner.js'
import { expectSuccess, isReady, node, OIDC_SIGN_IN, oidcStep, releasesIn, useLocalAks, V2_READY_CLUSTER, waitFor } from './helpers.js'

const V2_NODES = ['aci-virtual-nodes-virtualnode-0', 'aci-virtual-nodes-virtualnode-1']
const WINDOWS_NODE = 'virtual-kubelet-aci-connector-windows-eastus'
const LINUX_NODE = 'virtual-kubelet-aci-connector-linux-eastus'
const EXTENSIONS_PATH = `/subscriptions/${IDS.subscriptionId}/resourceGroups/${IDS.resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${IDS.clusterName}/providers/Microsoft.KubernetesConfiguration/extensions`
const EXTENSION_PATH = `${EXTENSIONS_PATH}/aci-virtual-nodes`

interface Placement {
  nodeSelector: Record<string, string>
  tolerations: object[]
  annotations?: Record<string, string>
}

describe('teardown on a shared cluster, and a v2 teardown that drains first', () => {
  let env: LocalAks
  useLocalAks({ providerInitiallyRegistered: true }, e => (env = e))

  const run = (inputs: Record<string, string>): Promise<StepResult> => oidcStep(env, inputs)
  const v2Nodes = async (): Promise<string[]> =>
    (await env.core.listNode({ labelSelector: 'virtualization=virtualnode2' })).items.map(n => n.metadata?.name ?? '').sort()
  /** A pod of a later test step, placed with the install's placement output. */
  const placePod = async (name: string, placement: Placement, annotations = placement.annotations): Promise<void> => {
    await env.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name, annotations },
        spec: {
          nodeSelector: placement.nodeSelector,
          tolerations: placement.tolerations,
          containers: [{ name: 'app', image: 'mcr.microsoft.com/azuredocs/aci-helloworld', resources: { requests: { cpu: '250m', memory: '256Mi' } } }]
        }
      }
    })
  }
  const running = (name: string): Promise<string> =>
    waitFor(`${name} Running`, async () => {
      const p = await env.core.readNamespacedPod({ name, namespace: 'default' })
      return p.status?.phase === 'Running' ? (p.spec?.nodeName ?? '') : undefined
    })
  const removeEverything = async (): Promise<void> => {
    const removed = await run({ command: 'remove' })
    expectSuccess(removed)
    await env.core.deleteCollectionNamespacedPod({ namespace: 'default', gracePeriodSeconds: 0 }).catch(() => undefined)
    await env.apps.deleteCollectionNamespacedDeployment({ namespace: 'default' }).catch(() => undefined)
    expect(env.azure.state().extensions).toEqual([])
    expect(await releasesIn(env)).toEqual([])
  }

  it("two pull-request jobs on one cluster: the first job's cleanup leaves v2 and the Windows connector to the second, whose cleanup takes them", async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    // The README's pull-request example: a fixed cluster, v2 for Linux, the connector for Windows, cleanup: true.
    const inputs = { ...env.baseInputs(), ...OIDC_SIGN_IN, 'virtual-node-kind': 'v2', 'os-type': 'Both', 'grant-connector-role': 'true', cleanup: 'true' }
    const first = await runMain({ inputs, env: env.actionEnv, toolCache: env.toolCache, timeoutMs: 8 * 60_000 })
    expectSuccess(first.result)
    const second = await runMain({ inputs, env: env.actionEnv, toolCache: env.toolCache, timeoutMs: 8 * 60_000 })
    expectSuccess(second.result)
    // The second job's test pods, mid-test on both kinds of node.
    const placement = JSON.parse(second.result.outputs.placement) as { linux: Placement; windows: Placement }
    await placePod('second-linux', placement.linux)
    expect(V2_NODES).toContain(await running('second-linux'))

    const firstPost = await runPost(first.job, { jobStatus: 'success' })
    await first.job.cleanup()
    expectSuccess(firstPost)
    expect(env.azure.state().extensions).toMatchObject([{ name: 'aci-virtual-nodes', state: 'Succeeded' }])
    expect(isReady(await node(env, WINDOWS_NODE))).toBe(true)
    expect(await releasesIn(env)).toEqual(['aci-connector-windows-eastus'])
    expect(await running('second-linux')).toMatch(/^aci-virtual-nodes-virtualnode-/)
    expect(firstPost.log).toMatch(/extension aci-virtual-nodes: kept - still used by run \S+/)
    expect(firstPost.log).toMatch(/release default\/aci-connector-windows-eastus: kept - still used by run \S+/)

    const secondPost = await runPost(second.job, { jobStatus: 'success' })
    await second.job.cleanup()
    expectSuccess(secondPost)
    expect(env.azure.state().extensions).toEqual([])
    expect(await v2Nodes()).toEqual([])
    expect(await releasesIn(env)).toEqual([])
    expect(await node(env, WINDOWS_NODE)).toBeUndefined()
    expect(env.azure.aci.groups()).toEqual([])
  })

  it("a v2 remove cordons before it deletes: a Deployment's pods do not come back onto v2, and no container group is left billing", async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    const installed = await run({ 'virtual-node-kind': 'v2', 'virtual-nodes': '2', 'grant-connector-role': 'true' })
    expectSuccess(installed)
    const placement = (JSON.parse(installed.outputs.placement) as { linux: Placement }).linux
    // A workload of a later step (a Deployment: deleted pods come back), and a pod placed without the annotation.
    await env.apps.createNamespacedDeployment({
      namespace: 'default',
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' }, annotations: placement.annotations },
            spec: {
              nodeSelector: placement.nodeSelector,
              tolerations: placement.tolerations,
              containers: [{ name: 'app', image: 'mcr.microsoft.com/azuredocs/aci-helloworld', resources: { requests: { cpu: '250m', memory: '256Mi' } } }]
            }
          }
        }
      }
    })
    await placePod('no-annotation', placement, {})
    await waitFor('3 container groups', async () => env.azure.aci.groups().filter(g => g.state === 'Running').length === 3 || undefined)

    const removed = await run({ command: 'remove', 'virtual-node-kind': 'v2' })
    expectSuccess(removed)
    expect(env.azure.state().extensions).toEqual([])
    expect(await v2Nodes()).toEqual([])
    // The Deployment's replacements had nowhere to go: Pending, not on a v2 node whose agent is gone.
    const pods = (await env.core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=web' })).items
    expect(pods.every(p => !p.spec?.nodeName || !V2_NODES.includes(p.spec.nodeName))).toBe(true)
    expect(env.azure.aci.groups()).toEqual([])
    await env.apps.deleteNamespacedDeployment({ name: 'web', namespace: 'default' })
  })

  it('the post step goes on to the Windows connector when its v2 part fails, and says what is left', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    const inputs = { ...env.baseInputs(), ...OIDC_SIGN_IN, 'virtual-node-kind': 'v2', 'os-type': 'Both', 'grant-connector-role': 'true', cleanup: 'true' }
    const main = await runMain({ inputs, env: env.actionEnv, toolCache: env.toolCache, timeoutMs: 8 * 60_000 })
    expectSuccess(main.result)
    // ARM refuses every read of the cluster's extensions from here on (a role taken away mid-job): v2's part cannot even look.
    env.azure.knobs.failNext(50, 403, 0, EXTENSIONS_PATH)
    const post = await runPost(main.job, { jobStatus: 'failure' })
    await main.job.cleanup()
    expect(post?.exitCode).toBe(1)
    expect(post?.log).toContain('403')
    // The connector's part ran all the same.
    expect(await releasesIn(env)).toEqual([])
    expect(await node(env, WINDOWS_NODE)).toBeUndefined()
    expect(env.azure.state().extensions).toMatchObject([{ name: 'aci-virtual-nodes' }])
    env.azure.knobs.clearFailures()
    await removeEverything()
  })

  it('a connector removal that fails before its drain leaves the container groups of the pods still running on the node', async () => {
    const installed = await run({ 'grant-connector-role': 'true' })
    expectSuccess(installed)
    const placement = (JSON.parse(installed.outputs.placement) as { linux: Placement }).linux
    await placePod('still-running', placement)
    expect(await running('still-running')).toBe(LINUX_NODE)
    const group = await waitFor('its container group', async () => env.azure.aci.groups().find(g => g.tags.PodName === 'still-running'))
    // An admission policy refuses to cordon the node (as a cluster policy, or a webhook that is down, would): the drain cannot start.
    const admission = env.cluster.kc.makeApiClient(AdmissionregistrationV1Api)
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: 'no-cordon' },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['nodes'], resourceNames: [LINUX_NODE] }]
          },
          validations: [{ expression: '!has(object.spec.unschedulable) || object.spec.unschedulable == false', message: 'cordoning this node is not allowed' }]
        }
      }
    })
    await admission.createValidatingAdmissionPolicyBinding({
      body: { metadata: { name: 'no-cordon' }, spec: { policyName: 'no-cordon', validationActions: ['Deny'] } }
    })
    const cordon = (unschedulable: boolean): Promise<unknown> => api(env.cluster.kc, 'PATCH', `/api/v1/nodes/${LINUX_NODE}`, { spec: { unschedulable } }, SMP)
    try {
      // The API server loads the policy a moment after it is made.
      await waitFor('the policy in force', async () => {
        const refused = await cordon(true).then(
          () => false,
          () => true
        )
        if (!refused) await cordon(false)
        return refused || undefined
      })
      const removed = await run({ command: 'remove', 'virtual-node-kind': 'connector' })
      expect(removed.exitCode).toBe(1)
      // The pod still runs, and so does its container group.
      expect(env.azure.aci.groups().map(g => g.name)).toContain(group.name)
      expect(await running('still-running')).toBe(LINUX_NODE)
      // The API server's own reason, and what was kept and why.
      expect(removed.log).toContain('cordoning this node is not allowed')
      expect(removed.log).toContain(`container group ${group.resourceGroup}/${group.name}: kept - its node ${LINUX_NODE} is still there`)
    } finally {
      await admission.deleteValidatingAdmissionPolicyBinding({ name: 'no-cordon' })
      await admission.deleteValidatingAdmissionPolicy({ name: 'no-cordon' })
    }
    // The API server drops the policy a moment after it is deleted.
    await waitFor('the policy gone', async () => {
      const allowed = await cordon(true).then(
        () => true,
        () => false
      )
      if (allowed) await cordon(false)
      return allowed || undefined
    })
    await removeEverything()
    expect(env.azure.aci.groups()).toEqual([])
  })

  it('virtual-nodes left unset keeps an existing extension as it is: no PUT, no scale down', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    expectSuccess(await run({ 'virtual-node-kind': 'v2', 'virtual-nodes': '2', 'grant-connector-role': 'true' }))
    const puts = (): number => env.azure.requests.filter(r => r.method === 'PUT' && r.path.startsWith(EXTENSION_PATH)).length
    const before = puts()
    const again = await run({ 'virtual-node-kind': 'v2', 'grant-connector-role': 'true' })
    expectSuccess(again)
    expect(puts()).toBe(before)
    expect(env.azure.state().extensions).toMatchObject([{ name: 'aci-virtual-nodes', settings: { replicaCount: '2' } }])
    expect(await v2Nodes()).toEqual(V2_NODES)
    expect(JSON.parse(again.outputs.nodes)).toEqual(V2_NODES.map(n => ({ node: n, os: 'Linux', kind: 'v2' })))
    await removeEverything()
  })

  it('a remove waits out an extension still being created before it deletes it, and a Failed extension shown a moment after its DELETE is not a failed deletion', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    env.azure.knobs.setExtensionOperationMs(15_000)
    const deletesBefore = env.azure.state().extensionDeletes.length
    try {
      const install = run({ 'virtual-node-kind': 'v2', 'grant-connector-role': 'true' })
      await waitFor('the extension Creating', async () => env.azure.state().extensions.some(e => e.state === 'Creating') || undefined)
      const removed = await run({ command: 'remove', 'virtual-node-kind': 'v2' })
      expectSuccess(removed)
      await install
      expect(env.azure.state().extensionDeletes.slice(deletesBefore)).toEqual([{ name: 'aci-virtual-nodes', stateBefore: 'Succeeded' }])
      expect(env.azure.state().extensions).toEqual([])
    } finally {
      env.azure.knobs.setExtensionOperationMs(1_500)
    }

    env.azure.knobs.failNextExtension('Helm installation failed : timed out waiting for the condition')
    const failed = await run({ 'virtual-node-kind': 'v2', 'grant-connector-role': 'true' })
    expect(failed.exitCode).toBe(1)
    // ARM shows the state from before for the first reads after the DELETE.
    env.azure.knobs.lagReadsAfterDelete(2)
    const removed = await run({ command: 'remove', 'virtual-node-kind': 'v2' })
    expectSuccess(removed)
    expect(removed.log).toContain('extension aci-virtual-nodes: removed')
    expect(env.azure.state().extensions).toEqual([])
  })

  it('a sweep keeps to older-than and the name glob for v2 as it does for connectors', async () => {
    env.azure.knobs.setClusterNetwork(V2_READY_CLUSTER)
    expectSuccess(await run({ 'virtual-node-kind': 'v2', 'grant-connector-role': 'true' }))
    // Its agent dies; its node has been NotReady for 10 minutes: dead, as a sweep takes it.
    env.v2.crash('aci-virtual-nodes')
    const long = new Date(Date.now() - 10 * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z')
    const notReady = {
      type: 'Ready',
      status: 'Unknown',
      reason: 'NodeStatusUnknown',
      message: 'Kubelet stopped posting node status.',
      lastHeartbeatTime: long,
      lastTransitionTime: long
    }
    await api(env.cluster.kc, 'PATCH', `/api/v1/nodes/${V2_NODES[0]}/status`, { status: { conditions: [notReady] } }, SMP)

    // Made a minute ago: not older than a day (told the kind, and not).
    expectSuccess(await run({ command: 'sweep', 'connector-name': '*', 'older-than': '1d', 'virtual-node-kind': 'v2' }))
    expectSuccess(await run({ command: 'sweep', 'connector-name': '*', 'older-than': '1d' }))
    // Not named like the glob.
    expectSuccess(await run({ command: 'sweep', 'connector-name': 'pr-*', 'virtual-node-kind': 'v2' }))
    expect(env.azure.state().extensions).toMatchObject([{ name: 'aci-virtual-nodes', state: 'Succeeded' }])
    expect(await v2Nodes()).toEqual([V2_NODES[0]])

    const swept = await run({ command: 'sweep', 'connector-name': 'aci-*' })
    expectSuccess(swept)
    expect(JSON.parse(swept.outputs.swept)).toMatchObject({ extensions: ['aci-virtual-nodes'], nodes: [V2_NODES[0]] })
    expect(env.azure.state().extensions).toEqual([])
    expect(await v2Nodes()).toEqual([])
  })
})
