// Failures a user must be told about precisely, each made by the real connector and chart
// on the local AKS: a wrong secret, a connector that crash loops or whose image cannot be
// pulled, an identity without rights, a node that never turns Ready, a corrupted download.
// Plus Helm 3 and ARM throttling, which must just work.
import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { aksAzureJson, IDS, NODE_RESOURCE_GROUP_SCOPE, type LocalAks } from '../local-aks/local-aks.js'
import { HELM3_VERSION } from '../local-aks/binaries.js'
import { expectNoSecretLeak, expectSuccess, isReady, job, mainOnly, node, releasesIn, secretSignIn, setReleaseStatus, waitFor, useLocalAks } from './helpers.js'
import { sleep } from '../../src/util/async.js'
import { DEFAULT_CHART_URL } from '../../src/runner/inputs.js'

describe('failures that say what to do', () => {
  let env: LocalAks
  useLocalAks({}, e => (env = e))

  it('a wrong client secret fails the sign-in with the AADSTS reason, before anything is installed', async () => {
    const wrong = 'Wr0ng~secret.value-123456789012345'
    const { result, job: j } = await mainOnly(env, { ...secretSignIn, 'client-secret': wrong })
    await j.cleanup()
    expect(result.exitCode).toBe(1)
    expect(result.log).toContain(`Azure sign-in failed for client ${IDS.clientId} in tenant ${IDS.tenantId} (client secret, cloud LocalAzure)`)
    expect(result.log).toContain("The client secret is wrong: use the secret's Value (not its Secret ID)")
    expect(result.log).toContain('AADSTS7000215')
    expect(result.log).not.toMatch(/Please run:\s*az login/)
    expect(await releasesIn(env)).toEqual([])
    expect(await env.argvLog()).not.toMatch(/^helm /m)
    await expectNoSecretLeak(env, [result], [wrong])
  })

  it('a node whose azure.json cannot be read: init-validation crash-loops, the step fails fast with its log; fixed, a re-run converges', async () => {
    // init-validation exits when SetAuthConfig fails (azure-aci v1.6.4 cmd/init-container/main.go,
    // pkg/auth/auth_config.go "cannot get AKS credential config"), so the kubelet restarts it.
    const inputs = { ...secretSignIn, 'connector-name': 'badnode' }
    env.agent.writeNodeFile('/etc/kubernetes/azure.json', '{ "cloud": "AzurePublicCloud", ')
    const started = Date.now()
    try {
      const { main, job: j } = await job(env, { ...inputs, 'wait-timeout': '5m' })
      await j.cleanup()
      expect(main.exitCode).toBe(1)
      expect(Date.now() - started).toBeLessThan(120_000)
      expect(main.log).toContain('The Linux connector (release badnode-linux-eastus) is failing: container init-validation is CrashLoopBackOff')
      expect(main.log).toMatch(/last log lines of badnode-linux-eastus-virtual-kubelet-azure-aci-\S+ \(container init-validation\)/)
      expect(main.log).toContain('cannot get AKS credential config')
      expect(main.log).toContain('Installed so far: release badnode-linux-eastus')
      expect(main.summary).toContain('install failed')
      expect(main.summary).toContain('> [!WARNING]')
    } finally {
      env.agent.writeNodeFile('/etc/kubernetes/azure.json', aksAzureJson())
    }
    const again = await job(env, inputs)
    await again.job.cleanup()
    expectSuccess(again.main)
    expect(isReady(await node(env, 'virtual-kubelet-badnode-linux-eastus'))).toBe(true)
  })

  it('a region the connector does not run in is refused before anything changes', async () => {
    const [argvBefore, azureBefore, mirrorBefore] = [await env.argvLog(), env.azure.requests.length, env.mirror.requests.length]
    const { result, job: j } = await mainOnly(env, { ...secretSignIn, location: 'antarctica' })
    await j.cleanup()
    expect(result.exitCode).toBe(1)
    expect(result.log).toContain('location: "antarctica" is not valid; the azure-aci connector runs only in the regions where ACI is offered')
    // Nothing started, nothing asked: no tool process, no Azure request, no download.
    expect(await env.argvLog()).toBe(argvBefore)
    expect(env.azure.requests.length).toBe(azureBefore)
    expect(env.mirror.requests.length).toBe(mirrorBefore)
    expect(await releasesIn(env)).not.toContain('aci-connector-linux-antarctica')
  })

  it('a connector image that cannot be pulled fails fast with the pull error; fixed, a re-run converges', async () => {
    const inputs = { ...secretSignIn, 'connector-name': 'badtag' }
    const { main, job: j } = await job(env, { ...inputs, 'image-tag': '9.9.9', 'wait-timeout': '5m' })
    await j.cleanup()
    expect(main.exitCode).toBe(1)
    expect(main.log).toContain(
      'The Linux connector (release badtag-linux-eastus) is failing: container badtag-linux-eastus-virtual-kubelet-azure-aci is ImagePullBackOff'
    )
    expect(main.log).toContain('mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet:9.9.9')

    const again = await job(env, inputs)
    await again.job.cleanup()
    expectSuccess(again.main)
    expect(isReady(await node(env, 'virtual-kubelet-badtag-linux-eastus'))).toBe(true)
  })

  it('a connector identity without a role is refused before anything is installed; grant-connector-role needs a sign-in identity that may assign roles', async () => {
    // The kubelet identity has no Azure role (AKS grants it none); the CI principal is
    // Contributor, which may not assign roles.
    const inputs = { ...secretSignIn, 'connector-identity': 'managed', 'connector-name': 'noauth' }
    const { main, job: j } = await job(env, inputs)
    await j.cleanup()
    expect(main.exitCode).toBe(1)
    expect(main.log).toContain(
      `The connector's identity (the cluster's kubelet identity ${IDS.kubeletIdentityClientId}) may not create container groups in resource group ${IDS.nodeResourceGroup}: it needs Microsoft.ContainerInstance/containerGroups/write there`
    )
    expect(main.log).toContain(
      `Nothing was installed. Assign it the Contributor role there: \`az role assignment create --assignee ${IDS.kubeletIdentityClientId} --role Contributor --scope /subscriptions/${IDS.subscriptionId}/resourceGroups/${IDS.nodeResourceGroup}\``
    )
    expect(await releasesIn(env)).not.toContain('noauth-linux-eastus')
    expect(await env.argvLog()).not.toMatch(/^helm upgrade --install noauth-/m)

    const grant = await job(env, { ...inputs, 'grant-connector-role': 'true' })
    await grant.job.cleanup()
    expect(grant.main.exitCode).toBe(1)
    expect(grant.main.log).toContain(
      `grant-connector-role: the sign-in identity may not assign roles on /subscriptions/${IDS.subscriptionId}/resourceGroups/${IDS.nodeResourceGroup} (it needs Microsoft.Authorization/roleAssignments/write there`
    )
    expect(await releasesIn(env)).not.toContain('noauth-linux-eastus')

    // Given the role by someone who may, the same step converges.
    env.azure.assignRole({ clientId: IDS.kubeletIdentityClientId, role: 'Contributor', scope: NODE_RESOURCE_GROUP_SCOPE })
    try {
      const again = await job(env, inputs)
      await again.job.cleanup()
      expectSuccess(again.main)
      expect(again.main.log).toContain(`the cluster's kubelet identity ${IDS.kubeletIdentityClientId} may create container groups in ${IDS.nodeResourceGroup}.`)
      const removed = await job(env, { ...inputs, command: 'remove' })
      await removed.job.cleanup()
      expectSuccess(removed.main)
    } finally {
      env.azure.unassignRole({ clientId: IDS.kubeletIdentityClientId, role: 'Contributor', scope: NODE_RESOURCE_GROUP_SCOPE })
    }
  })

  it("a role taken away from a separate connector principal is caught once its node is Ready, with ARM's 403 and the role assignment to make", async () => {
    // Only the connector holds this principal's token, so the action cannot ask ARM before the
    // install; the real connector registers a Ready node and its first ACI call is refused.
    const contributor = { clientId: IDS.connectorClientId, role: 'Contributor', scope: NODE_RESOURCE_GROUP_SCOPE }
    const inputs = {
      ...secretSignIn,
      'connector-client-id': IDS.connectorClientId,
      'connector-client-secret': IDS.connectorClientSecret,
      'connector-name': 'lostrole'
    }
    env.azure.unassignRole(contributor)
    try {
      const started = Date.now()
      const { main, job: j } = await job(env, inputs)
      await j.cleanup()
      expect(main.exitCode).toBe(1)
      expect(Date.now() - started).toBeLessThan(60_000)
      expect(main.log).toContain(
        'The Linux connector (release lostrole-linux-eastus) is failing: the connector cannot list container groups in ACI (ARM answered 403: AuthorizationFailed: The client'
      )
      expect(main.log).toContain(
        `\`az role assignment create --assignee ${IDS.connectorClientId} --role Contributor --scope /subscriptions/${IDS.subscriptionId}/resourceGroups/${IDS.nodeResourceGroup}\``
      )
      const denied = env.azure.requests.find(
        r => r.host === 'management.azure.com' && r.status === 403 && r.path.includes('/providers/Microsoft.ContainerInstance/containerGroups')
      )
      expect(denied?.path).toContain(`/resourceGroups/${IDS.nodeResourceGroup}/`)
    } finally {
      env.azure.assignRole(contributor)
    }
    const removed = await job(env, { ...inputs, command: 'remove' })
    await removed.job.cleanup()
    expectSuccess(removed.main)
    await expectNoSecretLeak(env, [removed.main])
  })

  it("a connector identity that may read but not create container groups: the sample fails within seconds with ACI's 403", async () => {
    // Reader instead of Contributor: the connector's list works, creating a group is refused,
    // and virtual-kubelet marks the pod ProviderFailed (v1.11.0 node/pod.go handleProviderError).
    const contributor = { clientId: IDS.connectorClientId, role: 'Contributor', scope: NODE_RESOURCE_GROUP_SCOPE }
    const reader = { ...contributor, role: 'Reader' }
    const inputs = {
      ...secretSignIn,
      'connector-client-id': IDS.connectorClientId,
      'connector-client-secret': IDS.connectorClientSecret,
      'connector-name': 'readonly'
    }
    env.azure.unassignRole(contributor)
    env.azure.assignRole(reader)
    try {
      const started = Date.now()
      const { main, job: j } = await job(env, { ...inputs, 'deploy-samples': 'true', 'wait-timeout': '5m' })
      await j.cleanup()
      expect(main.exitCode).toBe(1)
      expect(Date.now() - started).toBeLessThan(90_000)
      expect(main.log).toMatch(
        /Sample aci-helloworld cannot run on the virtual node: pod aci-helloworld-\S+: ACI refused its container group: PUT https:\/\/management\.azure\.com\/subscriptions\/\S+\/containerGroups\/default-aci-helloworld-/
      )
      expect(main.log).toContain('ERROR CODE: AuthorizationFailed')
      expect(main.log).toContain(`az role assignment create --assignee ${IDS.connectorClientId} --role Contributor`)
      expect(env.azure.aci.groups().filter(g => g.tags.NodeName === 'virtual-kubelet-readonly-linux-eastus')).toEqual([])
    } finally {
      env.azure.unassignRole(reader)
      env.azure.assignRole(contributor)
    }
    const removed = await job(env, { ...inputs, command: 'remove' })
    await removed.job.cleanup()
    expectSuccess(removed.main)
    await expectNoSecretLeak(env, [removed.main])
  })

  it('a node that never turns Ready times out within wait-timeout for the whole step and says what it saw', async () => {
    // A fresh node whose registry never answers: the connector's images never arrive.
    env.agent.forgetPulledImages()
    env.agent.knobs.imagePullMs = Infinity
    try {
      const { main, job: j } = await job(env, { ...secretSignIn, 'connector-name': 'stuck', 'wait-timeout': '15s' })
      await j.cleanup()
      expect(main.exitCode).toBe(1)
      // One deadline for the step: the node wait gets what is left of the 15 s after sign-in, tools and helm.
      const waited = Number(
        /Virtual node virtual-kubelet-stuck-linux-eastus was not Ready after (\d+) s, what was left of wait-timeout \(node never registered\)/.exec(
          main.log
        )?.[1]
      )
      expect(waited).toBeGreaterThan(0)
      expect(waited).toBeLessThan(15)
      expect(main.log).toMatch(/pod stuck-linux-eastus-virtual-kubelet-azure-aci-\S+: phase Pending/)
      expect(main.log).toContain('kubectl -n stuck-linux-eastus logs deploy/stuck-linux-eastus-virtual-kubelet-azure-aci')
    } finally {
      env.agent.knobs.imagePullMs = 0
    }
  })

  it('a release left pending by an interrupted helm is put right, and the re-run converges', async () => {
    const inputs = { ...secretSignIn, 'connector-name': 'pending' }
    // Two revisions, as an interrupted upgrade needs: the second run changes a value (the
    // chart's own image tag, named explicitly), so it upgrades.
    for (const extra of [{}, { 'image-tag': '1.6.4' }] as Array<Record<string, string>>) {
      const r = await job(env, { ...inputs, ...extra })
      await r.job.cleanup()
      expectSuccess(r.main)
    }
    Object.assign(inputs, { 'image-tag': '1.6.4' })
    // Every later `helm upgrade` would say "another operation is in progress".
    const interruptions: Array<[string, string]> = [
      ['pending-upgrade', 'rolling it back to its last revision before upgrading.'], // a cancelled upgrade
      ['pending-install', 'uninstalling it before installing again.'], // a cancelled first install
      ['uninstalling', 'uninstalling it before installing again.'] // a cancelled remove or cleanup (helm uninstall stopped mid-way)
    ]
    for (const [status, remedy] of interruptions) {
      await setReleaseStatus(env, 'pending-linux-eastus', status)
      const again = await job(env, inputs)
      await again.job.cleanup()
      expectSuccess(again.main)
      expect(again.main.log).toContain(`Release pending-linux-eastus was left ${status} by an interrupted helm; ${remedy}`)
      expect(isReady(await node(env, 'virtual-kubelet-pending-linux-eastus'))).toBe(true)
    }

    const removed = await job(env, { ...inputs, command: 'remove' })
    await removed.job.cleanup()
    expectSuccess(removed.main)
    expect(await releasesIn(env)).not.toContain('pending-linux-eastus')
  })

  it('the load balancer drops every connection while the action waits: the watches resume and the install finishes', async () => {
    // A slow image pull (a fresh node) keeps the action in its wait while the connections are dropped.
    env.agent.forgetPulledImages()
    env.agent.knobs.imagePullMs = 7000
    try {
      const running = job(env, { ...secretSignIn, 'connector-name': 'dropped' })
      await waitFor(
        'the connector pod',
        async () => (await env.core.listNamespacedPod({ namespace: 'dropped-linux-eastus' }).catch(() => undefined))?.items.length
      )
      await sleep(1500) // helm has returned; the action is watching
      let dropped = 0
      for (let i = 0; i < 4; i++) {
        dropped += env.front.dropAll()
        await sleep(1000)
      }
      const { main, job: j } = await running
      await j.cleanup()
      expect(dropped, 'connections the action held open').toBeGreaterThanOrEqual(2)
      expectSuccess(main)
      expect(main.log).toMatch(/::debug::watch on \/api\/v1\/nodes ended \(.*\); resuming/)
      expect(main.log).toMatch(/::debug::watch on \/api\/v1\/namespaces\/dropped-linux-eastus\/pods ended \(.*\); resuming/)
      expect(main.log).toContain('virtual-kubelet-dropped-linux-eastus is Ready after')
      expect(isReady(await node(env, 'virtual-kubelet-dropped-linux-eastus'))).toBe(true)
    } finally {
      env.agent.knobs.imagePullMs = 0
    }
  })

  it('the load balancer drops every connection while a remove drains: the shared watches list again; the remove succeeds, or names what is left and a re-run leaves nothing', async () => {
    const node = 'virtual-kubelet-dropdrain-linux-eastus'
    const install = await job(env, { ...secretSignIn, 'connector-name': 'dropdrain', 'deploy-samples': 'true' })
    await install.job.cleanup()
    expectSuccess(install.main)
    // Slower ARM answers keep the connector deleting the sample's container group while the connections drop.
    env.azure.knobs.latencyMs = 700
    try {
      const running = job(env, { ...secretSignIn, command: 'remove', 'connector-name': 'dropdrain' })
      await waitFor('the cordon', async () => (await env.core.readNode({ name: node }).catch(() => undefined))?.spec?.unschedulable === true)
      let dropped = 0
      for (let i = 0; i < 4; i++) {
        dropped += env.front.dropAll()
        await sleep(700)
      }
      const { main, job: j } = await running
      await j.cleanup()
      expect(dropped, 'connections the action held open').toBeGreaterThanOrEqual(2)
      expect(main.log).toMatch(/::debug::watch \/api\/v1\/(pods|namespaces) ended \(.*\); listing again/)
      if (main.exitCode !== 0) {
        // A drop can also cut a one-shot request short (socket hang up): the step names what is left, and a re-run finishes.
        expect(main.log).toMatch(/Could not remove \d+ item\(s\)/)
        env.azure.knobs.latencyMs = 0
        const again = await job(env, { ...secretSignIn, command: 'remove', 'connector-name': 'dropdrain' })
        await again.job.cleanup()
        expectSuccess(again.main)
      }
      expect(await env.core.readNode({ name: node }).catch(() => undefined)).toBeUndefined()
      expect(env.azure.aci.groups().filter(g => g.tags?.NodeName === node)).toEqual([])
      expect((await env.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items).toEqual([])
    } finally {
      env.azure.knobs.latencyMs = 0
    }
  })

  it('the default chart is checked against its published digest: a different file at its github.com path is refused before anything is installed', async () => {
    // This machine cannot reach github.com: the runner's proxy answers for it with the chart as
    // packaged here from azure-aci v1.6.4's module source, which is not the published file.
    const localChart = Buffer.from(await (await fetch(env.chartUrl)).arrayBuffer())
    env.azure.serveOnGithub(new URL(DEFAULT_CHART_URL).pathname, localChart)
    const helmRuns = (await env.argvLog()).split('\n').filter(l => l.startsWith('helm ')).length
    const { result, job: j } = await mainOnly(env, { ...secretSignIn, 'chart-url': '', 'connector-name': 'pinned' }, undefined, env.publicAzureEnv)
    await j.cleanup()
    expect(result.exitCode).toBe(1)
    expect(result.log).toMatch(
      new RegExp(
        `The default chart ${DEFAULT_CHART_URL.replace(/[.]/g, '\\.')} has SHA-256 [0-9a-f]{64}, not 10461acdb8c730bf45504257e182d7503649b0126442f1778ea6a768a06e6f81, the digest of the file its publisher lists`
      )
    )
    expect(env.azure.requests.some(r => r.host === 'github.com' && r.status === 200)).toBe(true)
    // Refused before helm ran and before any release or node.
    expect((await env.argvLog()).split('\n').filter(l => l.startsWith('helm ')).length).toBe(helmRuns)
    expect(await releasesIn(env)).not.toContain('pinned-linux-eastus')
  })

  it('a corrupted kubectl download fails the step and caches nothing', async () => {
    const toolCache = await mkdtemp(join(tmpdir(), 'tool-cache-'))
    env.mirror.knobs.corrupt.add('kubectl')
    try {
      const { result, job: j } = await mainOnly(env, { ...secretSignIn }, toolCache)
      await j.cleanup()
      expect(result.exitCode).toBe(1)
      expect(result.log).toMatch(
        /SHA-256 mismatch for http:\/\/127\.0\.0\.1:\d+\/kubectl\/release\/v1\.34\.4\/bin\/linux\/amd64\/kubectl: expected [0-9a-f]{64}, got [0-9a-f]{64}/
      )
      expect(result.log).toContain('nothing was cached')
      expect(await readdir(toolCache)).not.toContain('kubectl')
    } finally {
      env.mirror.knobs.corrupt.delete('kubectl')
    }
  })

  it('Helm 3 installs and removes too, and ARM throttling (429, 503) is retried', async () => {
    // Aimed at the action's own ARM calls (az retries its own).
    env.azure.knobs.failNext(2, 429, 1, `/subscriptions/${IDS.subscriptionId}/resourceGroups/`)
    const installed = await job(env, { ...secretSignIn, 'helm-version': HELM3_VERSION, 'connector-name': 'helm3', 'os-type': 'Windows' })
    await installed.job.cleanup()
    expectSuccess(installed.main)
    expect(installed.main.log).toMatch(/ARM answered 429 to GET \/subscriptions\/\S+; retrying in 1 s/)
    expect(installed.main.outputs['helm-path']).toContain('/helm/3.22.0/')
    expect(await releasesIn(env)).toContain('helm3-windows-eastus')

    env.azure.knobs.failNext(1, 503, 1, `/subscriptions/${IDS.subscriptionId}/resourceGroups/`)
    const removed = await job(env, { ...secretSignIn, 'helm-version': HELM3_VERSION, 'connector-name': 'helm3', 'os-type': 'Windows', command: 'remove' })
    await removed.job.cleanup()
    expectSuccess(removed.main)
    expect(removed.main.log).toMatch(/ARM answered 503 to GET \/subscriptions\/\S+; retrying in 1 s/)
    expect(await releasesIn(env)).not.toContain('helm3-windows-eastus')
    expect(await node(env, 'virtual-kubelet-helm3-windows-eastus')).toBeUndefined()
    await expectNoSecretLeak(env, [installed.main, removed.main])
  })
})
