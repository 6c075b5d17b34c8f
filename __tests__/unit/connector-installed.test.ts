// What teardown reads from the cluster: the connector settings of each release (today's
// chart and the old CLI's), which nodes are ACI connectors', and which of them a removal or
// a sweep takes. The selection is pure logic over what the API returns, so the Kubernetes
// client is stubbed here; the e2e tests run the same against a real API server.
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import type { V1Node, V1Secret } from '@kubernetes/client-node'
import type { Kube } from '../../src/kubernetes/kube.js'
import { notReadySince } from '../../src/kubernetes/pods.js'
import {
  connectorNameOf,
  connectorValues,
  globToRegExp,
  isAciConnectorChart,
  isAciConnectorNode,
  parseNodeName
} from '../../src/virtual-nodes/connector/installed.js'
import { NOT_READY_GRACE_MS, sweepScope } from '../../src/virtual-nodes/connector/sweep.js'
import { findRemovalTargets } from '../../src/virtual-nodes/connector/targets.js'

const NOW = Date.parse('2026-12-02T12:00:00Z')
const MIN = 60_000

function releaseSecret(name: string, chart: string, config: Record<string, unknown>, firstDeployed = '2026-12-01T00:00:00Z'): V1Secret {
  const body = { chart: { metadata: { name: chart, version: '1' } }, config, info: { status: 'deployed', first_deployed: firstDeployed } }
  return {
    metadata: { name: `sh.helm.release.v1.${name}.v1`, namespace: 'default', labels: { owner: 'helm', name, version: '1', status: 'deployed' } },
    data: { release: Buffer.from(gzipSync(JSON.stringify(body)).toString('base64')).toString('base64') }
  }
}

function vnode(name: string, opts: { ready?: boolean; since?: number; created?: number; taint?: string } = {}): V1Node {
  const since = new Date(opts.since ?? NOW - 60 * MIN)
  return {
    metadata: { name, labels: { type: 'virtual-kubelet' }, creationTimestamp: new Date(opts.created ?? NOW - 120 * MIN) },
    spec: { taints: [{ key: opts.taint ?? 'virtual-kubelet.io/provider', value: 'azure', effect: 'NoSchedule' }] },
    status: { conditions: [{ type: 'Ready', status: opts.ready ? 'True' : 'Unknown', lastTransitionTime: since }] }
  }
}

function kubeWith(secrets: V1Secret[], nodes: V1Node[]): Kube {
  const core = {
    listSecretForAllNamespaces: async () => ({ items: secrets }),
    listNode: async () => ({ items: nodes }),
    readNamespacedConfigMap: async () => {
      throw Object.assign(new Error('not found'), { code: 404 })
    }
  }
  return { core } as unknown as Kube
}

describe('connector settings from a release record', () => {
  it("reads today's chart (top level and providers.azure) and the old CLI's (env)", () => {
    expect(
      connectorValues('aci-connector-linux-westus2', {
        nodeName: 'virtual-kubelet-aci-connector-linux-westus2',
        nodeOsType: 'Linux',
        namespace: 'vk-azure-aci-aci-connector-linux-westus2',
        providers: { azure: { aciResourceGroup: 'rg-aci', aciRegion: 'West US 2' } }
      })
    ).toEqual({
      node: 'virtual-kubelet-aci-connector-linux-westus2',
      os: 'Linux',
      namespace: 'vk-azure-aci-aci-connector-linux-westus2',
      aciResourceGroup: 'rg-aci',
      region: 'westus2'
    })
    expect(
      connectorValues('old-windows-eastus', { env: { nodeName: 'virtual-kubelet-old-windows-eastus', nodeOsType: 'Windows', aciRegion: 'eastus' } })
    ).toEqual({ node: 'virtual-kubelet-old-windows-eastus', os: 'Windows', namespace: undefined, aciResourceGroup: undefined, region: 'eastus' })
    // Nothing in the values: the old CLI's naming stands in.
    expect(connectorValues('x-windows-westeurope', {})).toMatchObject({ node: 'virtual-kubelet-x-windows-westeurope', os: 'Windows', region: 'westeurope' })
  })

  it('counts the generic virtual-kubelet chart only with provider azure', () => {
    expect(isAciConnectorChart('virtual-kubelet-azure-aci', {})).toBe(true)
    expect(isAciConnectorChart('virtual-kubelet-for-aks', {})).toBe(true)
    expect(isAciConnectorChart('virtual-kubelet', { provider: 'azure' })).toBe(true)
    expect(isAciConnectorChart('virtual-kubelet', { provider: 'aws' })).toBe(false)
    expect(isAciConnectorChart('nginx', {})).toBe(false)
  })

  it("knows an ACI connector's node by label and taint, never the add-on's", () => {
    expect(isAciConnectorNode(vnode('virtual-kubelet-a-linux-eastus'))).toBe(true)
    expect(isAciConnectorNode(vnode('virtual-kubelet-a-linux-eastus', { taint: 'azure.com/aci' }))).toBe(true)
    expect(isAciConnectorNode(vnode('virtual-kubelet-a-linux-eastus', { taint: 'virtual-kubelet.io/provider-other' }))).toBe(false)
    expect(isAciConnectorNode(vnode('virtual-node-aci-linux'))).toBe(false)
    expect(parseNodeName('virtual-kubelet-pr-7-windows-westus2')).toEqual({ connector: 'pr-7', os: 'Windows', region: 'westus2' })
    expect(parseNodeName('virtual-kubelet')).toBeUndefined()
  })

  it('dates NotReady from the Ready condition, and is undefined while Ready', () => {
    expect(notReadySince(vnode('n', { ready: true }))).toBeUndefined()
    expect(notReadySince(vnode('n', { since: NOW - 7 * MIN }))?.getTime()).toBe(NOW - 7 * MIN)
  })
})

describe('what a removal and a sweep take', () => {
  const releases = [
    releaseSecret('aci-connector-linux-westus2', 'virtual-kubelet-azure-aci', {
      nodeName: 'virtual-kubelet-aci-connector-linux-westus2',
      nodeOsType: 'Linux',
      providers: { azure: { aciResourceGroup: 'rg-aci', aciRegion: 'westus2' } }
    }),
    releaseSecret('aci-connector-windows-westus2', 'virtual-kubelet-azure-aci', {
      nodeName: 'virtual-kubelet-aci-connector-windows-westus2',
      nodeOsType: 'Windows',
      providers: { azure: { aciResourceGroup: 'rg-aci', aciRegion: 'westus2' } }
    }),
    releaseSecret('other-linux-eastus', 'virtual-kubelet-azure-aci', { nodeName: 'virtual-kubelet-other-linux-eastus' })
  ]

  it('a remove by connector name takes every OS and region it has, with their own ACI group; os-type and location narrow it', async () => {
    const kube = kubeWith(releases, [vnode('virtual-kubelet-aci-connector-linux-westus2', { ready: true })])
    const all = await findRemovalTargets(kube, { connector: n => n === 'aci-connector' }, 'MC_x')
    expect(all.map(t => [t.names.release, t.names.os, t.aciResourceGroup, Boolean(t.node)])).toEqual([
      ['aci-connector-linux-westus2', 'Linux', 'rg-aci', true],
      ['aci-connector-windows-westus2', 'Windows', 'rg-aci', false]
    ])
    expect((await findRemovalTargets(kube, { connector: n => n === 'aci-connector', os: ['Windows'] }, 'MC_x')).map(t => t.names.os)).toEqual(['Windows'])
    expect(await findRemovalTargets(kube, { connector: n => n === 'aci-connector', location: 'eastus' }, 'MC_x')).toEqual([])
    // A release with no ACI group in its values used the cluster's own.
    expect((await findRemovalTargets(kube, { connector: n => n === 'other' }, 'MC_x'))[0]?.aciResourceGroup).toBe('MC_x')
  })

  it('a sweep takes a dead node only of a matching connector, old enough, NotReady for the grace period, and served by no release', async () => {
    const nodes = [
      vnode('virtual-kubelet-pr-1-linux-eastus', { since: NOW - NOT_READY_GRACE_MS - MIN }),
      vnode('virtual-kubelet-pr-2-linux-eastus', { since: NOW - 30_000 }),
      vnode('virtual-kubelet-pr-3-linux-eastus', { ready: true }),
      vnode('virtual-kubelet-team-linux-eastus', { since: NOW - 60 * MIN }),
      vnode('virtual-kubelet-pr-4-linux-eastus', { since: NOW - 60 * MIN, created: NOW - 10 * MIN }),
      vnode('virtual-kubelet-other-linux-eastus', { since: NOW - 60 * MIN }),
      vnode('virtual-kubelet', { since: NOW - 60 * MIN })
    ]
    const kube = kubeWith(releases, nodes)
    const names = async (glob: string, olderThanMs?: number): Promise<string[]> =>
      (await findRemovalTargets(kube, sweepScope({ glob, olderThanMs, now: NOW }), 'MC_x')).filter(t => !t.release).map(t => t.names.node)
    expect(await names('pr-*')).toEqual(['virtual-kubelet-pr-1-linux-eastus', 'virtual-kubelet-pr-4-linux-eastus'])
    expect(await names('pr-*', 30 * MIN)).toEqual(['virtual-kubelet-pr-1-linux-eastus'])
    // `*` also takes an ACI node whose name follows no connector's; a release's node never goes as dead.
    expect(await names('*')).toEqual([
      'virtual-kubelet-pr-1-linux-eastus',
      'virtual-kubelet-team-linux-eastus',
      'virtual-kubelet-pr-4-linux-eastus',
      'virtual-kubelet'
    ])
  })
})

describe('sweep matching', () => {
  it('reads the connector name out of a release named as the old CLI did', () => {
    expect(connectorNameOf('pr-42-linux-eastus')).toBe('pr-42')
    expect(connectorNameOf('aci-connector-windows-westeurope')).toBe('aci-connector')
    expect(connectorNameOf('my-hand-made-vk')).toBe('my-hand-made-vk')
  })

  it('matches globs with * and ? only, everything else literally', () => {
    expect(globToRegExp('pr-*').test('pr-42')).toBe(true)
    expect(globToRegExp('pr-*').test('prod')).toBe(false)
    expect(globToRegExp('pr-?').test('pr-4')).toBe(true)
    expect(globToRegExp('pr-?').test('pr-42')).toBe(false)
    expect(globToRegExp('*').test('anything-at-all')).toBe(true)
    expect(globToRegExp('a.b').test('axb')).toBe(false)
  })
})
