import { describe, expect, it } from 'vitest'
import { KubeConfig } from '@kubernetes/client-node'
import { azTokenExpiry, clientCredentialsForm, tokenEndpoint } from '../../src/azure/azure-login.js'
import { RefreshingToken, REFRESH_MARGIN_MS } from '../../src/azure/refreshing-token.js'
import { AKS_SERVER_APP_ID } from '../../src/kubernetes/cluster-access.js'
import { cacheDirVariable, convertArgs, kubeloginAssetName, kubeloginCacheNote, kubeloginPathInZip, kubeloginUrl } from '../../src/kubernetes/kubelogin.js'
import { adminCredentialProblem, tokenFileKubeconfig, toClusterInfo } from '../../src/kubernetes/cluster.js'
import { parseInputs } from '../../src/runner/inputs.js'

const raw = (properties: Record<string, unknown>) => ({
  id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c',
  name: 'c',
  location: 'eastus',
  properties: { fqdn: 'c.hcp.eastus.azmk8s.io', nodeResourceGroup: 'MC_rg_c_eastus', ...properties }
})

describe('tokens', () => {
  it('fetches once, reuses until REFRESH_MARGIN_MS before expiry, then fetches again; concurrent callers share a fetch', async () => {
    let now = 1_000_000
    let fetches = 0
    const seen: string[] = []
    const t = new RefreshingToken(
      async () => ({ token: `t${++fetches}`, expiresOnMs: now + 60 * 60_000 }),
      async (x: { token: string }) => void seen.push(x.token),
      () => now
    )
    expect(await Promise.all([t.get(), t.get()])).toEqual(['t1', 't1'])
    now += 60 * 60_000 - REFRESH_MARGIN_MS - 1
    expect(await t.get()).toBe('t1')
    now += 2
    expect(await t.get()).toBe('t2')
    expect(fetches).toBe(2)
    expect(seen).toEqual(['t1', 't2'])
  })

  it('a failed fetch is not cached: the next call tries again', async () => {
    let calls = 0
    const t = new RefreshingToken(async () => {
      if (++calls === 1) throw new Error('AADSTS7000215')
      return { token: 'ok', expiresOnMs: Date.now() + 3_600_000 }
    })
    await expect(t.get()).rejects.toThrow('AADSTS7000215')
    expect(await t.get()).toBe('ok')
  })

  it('token endpoint of an Entra authority and of an ADFS-style one', () => {
    expect(tokenEndpoint('https://login.microsoftonline.com/', 'tid')).toBe('https://login.microsoftonline.com/tid/oauth2/v2.0/token')
    expect(tokenEndpoint('https://adfs.local.azurestack.external/adfs', 'tid')).toBe('https://adfs.local.azurestack.external/adfs/oauth2/token')
  })

  it('client-credentials form asks for the AKS server application with a secret or an assertion', () => {
    const secret = new URLSearchParams(clientCredentialsForm('cid', AKS_SERVER_APP_ID, { secret: 's3cr=t&' }))
    expect(Object.fromEntries(secret)).toEqual({
      grant_type: 'client_credentials',
      client_id: 'cid',
      scope: `${AKS_SERVER_APP_ID}/.default`,
      client_secret: 's3cr=t&'
    })
    const assertion = new URLSearchParams(clientCredentialsForm('cid', AKS_SERVER_APP_ID, { assertion: 'jwt' }))
    expect(assertion.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
    expect(assertion.get('client_assertion')).toBe('jwt')
    expect(assertion.has('client_secret')).toBe(false)
  })

  it('az token expiry: expires_on (epoch seconds) wins over expiresOn', () => {
    expect(azTokenExpiry({ expires_on: 1_800_000_000, expiresOn: '2020-01-01 00:00:00.000000' })).toBe(1_800_000_000_000)
    expect(azTokenExpiry({ expiresOn: '2030-01-01 10:00:00.000000' })).toBe(Date.parse('2030-01-01T10:00:00.000000'))
  })
})

describe('kubelogin', () => {
  it('release asset names and the binary inside, as kubelogin release.yml zips them', () => {
    expect(kubeloginAssetName({ platform: 'linux', arch: 'amd64' })).toBe('kubelogin-linux-amd64.zip')
    expect(kubeloginAssetName({ platform: 'windows', arch: 'arm64' })).toBe('kubelogin-win-arm64.zip')
    expect(kubeloginAssetName({ platform: 'darwin', arch: 'arm64' })).toBe('kubelogin-darwin-arm64.zip')
    expect(kubeloginPathInZip({ platform: 'windows', arch: 'amd64' })).toMatch(/^bin[\\/]windows_amd64[\\/]kubelogin\.exe$/)
    expect(kubeloginUrl('https://github.com/Azure/kubelogin/releases/download/', 'v0.2.21', { platform: 'linux', arch: 'amd64' })).toBe(
      'https://github.com/Azure/kubelogin/releases/download/v0.2.21/kubelogin-linux-amd64.zip'
    )
  })

  it('convert arguments per sign-in: never a secret, client and tenant explicit', () => {
    const cloud = { name: 'AzureCloud', authority: 'https://login.microsoftonline.com' }
    const secret = convertArgs({ kind: 'secret', clientId: 'cid', tenantId: 'tid', clientSecret: 'SECRET' }, 'k', cloud)
    expect(secret).toEqual(['convert-kubeconfig', '--kubeconfig', 'k', '--login', 'spn', '--client-id', 'cid', '--tenant-id', 'tid'])
    expect(secret.join(' ')).not.toContain('SECRET')
    expect(convertArgs({ kind: 'oidc', clientId: 'cid', tenantId: 'tid', audience: 'a' }, 'k', cloud)).toEqual([
      'convert-kubeconfig',
      '--kubeconfig',
      'k',
      '--login',
      'workloadidentity',
      '--client-id',
      'cid',
      '--tenant-id',
      'tid'
    ])
    expect(
      convertArgs({ kind: 'oidc', clientId: 'cid', tenantId: 'tid', audience: 'a' }, 'k', {
        name: 'AzureUSGovernment',
        authority: 'https://login.microsoftonline.us'
      })
    ).toContain('https://login.microsoftonline.us/')
    expect(convertArgs({ kind: 'ambient' }, 'k', cloud)).toEqual(['convert-kubeconfig', '--kubeconfig', 'k', '--login', 'azurecli'])
  })

  it('moves the token cache into the job on Linux, and says where it stays on Windows and macOS', () => {
    expect(cacheDirVariable('linux')).toBe('XDG_CACHE_HOME')
    // azidentity/cache takes the Windows folder from KnownFolderPath, not from a variable.
    expect(cacheDirVariable('windows')).toBeUndefined()
    expect(cacheDirVariable('darwin')).toBeUndefined()
    expect(kubeloginCacheNote('linux')).toBeUndefined()
    expect(kubeloginCacheNote('windows')).toContain('%LOCALAPPDATA%\\.IdentityService\\msal.cache')
    expect(kubeloginCacheNote('darwin')).toContain('login Keychain, item "msal.cache"')
  })

  it('kubelogin-version must be a release version', () => {
    const read = (v: Record<string, string>) => (n: string) => v[n] ?? ''
    const base = { 'resource-group': 'rg', 'cluster-name': 'c' }
    expect(parseInputs(read(base)).kubeloginVersion).toBe('v0.2.21')
    expect(parseInputs(read({ ...base, 'kubelogin-version': '0.2.20' })).kubeloginVersion).toBe('v0.2.20')
    expect(() => parseInputs(read({ ...base, 'kubelogin-version': 'latest' }))).toThrow('kubelogin-version: "latest" is not valid')
  })
})

describe('Entra ID cluster info', () => {
  it('reads aadProfile and disableLocalAccounts', () => {
    expect(toClusterInfo(raw({}), 'rg')).toMatchObject({ entra: undefined, localAccountsDisabled: false })
    expect(toClusterInfo(raw({ aadProfile: { managed: true, enableAzureRBAC: true }, disableLocalAccounts: true }), 'rg')).toMatchObject({
      entra: { azureRbac: true },
      localAccountsDisabled: true
    })
  })

  it('admin: true is refused only where local accounts are disabled', () => {
    const noLocal = toClusterInfo(raw({ aadProfile: { managed: true }, disableLocalAccounts: true }), 'rg')
    expect(adminCredentialProblem(noLocal, true)).toContain('local accounts disabled')
    expect(adminCredentialProblem(noLocal, false)).toBeUndefined()
    expect(adminCredentialProblem(toClusterInfo(raw({ aadProfile: { managed: true } }), 'rg'), true)).toBeUndefined()
  })

  it('helm kubeconfig keeps the cluster and reads its token from a file; no exec plugin', () => {
    const user = [
      'apiVersion: v1',
      'clusters:',
      '- cluster: {certificate-authority-data: Q0E=, server: "https://c.hcp.eastus.azmk8s.io:443"}',
      '  name: c',
      'contexts:',
      '- context: {cluster: c, user: u}',
      '  name: c',
      'current-context: c',
      'kind: Config',
      'users:',
      '- name: u',
      '  user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: kubelogin, args: [get-token]}}',
      ''
    ].join('\n')
    const text = tokenFileKubeconfig(user, '/tmp/w/cluster-token')
    const parsed = JSON.parse(text) as { users: Array<{ user: Record<string, unknown> }> }
    expect(parsed.users[0]?.user).toEqual({ tokenFile: '/tmp/w/cluster-token' })
    const kc = new KubeConfig()
    kc.loadFromString(text)
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'https://c.hcp.eastus.azmk8s.io:443', caData: 'Q0E=' })
  })
})

describe('a custom OIDC audience on an Entra ID cluster', () => {
  it('is a problem only for OIDC with another audience than kubelogin asks for, and only where the kubeconfig runs kubelogin', async () => {
    const { laterStepAudienceProblem } = await import('../../src/kubernetes/kubelogin.js')
    const oidc = (audience: string) => ({ kind: 'oidc' as const, clientId: 'c', tenantId: 't', audience })
    expect(laterStepAudienceProblem(oidc('api://custom'), true)).toContain('asks GitHub for an ID token for api://AzureADTokenExchange only')
    expect(laterStepAudienceProblem(oidc('api://AzureADTokenExchange'), true)).toBeUndefined()
    expect(laterStepAudienceProblem(oidc('api://custom'), false)).toBeUndefined()
    expect(laterStepAudienceProblem({ kind: 'ambient' }, true)).toBeUndefined()
  })
})
