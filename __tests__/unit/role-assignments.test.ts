import { describe, expect, it } from 'vitest'
import { assignmentApplies, CONTAINER_GROUP_WRITE, permits, scopeCovers } from '../../src/azure/role-assignments.js'

// Permission sets of built-in roles as documented
// (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
const CONTRIBUTOR = {
  actions: ['*'],
  notActions: ['Microsoft.Authorization/*/Delete', 'Microsoft.Authorization/*/Write', 'Microsoft.Authorization/elevateAccess/Action']
}
const READER = { actions: ['*/read'], notActions: [] }

describe('role assignments', () => {
  it('Contributor may create container groups, Reader may not, nothing may not', () => {
    expect(permits([CONTRIBUTOR], CONTAINER_GROUP_WRITE)).toBe(true)
    expect(permits([READER], CONTAINER_GROUP_WRITE)).toBe(false)
    expect(permits([], CONTAINER_GROUP_WRITE)).toBe(false)
    expect(permits([READER, CONTRIBUTOR], CONTAINER_GROUP_WRITE)).toBe(true)
  })

  it('a notAction removes only what its own entry grants', () => {
    expect(
      permits([{ actions: ['Microsoft.ContainerInstance/*'], notActions: ['Microsoft.ContainerInstance/containerGroups/write'] }], CONTAINER_GROUP_WRITE)
    ).toBe(false)
    expect(
      permits(
        [
          { actions: ['Microsoft.ContainerInstance/*'], notActions: ['Microsoft.ContainerInstance/containerGroups/write'] },
          { actions: ['microsoft.containerinstance/containergroups/*'] }
        ],
        CONTAINER_GROUP_WRITE
      )
    ).toBe(true)
  })

  it('an assignment counts at its scope and below', () => {
    expect(scopeCovers('/subscriptions/s', '/subscriptions/s/resourceGroups/MC_x')).toBe(true)
    expect(
      scopeCovers('/subscriptions/s/resourceGroups/MC_x/providers/Microsoft.ContainerInstance/containerGroups/g', '/subscriptions/s/resourceGroups/MC_x')
    ).toBe(false)
    expect(scopeCovers('/subscriptions/s/resourceGroups/MC_x', '/subscriptions/s/resourceGroups/MC_x2')).toBe(false)
  })
})

describe('role assignments that apply at the ACI resource group', () => {
  it('counts the scope itself, those above it, the root and management groups; not those below', () => {
    const rg = '/subscriptions/s/resourceGroups/rg'
    expect(assignmentApplies(rg, rg)).toBe(true)
    expect(assignmentApplies('/subscriptions/s', rg)).toBe(true)
    expect(assignmentApplies('/', rg)).toBe(true)
    expect(assignmentApplies('/providers/Microsoft.Management/managementGroups/platform', rg)).toBe(true)
    expect(assignmentApplies(`${rg}/providers/Microsoft.ContainerInstance/containerGroups/g`, rg)).toBe(false)
    expect(assignmentApplies('/subscriptions/other', rg)).toBe(false)
  })
})
