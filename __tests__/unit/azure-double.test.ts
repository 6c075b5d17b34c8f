// The Azure double's RBAC and ACI are test infrastructure, but the end-to-end tests trust
// them to refuse what Azure refuses; these pin that down.
import { describe, expect, it } from 'vitest'
import { actionMatches, createRbac, scopeCovers } from '../local-aks/azure-rbac.js'
import { createAci } from '../local-aks/aci.js'
import { ARM_THROTTLE_BUCKETS, createThrottle } from '../local-aks/arm.js'
import { sleep } from '../../src/util/async.js'

const SUB = '/subscriptions/00000000-0000-4000-8000-000000000001'
const RG = `${SUB}/resourceGroups/MC_rg_aks_eastus`
const caller = { appId: 'app-1', objectId: 'obj-1', tenantId: 't' }

describe('azure-rbac', () => {
  it('matches actions with wildcards, case-insensitively', () => {
    expect(actionMatches('*', 'Microsoft.ContainerInstance/containerGroups/write')).toBe(true)
    expect(actionMatches('*/read', 'Microsoft.ContainerInstance/containerGroups/read')).toBe(true)
    expect(actionMatches('*/read', 'Microsoft.ContainerInstance/containerGroups/write')).toBe(false)
    expect(actionMatches('Microsoft.Authorization/*/Write', 'Microsoft.Authorization/roleAssignments/write')).toBe(true)
  })

  it('a scope covers what is below it, not its siblings', () => {
    expect(scopeCovers(SUB, RG)).toBe(true)
    expect(scopeCovers(RG, SUB)).toBe(false)
    expect(scopeCovers(`${SUB}/resourceGroups/MC_rg`, RG)).toBe(false)
  })

  it("refuses without a role with ARM's AuthorizationFailed body; Contributor may create container groups but not assign roles", () => {
    const rbac = createRbac({ subscriptionId: SUB.split('/')[2]! })
    const denied = rbac.authorize(caller, 'Microsoft.ContainerInstance/containerGroups/write', RG)
    expect(denied?.status).toBe(403)
    expect(denied?.body).toEqual({
      error: {
        code: 'AuthorizationFailed',
        message: `The client 'app-1' with object id 'obj-1' does not have authorization to perform action 'Microsoft.ContainerInstance/containerGroups/write' over scope '${RG}' or the scope is invalid. If access was recently granted, please refresh your credentials.`
      }
    })
    rbac.assign('obj-1', 'Contributor', RG)
    expect(
      rbac.authorize(caller, 'Microsoft.ContainerInstance/containerGroups/write', `${RG}/providers/Microsoft.ContainerInstance/containerGroups/x`)
    ).toBeUndefined()
    expect(rbac.authorize(caller, 'Microsoft.Authorization/roleAssignments/write', RG)?.status).toBe(403)
    expect(rbac.authorize(caller, 'Microsoft.ContainerInstance/containerGroups/read', SUB)?.status).toBe(403)
    rbac.assign('obj-1', 'User Access Administrator', RG)
    expect(rbac.authorize(caller, 'Microsoft.Authorization/roleAssignments/write', RG)).toBeUndefined()
  })
})

describe('aci', () => {
  const body = (ports: boolean) =>
    JSON.stringify({
      location: 'eastus',
      tags: { PodName: 'p', Namespace: 'default', NodeName: 'n' },
      properties: {
        osType: 'Linux',
        containers: [{ name: 'c', properties: { image: 'img', resources: { requests: { cpu: 1, memoryInGB: 1.5 } } } }],
        ...(ports ? { ipAddress: { type: 'Public', ports: [{ port: 80, protocol: 'TCP' }] } } : {})
      }
    })

  it('creates only once the provider is registered, in an offered region, with valid containers', () => {
    let registered = false
    const aci = createAci({ subscriptionId: 's', locations: ['eastus'], providerRegistered: () => registered })
    const put = (text: string) =>
      aci.handle({ method: 'PUT', resourceGroup: 'rg', rest: ['containerGroups', 'default-p'], query: new URLSearchParams(), body: text })
    expect(put(body(true))).toMatchObject({ status: 409, body: { error: { code: 'MissingSubscriptionRegistration' } } })
    registered = true
    expect(put(body(true).replace('eastus', 'antarctica'))).toMatchObject({ status: 400, body: { error: { code: 'LocationNotAvailableForResourceType' } } })
    expect(put(body(true).replace('"cpu":1,', ''))).toMatchObject({ status: 400 })
    expect(put(body(true)).status).toBe(201)
  })

  it('moves from Pending to Running, gives each group with ports its own IP, lists without instance views, deletes', async () => {
    const aci = createAci({ subscriptionId: 's', locations: ['eastus'], providerRegistered: () => true })
    aci.knobs.startDelayMs = 50
    const req = (method: string, rest: string[], text = '') => aci.handle({ method, resourceGroup: 'rg', rest, query: new URLSearchParams(), body: text })
    req('PUT', ['containerGroups', 'default-a'], body(true))
    req('PUT', ['containerGroups', 'default-b'], body(true))
    req('PUT', ['containerGroups', 'default-c'], body(false))
    const got = (name: string) =>
      req('GET', ['containerGroups', name]).body as { properties: { provisioningState: string; instanceView: { state: string }; ipAddress?: { ip: string } } }
    expect(got('default-a').properties).toMatchObject({ provisioningState: 'Pending', instanceView: { state: 'Pending' } })
    await sleep(80)
    expect(got('default-a').properties).toMatchObject({ provisioningState: 'Succeeded', instanceView: { state: 'Running' } })
    const ips = aci.groups().map(g => g.ip)
    expect(ips[0]).not.toBe(ips[1])
    expect(ips[2]).toBeUndefined()
    const list = req('GET', ['containerGroups']).body as { value: Array<{ properties: Record<string, unknown> }> }
    expect(list.value).toHaveLength(3)
    expect(list.value[0]!.properties.instanceView).toBeUndefined()
    expect(req('DELETE', ['containerGroups', 'default-a']).status).toBe(200)
    expect(req('DELETE', ['containerGroups', 'default-a']).status).toBe(204)
    expect(req('GET', ['containerGroups', 'default-a'])).toMatchObject({ status: 404, body: { error: { code: 'ResourceNotFound' } } })
    expect(aci.groups().map(g => g.name)).toEqual(['default-b', 'default-c'])
  })
})

describe('ARM throttling (token buckets)', () => {
  it('lets a full bucket through, then answers with the seconds until a token is back, refilled at the documented rate', () => {
    let now = 0
    const take = createThrottle(() => now)
    for (let i = 0; i < ARM_THROTTLE_BUCKETS.read.size; i++) expect(take('sp-a', 'read')).toBeUndefined()
    expect(take('sp-a', 'read')).toBe(1)
    // Another principal and another operation type have their own buckets.
    expect(take('sp-b', 'read')).toBeUndefined()
    expect(take('sp-a', 'delete')).toBeUndefined()
    now += 1000
    for (let i = 0; i < ARM_THROTTLE_BUCKETS.read.refillPerSecond; i++) expect(take('sp-a', 'read')).toBeUndefined()
    expect(take('sp-a', 'read')).toBe(1)
  })

  it('throttles all principals together at 15 times one bucket', () => {
    const take = createThrottle(() => 0)
    const size = ARM_THROTTLE_BUCKETS.write.size
    for (let p = 0; p < 15; p++) for (let i = 0; i < size; i++) expect(take(`sp-${p}`, 'write')).toBeUndefined()
    expect(take('sp-new', 'write')).toBeGreaterThanOrEqual(1)
  })
})
