// The per-PR ephemeral use (install at start, post step removes it even when the job
// fails) and the scheduled teardown use (remove with whatever session the runner has),
// across the sign-in paths: OIDC federated token, creds JSON, the runner's az session.
import { describe, expect, it } from 'vitest'
import { IDS, NODE_RESOURCE_GROUP_SCOPE, type LocalAks } from '../local-aks/local-aks.js'
import { azLoginAmbient, ensureAzCli } from '../local-aks/az-cli.js'
import { runMain, runPost } from '../local-aks/runner.js'
import type { Caller } from '../local-aks/azure-http.js'
import {
  expectNoSecretLeak,
  expectSuccess,
  isReady,
  job,
  leftoverFiles,
  namespaceExists,
  node,
  processesMatching,
  putContainerGroup,
  releasesIn,
  secretSignIn,
  useLocalAks
} from './helpers.js'

const LINUX_NODE = 'virtual-kubelet-pr-42-linux-eastus'
/** The custom role grant-connector-role makes for the node resource group (src/azure/role-definitions.ts). */
const VIRTUAL_NODE_ROLE = `Virtual nodes on ACI (aks-aci-connector-action) ${IDS.subscriptionId}/${IDS.nodeResourceGroup}`

describe('ephemeral cluster per pull request, and scheduled teardown', () => {
  let env: LocalAks
  useLocalAks({}, e => (env = e))

  const kubeletCaller = (): Caller => ({
    appId: IDS.kubeletIdentityClientId,
    objectId: env.azure.objectId(IDS.kubeletIdentityClientId),
    tenantId: IDS.tenantId
  })

  it('OIDC sign-in: the kubelet identity has no role, so nothing is installed; asked to, the action grants it', async () => {
    const inputs = { ...env.baseInputs(), 'client-id': IDS.oidcClientId, 'tenant-id': IDS.tenantId, 'connector-name': 'pr-41' }
    const { job: j, result: main } = await runMain({ inputs, env: env.actionEnv, toolCache: env.toolCache, timeoutMs: 8 * 60_000 })
    await j.cleanup()
    expect(main.exitCode).toBe(1)
    expect(main.log).toContain(
      `The connector's identity (the cluster's kubelet identity ${IDS.kubeletIdentityClientId}) may not create container groups in resource group ${IDS.nodeResourceGroup}`
    )
    expect(main.log).toContain('or set grant-connector-role: true to let this action assign it')
    expect(await releasesIn(env)).toEqual([])
    expect(env.azure.rbac.assignments().filter(a => a.principalId === env.azure.objectId(IDS.kubeletIdentityClientId))).toEqual([])
  })

  it('OIDC sign-in with grant-connector-role and cleanup: true; a later step fails and the post step removes everything', async () => {
    // Signed in without a secret, the connector runs as the cluster's kubelet identity, which
    // AKS grants no role; this principal may assign roles on the node resource group.
    const inputs = {
      ...env.baseInputs(),
      'client-id': IDS.oidcClientId,
      'tenant-id': IDS.tenantId,
      'connector-name': 'pr-42',
      'deploy-samples': 'true',
      cleanup: 'true',
      'grant-connector-role': 'true'
    }
    const { job: j, result: main } = await runMain({ inputs, env: env.actionEnv, toolCache: env.toolCache, timeoutMs: 8 * 60_000 })
    try {
      expectSuccess(main)
      expect(isReady(await node(env, LINUX_NODE))).toBe(true)
      // The least that works (32.8): a custom role with only what the connector does in ACI, not Contributor on the whole group.
      expect(main.log).toContain(
        `Assigned role "${VIRTUAL_NODE_ROLE}" on ${NODE_RESOURCE_GROUP_SCOPE} for the cluster's kubelet identity ${IDS.kubeletIdentityClientId} (grant-connector-role): only Microsoft.ContainerInstance/containerGroups/read,`
      )
      expect(env.azure.rbac.assignments().filter(a => a.principalId === env.azure.objectId(IDS.kubeletIdentityClientId))).toMatchObject([
        { roleName: VIRTUAL_NODE_ROLE, scope: NODE_RESOURCE_GROUP_SCOPE }
      ])
      // The identity any pod can reach through IMDS may not, say, delete the cluster's disks or VNet.
      expect(env.azure.rbac.authorize(kubeletCaller(), 'Microsoft.Network/virtualNetworks/delete', NODE_RESOURCE_GROUP_SCOPE)).toMatchObject({ status: 403 })
      expect(env.azure.rbac.authorize(kubeletCaller(), 'Microsoft.ContainerInstance/containerGroups/write', NODE_RESOURCE_GROUP_SCOPE)).toBeUndefined()
      // The sample runs in ACI: a container group named <namespace>-<pod>, tagged by the connector.
      const [group] = env.azure.aci.groups()
      expect(env.azure.aci.groups()).toHaveLength(1)
      expect(group).toMatchObject({ resourceGroup: IDS.nodeResourceGroup, state: 'Running', osType: 'Linux' })
      expect(group.tags).toMatchObject({ NodeName: LINUX_NODE, Namespace: 'default' })
      expect(group.name).toBe(`default-${group.tags.PodName}`)
      // OIDC: the federated token is exchanged at the token endpoint, no az process at all.
      expect(await env.argvLog()).not.toMatch(/^az /m)
      // Signed in without a secret, so the connector runs as the cluster's kubelet identity.
      const deployment = await env.apps.readNamespacedDeployment({ name: 'pr-42-linux-eastus-virtual-kubelet-azure-aci', namespace: 'pr-42-linux-eastus' })
      const envVars = deployment.spec?.template.spec?.containers[0].env ?? []
      expect(envVars.find(e => e.name === 'VIRTUALNODE_USER_IDENTITY_CLIENTID')?.value).toBe(IDS.kubeletIdentityClientId)
      expect(envVars.find(e => e.name === 'AZURE_CLIENT_ID')?.value ?? '').toBe('')

      // A container group the connector will never delete: as if its pod had been removed
      // from Kubernetes behind the connector's back.
      putContainerGroup(env, IDS.nodeResourceGroup, 'default-forgotten', { PodName: 'forgotten', Namespace: 'default', NodeName: LINUX_NODE })

      // A later step of the job fails: post-if: always() still runs the post step.
      const post = await runPost(j, { jobStatus: 'failure' })
      expectSuccess(post)
      expect(post.log).toContain('Cleanup: remove what this job installed')
      // It signs in again (a fresh OIDC token) to sweep what the removed node left in ACI.
      expect(post.log).toContain(`Deleted container group default-forgotten in ${IDS.nodeResourceGroup} (left by ${LINUX_NODE})`)
      expect(post.summary).toContain('`default-forgotten`')
      // The role it granted stays, and both summaries say how to delete it.
      const granted = env.azure.rbac.assignments().find(a => a.principalId === env.azure.objectId(IDS.kubeletIdentityClientId))
      expect(granted?.description).toBe(
        `Granted by aks-aci-connector-action (grant-connector-role) to the ACI connector of AKS cluster ${IDS.resourceGroup}/${IDS.clusterName}`
      )
      expect(main.summary).toContain(`yes; delete with \`az role assignment delete --ids ${granted?.id}\``)
      expect(post.summary).toContain(`| role assignment | \`"${VIRTUAL_NODE_ROLE}" on ${IDS.nodeResourceGroup} for ${granted?.principalId}\` |`)
      expect(post.summary).toContain(`delete with \`az role assignment delete --ids ${granted?.id}\``)
      expect(await node(env, LINUX_NODE)).toBeUndefined()
      expect(await releasesIn(env)).toEqual([])
      expect(await namespaceExists(env, 'pr-42-linux-eastus')).toBe(false)
      expect((await env.apps.listNamespacedDeployment({ namespace: 'default' })).items).toEqual([])
      expect(env.agent.containers()).toEqual([])
      expect(env.azure.aci.groups(), 'container groups left in ACI').toEqual([])
      expect(await leftoverFiles(j.runnerTemp)).toEqual([])
      // The federated token was masked and never became a process argument.
      const jwts = main.masks.filter(m => /^ey[\w-]+\.[\w-]+\.[\w-]+$/.test(m))
      expect(jwts.length).toBeGreaterThan(0)
      await expectNoSecretLeak(env, [main, post], jwts)
    } finally {
      await j.cleanup()
    }
  })

  it('a job cancelled mid-install: the step ends its helm at once, the post step removes what was started', async () => {
    const inputs = { ...env.baseInputs(), ...secretSignIn, 'connector-name': 'cancelled', 'os-type': 'Both', cleanup: 'true' }
    // Cancel while helm is installing (it prints this line as it starts).
    const { job: j, result: main } = await runMain({
      inputs,
      env: env.actionEnv,
      toolCache: env.toolCache,
      timeoutMs: 8 * 60_000,
      cancelOn: /Installing it now/
    })
    try {
      expect(main.cancelled).toBe(true)
      expect(main.exitCode).toBe(130)
      // The step names what it stopped: at least one helm was still installing when the cancel came.
      expect(main.log).toMatch(/Received SIGINT: stopped the tools this step started: .*helm upgrade --install/)
      // It says what it stopped and what is left, in the log and the summary, before it exits.
      expect(main.log).toMatch(/The job was cancelled during: Install connector \(Linux, Windows\)\. The tools this step was running were stopped\./)
      expect(main.log).toContain('cleanup: true removes it in the post step of this job')
      expect(main.summary).toContain('The job was cancelled during: Install connector (Linux, Windows).')
      // Nothing of the step outlives it to race the post step (the tools run in their own process groups).
      expect(await processesMatching('upgrade --install cancelled-')).toEqual([])

      const post = await runPost(j)
      expectSuccess(post)
      expect(post.log).toContain('Cleanup: remove what this job installed')
      expect((await releasesIn(env)).filter(r => r.startsWith('cancelled-'))).toEqual([])
      for (const os of ['linux', 'windows']) {
        expect(await namespaceExists(env, `cancelled-${os}-eastus`)).toBe(false)
        expect(await node(env, `virtual-kubelet-cancelled-${os}-eastus`)).toBeUndefined()
      }
      // The private az config (it held the secret) went with the work dir.
      expect(await leftoverFiles(j.runnerTemp)).toEqual([])
      await expectNoSecretLeak(env, [main, post])
    } finally {
      await j.cleanup()
    }
  })

  it('creds JSON with a separate connector identity; the connector gets that identity', async () => {
    const creds = JSON.stringify({ clientId: IDS.clientId, clientSecret: IDS.clientSecret, tenantId: IDS.tenantId, subscriptionId: IDS.subscriptionId })
    const { main, job: j } = await job(env, {
      creds,
      'os-type': 'Windows',
      'connector-client-id': IDS.connectorClientId,
      'connector-client-secret': IDS.connectorClientSecret
    })
    await j.cleanup()
    expectSuccess(main)
    expect(main.outputs['windows-node-name']).toBe('virtual-kubelet-aci-connector-windows-eastus')
    const deployment = await env.apps.readNamespacedDeployment({
      name: 'aci-connector-windows-eastus-virtual-kubelet-azure-aci',
      namespace: 'aci-connector-windows-eastus'
    })
    const envVars = deployment.spec?.template.spec?.containers[0].env ?? []
    expect(envVars.find(e => e.name === 'AZURE_CLIENT_ID')?.value).toBe(IDS.connectorClientId)
    expect(envVars.find(e => e.name === 'ACI_RESOURCE_GROUP')?.value).toBe(IDS.nodeResourceGroup)
    expect(envVars.find(e => e.name === 'ACI_REGION')?.value).toBe('eastus')
    expect(main.summary).toContain(`signed in as service principal ${IDS.clientId} (client secret)`)
    await expectNoSecretLeak(env, [main])
  })

  it("cleanup: true leaves a connector that was there before the job (a shared cluster's)", async () => {
    const creds = JSON.stringify({ clientId: IDS.clientId, clientSecret: IDS.clientSecret, tenantId: IDS.tenantId, subscriptionId: IDS.subscriptionId })
    const {
      main,
      post,
      job: j
    } = await job(
      env,
      { creds, 'os-type': 'Windows', 'connector-client-id': IDS.connectorClientId, 'connector-client-secret': IDS.connectorClientSecret, cleanup: 'true' },
      { failLaterStep: true }
    )
    await j.cleanup()
    expectSuccess(main)
    expectSuccess(post)
    // The same settings as the earlier job that installed it: nothing to upgrade, and not this run's to remove.
    expect(main.log).toContain(
      'Release aci-connector-windows-eastus is up to date (chart virtual-kubelet-azure-aci 1.6.4, same values): no helm upgrade (cleanup leaves it: this run did not create it).'
    )
    expect(post?.log).toContain('cleanup: nothing that this run installed needs removing.')
    expect(isReady(await node(env, 'virtual-kubelet-aci-connector-windows-eastus'))).toBe(true)
    expect(await releasesIn(env)).toEqual(['aci-connector-windows-eastus'])
  })

  it("scheduled teardown with the runner's own az session removes it; nothing else signs in", async () => {
    // A self-hosted runner signed in once, outside this workflow.
    await azLoginAmbient(await ensureAzCli(), env.actionEnv, { clientId: IDS.clientId, secret: IDS.clientSecret, tenantId: IDS.tenantId })
    const argvBefore = (await env.argvLog()).split('\n').length
    const { main, post, job: j } = await job(env, { command: 'remove', 'os-type': 'Both' })
    await j.cleanup()
    expectSuccess(main)
    expectSuccess(post)
    const newArgv = (await env.argvLog())
      .split('\n')
      .slice(argvBefore - 1)
      .join('\n')
    expect(newArgv).not.toMatch(/^az login/m)
    // One az start: the session's ARM token (the cloud is read from az's files, no version probe).
    expect(newArgv.split('\n').filter(l => l.startsWith('az '))).toEqual([expect.stringMatching(/^az account get-access-token --output json/)])
    expect(main.summary).toContain("signed in as the runner's existing az session")
    expect(await node(env, 'virtual-kubelet-aci-connector-windows-eastus')).toBeUndefined()
    expect(await releasesIn(env)).toEqual([])
    // Found in the cluster: only the Windows connector was installed, so only it is named.
    expect(main.summary).not.toContain('aci-connector-linux-eastus')
    expect(main.summary).toContain('| Windows | `aci-connector-windows-eastus` | yes | yes |')
    expect(main.summary).toMatch(
      /\| release \| `default\/aci-connector-windows-eastus` \| [^|]+ \| Helm release default\/aci-connector-windows-eastus [^|]+ \| removed \|/
    )
  })
})
