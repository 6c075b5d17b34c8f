import { describe, expect, it } from 'vitest'
import { connectorPlacement } from '../../src/virtual-nodes/connector/placement.js'
import { sampleDeployment } from '../../src/virtual-nodes/samples.js'

describe("sample deployments (the 2019 Azure doc's, with today's images)", () => {
  it('pin the Linux sample to a Linux virtual node, tolerating its taint', () => {
    const d = sampleDeployment('Linux', 'default', connectorPlacement('Linux', 'virtual-kubelet-aci-connector-linux-eastus'))
    expect(d.metadata?.name).toBe('aci-helloworld')
    expect(d.spec?.template.spec?.containers[0].image).toBe('mcr.microsoft.com/azuredocs/aci-helloworld')
    expect(d.spec?.template.spec?.nodeSelector).toEqual({
      'kubernetes.io/os': 'linux',
      'kubernetes.io/hostname': 'virtual-kubelet-aci-connector-linux-eastus',
      'kubernetes.io/role': 'agent',
      type: 'virtual-kubelet'
    })
    expect(d.spec?.template.spec?.tolerations).toEqual([{ key: 'virtual-kubelet.io/provider', operator: 'Equal', value: 'azure', effect: 'NoSchedule' }])
  })
  it('use a current IIS image for Windows and mark both as made by the action', () => {
    const d = sampleDeployment('Windows', 'samples', connectorPlacement('Windows', 'virtual-kubelet-aci-connector-windows-eastus'))
    expect(d.metadata).toMatchObject({ name: 'nanoserver-iis', namespace: 'samples', labels: { 'app.kubernetes.io/managed-by': 'aks-aci-connector-action' } })
    expect(d.spec?.template.spec?.containers[0].image).toMatch(/^mcr\.microsoft\.com\/windows\/servercore\/iis:windowsservercore-ltsc20\d\d$/)
    expect(d.spec?.template.spec?.nodeSelector?.['kubernetes.io/hostname']).toBe('virtual-kubelet-aci-connector-windows-eastus')
  })
})
