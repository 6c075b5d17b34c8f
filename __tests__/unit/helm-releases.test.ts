import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { chartIdentity, decodeReleaseRecord, upgradeReason } from '../../src/kubernetes/helm-releases.js'

describe("Helm's release records", () => {
  it('decodes a Helm 3/4 release record (base64 of base64 of gzipped JSON)', () => {
    const body = {
      chart: { metadata: { name: 'virtual-kubelet-azure-aci', version: '1.6.4' } },
      config: { nodeName: 'virtual-kubelet-pr-1-linux-eastus', nodeOsType: 'Linux' },
      info: { status: 'deployed', first_deployed: '2026-11-30T10:00:00Z' }
    }
    const release = Buffer.from(gzipSync(JSON.stringify(body)).toString('base64')).toString('base64')
    expect(decodeReleaseRecord({ data: { release } })).toEqual({
      chart: 'virtual-kubelet-azure-aci',
      chartVersion: '1.6.4',
      config: body.config,
      firstDeployed: '2026-11-30T10:00:00Z',
      status: 'deployed'
    })
    expect(decodeReleaseRecord({ data: { release: 'bm90IGpzb24=' } })).toBeUndefined()
  })

  it('an upgrade is skipped only for a deployed release of the same chart version and the same values', async () => {
    const chart = await chartIdentity('https://github.com/virtual-kubelet/azure-aci/raw/gh-pages/charts/virtual-kubelet-azure-aci-1.6.4.tgz')
    expect(chart).toEqual({ name: 'virtual-kubelet-azure-aci', version: '1.6.4' })
    const values = { nodeName: 'n', providers: { azure: { clientId: 'c', tenantId: 't' } } }
    const record = {
      status: 'deployed',
      chart: 'virtual-kubelet-azure-aci',
      chartVersion: '1.6.4',
      config: { providers: { azure: { tenantId: 't', clientId: 'c' } }, nodeName: 'n' }
    }
    expect(upgradeReason(record, chart, values)).toBeUndefined()
    expect(upgradeReason(undefined, chart, values)).toBe('not installed')
    expect(upgradeReason({ ...record, status: 'failed' }, chart, values)).toContain('failed')
    expect(upgradeReason({ ...record, chartVersion: '1.6.3' }, chart, values)).toContain('1.6.3 -> virtual-kubelet-azure-aci 1.6.4')
    expect(upgradeReason(record, chart, { ...values, nodeName: 'other' })).toBe('its values change')
    expect(upgradeReason(record, await chartIdentity('oci://example.azurecr.io/charts/vk'), values)).toContain('does not name its version')
  })
})
