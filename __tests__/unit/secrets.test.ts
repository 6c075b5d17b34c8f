import { describe, expect, it } from 'vitest'
import { secretForms } from '../../src/secrets.js'
import { helmEnv } from '../../src/connector.js'

describe('secrets in every form a tool may print them', () => {
  it('masks the raw secret, its base64 (padded, unpadded, URL-safe), JSON-escaped and percent-encoded forms', () => {
    const secret = 'a"b\\c d/é+?'
    const forms = secretForms(secret)
    expect(forms).toContain(secret)
    expect(forms).toContain(Buffer.from(secret).toString('base64'))
    expect(forms).toContain(Buffer.from(secret).toString('base64url'))
    expect(forms).toContain('a\\"b\\\\c d/é+?')
    expect(forms).toContain(encodeURIComponent(secret))
    expect(forms).toContain('a%22b%5Cc+d%2F%C3%A9%2B%3F')
    expect(new Set(forms).size).toBe(forms.length)
    expect(secretForms('')).toEqual([])
  })

  it('starts helm without the job settings that print values or point it elsewhere, and keeps the registry and cache ones', () => {
    const env = helmEnv(
      { helm: 'helm', kubeconfig: '/w/kubeconfig', workDir: '/w' },
      {
        PATH: '/usr/bin',
        HELM_DEBUG: 'true',
        HELM_KUBECONTEXT: 'other',
        HELM_KUBETOKEN: 't',
        HELM_KUBEAPISERVER: 'https://elsewhere',
        HELM_NAMESPACE: 'x',
        HELM_DRIVER: 'configmap',
        HELM_REGISTRY_CONFIG: '/r.json',
        HELM_CACHE_HOME: '/c',
        KUBECONFIG: '/home/u/.kube/config'
      }
    )
    expect(env).toEqual({ PATH: '/usr/bin', HELM_REGISTRY_CONFIG: '/r.json', HELM_CACHE_HOME: '/c', KUBECONFIG: '/w/kubeconfig' })
  })
})

describe('values for the chart’s unquoted template slots', () => {
  it('quotes what YAML would read as a number, boolean or null, and nothing else; teardown reads it back as it was', async () => {
    const { unquotedSlotValue } = await import('../../src/connector.js')
    const { connectorValues } = await import('../../src/installed.js')
    expect(unquotedSlotValue('MC_rg_aks_eastus')).toBe('MC_rg_aks_eastus')
    expect(unquotedSlotValue('rg-aci.(1)')).toBe('rg-aci.(1)')
    for (const v of ['12345', 'yes', 'No', 'on', 'null', '1e3', '0x1F', '-rg', '.5', '_x']) expect(unquotedSlotValue(v)).toBe(JSON.stringify(v))
    expect(connectorValues('a-linux-eastus', { providers: { azure: { aciResourceGroup: '"12345"' } } }).aciResourceGroup).toBe('12345')
  })
})
