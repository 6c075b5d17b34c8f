import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { azEnv, signInHint, tokenEndpoint, tokenObjectId } from '../../src/azure/azure-login.js'
import { activeCloudName, cloudEndpoints, cloudIsKnown, parseCloudsConfig } from '../../src/azure/clouds.js'

const CLOUDS_CONFIG = [
  '[AzureStackUser]',
  'endpoint_resource_manager = https://management.local.azurestack.external/',
  'endpoint_active_directory = https://adfs.local.azurestack.external/adfs',
  'endpoint_active_directory_resource_id = https://management.adfs.azurestack.local/abc',
  'profile = 2020-09-01-hybrid',
  '',
  '[Incomplete]',
  'endpoint_resource_manager = https://x/',
  ''
].join('\n')

describe('cloud endpoints without starting az', () => {
  it('reads registered clouds from clouds.config; sections without the endpoints are skipped', () => {
    expect(parseCloudsConfig(CLOUDS_CONFIG)).toEqual([
      {
        name: 'AzureStackUser',
        resourceManager: 'https://management.local.azurestack.external',
        authority: 'https://adfs.local.azurestack.external/adfs',
        armResource: 'https://management.adfs.azurestack.local/abc'
      }
    ])
  })

  it('public clouds are built in; names match case-insensitively; unknown names say what to do', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'az-config-'))
    try {
      await writeFile(join(dir, 'clouds.config'), CLOUDS_CONFIG)
      expect(await cloudEndpoints('azureusgovernment', dir)).toMatchObject({
        resourceManager: 'https://management.usgovcloudapi.net',
        authority: 'https://login.microsoftonline.us'
      })
      expect((await cloudEndpoints('AzureStackUser', dir)).authority).toBe('https://adfs.local.azurestack.external/adfs')
      await expect(cloudEndpoints('Nowhere', dir)).rejects.toThrow('az cloud register')
      // The input check and the sign-in agree: a section without the endpoints the sign-in needs is no cloud.
      expect(await cloudIsKnown('azurestackuser', dir)).toBe(true)
      expect(await cloudIsKnown('Incomplete', dir)).toBe(false)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("the active cloud is az config's [cloud] name, AzureCloud when unset", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'az-config-'))
    try {
      expect(await activeCloudName(dir)).toBe('AzureCloud')
      await writeFile(join(dir, 'config'), '[core]\noutput = json\n\n[cloud]\nname = AzureChinaCloud\n')
      expect(await activeCloudName(dir)).toBe('AzureChinaCloud')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('token endpoints: tenant-scoped v2.0 for Entra ID, tenant-less for ADFS', () => {
    expect(tokenEndpoint('https://login.microsoftonline.com', 'tid')).toBe('https://login.microsoftonline.com/tid/oauth2/v2.0/token')
    expect(tokenEndpoint('https://adfs.local.azurestack.external/adfs/', 'tid')).toBe('https://adfs.local.azurestack.external/adfs/oauth2/token')
  })

  it('az runs without telemetry', () => {
    expect(azEnv({ PATH: '/bin' })).toMatchObject({ PATH: '/bin', AZURE_CORE_COLLECT_TELEMETRY: 'no' })
  })
})

describe('sign-in failures', () => {
  it.each([
    ['AADSTS7000215: Invalid client secret provided.', /secret's Value \(not its Secret ID\)/],
    ['AADSTS7000222: The provided client secret keys are expired.', /expired: create a new one/],
    ['AADSTS700016: Application with identifier', /check client-id and tenant-id/],
    ['AADSTS70021: No matching federated identity record found', /federated credential/],
    ['something else', /Check the credentials/]
  ])('%s -> a hint', (text, hint) => expect(signInHint(text)).toMatch(hint))
})

describe('the signed-in principal', () => {
  it('reads the object ID from the token, and nothing from a token that is not a JWT', () => {
    const payload = Buffer.from(JSON.stringify({ oid: '11111111-2222-3333-4444-555555555555' })).toString('base64url')
    expect(tokenObjectId(`eyJhbGciOiJSUzI1NiJ9.${payload}.sig`)).toBe('11111111-2222-3333-4444-555555555555')
    expect(tokenObjectId('opaque')).toBeUndefined()
  })
})
