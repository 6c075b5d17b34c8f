// Inputs that pass validation must not break later: an ACI resource group named `12345`
// (valid in Azure, but the chart renders it unquoted, so YAML would make it a number), a
// samples namespace that does not exist yet, and a local chart given as ~/path; and a
// connector identity whose role comes through a group or a management group, which is
// found where Azure grants it; and an API server that only the runner's proxy reaches.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { basename, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createHash, randomUUID } from 'node:crypto'
import { API_SERVER_FQDN, IDS, NODE_RESOURCE_GROUP_SCOPE, type LocalAks } from '../local-aks/local-aks.js'
import { runLaterStep, runPost } from '../local-aks/runner.js'
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../src/virtual-nodes/naming.js'
import { expectNoSecretLeak, expectSuccess, isReady, job, mainOnly, node, releasesIn, secretSignIn, useLocalAks } from './helpers.js'

const NUMERIC_RG = '12345'
const NODE = 'virtual-kubelet-numeric-linux-eastus'

describe('inputs that pass validation work end to end', () => {
  let env: LocalAks
  let chartDir: string | undefined
  useLocalAks({}, e => {
    env = e
    env.azure.knobs.addResourceGroup(NUMERIC_RG)
  })
  afterAll(async () => {
    if (chartDir) await rm(chartDir, { recursive: true, force: true })
  })

  it('aci-resource-group 12345, a samples namespace that does not exist, and a chart at ~/…: installed, samples run, removed', async () => {
    // The same chart as a local file under the runner user's home, given as ~/….
    chartDir = await mkdtemp(join(homedir(), '.aks-aci-chart-'))
    // Named as published (virtual-kubelet-azure-aci-<version>.tgz), so a re-run can see nothing changed.
    const chartUrl = env.baseInputs()['chart-url'] ?? ''
    const chartFile = basename(new URL(chartUrl).pathname)
    await writeFile(join(chartDir, chartFile), Buffer.from(await (await fetch(chartUrl)).arrayBuffer()))
    const inputs = {
      ...secretSignIn,
      'connector-name': 'numeric',
      'aci-resource-group': NUMERIC_RG,
      'deploy-samples': 'true',
      'samples-namespace': 'samples-made-here',
      'chart-url': `~/${basename(chartDir)}/${chartFile}`
    }
    const install = await job(env, inputs)
    await install.job.cleanup()
    expectSuccess(install.main)
    expect(isReady(await node(env, NODE))).toBe(true)
    const deployment = await env.apps.readNamespacedDeployment({ name: 'numeric-linux-eastus-virtual-kubelet-azure-aci', namespace: 'numeric-linux-eastus' })
    expect(deployment.spec?.template.spec?.containers[0].env?.find(e => e.name === 'ACI_RESOURCE_GROUP')?.value).toBe(NUMERIC_RG)
    const ns = await env.core.readNamespace({ name: 'samples-made-here' })
    expect(ns.metadata?.labels?.[MANAGED_BY_LABEL]).toBe(MANAGED_BY_VALUE)
    expect(install.main.log).toContain('Created namespace samples-made-here for the samples')
    expect(env.azure.aci.groups().filter(g => g.resourceGroup === NUMERIC_RG)).toHaveLength(1)

    // A re-run converges (the namespace is there now).
    const again = await job(env, inputs)
    await again.job.cleanup()
    expectSuccess(again.main)
    expect(again.main.log).toContain('Release numeric-linux-eastus is up to date')

    // The remove reads the group back from the release as the string it is.
    const removed = await job(env, { ...secretSignIn, command: 'remove', 'connector-name': 'numeric' })
    await removed.job.cleanup()
    expectSuccess(removed.main)
    expect(removed.main.log).toContain(`container groups in ${NUMERIC_RG}`)
    expect(await releasesIn(env)).toEqual([])
    expect(env.azure.aci.groups()).toEqual([])
    // Left: deleting a namespace would delete what a later step put there.
    expect((await env.core.readNamespace({ name: 'samples-made-here' })).metadata?.name).toBe('samples-made-here')
    await expectNoSecretLeak(env, [install.main, again.main, removed.main])
  })

  it.each([
    ['a group it is in', 'via-group'],
    ['a management group above the subscription', 'via-mg']
  ])('a kubelet identity that holds Contributor only through %s is found before the install, and its connector runs', async (_how, name) => {
    const kubelet = env.azure.objectId(IDS.kubeletIdentityClientId)
    let assigned: { principal: string; scope: string }
    if (name === 'via-group') {
      const group = randomUUID()
      env.azure.rbac.addGroupMember(group, kubelet)
      assigned = { principal: group, scope: NODE_RESOURCE_GROUP_SCOPE }
    } else {
      assigned = { principal: kubelet, scope: env.azure.rbac.addManagementGroup('mg-platform', [IDS.subscriptionId]) }
    }
    env.azure.rbac.assign(assigned.principal, 'Contributor', assigned.scope)
    try {
      // OIDC: the connector runs as the cluster's kubelet identity, which holds no role of its own.
      const oidc = { 'client-id': IDS.oidcClientId, 'tenant-id': IDS.tenantId, 'connector-name': name, 'deploy-samples': 'true' }
      const install = await job(env, oidc)
      await install.job.cleanup()
      expectSuccess(install.main)
      expect(install.main.log).toContain(
        `the cluster's kubelet identity ${IDS.kubeletIdentityClientId} may create container groups in ${IDS.nodeResourceGroup}.`
      )
      expect(env.azure.aci.groups().filter(g => g.tags.NodeName === `virtual-kubelet-${name}-linux-eastus`)).toHaveLength(1)
      const removed = await job(env, { ...oidc, command: 'remove' })
      await removed.job.cleanup()
      expectSuccess(removed.main)
    } finally {
      env.azure.rbac.unassign(assigned.principal, 'Contributor', assigned.scope)
    }
  })

  it('chart-sha256: a chart that does not match is refused before helm runs; the right digest installs the checked file', async () => {
    const chartUrl = env.baseInputs()['chart-url'] ?? ''
    const digest = createHash('sha256')
      .update(Buffer.from(await (await fetch(chartUrl)).arrayBuffer()))
      .digest('hex')
    const inputs = { ...secretSignIn, 'connector-name': 'pinned' }
    const argvBefore = (await env.argvLog()).split('\n').length
    const wrong = await job(env, { ...inputs, 'chart-sha256': '0'.repeat(64) })
    await wrong.job.cleanup()
    expect(wrong.main.exitCode).toBe(1)
    expect(wrong.main.log).toContain(
      `chart-sha256 does not match: ${chartUrl} has SHA-256 ${digest}, chart-sha256 is ${'0'.repeat(64)}. Nothing was installed.`
    )
    expect(
      (await env.argvLog())
        .split('\n')
        .slice(argvBefore - 1)
        .filter(l => l.startsWith('helm upgrade')),
      'helm ran'
    ).toEqual([])
    expect(await releasesIn(env)).toEqual([])
    // Pinned, a chart over plain http:// needs no warning.
    expect(wrong.main.log).not.toContain('is plain http://')

    const right = await job(env, { ...inputs, 'chart-sha256': digest })
    await right.job.cleanup()
    expectSuccess(right.main)
    expect(right.main.log).toContain(`Chart ${chartUrl} matches chart-sha256 (${digest}).`)
    expect(await releasesIn(env)).toEqual(['pinned-linux-eastus'])
    const removed = await job(env, { ...secretSignIn, command: 'remove', 'connector-name': 'pinned' })
    await removed.job.cleanup()
    expectSuccess(removed.main)
  })

  it('an API server that only the runner’s HTTPS_PROXY reaches: the action’s own client goes through it as helm does; install, a later kubectl, remove', async () => {
    // ARM now names the API server https://<public name>:443, which this machine's DNS does not resolve.
    const proxyEnv = env.apiServerBehindProxy(true)
    try {
      const tunnelsBefore = env.azure.tunnelsTo(API_SERVER_FQDN)
      const install = await mainOnly(env, { ...secretSignIn, 'connector-name': 'proxied' }, undefined, proxyEnv)
      try {
        expectSuccess(install.result)
        expect(install.result.log).toContain(`API server ${API_SERVER_FQDN}`)
        expect(isReady(await node(env, 'virtual-kubelet-proxied-linux-eastus'))).toBe(true)
        // A later step's kubectl with the output kubeconfig, through the same proxy.
        const kubeconfig = install.result.outputs['kubeconfig-path'] ?? ''
        expect(await readFile(kubeconfig, 'utf8')).toContain(API_SERVER_FQDN)
        const later = await runLaterStep(install.job, install.result.outputs['kubectl-path'] ?? 'kubectl', [
          'get',
          'node',
          'virtual-kubelet-proxied-linux-eastus',
          '--kubeconfig',
          kubeconfig
        ])
        expect(later.code, later.stderr).toBe(0)
        expectSuccess(await runPost(install.job))
      } finally {
        await install.job.cleanup()
      }
      const removed = await job(env, { ...secretSignIn, command: 'remove', 'connector-name': 'proxied' }, { extraEnv: proxyEnv })
      await removed.job.cleanup()
      expectSuccess(removed.main)
      expect(await releasesIn(env)).toEqual([])
      expect(await node(env, 'virtual-kubelet-proxied-linux-eastus')).toBeUndefined()
      expect(env.azure.tunnelsTo(API_SERVER_FQDN)).toBeGreaterThan(tunnelsBefore)
    } finally {
      env.apiServerBehindProxy(false)
    }
  })
})
