import { promises as fs } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { withValuesFile } from '../../src/kubernetes/helm.js'
import { connectorValues } from '../../src/virtual-nodes/connector/installed.js'
import { connectorNames } from '../../src/virtual-nodes/connector/names.js'
import { installArgs, renderValues, unquotedSlotValue, type ConnectorSettings } from '../../src/virtual-nodes/connector/release.js'

const linux = connectorNames('aci-connector', 'Linux', 'eastus')
const settings: ConnectorSettings = {
  tenantId: 't',
  subscriptionId: 's',
  aciResourceGroup: 'MC_rg_aks_eastus',
  location: 'eastus',
  masterUri: 'https://aks-dns.hcp.eastus.azmk8s.io:443',
  enableRBAC: true,
  clientId: 'cid',
  clientSecret: 'the-secret'
}

describe('chart values (virtual-kubelet-azure-aci)', () => {
  it('render the node, OS, namespace, taint and the azure provider settings', () => {
    expect(renderValues(linux, settings)).toEqual({
      provider: 'azure',
      nodeName: 'virtual-kubelet-aci-connector-linux-eastus',
      nodeOsType: 'Linux',
      namespace: 'aci-connector-linux-eastus',
      taint: { enabled: true, key: 'virtual-kubelet.io/provider', value: 'azure', effect: 'NoSchedule' },
      rbac: { install: true },
      providers: {
        azure: {
          targetAKS: true,
          tenantId: 't',
          subscriptionId: 's',
          aciResourceGroup: 'MC_rg_aks_eastus',
          aciRegion: 'eastus',
          masterUri: 'https://aks-dns.hcp.eastus.azmk8s.io:443',
          clientId: 'cid',
          clientKey: 'the-secret'
        }
      }
    })
  })
  it('set the managed identity instead of a service principal when asked', () => {
    const v = renderValues(connectorNames('x', 'Windows', 'eastus'), {
      ...settings,
      clientId: undefined,
      clientSecret: undefined,
      managedIdentityClientId: 'kubelet-mi',
      imageTag: '1.6.3'
    }) as {
      nodeOsType: string
      image: { tag: string }
      providers: { azure: Record<string, unknown> }
    }
    expect(v.nodeOsType).toBe('Windows')
    expect(v.image).toEqual({ tag: '1.6.3' })
    expect(v.providers.azure.managedIdentityID).toBe('kubelet-mi')
    expect(v.providers.azure).not.toHaveProperty('clientKey')
  })
})

describe('helm invocation', () => {
  it('upgrade --install with the values file: no secret in argv', () => {
    const args = installArgs(linux, 'https://charts/x.tgz', '/tmp/v/values.json', '/tmp/k.yaml')
    expect(args.slice(0, 4)).toEqual(['upgrade', '--install', 'aci-connector-linux-eastus', 'https://charts/x.tgz'])
    expect(args).toEqual(expect.arrayContaining(['--values', '/tmp/v/values.json', '--kubeconfig', '/tmp/k.yaml']))
    expect(args.join(' ')).not.toContain('the-secret')
  })
  it('write the values 0600 and delete them afterwards, also when helm fails', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vals-'))
    let seen = ''
    await expect(
      withValuesFile(dir, renderValues(linux, settings), async (file: string) => {
        seen = file
        expect((await fs.stat(file)).mode & 0o777).toBe(0o600)
        expect(JSON.parse(await fs.readFile(file, 'utf8')).providers.azure.clientKey).toBe('the-secret')
        throw new Error('helm failed')
      })
    ).rejects.toThrow('helm failed')
    await expect(fs.access(seen)).rejects.toThrow()
    expect(await fs.readdir(dir)).toEqual([])
    await fs.rm(dir, { recursive: true })
  })
})

describe('values for the chart’s unquoted template slots', () => {
  it('quotes what YAML would read as a number, boolean or null, and nothing else; teardown reads it back as it was', () => {
    expect(unquotedSlotValue('MC_rg_aks_eastus')).toBe('MC_rg_aks_eastus')
    expect(unquotedSlotValue('rg-aci.(1)')).toBe('rg-aci.(1)')
    for (const v of ['12345', 'yes', 'No', 'on', 'null', '1e3', '0x1F', '-rg', '.5', '_x']) expect(unquotedSlotValue(v)).toBe(JSON.stringify(v))
    expect(connectorValues('a-linux-eastus', { providers: { azure: { aciResourceGroup: '"12345"' } } }).aciResourceGroup).toBe('12345')
  })
})
