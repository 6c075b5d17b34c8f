import { describe, expect, it } from 'vitest'
import { isNotFound, kubeconfigSecrets } from '../../src/kube.js'
import { sampleDeployment } from '../../src/samples.js'

describe('kubeconfig secrets', () => {
  it('finds every credential field so it can be masked', () => {
    const text = [
      'users:',
      '- name: clusterUser',
      '  user:',
      '    client-certificate-data: Q0VSVA==',
      '    client-key-data: S0VZ',
      '    token: "abc.def"',
      '- name: other',
      '  user:',
      '    password: hunter2'
    ].join('\n')
    expect(kubeconfigSecrets(text)).toEqual(['Q0VSVA==', 'S0VZ', 'abc.def', 'hunter2'])
  })
  it('recognizes a 404 from client-node', () => {
    expect(isNotFound({ code: 404 })).toBe(true)
    expect(isNotFound(new Error('HTTP-Code: 404\nMessage: Unknown API Status Code!'))).toBe(true)
    expect(isNotFound({ code: 403 })).toBe(false)
  })
})

describe('sample deployments (the seed\'s, with today\'s images)', () => {
  it('pin the Linux sample to a Linux virtual node, tolerating its taint', () => {
    const d = sampleDeployment('Linux', 'default', 'virtual-kubelet-aci-connector-linux-eastus')
    expect(d.metadata?.name).toBe('aci-helloworld')
    expect(d.spec?.template.spec?.containers[0].image).toBe('mcr.microsoft.com/azuredocs/aci-helloworld')
    expect(d.spec?.template.spec?.nodeSelector).toEqual({ 'kubernetes.io/hostname': 'virtual-kubelet-aci-connector-linux-eastus', 'kubernetes.io/role': 'agent', type: 'virtual-kubelet' })
    expect(d.spec?.template.spec?.tolerations).toEqual([{ key: 'virtual-kubelet.io/provider', operator: 'Equal', value: 'azure', effect: 'NoSchedule' }])
  })
  it('use a current IIS image for Windows and mark both as made by the action', () => {
    const d = sampleDeployment('Windows', 'samples', 'virtual-kubelet-aci-connector-windows-eastus')
    expect(d.metadata).toMatchObject({ name: 'nanoserver-iis', namespace: 'samples', labels: { 'app.kubernetes.io/managed-by': 'aks-aci-connector-action' } })
    expect(d.spec?.template.spec?.containers[0].image).toMatch(/^mcr\.microsoft\.com\/windows\/servercore\/iis:windowsservercore-ltsc20\d\d$/)
    expect(d.spec?.template.spec?.nodeSelector?.['kubernetes.io/hostname']).toBe('virtual-kubelet-aci-connector-windows-eastus')
  })
})
