// The CI-step use: one step gives the job a cluster with virtual nodes (Linux and
// Windows), samples running on them; a re-run converges; bad input changes nothing.
import { stat } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalAks, IDS, type LocalAks } from '../local-aks/local-aks.js'
import { expectNoSecretLeak, expectSuccess, isReady, job, leftoverFiles, mainOnly, namespaceExists, node, releasesIn, secretSignIn } from './helpers.js'

const LINUX_NODE = 'virtual-kubelet-aci-connector-linux-eastus'
const WINDOWS_NODE = 'virtual-kubelet-aci-connector-windows-eastus'

describe('CI step: install Both with samples', () => {
  let env: LocalAks
  beforeAll(async () => {
    env = await startLocalAks({ log: m => console.log(`[local-aks] ${m}`) })
  })
  afterAll(async () => {
    await env?.stop()
  })

  it('rejects bad input before any Azure or download request', async () => {
    const { result, job: j } = await mainOnly(env, { ...secretSignIn, 'os-type': 'Mac', 'wait-timeout': 'soon' })
    await j.cleanup()
    expect(result.exitCode).toBe(1)
    expect(result.log).toContain('os-type: "Mac" is not valid; use Linux, Windows or Both.')
    expect(result.log).toContain('wait-timeout: "soon" is not valid')
    expect(env.azure.requests).toEqual([])
    expect(env.mirror.requests).toEqual([])
  })

  it('installs both connectors, the nodes turn Ready with the virtual node labels and taint, samples run on them', async () => {
    const { main, post, job: j } = await job(env, { ...secretSignIn, 'os-type': 'Both', 'deploy-samples': 'true' })
    try {
      expectSuccess(main)
      expect(JSON.parse(main.outputs['node-names'])).toEqual([LINUX_NODE, WINDOWS_NODE])
      expect(main.outputs['linux-node-name']).toBe(LINUX_NODE)
      expect(main.outputs['windows-node-name']).toBe(WINDOWS_NODE)
      expect(JSON.parse(main.outputs['release-names'])).toEqual(['aci-connector-linux-eastus', 'aci-connector-windows-eastus'])
      expect(main.outputs['helm-path']).toContain(j.toolCache)
      expect(main.outputs['kubectl-path']).toContain(j.toolCache)
      expect(main.outputs['az-path']).toMatch(/az$/)

      for (const [name, os] of [[LINUX_NODE, 'linux'], [WINDOWS_NODE, 'windows']] as const) {
        const n = await node(env, name)
        expect(isReady(n), `${name} Ready`).toBe(true)
        expect(n?.metadata?.labels).toMatchObject({ type: 'virtual-kubelet', 'kubernetes.io/role': 'agent', 'kubernetes.io/hostname': name })
        expect(n?.status?.nodeInfo?.operatingSystem?.toLowerCase()).toBe(os)
        expect(n?.spec?.taints).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'virtual-kubelet.io/provider', value: 'azure', effect: 'NoSchedule' })]))
      }

      const ips = JSON.parse(main.outputs['sample-pod-ips']) as Record<string, string[]>
      for (const [name, os, nodeName] of [['aci-helloworld', 'linux', LINUX_NODE], ['nanoserver-iis', 'windows', WINDOWS_NODE]] as const) {
        const pods = (await env.core.listNamespacedPod({ namespace: 'default', labelSelector: `app=${name}` })).items
        expect(pods.length, `${name} pods`).toBe(1)
        expect(pods[0].status?.phase).toBe('Running')
        expect(pods[0].spec?.nodeName).toBe(nodeName)
        expect(ips[os]).toEqual([pods[0].status?.podIP])
        expect(ips[os][0]).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
      }

      // The agent pool node must not have attracted the samples (it carries no virtual-kubelet label).
      expect((await node(env, env.agent.nodeName))?.metadata?.labels?.type).toBeUndefined()
      expect(await releasesIn(env)).toEqual(['aci-connector-linux-eastus', 'aci-connector-windows-eastus'])

      // ACI registered on the way, once.
      expect(env.azure.state()).toMatchObject({ providerState: 'Registered', registerCalls: 1 })

      expect(main.summary).toContain('install succeeded')
      expect(main.summary).toContain(`| Linux | \`${LINUX_NODE}\` | ✅ Ready`)
      expect(main.summary).toContain(`| Windows | \`${WINDOWS_NODE}\` | ✅ Ready`)
      // The node's own taint, not the passing not-ready one the node controller clears.
      expect(main.summary).toMatch(new RegExp(`\\| Linux \\| \`${LINUX_NODE}\` \\| ✅ Ready \\| [\\d.]+ s \\| \`virtual-kubelet\\.io/provider=azure:NoSchedule\` \\|`))
      expect(main.summary).toMatch(/\| aci-helloworld \| default \| aci-helloworld-[a-z0-9-]+ \| \d+\.\d+\.\d+\.\d+ \|/)
      expect(main.summary).toContain('| **Total** |')
      expect(main.log).toContain('::group::Tools: az, kubectl, helm')

      // The kubeconfig lives 0600 for later steps; the post step deletes it and the private az config is gone already.
      expect(post).not.toBeNull()
      expect(post?.exitCode).toBe(0)
      await expect(stat(main.outputs['kubeconfig-path'])).rejects.toThrow()
      expect(await leftoverFiles(j.runnerTemp)).toEqual([])
      // cleanup was not asked for: the connectors stay after the job.
      expect(isReady(await node(env, LINUX_NODE))).toBe(true)
      await expectNoSecretLeak(env, [main, post])
      expect(await env.argvLog()).toMatch(/^az login --service-principal --username \S+ --tenant \S+ --password=@\S+/m)
      expect(await env.argvLog()).toMatch(/^helm upgrade --install aci-connector-windows-eastus /m)
    } finally {
      await j.cleanup()
    }
  })

  it('keeps the kubeconfig 0600 while the job runs', async () => {
    const { result, job: j } = await mainOnly(env, { ...secretSignIn, 'os-type': 'Both' })
    try {
      expect(result.exitCode).toBe(0)
      expect((await stat(result.outputs['kubeconfig-path'])).mode & 0o777).toBe(0o600)
    } finally {
      await j.cleanup()
    }
  })

  it('converges when run again, reusing the cached tools without downloading', async () => {
    const before = env.mirror.requests.length
    const { main, job: j } = await job(env, { ...secretSignIn, 'os-type': 'both', 'deploy-samples': 'true' })
    await j.cleanup()
    expectSuccess(main)
    expect(env.mirror.requests.slice(before).filter(r => !r.path.startsWith('/charts/'))).toEqual([])
    expect(main.log).toContain('kubectl v1.34.4 found in the tool cache')
    expect(await releasesIn(env)).toEqual(['aci-connector-linux-eastus', 'aci-connector-windows-eastus'])
    expect((await env.apps.listNamespacedDeployment({ namespace: 'default' })).items.map(d => d.metadata?.name).sort()).toEqual(['aci-helloworld', 'nanoserver-iis'])
    expect(env.azure.state().registerCalls).toBe(1)
  })

  it('removes everything with command: remove, and a second remove succeeds and says so', async () => {
    const first = await job(env, { ...secretSignIn, command: 'remove', 'os-type': 'Both' })
    await first.job.cleanup()
    expectSuccess(first.main)
    expect(await node(env, LINUX_NODE)).toBeUndefined()
    expect(await node(env, WINDOWS_NODE)).toBeUndefined()
    expect(await releasesIn(env)).toEqual([])
    expect(await namespaceExists(env, 'aci-connector-linux-eastus')).toBe(false)
    expect(await namespaceExists(env, 'aci-connector-windows-eastus')).toBe(false)
    expect((await env.apps.listNamespacedDeployment({ namespace: 'default' })).items).toEqual([])
    expect((await env.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${LINUX_NODE}` })).items).toEqual([])
    expect(env.agent.connectorProcesses()).toEqual([])
    expect(first.main.summary).toContain('remove succeeded')

    const second = await job(env, { ...secretSignIn, command: 'remove', 'os-type': 'Both' })
    await second.job.cleanup()
    expectSuccess(second.main)
    expect(second.main.log).toContain('Linux: nothing to remove (release aci-connector-linux-eastus and node virtual-kubelet-aci-connector-linux-eastus are not there)')
    expect(second.main.summary).toContain('| Windows | `aci-connector-windows-eastus` | was not there | was not there | 0 |')
    await expectNoSecretLeak(env, [first.main, second.main])
    void IDS
  })
})
