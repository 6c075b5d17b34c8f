// Virtual Nodes v2's node names (the chart's fullname rule), the extension's body, and the placement a pod needs.
import { describe, expect, it } from 'vitest'
import type { V1Node } from '@kubernetes/client-node'
import { extensionBody, v2FullName, v2NodeNames } from '../../src/virtual-nodes/v2/extension.js'
import { nodesOfExtension, v2Placement } from '../../src/virtual-nodes/v2/nodes.js'

describe('Virtual Nodes v2 names, body and placement', () => {
  it('names nodes after the chart fullname rule, and finds only an extension own nodes', () => {
    expect(v2FullName('aci-virtual-nodes')).toBe('aci-virtual-nodes-virtualnode')
    expect(v2FullName('myvirtualnode')).toBe('myvirtualnode')
    expect(v2NodeNames('vn', 2)).toEqual(['vn-virtualnode-0', 'vn-virtualnode-1'])
    const n = (name: string, v2 = true): V1Node => ({ metadata: { name, labels: v2 ? { virtualization: 'virtualnode2' } : ({} as Record<string, string>) } })
    expect(
      nodesOfExtension('vn', [n('vn-virtualnode-0'), n('vn-virtualnode-x'), n('vn-virtualnode-1', false), n('other-virtualnode-0')]).map(x => x.metadata?.name)
    ).toEqual(['vn-virtualnode-0'])
  })

  it('sends what az k8s-extension create sends, and places pods with the selector, toleration and owner tag', () => {
    expect(extensionBody(3)).toEqual({
      properties: {
        extensionType: 'microsoft.virtualnodes',
        autoUpgradeMinorVersion: true,
        scope: { cluster: { releaseNamespace: 'vn-system' } },
        configurationSettings: { replicaCount: '3', aciSubnetName: 'virtualnodes-aci-subnet' }
      }
    })
    expect(v2Placement('uid-1')).toEqual({
      nodeSelector: { 'kubernetes.io/os': 'linux', virtualization: 'virtualnode2' },
      tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Exists', effect: 'NoSchedule' }],
      annotations: { 'microsoft.containerinstance.virtualnode.customtags': 'aks-aci-connector-action-cluster=uid-1' }
    })
  })
})
