// Clusters with AKS-managed Microsoft Entra ID integration and local accounts disabled:
// the action reaches the API server with an Entra token from its own sign-in (secret,
// creds JSON, OIDC, the runner's az session), hands later steps a kubeconfig that runs
// kubelogin without any secret in it, and refuses `admin: true` before changing anything.
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { IDS, type LocalAks } from '../local-aks/local-aks.js'
import { azLoginAmbient, ensureAzCli } from '../local-aks/az-cli.js'
import { runLaterStep, runPost, type StepResult } from '../local-aks/runner.js'
import { expectNoSecretLeak, expectSuccess, isReady, leftoverFiles, mainOnly, namespaceExists, node, releasesIn, secretSignIn, useLocalAks } from './helpers.js'

/** Any JWT (an Entra access token, a GitHub ID token): three base64url parts, the first two JSON objects. */
const JWT = /eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,}/

/** The connector runs as its own service principal, which holds Contributor on the node resource group. */
const connectorIdentity = { 'connector-client-id': IDS.connectorClientId, 'connector-client-secret': IDS.connectorClientSecret }

function expectNoJwt(step: StepResult, label: string): void {
  const visible = step.rawLog
    .split('\n')
    .filter(l => !l.startsWith('::add-mask::'))
    .join('\n')
  expect(visible, `a token in the ${label} log`).not.toMatch(JWT)
  expect(step.summary, `a token in the ${label} summary`).not.toMatch(JWT)
  expect(JSON.stringify(step.outputs), `a token in the ${label} outputs`).not.toMatch(JWT)
}

describe('Entra ID cluster with local accounts disabled', () => {
  let env: LocalAks
  useLocalAks({ entra: true }, e => (env = e))

  it('refuses admin: true before anything changes, saying what to do instead', async () => {
    const requestsBefore = env.azure.requests.length
    const { result, job: j } = await mainOnly(env, { ...secretSignIn, admin: 'true', 'os-type': 'Both' })
    await j.cleanup()
    expect(result.exitCode).toBe(1)
    expect(result.log).toContain(`admin: true cannot be used with cluster "${IDS.clusterName}": it has local accounts disabled (disableLocalAccounts)`)
    expect(result.log).toContain('Remove admin: true')
    const asked = env.azure.requests.slice(requestsBefore).map(r => `${r.method} ${r.path}`)
    expect(
      asked.some(r => /listClusterAdminCredential/i.test(r)),
      'asked ARM for the admin credential'
    ).toBe(false)
    expect(
      asked.some(r => /^(PUT|DELETE) /.test(r)),
      'changed something in Azure'
    ).toBe(false)
    expect(await releasesIn(env)).toEqual([])
  })

  it('an OIDC sign-in with its own audience is refused for an install before anything changes: later steps’ kubelogin could not sign in', async () => {
    // The app's federated credential accepts only the custom audience, so the action's own sign-in works.
    const principal = env.azure.entra.principal(IDS.oidcClientId)
    if (!principal) throw new Error('no OIDC principal')
    const before = principal.federatedAudiences
    principal.federatedAudiences = ['api://custom-exchange']
    try {
      const requestsBefore = env.azure.requests.length
      const { result, job: j } = await mainOnly(env, { 'client-id': IDS.oidcClientId, 'tenant-id': IDS.tenantId, audience: 'api://custom-exchange' })
      await j.cleanup()
      expect(result.exitCode).toBe(1)
      expect(result.log).toContain('audience: "api://custom-exchange" cannot serve later steps on this cluster with Microsoft Entra ID integration')
      expect(result.log).toContain('Add api://AzureADTokenExchange to the federated credential')
      expect(result.log).toContain('Nothing was changed.')
      expect(env.azure.requests.slice(requestsBefore).some(r => /^(PUT|DELETE) |listClusterUserCredential/i.test(`${r.method} ${r.path}`))).toBe(false)
      expect(await releasesIn(env)).toEqual([])
    } finally {
      principal.federatedAudiences = before
    }
  })

  it('an identity without a Kubernetes role is told which object ID needs one, before anything is installed', async () => {
    const binding = `entra-cluster-admin-${env.azure.objectId(IDS.clientId)}`
    const rbac = env.cluster.kc.makeApiClient(RbacAuthorizationV1Api)
    const saved = await rbac.readClusterRoleBinding({ name: binding })
    await rbac.deleteClusterRoleBinding({ name: binding })
    try {
      const { result, job: j } = await mainOnly(env, { ...secretSignIn, ...connectorIdentity, 'connector-name': 'entra-norole' })
      await j.cleanup()
      expect(result.exitCode).toBe(1)
      expect(result.log).toContain(`has no Kubernetes role on cluster "${IDS.clusterName}"`)
      expect(result.log).toContain(`object ID ${env.azure.objectId(IDS.clientId)}`)
      expect(await releasesIn(env)).toEqual([])
      expect(await namespaceExists(env, 'entra-norole-linux-eastus')).toBe(false)
    } finally {
      await rbac.createClusterRoleBinding({ body: { ...saved, metadata: { name: binding } } })
    }
  })

  it.each<{ label: string; name: string; signIn: () => Promise<Record<string, string>>; laterStepEnv: () => Record<string, string>; loginMode: string }>([
    {
      label: 'client secret',
      name: 'entra-secret',
      signIn: async () => secretSignIn,
      // kubelogin's spn mode reads the secret from the step's environment (README).
      laterStepEnv: () => ({ ...env.publicAzureEnv, AZURE_CLIENT_SECRET: IDS.clientSecret }),
      loginMode: 'spn'
    },
    {
      label: 'creds JSON',
      name: 'entra-creds',
      signIn: async () => ({
        creds: JSON.stringify({ clientId: IDS.clientId, clientSecret: IDS.clientSecret, tenantId: IDS.tenantId, subscriptionId: IDS.subscriptionId })
      }),
      laterStepEnv: () => ({ ...env.publicAzureEnv, AAD_SERVICE_PRINCIPAL_CLIENT_SECRET: IDS.clientSecret }),
      loginMode: 'spn'
    },
    {
      label: 'OIDC',
      name: 'entra-oidc',
      signIn: async () => ({ 'client-id': IDS.oidcClientId, 'tenant-id': IDS.tenantId }),
      // kubelogin asks the job's ID token service itself (ACTIONS_ID_TOKEN_REQUEST_* are in every step).
      laterStepEnv: () => env.publicAzureEnv,
      loginMode: 'workloadidentity'
    },
    {
      label: "the runner's az session",
      name: 'entra-ambient',
      signIn: async () => {
        await azLoginAmbient(await ensureAzCli(), env.actionEnv, { clientId: IDS.clientId, secret: IDS.clientSecret, tenantId: IDS.tenantId })
        return {}
      },
      // kubelogin's azurecli mode runs `az account get-access-token` in the same az session.
      laterStepEnv: () => ({}),
      loginMode: 'azurecli'
    }
  ])('$label: install Both with samples, a later step uses the kubeconfig, remove leaves nothing', async ({ name, signIn, laterStepEnv, loginMode }) => {
    const signInInputs = await signIn()
    const inputs = { ...signInInputs, ...connectorIdentity, 'connector-name': name, 'os-type': 'Both', 'deploy-samples': 'true' }
    const linuxNode = `virtual-kubelet-${name}-linux-eastus`
    const windowsNode = `virtual-kubelet-${name}-windows-eastus`
    const argvBefore = (await env.argvLog()).length

    const install = await mainOnly(env, inputs)
    let remove: Awaited<ReturnType<typeof mainOnly>> | undefined
    try {
      expectSuccess(install.result)
      const main = install.result
      expect(main.log).toContain(
        `Cluster ${IDS.clusterName} uses Microsoft Entra ID and has local accounts disabled: the action signs in to it with an Entra token.`
      )
      expect(isReady(await node(env, linuxNode))).toBe(true)
      expect(isReady(await node(env, windowsNode))).toBe(true)
      expect(env.azure.aci.groups().filter(g => g.tags.NodeName === linuxNode || g.tags.NodeName === windowsNode)).toHaveLength(2)

      // The kubeconfig for later steps runs kubelogin in the mode of this sign-in, with no credential in it.
      const kubeconfigPath = main.outputs['kubeconfig-path'] ?? ''
      const kubeconfig = await readFile(kubeconfigPath, 'utf8')
      const exec = (parse(kubeconfig) as { users: Array<{ user: { exec: { command: string; args: string[]; env: Array<{ name: string; value: string }> } } }> })
        .users[0]?.user.exec
      expect(exec?.command).toBe('kubelogin')
      expect(exec?.args.join(' ')).toContain(`--login ${loginMode}`)
      // kubelogin's token cache goes to the job's own files, which the post step deletes.
      expect(exec?.env.find(e => e.name === 'XDG_CACHE_HOME')?.value).toMatch(new RegExp(`^${install.job.runnerTemp}/aci-connector-`))
      expect(kubeconfig).not.toMatch(JWT)
      expect(kubeconfig).not.toContain(IDS.clientSecret)
      expect(kubeconfig).not.toMatch(/client-secret|client-key-data|token:/)
      expect(main.outputs['kubelogin-path']).toContain(install.job.toolCache)

      // A later step of the job: plain `kubectl` with that kubeconfig, kubelogin found on PATH.
      const later = await runLaterStep(
        install.job,
        main.outputs['kubectl-path'] ?? 'kubectl',
        ['get', 'nodes', '-o', 'name', '--kubeconfig', kubeconfigPath],
        laterStepEnv(),
        120_000
      )
      expect(later.stderr).not.toMatch(JWT)
      expect(later.code, `later step failed: ${later.stderr}`).toBe(0)
      expect(later.stdout).toContain(`node/${linuxNode}`)
      expect(later.stdout).toContain(`node/${windowsNode}`)

      remove = await mainOnly(env, { ...inputs, command: 'remove' })
      expectSuccess(remove.result)
      expect(await node(env, linuxNode)).toBeUndefined()
      expect(await node(env, windowsNode)).toBeUndefined()
      expect(await namespaceExists(env, `${name}-linux-eastus`)).toBe(false)
      expect(env.azure.aci.groups(), 'container groups left in ACI').toEqual([])

      const argv = (await env.argvLog()).slice(argvBefore)
      expect(argv, 'kubelogin converted the kubeconfig').toMatch(new RegExp(`^kubelogin convert-kubeconfig --kubeconfig \\S+ --login ${loginMode}`, 'm'))
      expect(argv, 'a token in a process argument').not.toMatch(JWT)
      expectNoJwt(main, 'install')
      expectNoJwt(remove.result, 'remove')
      await expectNoSecretLeak(env, [main, remove.result])
    } finally {
      // After a failed assertion too, so the next case starts from a clean cluster.
      remove ??= await mainOnly(env, { ...inputs, command: 'remove' }).catch(() => undefined)
      for (const run of remove ? [install, remove] : [install]) {
        const post = await runPost(run.job)
        expectSuccess(post)
        expect(await leftoverFiles(run.job.runnerTemp)).toEqual([])
        await run.job.cleanup()
      }
    }
  })

  it('cleanup: true on an Entra ID cluster: the post step signs in again and removes what the job installed', async () => {
    const inputs = { ...secretSignIn, ...connectorIdentity, 'connector-name': 'entra-pr', 'os-type': 'Linux', 'deploy-samples': 'true', cleanup: 'true' }
    const { result: main, job: j } = await mainOnly(env, inputs)
    try {
      expectSuccess(main)
      expect(await releasesIn(env)).toEqual(['entra-pr-linux-eastus'])
      const post = await runPost(j, { jobStatus: 'failure' })
      expectSuccess(post)
      expect(post.log).toContain('Cleanup: sign in to Azure')
      expect(await releasesIn(env)).toEqual([])
      expect(await node(env, 'virtual-kubelet-entra-pr-linux-eastus')).toBeUndefined()
      expect(env.azure.aci.groups()).toEqual([])
      expectNoJwt(post, 'post')
      expect(await leftoverFiles(j.runnerTemp)).toEqual([])
    } finally {
      await j.cleanup()
    }
  })
})
