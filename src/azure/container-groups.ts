// The container groups a virtual node leaves in ACI. The connector deletes a pod's group
// when the pod goes, but pods it never sees deleted (DaemonSet pods, which a drain skips;
// pods still there when the connector is uninstalled) keep their groups, billing, with
// nothing left to delete them. Each group the connector makes is tagged with the node it
// belongs to (azure-aci v1.6.4 pkg/provider/aci.go: tags PodName, NodeName, Namespace, UID,
// CreationTimestamp), so a removal can find them over ARM.
// REST: https://learn.microsoft.com/rest/api/container-instances/container-groups
import { ArmError, type ArmClient } from './arm.js'

/** An API version of Microsoft.ContainerInstance that ARM serves in every public cloud. */
export const ACI_API_VERSION = '2023-05-01'
/** The tag azure-aci writes with the name of the virtual node that owns the group. */
export const NODE_NAME_TAG = 'NodeName'
/** The tag with the UID of the pod the group runs. */
export const UID_TAG = 'UID'

export interface ContainerGroupRef {
  name: string
  node?: string
  /** The UID tag: the pod the group runs. */
  uid?: string
  /** Every tag (Virtual Nodes v2's groups carry the ones their pod's annotation asked for). */
  tags?: Record<string, string>
  /** Requested by all its containers together (what ACI bills by). */
  cpu?: number
  memoryInGB?: number
}

interface ListPage {
  value?: Array<{
    name?: string
    tags?: Record<string, string>
    properties?: { containers?: Array<{ properties?: { resources?: { requests?: { cpu?: number; memoryInGB?: number } } } }> }
  }>
  nextLink?: string
}

function groupsPath(arm: ArmClient, resourceGroup: string): string {
  return arm.subscriptionPath(`/resourceGroups/${encodeURIComponent(resourceGroup)}/providers/Microsoft.ContainerInstance/containerGroups`)
}

/** Every container group in the resource group, with the node it is tagged for. */
export async function listContainerGroups(arm: ArmClient, resourceGroup: string): Promise<ContainerGroupRef[]> {
  const groups: ContainerGroupRef[] = []
  let page = await arm.get<ListPage>(groupsPath(arm, resourceGroup), ACI_API_VERSION)
  for (;;) {
    for (const g of page.value ?? []) {
      if (!g.name) continue
      const requests = (g.properties?.containers ?? []).map(c => c.properties?.resources?.requests ?? {})
      const sum = (key: 'cpu' | 'memoryInGB'): number | undefined => (requests.length ? requests.reduce((s, r) => s + (r[key] ?? 0), 0) : undefined)
      groups.push({ name: g.name, node: g.tags?.[NODE_NAME_TAG], uid: g.tags?.[UID_TAG], tags: g.tags ?? {}, cpu: sum('cpu'), memoryInGB: sum('memoryInGB') })
    }
    if (!page.nextLink) return groups
    page = await arm.getNextLink<ListPage>(page.nextLink)
  }
}

/**
 * Container groups deleted at once: each is one ARM DELETE of about a second, so 8 at a
 * time stay under the 10 a second ARM refills a principal's delete bucket with
 * (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling);
 * ACI allows 100 deletes per 5 minutes a subscription
 * (https://learn.microsoft.com/azure/container-instances/container-instances-resource-and-quota-limits),
 * beyond which ARM's 429 and its Retry-After are honoured (arm.ts).
 */
export const GROUP_DELETE_CONCURRENCY = 8

/** Lists a resource group's container groups (listContainerGroups, or one shared by several removals). */
export type ContainerGroupLister = (resourceGroup: string) => Promise<ContainerGroupRef[]>

/**
 * How long one list of a resource group answers for every removal that asks. Short: a drain
 * that is served an older list sees its pod's group still there and waits its next check
 * (seconds later, backing off), so sharing must not make a drain late.
 */
export const SHARED_LIST_MS = 250

/**
 * A lister that several removals draining at once share: a resource group listed less than
 * SHARED_LIST_MS ago (or being listed) is not listed again, so ARM sees at most four reads a
 * second per resource group however many connectors drain into it (ARM refills a
 * principal's read bucket with 25 a second,
 * https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
 */
export function coalescedLister(arm: ArmClient, now: () => number = Date.now): ContainerGroupLister {
  const recent = new Map<string, { at: number; groups: Promise<ContainerGroupRef[]> }>()
  return resourceGroup => {
    const key = resourceGroup.toLowerCase()
    const hit = recent.get(key)
    if (hit && now() - hit.at < SHARED_LIST_MS) return hit.groups
    const groups = listContainerGroups(arm, resourceGroup)
    recent.set(key, { at: now(), groups })
    // A failed list is not shared beyond its own callers.
    groups.catch(() => recent.get(key)?.groups === groups && recent.delete(key))
    return groups
  }
}

/** Deletes one container group; one already gone counts as deleted. */
export async function deleteContainerGroup(arm: ArmClient, resourceGroup: string, name: string): Promise<void> {
  try {
    await arm.delete(`${groupsPath(arm, resourceGroup)}/${encodeURIComponent(name)}`, ACI_API_VERSION)
  } catch (err) {
    if (!(err instanceof ArmError && err.status === 404)) throw err
  }
}

/** The az command that shows what a resource group holds for `nodes`, for a user checking by hand. */
export function listCommand(resourceGroup: string, nodes: string[]): string {
  const query = nodes.length === 1 ? `--query "[?tags.NodeName=='${nodes[0]}'].name" ` : ''
  return `az container list -g ${resourceGroup} ${query}-o table`
}
