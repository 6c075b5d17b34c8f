// The CI-step use: one step gives the job a cluster with virtual nodes (Linux and
// Windows), samples running on them; a re-run converges; bad input changes nothing.
import { stat } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { IDS, type LocalAks } from '../local-aks/local-aks.js'
import { runJob, runLaterStep } from '../local-aks/runner.js'
import { HELM3_VERSION } from '../local-aks/binaries.js'
import { secretForms } from '../../src/runner/secrets.js'
import {
  SECRETS,
  createNodeAgentDaemonSet,
  expectNoSecretLeak,
  expectSuccess,
  isReady,
  job,
  leftoverFiles,
  mainOnly,
  namespaceExists,
  node,
  releasesIn,
  secretSignIn,
  waitFor,
  useLocalAks
} from './helpers.js'

const LINUX_NODE = 'virtual-kubelet-aci-connector-linux-eastus'
const WINDOWS_NODE = 'virtual-kubelet-aci-connector-windows-eastus'

describe('CI step: install Both with samples', () => {
  let env: LocalAks
  useLocalAks({}, e => (env = e))

  it.each<{ label: string; inputs: Record<string, string>; problems: string[] }>([
    {
      label: 'malformed values',
      inputs: { 'os-type': 'Mac', 'wait-timeout': 'soon', location: 'east\nus' },
      problems: [
        'os-type: "Mac" is not valid; use Linux, Windows or Both.',
        'wait-timeout: "soon" is not valid',
        'location contains a line break or control character; give it as a single line'
      ]
    },
    {
      label: 'values the runner cannot honour',
      inputs: { environment: 'NoSuchCloud', 'chart-url': '/nonexistent/virtual-kubelet-azure-aci', 'azure-cli-version': '2.29.0' },
      problems: [
        'environment: "NoSuchCloud" is not a cloud the runner\'s az knows',
        'chart-url: "/nonexistent/virtual-kubelet-azure-aci" does not exist on the runner',
        'azure-cli-version: "2.29.0" is older than 2.30.0, the oldest az this action supports'
      ]
    }
  ])('rejects $label before any download, Azure request or tool process', async ({ inputs, problems }) => {
    const argvBefore = await env.argvLog()
    const { result, job: j } = await mainOnly(env, { ...secretSignIn, ...inputs })
    await j.cleanup()
    expect(result.exitCode).toBe(1)
    for (const p of problems) expect(result.log).toContain(p)
    expect(env.azure.requests).toEqual([])
    expect(env.mirror.requests).toEqual([])
    // No az, helm or kubectl was started (each goes through a recording shim).
    expect(await env.argvLog()).toBe(argvBefore)
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
      // A service principal signs in over HTTPS: az is neither needed nor reported.
      expect(main.outputs['az-path']).toBeUndefined()

      for (const [name, os] of [
        [LINUX_NODE, 'linux'],
        [WINDOWS_NODE, 'windows']
      ] as const) {
        const n = await node(env, name)
        expect(isReady(n), `${name} Ready`).toBe(true)
        // virtual-kubelet v1.11.0 node/nodeutil/controller.go and azure-aci v1.6.4 pkg/provider/vk_node.go
        expect(n?.metadata?.labels).toMatchObject({
          type: 'virtual-kubelet',
          'kubernetes.io/role': 'agent',
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': os,
          'beta.kubernetes.io/os': os
        })
        expect(n?.status?.nodeInfo?.kubeletVersion).toMatch(/-vk-azure-aci-/)
        expect(n?.status?.nodeInfo?.operatingSystem?.toLowerCase()).toBe(os)
        expect(n?.spec?.taints).toEqual(
          expect.arrayContaining([expect.objectContaining({ key: 'virtual-kubelet.io/provider', value: 'azure', effect: 'NoSchedule' })])
        )
      }

      const ips = JSON.parse(main.outputs['sample-pod-ips']) as Record<string, string[]>
      for (const [name, os, nodeName] of [
        ['aci-helloworld', 'linux', LINUX_NODE],
        ['nanoserver-iis', 'windows', WINDOWS_NODE]
      ] as const) {
        const pods = (await env.core.listNamespacedPod({ namespace: 'default', labelSelector: `app=${name}` })).items
        expect(pods.length, `${name} pods`).toBe(1)
        expect(pods[0].status?.phase).toBe('Running')
        expect(pods[0].spec?.nodeName).toBe(nodeName)
        expect(ips[os]).toEqual(os === 'linux' ? [pods[0].status?.podIP] : [])
        // Each sample is a container group of its own in the ACI resource group, tagged by the connector.
        const group = env.azure.aci.groups().find(g => g.tags.PodName === pods[0].metadata?.name)
        expect(group, `${name} container group`).toMatchObject({
          name: `default-${pods[0].metadata?.name}`,
          resourceGroup: IDS.nodeResourceGroup,
          osType: os === 'linux' ? 'Linux' : 'Windows',
          state: 'Running'
        })
        expect(group?.tags).toMatchObject({ NodeName: nodeName, Namespace: 'default', UID: pods[0].metadata?.uid })
      }
      // ACI gives a Linux group a public IP of its own; the connector reports none for Windows
      // (azure-aci v1.6.4 pkg/provider/containergroup_to_pod.go).
      expect(ips.linux[0]).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
      expect(env.azure.aci.groups()).toHaveLength(2)

      // The agent pool node must not have attracted the samples (it carries no virtual-kubelet label).
      expect((await node(env, env.agent.nodeName))?.metadata?.labels?.type).toBeUndefined()
      expect(await releasesIn(env)).toEqual(['aci-connector-linux-eastus', 'aci-connector-windows-eastus'])

      // ACI registered on the way, once.
      expect(env.azure.state()).toMatchObject({ providerState: 'Registered', registerCalls: 1 })

      expect(main.summary).toContain('install succeeded')
      expect(main.summary).toContain(`| Linux | ACI connector | \`${LINUX_NODE}\` | ✅ Ready`)
      expect(main.summary).toContain(`| Windows | ACI connector | \`${WINDOWS_NODE}\` | ✅ Ready`)
      // The node's own taint, not the passing not-ready one the node controller clears.
      expect(main.summary).toMatch(
        new RegExp(`\\| Linux \\| ACI connector \\| \`${LINUX_NODE}\` \\| ✅ Ready \\| [\\d.]+ s \\| \`virtual-kubelet\\.io/provider=azure:NoSchedule\` \\|`)
      )
      expect(main.summary).toMatch(/\| aci-helloworld \| default \| aci-helloworld-[a-z0-9-]+ \| \d+\.\d+\.\d+\.\d+ \|/)
      expect(main.summary).toContain('| **Total** |')
      expect(main.log).toContain('::group::Tools: kubectl, helm')

      // The kubeconfig lives 0600 for later steps; the post step deletes it and the private az config is gone already.
      expect(post).not.toBeNull()
      expect(post?.exitCode).toBe(0)
      await expect(stat(main.outputs['kubeconfig-path'])).rejects.toThrow()
      expect(await leftoverFiles(j.runnerTemp)).toEqual([])
      // cleanup was not asked for: the connectors stay after the job.
      expect(isReady(await node(env, LINUX_NODE))).toBe(true)
      await expectNoSecretLeak(env, [main, post])
      expect(await env.argvLog(), 'an az process for a service principal sign-in').not.toMatch(/^az /m)
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

  it('converges when run again, reusing the cached tools without downloading and without a helm upgrade', async () => {
    const before = env.mirror.requests.length
    const argvBefore = (await env.argvLog()).length
    const { main, job: j } = await job(env, { ...secretSignIn, 'os-type': 'both', 'deploy-samples': 'true' })
    await j.cleanup()
    expectSuccess(main)
    // Same chart version, same values, connectors there: nothing for helm to do.
    expect((await env.argvLog()).slice(argvBefore)).not.toMatch(/^helm /m)
    expect(main.log).toContain('Release aci-connector-linux-eastus is up to date (chart virtual-kubelet-azure-aci 1.6.4, same values): no helm upgrade.')
    expect(main.log).toContain('Release aci-connector-windows-eastus is up to date')
    expect(env.mirror.requests.slice(before).filter(r => !r.path.endsWith('.tgz'))).toEqual([])
    expect(main.log).toContain('kubectl v1.34.4 found in the tool cache')
    expect(await releasesIn(env)).toEqual(['aci-connector-linux-eastus', 'aci-connector-windows-eastus'])
    expect((await env.apps.listNamespacedDeployment({ namespace: 'default' })).items.map(d => d.metadata?.name).sort()).toEqual([
      'aci-helloworld',
      'nanoserver-iis'
    ])
    expect(env.azure.state().registerCalls).toBe(1)
  })

  it('the placement output puts a later step’s own Deployment on the virtual node (kubectl patch), where it runs as a container group', async () => {
    const { result, job: j } = await mainOnly(env, { ...secretSignIn, 'os-type': 'Both' })
    try {
      expectSuccess(result)
      const placement = JSON.parse(result.outputs.placement ?? '{}') as Record<
        string,
        { node: string; nodeSelector: Record<string, string>; tolerations: unknown[] }
      >
      expect(Object.keys(placement).sort()).toEqual(['linux', 'windows'])
      expect(placement.linux?.node).toBe(LINUX_NODE)
      expect(placement.windows?.nodeSelector['kubernetes.io/os']).toBe('windows')
      const kubectl = result.outputs['kubectl-path'] ?? 'kubectl'
      const kubeconfig = ['--kubeconfig', result.outputs['kubeconfig-path'] ?? '']
      // A later step: the user's own Deployment, then the placement merged into its pod template.
      const created = await runLaterStep(j, kubectl, ['create', 'deployment', 'my-app', '--image=mcr.microsoft.com/azuredocs/aci-helloworld', ...kubeconfig])
      expect(created.code, created.stderr).toBe(0)
      const { nodeSelector, tolerations } = placement.linux!
      const patched = await runLaterStep(j, kubectl, [
        'patch',
        'deployment',
        'my-app',
        '--type',
        'merge',
        '-p',
        JSON.stringify({ spec: { template: { spec: { nodeSelector, tolerations } } } }),
        ...kubeconfig
      ])
      expect(patched.code, patched.stderr).toBe(0)
      const group = await waitFor('my-app as a container group', async () =>
        env.azure.aci.groups().find(g => g.tags.PodName?.startsWith('my-app-') && g.state === 'Running')
      )
      expect(group.tags.NodeName).toBe(LINUX_NODE)
      await waitFor('my-app Running on the virtual node', async () => {
        const pods = (await env.core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=my-app' })).items
        return pods.some(p => p.spec?.nodeName === LINUX_NODE && p.status?.phase === 'Running')
      })
    } finally {
      await env.apps.deleteNamespacedDeployment({ name: 'my-app', namespace: 'default' }).catch(() => undefined)
      await waitFor('my-app gone from ACI', async () => !env.azure.aci.groups().some(g => g.tags.PodName?.startsWith('my-app-')))
      await waitFor(
        'my-app pods gone',
        async () => (await env.core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=my-app' })).items.length === 0
      )
      await j.cleanup()
    }
  })

  it('removes everything with command: remove, and a second remove succeeds and says so', async () => {
    // A DaemonSet that tolerates the virtual nodes' taint: a drain skips its pods, so only the
    // action's sweep over ARM deletes their container groups once the connectors are gone.
    await createNodeAgentDaemonSet(env)
    const daemonGroup = await waitFor("the DaemonSet pod's container group", async () =>
      env.azure.aci.groups().find(g => g.tags.PodName?.startsWith('node-agent-'))
    )
    expect(daemonGroup.tags.NodeName).toBe(LINUX_NODE)

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
    expect(env.agent.containers()).toEqual([])
    expect(env.azure.aci.groups(), 'container groups left in ACI').toEqual([])
    expect(first.main.summary).toContain('remove succeeded')
    expect(first.main.log).toContain(`Deleted container group ${daemonGroup.name} in ${IDS.nodeResourceGroup} (left by ${LINUX_NODE})`)
    expect(first.main.summary).toContain(`| \`${daemonGroup.name}\` |`)
    await env.apps.deleteNamespacedDaemonSet({ name: 'node-agent', namespace: 'default' })

    const second = await job(env, { ...secretSignIn, command: 'remove', 'os-type': 'Both' })
    await second.job.cleanup()
    expectSuccess(second.main)
    expect(second.main.log).toContain(
      'Nothing to remove: no Helm release of connector "aci-connector" (today\'s chart or the old CLI\'s) and no virtual node of it is in the cluster.'
    )
    expect(second.main.summary).toContain('Nothing to remove: no connector release or virtual node of this connector is installed.')
    expect(JSON.parse(second.main.outputs.swept)).toEqual({
      dryRun: false,
      releases: [],
      extensions: [],
      addons: [],
      nodes: [],
      containerGroups: [],
      notAttributable: []
    })
    await expectNoSecretLeak(env, [first.main, second.main])
  })

  it.each(['v4.3.1', HELM3_VERSION])(
    'helm %s with HELM_DEBUG, HELM_KUBECONTEXT and HELM_DRIVER in the job env: installs and removes on the action’s cluster, no form of a secret reaches the log, summary or outputs, and every form is masked',
    async helmVersion => {
      const inputs = {
        'helm-version': helmVersion,
        ...env.baseInputs(),
        ...secretSignIn,
        'connector-name': 'debug',
        'connector-client-id': IDS.connectorClientId,
        'connector-client-secret': IDS.connectorClientSecret
      }
      // What a user debugging a failure, or a job that also talks to another cluster, may have set for helm.
      const helmJobEnv = { ...env.actionEnv, HELM_DEBUG: 'true', HELM_KUBECONTEXT: 'some-other-context', HELM_DRIVER: 'configmap' }
      const run = await runJob({ inputs, env: helmJobEnv, toolCache: env.toolCache, timeoutMs: 8 * 60_000 })
      const removed = await runJob({
        inputs: { ...inputs, command: 'remove' },
        env: helmJobEnv,
        toolCache: env.toolCache,
        timeoutMs: 8 * 60_000
      })
      await run.job.cleanup()
      await removed.job.cleanup()
      expectSuccess(run.main)
      expectSuccess(removed.main)
      for (const secret of SECRETS) {
        for (const form of secretForms(secret)) {
          for (const step of [run.main, removed.main]) {
            const visible = step.rawLog
              .split('\n')
              .filter(l => !l.startsWith('::add-mask::'))
              .join('\n')
            expect(visible, `a form of a secret in the log: ${form.slice(0, 4)}…`).not.toContain(form)
            expect(step.summary).not.toContain(form)
            expect(JSON.stringify(step.outputs)).not.toContain(form)
          }
          expect(run.main.masks, 'every form is registered with the runner').toContain(form)
        }
      }
    }
  )
})
