// Which container groups a connector teardown may delete (virtual-nodes/connector/attribution.ts).
import { describe, expect, it } from 'vitest'
import { ArmError, type ArmClient } from '../../src/azure/arm.js'
import { attributeGroup, planGroupCleanup } from '../../src/virtual-nodes/connector/attribution.js'

describe('container groups left by virtual nodes', () => {
  /** An ARM client that serves fixed lists per resource group (or an error), as listContainerGroups reads them. */
  function armWith(byGroup: Record<string, unknown[] | ArmError>): ArmClient {
    return {
      subscriptionPath: (rest: string) => `/subscriptions/s${rest}`,
      get: async (path: string) => {
        const rg = decodeURIComponent(/resourceGroups\/([^/]+)\//.exec(path)?.[1] ?? '')
        const v = byGroup[rg]
        if (v instanceof ArmError) throw v
        return { value: v ?? [] }
      }
    } as unknown as ArmClient
  }

  it('deletes in MC_ what is tagged for a gone node; elsewhere only what a known pod UID proves ours; lists the rest; notes what it could not check', async () => {
    const node = 'virtual-kubelet-aci-connector-linux-eastus'
    const arm = armWith({
      MC_rg: [
        { name: 'default-a', tags: { NodeName: node, UID: 'u-1' } },
        { name: 'default-b', tags: { NodeName: 'virtual-kubelet-other-linux-eastus' } },
        { name: 'team-db', tags: { owner: 'team' } }
      ],
      shared: [
        { name: 'default-mine', tags: { NodeName: node, UID: 'u-mine' } },
        { name: 'default-theirs', tags: { NodeName: node, UID: 'u-theirs' } },
        { name: 'default-untagged-uid', tags: { NodeName: node } }
      ],
      gone: new ArmError(404, 'ResourceGroupNotFound', "Resource group 'gone' could not be found."),
      locked: new ArmError(403, 'AuthorizationFailed', 'no read')
    })
    const plan = await planGroupCleanup(
      arm,
      ['MC_rg', 'shared', 'SHARED', 'gone', 'locked'],
      g => g.node === node,
      'mc_RG',
      new Map([['u-mine', 'default/mine']])
    )
    expect(plan.ours.map(f => `${f.resourceGroup}/${f.group.name}`).sort()).toEqual(['MC_rg/default-a', 'shared/default-mine'])
    expect(plan.notAttributable.map(f => f.group.name).sort()).toEqual(['default-theirs', 'default-untagged-uid'])
    expect(plan.notAttributable.find(f => f.group.name === 'default-theirs')?.reason).toContain('pod UID u-theirs is not one this cluster has or recorded')
    expect(plan.unchecked).toEqual([{ resourceGroup: 'locked', error: expect.stringContaining('no read') }])
  })

  it('attributes by resource group first, then by UID', () => {
    const g = { name: 'default-x', node: 'virtual-kubelet-a-linux-eastus', uid: 'u' }
    expect(attributeGroup(g, 'MC_x', 'mc_x', new Map()).ours).toBe(true)
    expect(attributeGroup(g, 'shared', 'MC_x', new Map([['u', 'default/x']]))).toEqual({
      ours: true,
      reason: 'its pod default/x (UID u) was on virtual-kubelet-a-linux-eastus in this cluster'
    })
    expect(attributeGroup(g, 'shared', 'MC_x', new Map([['v', 'default/y']])).ours).toBe(false)
    expect(attributeGroup({ ...g, uid: undefined }, 'shared', 'MC_x', new Map([['u', 'default/x']])).reason).toContain('the group has no UID tag')
  })
})
