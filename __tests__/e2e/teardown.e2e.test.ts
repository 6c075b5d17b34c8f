// Teardown acts on what is installed and only on what is ours. A connector installed with
// another location, both OS and its own ACI resource group is found by a remove that names
// only the cluster and the connector; a dry run changes nothing; a resource group shared
// with another cluster keeps that cluster's container groups (same NodeName tag, unknown
// pod UID); the post step's cleanup works from its own kubeconfig whatever a later step does
// to the output; a release left `uninstalling` is finished; a cluster that is gone is said
// to be gone, and what may be left in a custom ACI group is listed, not deleted.
import { randomUUID } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { IDS, SUBSCRIPTION_SCOPE, type LocalAks } from '../local-aks/local-aks.js'
import { runLaterStep, runMain, runPost } from '../local-aks/runner.js'
import {
  createNodeAgentDaemonSet,
  expectNoSecretLeak,
  expectSuccess,
  isReady,
  job,
  leftoverFiles,
  mainOnly,
  namespaceExists,
  node,
  putContainerGroup,
  releasesIn,
  secretSignIn,
  setReleaseStatus,
  waitFor,
  useLocalAks
} from './helpers.js'

/** A resource group a team made for ACI, apart from the cluster, shared with another cluster. */
const SHARED_RG = 'rg-aci-shared'
const SHARED_SCOPE = `${SUBSCRIPTION_SCOPE}/resourceGroups/${SHARED_RG}`
const LINUX_NODE = 'virtual-kubelet-aci-connector-linux-westus2'
const WINDOWS_NODE = 'virtual-kubelet-aci-connector-windows-westus2'
/** A node name the other cluster has and this one never had. */
const FOREIGN_NODE = 'virtual-kubelet-theirs-linux-westus2'
const GONE_NODE = 'virtual-kubelet-gone-linux-eastus'

describe('teardown acts on what is installed and only on what is ours', () => {
  let env: LocalAks
  useLocalAks({}, e => {
    env = e
    env.azure.knobs.addResourceGroup(SHARED_RG)
    // The separate connector principal may create container groups there, as a team would grant it.
    env.azure.assignRole({ clientId: IDS.connectorClientId, role: 'Contributor', scope: SHARED_SCOPE })
  })

  const putGroup = (resourceGroup: string, name: string, tags: Record<string, string>, location = 'westus2'): void =>
    putContainerGroup(env, resourceGroup, name, tags, location)

  const groupNames = (rg?: string): string[] =>
    env.azure.aci
      .groups()
      .filter(g => !rg || g.resourceGroup === rg)
      .map(g => g.name)
      .sort()

  /** Releases, nodes, pods on the virtual nodes, container groups: what a dry run must not change. */
  async function snapshot(): Promise<string> {
    const nodes = (await env.core.listNode()).items.map(n => `${n.metadata?.name}:${n.spec?.unschedulable ?? false}`).sort()
    const pods = (await env.core.listPodForAllNamespaces()).items
      .filter(p => [LINUX_NODE, WINDOWS_NODE].includes(p.spec?.nodeName ?? ''))
      .map(p => `${p.metadata?.namespace}/${p.metadata?.name}:${p.metadata?.deletionTimestamp ? 'deleting' : 'live'}`)
      .sort()
    return JSON.stringify({ releases: await releasesIn(env), nodes, pods, groups: groupNames() })
  }

  const connectorPrincipal = { 'connector-client-id': IDS.connectorClientId, 'connector-client-secret': IDS.connectorClientSecret }

  it('a remove that names only the cluster and connector finds both OS in westus2 with their own ACI group; a dry run first changes nothing; another cluster’s groups stay', async () => {
    const install = await job(env, {
      ...secretSignIn,
      ...connectorPrincipal,
      'os-type': 'Both',
      location: 'westus2',
      'aci-resource-group': SHARED_RG,
      'deploy-samples': 'true'
    })
    await install.job.cleanup()
    expectSuccess(install.main)
    expect(isReady(await node(env, LINUX_NODE))).toBe(true)
    expect(isReady(await node(env, WINDOWS_NODE))).toBe(true)
    // A DaemonSet pod on the Linux node: a drain skips it, so its group outlives the connector
    // and only its recorded pod UID proves it this cluster's in a shared resource group.
    await createNodeAgentDaemonSet(env)
    const daemonGroup = await waitFor("the DaemonSet pod's container group", async () =>
      env.azure.aci.groups().find(g => g.resourceGroup === SHARED_RG && g.tags.PodName?.startsWith('node-agent-'))
    )
    // The other cluster's live groups in the same resource group: one on a node with our very name, one on a node we never had.
    putGroup(SHARED_RG, 'default-theirs-same-node', { PodName: 'theirs', Namespace: 'default', NodeName: LINUX_NODE, UID: randomUUID() })
    putGroup(SHARED_RG, 'default-theirs-other-node', { PodName: 'other', Namespace: 'default', NodeName: FOREIGN_NODE, UID: randomUUID() })
    const ours = groupNames(SHARED_RG).filter(n => !n.startsWith('default-theirs-'))
    expect(ours.length).toBe(3) // two samples and the DaemonSet pod

    // Only what names the cluster and the connector: no os-type, location or aci-resource-group.
    const removeInputs = { ...secretSignIn, command: 'remove' }
    const before = await snapshot()
    const dry = await job(env, { ...removeInputs, 'dry-run': 'true' })
    await dry.job.cleanup()
    expectSuccess(dry.main)
    expect(await snapshot()).toBe(before)
    const wouldGo = JSON.parse(dry.main.outputs.swept)
    expect(wouldGo).toMatchObject({
      dryRun: true,
      releases: ['default/aci-connector-linux-westus2', 'default/aci-connector-windows-westus2'],
      nodes: [LINUX_NODE, WINDOWS_NODE],
      notAttributable: [`${SHARED_RG}/default-theirs-same-node`]
    })
    expect(wouldGo.containerGroups).toEqual(ours.map(n => `${SHARED_RG}/${n}`))
    expect(dry.main.summary).toContain('Dry run: nothing was changed.')
    expect(dry.main.summary).toMatch(/\| sample \| `default\/aci-helloworld` \| [^|]+ \| [^|]+ \| would remove \|/)
    expect(dry.main.summary).toMatch(
      new RegExp(`\\| pod \\| \`default/${daemonGroup.tags.PodName}\` \\| - \\| bound to ${LINUX_NODE}[^|]+ \\| would remove \\|`)
    )
    expect(dry.main.summary).toContain(
      `| container group | \`${SHARED_RG}/default-theirs-same-node\` | - | not attributable: tagged for node ${LINUX_NODE}, but resource group ${SHARED_RG} is not the cluster's own`
    )
    expect(dry.main.log).toContain(
      `Looked for connector "aci-connector" (any OS, any region, any ACI resource group) in the cluster's Helm releases and virtual nodes: found 2.`
    )

    const removed = await job(env, removeInputs)
    await removed.job.cleanup()
    expectSuccess(removed.main)
    expect(JSON.parse(removed.main.outputs.swept)).toEqual({ ...wouldGo, dryRun: false })
    expect(await node(env, LINUX_NODE)).toBeUndefined()
    expect(await node(env, WINDOWS_NODE)).toBeUndefined()
    expect(await releasesIn(env)).toEqual([])
    expect(await namespaceExists(env, 'aci-connector-linux-westus2')).toBe(false)
    expect(groupNames(SHARED_RG)).toEqual(['default-theirs-other-node', 'default-theirs-same-node'])
    expect(removed.main.log).toContain(`Deleted container group ${daemonGroup.name} in ${SHARED_RG} (left by ${LINUX_NODE})`)
    expect(removed.main.log).toContain('1 container group(s) are tagged as a removed virtual node')
    expect(removed.main.summary).toContain(
      `| container group | \`${SHARED_RG}/${daemonGroup.name}\` | - | its pod default/${daemonGroup.tags.PodName} (UID ${daemonGroup.tags.UID}) was on ${LINUX_NODE} in this cluster`
    )
    await env.apps.deleteNamespacedDaemonSet({ name: 'node-agent', namespace: 'default' })

    // A sweep of everything, looking in the shared group too: neither of theirs is provable ours; an orphan in MC_ is.
    putGroup(IDS.nodeResourceGroup, 'default-left-behind', { PodName: 'left-behind', Namespace: 'default', NodeName: GONE_NODE, UID: randomUUID() }, 'eastus')
    const sweep = await job(env, { ...secretSignIn, command: 'sweep', 'connector-name': '*', 'aci-resource-group': SHARED_RG })
    await sweep.job.cleanup()
    expectSuccess(sweep.main)
    expect(JSON.parse(sweep.main.outputs.swept)).toMatchObject({
      containerGroups: [`${IDS.nodeResourceGroup}/default-left-behind`],
      notAttributable: [`${SHARED_RG}/default-theirs-other-node`, `${SHARED_RG}/default-theirs-same-node`].sort()
    })
    expect(groupNames()).toEqual(['default-theirs-other-node', 'default-theirs-same-node'])
    expect(sweep.main.summary).toContain(`| container group | \`${SHARED_RG}/default-theirs-other-node\` | - | not attributable:`)
    await expectNoSecretLeak(env, [install.main, dry.main, removed.main, sweep.main])
  })

  it('cleanup works from its own kubeconfig: a later step that switches the output to another context, or deletes it, changes nothing for it', async () => {
    for (const laterStep of ['switch context', 'delete kubeconfig'] as const) {
      const name = laterStep === 'switch context' ? 'pr-ctx' : 'pr-rm'
      const { job: j, result: main } = await runMain({
        inputs: { ...env.baseInputs(), ...secretSignIn, 'connector-name': name, cleanup: 'true', 'deploy-samples': 'true' },
        env: env.actionEnv,
        toolCache: env.toolCache,
        timeoutMs: 8 * 60_000
      })
      try {
        expectSuccess(main)
        const kubeconfig = main.outputs['kubeconfig-path'] ?? ''
        const kubectl = main.outputs['kubectl-path'] ?? 'kubectl'
        if (laterStep === 'switch context') {
          // As `kind create cluster` or `kubectl config use-context` leave it: the current context is another cluster.
          for (const args of [
            ['config', 'set-cluster', 'other', '--server=https://127.0.0.1:9'],
            ['config', 'set-context', 'other', '--cluster=other', '--user=other'],
            ['config', 'use-context', 'other']
          ]) {
            const r = await runLaterStep(j, kubectl, [...args, '--kubeconfig', kubeconfig])
            expect(r.code, r.stderr).toBe(0)
          }
        } else {
          await rm(kubeconfig)
        }
        const post = await runPost(j)
        expectSuccess(post)
        expect(post.log).toContain('Cleanup: remove what this job installed')
        expect(await node(env, `virtual-kubelet-${name}-linux-eastus`)).toBeUndefined()
        expect(await releasesIn(env)).toEqual([])
        expect((await env.apps.listNamespacedDeployment({ namespace: 'default' })).items).toEqual([])
        expect(groupNames(IDS.nodeResourceGroup)).toEqual([])
        expect(await leftoverFiles(j.runnerTemp)).toEqual([])
        await expectNoSecretLeak(env, [main, post])
      } finally {
        await j.cleanup()
      }
    }
  })

  it('a release left uninstalling (a remove or cleanup stopped mid-uninstall) is finished by cleanup', async () => {
    const { job: j, result: main } = await runMain({
      inputs: { ...env.baseInputs(), ...secretSignIn, 'connector-name': 'half-gone', cleanup: 'true' },
      env: env.actionEnv,
      toolCache: env.toolCache,
      timeoutMs: 8 * 60_000
    })
    try {
      expectSuccess(main)
      await setReleaseStatus(env, 'half-gone-linux-eastus', 'uninstalling')
      const post = await runPost(j)
      expectSuccess(post)
      expect(post.log).toContain('Helm release default/half-gone-linux-eastus (chart virtual-kubelet-azure-aci, uninstalling)')
      expect(await releasesIn(env)).toEqual([])
      expect(await node(env, 'virtual-kubelet-half-gone-linux-eastus')).toBeUndefined()
      expect(await namespaceExists(env, 'half-gone-linux-eastus')).toBe(false)
    } finally {
      await j.cleanup()
    }
  })

  it('a removal that cannot check ACI fails with the az command to check; with verify-aci: false it only warns', async () => {
    const checkNode = 'virtual-kubelet-aci-check-linux-eastus'
    const listPath = `/subscriptions/${IDS.subscriptionId}/resourceGroups/${IDS.nodeResourceGroup}/providers/Microsoft.ContainerInstance/containerGroups`
    for (const verify of ['true', 'false']) {
      const install = await job(env, { ...secretSignIn, 'connector-name': 'aci-check' })
      await install.job.cleanup()
      expectSuccess(install.main)
      // ARM refuses the container group list (before and after the removal), as it would once a Reader role is taken away.
      env.azure.knobs.failNext(2, 403, 0, listPath)
      // Narrowed to the connector: the other kinds' looks would list the same resource group first.
      const r = await job(env, { ...secretSignIn, command: 'remove', 'virtual-node-kind': 'connector', 'connector-name': 'aci-check', 'verify-aci': verify })
      await r.job.cleanup()
      expect(r.main.exitCode).toBe(verify === 'true' ? 1 : 0)
      expect(r.main.log).toContain('ACI could not be checked for container groups the removed virtual nodes left; they may still bill:')
      expect(r.main.log).toContain(`az container list -g ${IDS.nodeResourceGroup} --query "[?tags.NodeName=='${checkNode}'].name" -o table`)
      if (verify === 'true') expect(r.main.log).toContain('or set verify-aci: false to only warn')
      // The cluster side is done either way.
      expect(await releasesIn(env)).toEqual([])
    }
  })

  it('a remove on a cluster that is gone says so and lists, without deleting, what is tagged for its connector in the custom ACI group', async () => {
    putGroup(SHARED_RG, 'default-after-cluster', { PodName: 'after', Namespace: 'default', NodeName: LINUX_NODE, UID: randomUUID() })
    env.azure.knobs.deleteCluster()
    const r = await mainOnly(env, { ...secretSignIn, command: 'remove', 'aci-resource-group': SHARED_RG })
    await r.job.cleanup()
    expectSuccess(r.result)
    expect(r.result.log).toContain(`AKS cluster "${IDS.clusterName}" was not found in resource group "${IDS.resourceGroup}"`)
    expect(r.result.log).toContain("AKS deletes a cluster's node resource group (MC_*), and every container group in it, with the cluster")
    expect(r.result.log).toContain(`az container delete -g ${SHARED_RG} -n default-after-cluster --yes`)
    expect(r.result.log).toContain(`az container delete -g ${SHARED_RG} -n default-theirs-same-node --yes`)
    // Another connector's node name is not this connector's: not listed.
    expect(r.result.log).not.toContain('default-theirs-other-node --yes')
    expect(JSON.parse(r.result.outputs.swept).containerGroups).toEqual([])
    expect(groupNames(SHARED_RG)).toEqual(['default-after-cluster', 'default-theirs-other-node', 'default-theirs-same-node'])
  })
})
