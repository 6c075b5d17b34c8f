import { describe, expect, it } from 'vitest'
import { coalescedLister, listContainerGroups, SHARED_LIST_MS } from '../../src/azure/container-groups.js'
import { ArmError, type ArmClient } from '../../src/azure/arm.js'

describe('container groups', () => {
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
