// Virtual networks and subnets as the kinds of virtual node need them: the cluster's VNet,
// its subnets with their delegations, and address arithmetic to place a new subnet.
// REST: https://learn.microsoft.com/rest/api/virtual-network/ (virtualNetworks, subnets).
import type { ArmClient } from './arm.js'

/** An API version of Microsoft.Network that ARM serves in every public cloud. */
export const NETWORK_API_VERSION = '2024-05-01'
/** The service a subnet is delegated to for container groups in a VNet (ACI's docs: az network vnet subnet create --delegations). */
export const ACI_DELEGATION_SERVICE = 'Microsoft.ContainerInstance/containerGroups'
/** What putting a container group into a subnet takes of its identity. */
export const SUBNET_JOIN = 'Microsoft.Network/virtualNetworks/subnets/join/action'

export interface Subnet {
  name: string
  id?: string
  addressPrefixes: string[]
  delegations: string[]
  natGateway: boolean
}

export interface VirtualNetwork {
  id: string
  name: string
  resourceGroup: string
  addressPrefixes: string[]
  subnets: Subnet[]
}

const ipv4 = (text: string): number | undefined => {
  const parts = text.split('.').map(Number)
  if (parts.length !== 4 || parts.some(p => !Number.isInteger(p) || p < 0 || p > 255)) return undefined
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!
}

/** An IPv4 CIDR as [first, last] address; undefined for anything else (an IPv6 range is skipped, as ipaddress would compare it apart). */
export function cidrRange(cidr: string): [number, number] | undefined {
  const [addr, bits] = cidr.split('/')
  const base = addr === undefined ? undefined : ipv4(addr)
  const len = Number(bits)
  if (base === undefined || !Number.isInteger(len) || len < 0 || len > 32) return undefined
  const size = 2 ** (32 - len)
  const first = base - (base % size)
  return [first, first + size - 1]
}

const dotted = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')

/** The first /prefix inside the VNet's address space that overlaps no subnet (as az k8s-extension's VirtualNodes.py _find_free_subnet_cidr looks). */
export function firstFreeCidr(vnet: Pick<VirtualNetwork, 'addressPrefixes' | 'subnets'>, prefix: number): string | undefined {
  const used = vnet.subnets.flatMap(s => s.addressPrefixes.map(cidrRange).filter((r): r is [number, number] => r !== undefined))
  const size = 2 ** (32 - prefix)
  for (const space of vnet.addressPrefixes) {
    const range = cidrRange(space)
    if (!range || range[1] - range[0] + 1 < size) continue
    for (let start = range[0]; start + size - 1 <= range[1]; start += size) {
      const end = start + size - 1
      if (!used.some(([a, b]) => a <= end && start <= b)) return `${dotted(start)}/${prefix}`
    }
  }
  return undefined
}

/** The resource group of an ARM resource id. */
export function resourceGroupOf(id: string): string | undefined {
  return /\/resourceGroups\/([^/]+)/i.exec(id)?.[1]
}

export interface VnetResource {
  id?: string
  name?: string
  properties?: {
    addressSpace?: { addressPrefixes?: string[] }
    subnets?: Array<{
      id?: string
      name?: string
      properties?: {
        addressPrefix?: string
        addressPrefixes?: string[]
        delegations?: Array<{ properties?: { serviceName?: string } }>
        natGateway?: { id?: string } | null
      }
    }>
  }
}

export function toVirtualNetwork(v: VnetResource): VirtualNetwork {
  return {
    id: v.id ?? '',
    name: v.name ?? '',
    resourceGroup: resourceGroupOf(v.id ?? '') ?? '',
    addressPrefixes: v.properties?.addressSpace?.addressPrefixes ?? [],
    subnets: (v.properties?.subnets ?? []).map(s => ({
      name: s.name ?? '',
      id: s.id,
      addressPrefixes: [...(s.properties?.addressPrefix ? [s.properties.addressPrefix] : []), ...(s.properties?.addressPrefixes ?? [])],
      delegations: (s.properties?.delegations ?? []).map(d => d.properties?.serviceName ?? ''),
      natGateway: Boolean(s.properties?.natGateway?.id)
    }))
  }
}

/** The virtual networks in a resource group. */
export async function listVirtualNetworks(arm: ArmClient, resourceGroup: string): Promise<VirtualNetwork[]> {
  const r = await arm.get<{ value?: VnetResource[] }>(
    arm.subscriptionPath(`/resourceGroups/${encodeURIComponent(resourceGroup)}/providers/Microsoft.Network/virtualNetworks`),
    NETWORK_API_VERSION
  )
  return (r.value ?? []).map(toVirtualNetwork)
}

/** One virtual network by its resource id. */
export async function getVirtualNetwork(arm: ArmClient, id: string): Promise<VirtualNetwork> {
  return toVirtualNetwork(await arm.get<VnetResource>(id, NETWORK_API_VERSION))
}

/** The VNet's id from one of its subnets' ids. */
export function vnetIdOf(subnetId: string): string {
  return subnetId.replace(/\/subnets\/[^/]+\/?$/i, '')
}
