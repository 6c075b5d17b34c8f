import { describe, expect, it } from 'vitest'
import { secretForms } from '../../src/runner/secrets.js'
import { helmEnv } from '../../src/kubernetes/helm.js'

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
