// Azure Container Instances as the azure-aci connector uses it: container groups created,
// read, listed per resource group and subscription, deleted; container logs; each group
// moving from Pending to Running with a public IP of its own when it exposes ports.
//
// Shapes follow the armcontainerinstance/v2 client the connector v1.6.4 is built with
// (github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2,
// models.go and containergroups_client.go: create answers 200/201, delete 200/202/204) and
// the REST reference (https://learn.microsoft.com/rest/api/container-instances/). What the
// connector needs from a reply is in azure-aci v1.6.4 pkg/validation/validation.go (ID,
// tags, instanceView.state, per container instanceView.currentState.startTime) and
// pkg/provider/aci.go GetPods ("The GetContainerGroupListResult API doesn't return
// InstanceView status", so the list leaves instance views out and the connector GETs each).
// No container runs here: a group's containers report Running once "started", and their
// logs are empty.
import { randomUUID } from 'node:crypto'
import { armError, type Reply } from './azure-http.js'

export interface ContainerGroupRecord {
  id: string
  name: string
  resourceGroup: string
  location: string
  osType: string
  tags: Record<string, string>
  /** Public IP, when the group asked for one (a container with ports). */
  ip?: string
  state: 'Pending' | 'Running'
  created: number
  containers: Array<{ name: string; image: string }>
}

export interface AciKnobs {
  /** How long a new group stays Pending before its containers run. */
  startDelayMs: number
}

export interface Aci {
  knobs: AciKnobs
  handle(req: { method: string; resourceGroup: string; rest: string[]; query: URLSearchParams; body: string }): Reply
  handleSubscription(req: { method: string; rest: string[]; query: URLSearchParams; body: string }): Reply
  /** The RBAC action an ACI request needs (`rest` follows `providers/Microsoft.ContainerInstance/`). */
  actionFor(method: string, rest: string[]): string
  groups(): ContainerGroupRecord[]
  /** Every group of a resource group goes with it (Azure deletes a resource group's resources with it). */
  deleteResourceGroup(resourceGroup: string): void
}

interface Stored {
  resourceGroup: string
  name: string
  body: ContainerGroupBody
  created: number
  ip?: string
}

interface ContainerBody {
  name?: string
  properties?: { image?: string; resources?: { requests?: { cpu?: number; memoryInGB?: number } }; [k: string]: unknown }
}

interface ContainerGroupBody {
  location?: string
  tags?: Record<string, string>
  identity?: unknown
  properties?: { containers?: ContainerBody[]; osType?: string; ipAddress?: Record<string, unknown>; [k: string]: unknown }
}

export interface AciOptions {
  subscriptionId: string
  /** Regions where the subscription may create container groups (normalized, e.g. eastus). */
  locations: string[]
  /** Whether Microsoft.ContainerInstance is registered: creating needs it. */
  providerRegistered: () => boolean
  /** The address range of a subnet (by resource id), for groups deployed into a VNet; undefined when the VNet has no such subnet. */
  subnetPrefix?: (subnetId: string) => string | undefined
}

const API_TYPE = 'Microsoft.ContainerInstance/containerGroups'

export function createAci(opts: AciOptions): Aci {
  const store = new Map<string, Stored>()
  const knobs: AciKnobs = { startDelayMs: 2000 }
  let nextIp = 1
  const key = (rg: string, name: string): string => `${rg.toLowerCase()}/${name.toLowerCase()}`
  const idOf = (g: Stored): string => `/subscriptions/${opts.subscriptionId}/resourceGroups/${g.resourceGroup}/providers/${API_TYPE}/${g.name}`
  const running = (g: Stored): boolean => Date.now() - g.created >= knobs.startDelayMs
  // A distinct public address per group, as ACI gives each its own (20.0.0.0/8 is Azure's).
  const nextPrivate = new Map<string, number>()
  // Azure keeps a subnet's first four addresses (https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq): the first group gets .4.
  const allocatePrivateIp = (prefix: string): string => {
    const n = nextPrivate.get(prefix) ?? 4
    nextPrivate.set(prefix, n + 1)
    const base = (prefix.split('/')[0] ?? '').split('.').reduce((x, p) => x * 256 + Number(p), 0) + n
    return [base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].join('.')
  }
  const allocateIp = (): string => {
    const n = nextIp++
    return `20.${120 + ((n >> 16) & 0x3f)}.${(n >> 8) & 0xff}.${n & 0xff}`
  }

  function view(g: Stored, withInstanceView: boolean): Record<string, unknown> {
    const up = running(g)
    const started = new Date(g.created + knobs.startDelayMs).toISOString()
    const containers = (g.body.properties?.containers ?? []).map(c => ({
      name: c.name,
      properties: {
        ...c.properties,
        ...(withInstanceView && up
          ? {
              instanceView: {
                restartCount: 0,
                currentState: { state: 'Running', startTime: started, detailStatus: '' },
                events: [
                  {
                    count: 1,
                    firstTimestamp: new Date(g.created).toISOString(),
                    lastTimestamp: new Date(g.created).toISOString(),
                    name: 'Pulling',
                    message: `pulling image "${c.properties?.image ?? ''}"`,
                    type: 'Normal'
                  },
                  { count: 1, firstTimestamp: started, lastTimestamp: started, name: 'Started', message: 'Started container', type: 'Normal' }
                ]
              }
            }
          : {})
      }
    }))
    // A group in a VNet has its private address whether or not the request named an ipAddress
    // (https://learn.microsoft.com/azure/container-instances/container-instances-vnet: "assigned a private IP address").
    const inVnet = Boolean((g.body.properties?.subnetIds as unknown[] | undefined)?.length)
    const ipAddress = g.body.properties?.ipAddress
      ? { ...g.body.properties.ipAddress, ...(g.ip ? { ip: g.ip } : {}) }
      : inVnet && g.ip
        ? { type: 'Private', ip: g.ip }
        : undefined
    return {
      id: idOf(g),
      name: g.name,
      type: API_TYPE,
      location: g.body.location,
      tags: g.body.tags ?? {},
      ...(g.body.identity ? { identity: g.body.identity } : {}),
      properties: {
        ...g.body.properties,
        containers,
        ...(ipAddress ? { ipAddress } : {}),
        sku: 'Standard',
        provisioningState: up ? 'Succeeded' : 'Pending',
        ...(withInstanceView ? { instanceView: { events: [], state: up ? 'Running' : 'Pending' } } : {})
      }
    }
  }

  /** What ACI rejects before creating anything (the REST reference's required fields). */
  function invalid(name: string, body: ContainerGroupBody): Reply | undefined {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) {
      return armError(
        400,
        'ContainerGroupNameInvalid',
        `The container group name '${name}' is invalid. The container group name must contain no more than 63 characters and only contain lower case alphanumeric characters or '-', and can not start or end with '-'.`
      )
    }
    const location = (body.location ?? '').replace(/\s+/g, '').toLowerCase()
    if (!opts.locations.includes(location)) {
      return armError(
        400,
        'LocationNotAvailableForResourceType',
        `The provided location '${body.location ?? ''}' is not available for resource type '${API_TYPE}'. List of available regions for the resource type is '${opts.locations.join(',')}'.`
      )
    }
    const containers = body.properties?.containers ?? []
    if (containers.length === 0) return armError(400, 'InvalidRequestContent', 'The request content was invalid: containers is required.')
    if (body.properties?.osType !== 'Linux' && body.properties?.osType !== 'Windows') {
      return armError(400, 'InvalidOsType', `The 'osType' '${String(body.properties?.osType)}' is not valid. The valid values are 'Linux, Windows'.`)
    }
    for (const c of containers) {
      if (!c.name || !c.properties?.image) return armError(400, 'InvalidContainerProperties', `The container '${c.name ?? ''}' must have a name and an image.`)
      const req = c.properties.resources?.requests
      if (!req?.cpu || !req.memoryInGB) return armError(400, 'InvalidContainerResourceRequests', `The container '${c.name}' must request cpu and memoryInGB.`)
    }
    return undefined
  }

  function put(resourceGroup: string, name: string, text: string): Reply {
    if (!opts.providerRegistered()) {
      return armError(
        409,
        'MissingSubscriptionRegistration',
        "The subscription is not registered to use namespace 'Microsoft.ContainerInstance'. See https://aka.ms/rps-not-found for how to register subscriptions."
      )
    }
    let body: ContainerGroupBody
    try {
      body = JSON.parse(text) as ContainerGroupBody
    } catch {
      return armError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.')
    }
    const bad = invalid(name, body)
    if (bad) return bad
    const k = key(resourceGroup, name)
    const existing = store.get(k)
    const g: Stored = { resourceGroup, name, body, created: existing?.created ?? Date.now(), ip: existing?.ip }
    // A group in a VNet (subnetIds, ipAddress type Private) gets an address of its subnet
    // (https://learn.microsoft.com/azure/container-instances/container-instances-vnet); others a public one.
    const subnetId = (body.properties?.subnetIds as Array<{ id?: string }> | undefined)?.[0]?.id
    if (subnetId && !g.ip) {
      const prefix = opts.subnetPrefix?.(subnetId)
      if (!prefix)
        return armError(
          400,
          'SubnetNotFound',
          `The subnet '${subnetId}' could not be found or is not delegated to Microsoft.ContainerInstance/containerGroups.`
        )
      g.ip = allocatePrivateIp(prefix)
    } else if (body.properties?.ipAddress && !g.ip) g.ip = allocateIp()
    store.set(k, g)
    return {
      status: existing ? 200 : 201,
      body: view(g, true),
      headers: {
        'Azure-AsyncOperation': `https://management.azure.com/subscriptions/${opts.subscriptionId}/providers/Microsoft.ContainerInstance/locations/${body.location ?? ''}/operations/${randomUUID()}?api-version=2023-05-01`
      }
    }
  }

  const notFound = (resourceGroup: string, name: string): Reply =>
    armError(
      404,
      'ResourceNotFound',
      `The Resource '${API_TYPE}/${name}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`
    )

  return {
    knobs,
    handle({ method, resourceGroup, rest, body }) {
      const type = (rest[0] ?? '').toLowerCase()
      if (type !== 'containergroups')
        return armError(404, 'InvalidResourceType', `The resource type '${rest[0] ?? ''}' could not be found in the namespace 'Microsoft.ContainerInstance'.`)
      if (rest.length === 1 && method === 'GET') {
        const value = [...store.values()].filter(g => g.resourceGroup.toLowerCase() === resourceGroup.toLowerCase()).map(g => view(g, false))
        return { status: 200, body: { value } }
      }
      const name = rest[1] ?? ''
      if (rest.length === 2 && method === 'PUT') return put(resourceGroup, name, body)
      const g = store.get(key(resourceGroup, name))
      if (rest.length === 2 && method === 'DELETE') {
        if (!g) return { status: 204 }
        store.delete(key(resourceGroup, name))
        return { status: 200, body: view(g, true) }
      }
      if (!g) return notFound(resourceGroup, name)
      if (rest.length === 2 && method === 'GET') return { status: 200, body: view(g, true) }
      // containers/{name}/logs
      if (rest.length === 5 && rest[2]?.toLowerCase() === 'containers' && rest[4]?.toLowerCase() === 'logs' && method === 'GET') {
        const known = (g.body.properties?.containers ?? []).some(c => c.name === rest[3])
        return known
          ? { status: 200, body: { content: '' } }
          : armError(404, 'ContainerNotFound', `The container '${rest[3] ?? ''}' could not be found in container group '${name}'.`)
      }
      return armError(405, 'MethodNotAllowed', `The requested method '${method}' is not allowed for this resource.`)
    },
    handleSubscription({ method, rest }) {
      const type = (rest[0] ?? '').toLowerCase()
      if (type === 'containergroups' && rest.length === 1 && method === 'GET')
        return { status: 200, body: { value: [...store.values()].map(g => view(g, false)) } }
      // locations/{region}/capabilities|usages: the connector's GPU probe is commented out
      // in v1.6.4 (pkg/provider/vk_node.go), so an empty list is all anyone reads.
      if (type === 'locations' && rest.length === 3 && method === 'GET') return { status: 200, body: { value: [] } }
      return armError(404, 'InvalidResourceType', `The resource type '${rest.join('/')}' could not be found in the namespace 'Microsoft.ContainerInstance'.`)
    },
    actionFor(method, rest) {
      const l = rest.map(s => s.toLowerCase())
      if (l[0] === 'locations') return 'Microsoft.ContainerInstance/locations/*/read'.replace('*', l[2] ?? 'capabilities')
      if (l[2] === 'containers' && l[4] === 'logs') return 'Microsoft.ContainerInstance/containerGroups/containers/logs/read'
      if (l[2] === 'containers' && l[4] === 'exec') return 'Microsoft.ContainerInstance/containerGroups/containers/exec/action'
      return `${API_TYPE}/${method === 'PUT' ? 'write' : method === 'DELETE' ? 'delete' : 'read'}`
    },
    deleteResourceGroup(resourceGroup) {
      for (const [k, g] of store) if (g.resourceGroup.toLowerCase() === resourceGroup.toLowerCase()) store.delete(k)
    },
    groups: () =>
      [...store.values()].map(g => ({
        id: idOf(g),
        name: g.name,
        resourceGroup: g.resourceGroup,
        location: g.body.location ?? '',
        osType: g.body.properties?.osType ?? '',
        tags: { ...(g.body.tags ?? {}) },
        ip: g.ip,
        state: running(g) ? 'Running' : 'Pending',
        created: g.created,
        containers: (g.body.properties?.containers ?? []).map(c => ({ name: c.name ?? '', image: c.properties?.image ?? '' }))
      }))
  }
}
