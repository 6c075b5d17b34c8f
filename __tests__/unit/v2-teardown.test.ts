// What a Virtual Nodes v2 teardown takes: only this action's extension and its nodes.
import { describe, expect, it } from 'vitest'
import type { V1Node } from '@kubernetes/client-node'
import type { ArmClient } from '../../src/azure/arm.js'
import type { Kube } from '../../src/kubernetes/kube.js'
import { findV2Targets } from '../../src/virtual-nodes/v2/teardown.js'

describe('what a v2 teardown takes', () => {
  const node = (name: string, ready: boolean, since = '2020-01-01T00:00:00Z'): V1Node => ({
    metadata: { name, labels: { virtualization: 'virtualnode2' }, creationTimestamp: new Date(since) },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'Unknown', lastTransitionTime: new Date(since) }] }
  })
  const fakes = (extensions: Array<{ name: string }>, nodes: V1Node[]) => ({
    arm: {
      subscriptionPath: (p: string) => `/subscriptions/s${p}`,
      get: async () => ({
        value: extensions.map(e => ({ name: e.name, properties: { extensionType: 'microsoft.virtualnodes', provisioningState: 'Succeeded' } }))
      })
    } as unknown as ArmClient,
    kube: { core: { listNode: async () => ({ items: nodes }) } } as unknown as Kube
  })
  const cluster = { resourceGroup: 'rg', name: 'c', nodeResourceGroup: 'MC_rg' }
  /** The action's record names its own extension (aci-virtual-nodes). */
  const recorded = { isOurs: async (e: { name: string }) => e.name === 'aci-virtual-nodes', recorded: true }

  it("takes only this action's extension and its nodes; another extension and other v2 nodes are listed and left", async () => {
    const { arm, kube } = fakes(
      [{ name: 'aci-virtual-nodes' }, { name: 'team-vn' }],
      [node('aci-virtual-nodes-virtualnode-0', true), node('team-vn-virtualnode-0', true), node('helm-virtualnode-0', false)]
    )
    const found = await findV2Targets(arm, cluster, kube, recorded)
    expect(found.targets.map(t => [t.extension?.name, t.nodes.map(n => n.metadata?.name)])).toEqual([
      ['aci-virtual-nodes', ['aci-virtual-nodes-virtualnode-0']]
    ])
    expect(found.left.map(i => `${i.kind} ${i.name} ${i.outcome}`)).toEqual(['extension team-vn left', 'node helm-virtualnode-0 left'])
  })

  it('a sweep takes the extension only when every node is dead long enough; leftover nodes of it once the extension is gone', async () => {
    const now = Date.parse('2020-01-01T00:10:00Z')
    const alive = fakes([{ name: 'aci-virtual-nodes' }], [node('aci-virtual-nodes-virtualnode-0', false), node('aci-virtual-nodes-virtualnode-1', true)])
    expect((await findV2Targets(alive.arm, cluster, alive.kube, recorded, { now })).targets).toEqual([])
    const dead = fakes(
      [{ name: 'aci-virtual-nodes' }],
      [node('aci-virtual-nodes-virtualnode-0', false), node('aci-virtual-nodes-virtualnode-1', false, '2020-01-01T00:08:00Z')]
    )
    expect((await findV2Targets(dead.arm, cluster, dead.kube, recorded, { now })).targets).toEqual([])
    const gone = fakes([], [node('aci-virtual-nodes-virtualnode-3', false)])
    expect((await findV2Targets(gone.arm, cluster, gone.kube, recorded, { now })).targets.map(t => t.nodes.map(n => n.metadata?.name))).toEqual([
      ['aci-virtual-nodes-virtualnode-3']
    ])
  })

  it("leaves an extension named as this action names its own when nothing proves it this action's (another team's)", async () => {
    const { arm, kube } = fakes([{ name: 'aci-virtual-nodes' }], [node('aci-virtual-nodes-virtualnode-0', true)])
    const found = await findV2Targets(arm, cluster, kube, { isOurs: async () => false, recorded: false })
    expect(found.targets).toEqual([])
    expect(found.left.map(i => `${i.kind} ${i.name} ${i.outcome}`)).toEqual(['extension aci-virtual-nodes left'])
  })

  it('a sweep takes the extension only when it is older than older-than and its name matches the glob', async () => {
    const now = Date.parse('2020-01-01T01:00:00Z')
    const dead = fakes([{ name: 'aci-virtual-nodes' }], [node('aci-virtual-nodes-virtualnode-0', false)])
    // The fakes' extension carries no systemData.createdAt: its age is unknown, so older-than keeps it.
    expect((await findV2Targets(dead.arm, cluster, dead.kube, recorded, { now, olderThanMs: 60_000 })).targets).toEqual([])
    expect((await findV2Targets(dead.arm, cluster, dead.kube, recorded, { now, matches: n => n.startsWith('pr-') })).targets).toEqual([])
    expect((await findV2Targets(dead.arm, cluster, dead.kube, recorded, { now, matches: () => true })).targets).toHaveLength(1)
  })
})
