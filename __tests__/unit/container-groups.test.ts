import { describe, expect, it } from 'vitest'
import { coalescedLister, listContainerGroups, planGroupCleanup, SHARED_LIST_MS } from '../../src/azure/container-groups.js'
import { attributeGroup } from '../../src/virtual-nodes/attribution.js'
import { ArmError, type ArmClient } from '../../src/azure/arm.js'

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

  it('follows nextLink through every page of the list', async () => {
    const pages: Record<string, unknown> = {
      first: { value: [{ name: 'g1', tags: { NodeName: 'n1' } }], nextLink: 'https://management.azure.com/next?api-version=2023-05-01&$skiptoken=1' },
      next: { value: [{ name: 'g2', tags: {} }] }
    }
    const arm = {
      subscriptionPath: (rest: string) => `/subscriptions/s${rest}`,
      get: async (path: string) => {
        expect(path).toBe('/subscriptions/s/resourceGroups/MC_rg/providers/Microsoft.ContainerInstance/containerGroups')
        return pages.first
      },
      getNextLink: async (url: string) => {
        expect(url).toContain('$skiptoken=1')
        return pages.next
      }
    } as unknown as ArmClient
    expect(await listContainerGroups(arm, 'MC_rg')).toEqual([
      { name: 'g1', node: 'n1', uid: undefined, tags: { NodeName: 'n1' }, cpu: undefined, memoryInGB: undefined },
      { name: 'g2', node: undefined, uid: undefined, tags: {}, cpu: undefined, memoryInGB: undefined }
    ])
  })
})

describe('coalescedLister', () => {
  function countingArm(fail = false): { arm: ArmClient; gets: string[] } {
    const gets: string[] = []
    const arm = {
      subscriptionPath: (rest: string) => `/subscriptions/s${rest}`,
      get: async (path: string) => {
        gets.push(path)
        if (fail && gets.length === 1) throw new ArmError(503, 'ServiceUnavailable', 'try later')
        return { value: [{ name: `g${gets.length}`, tags: { NodeName: 'n' } }] }
      }
    } as unknown as ArmClient
    return { arm, gets }
  }

  it('answers drains of one resource group with one ARM read per interval, in any letter case; another group is its own read', async () => {
    let now = 0
    const { arm, gets } = countingArm()
    const list = coalescedLister(arm, () => now)
    const [a, b] = await Promise.all([list('MC_rg'), list('mc_RG')])
    expect(a).toEqual(b)
    expect(gets).toHaveLength(1)
    await list('other')
    expect(gets).toHaveLength(2)
    now += SHARED_LIST_MS - 1
    await list('MC_rg')
    expect(gets).toHaveLength(2)
    now += 1
    expect((await list('MC_rg'))[0]?.name).toBe('g3')
    expect(gets).toHaveLength(3)
  })

  it('does not keep a failed list for later callers', async () => {
    const { arm, gets } = countingArm(true)
    const list = coalescedLister(arm, () => 0)
    await expect(list('rg')).rejects.toThrow('try later')
    expect((await list('rg'))[0]?.name).toBe('g2')
    expect(gets).toHaveLength(2)
  })
})
