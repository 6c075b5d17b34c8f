import { describe, expect, it } from 'vitest'
import { groupsOfNodes, listContainerGroups } from '../../src/container-groups.js'
import type { ArmClient } from '../../src/arm.js'

describe('container groups left by virtual nodes', () => {
  it('picks the groups tagged for the removed nodes only', () => {
    const groups = [
      { name: 'default-a', node: 'virtual-kubelet-x-linux-eastus' },
      { name: 'default-b', node: 'virtual-node-aci-linux' },
      { name: 'manual', node: undefined },
      { name: 'default-c', node: 'virtual-kubelet-x-windows-eastus' }
    ]
    expect(groupsOfNodes(groups, ['virtual-kubelet-x-linux-eastus', 'virtual-kubelet-x-windows-eastus']).map(g => g.name)).toEqual(['default-a', 'default-c'])
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
      { name: 'g1', node: 'n1' },
      { name: 'g2', node: undefined }
    ])
  })
})
