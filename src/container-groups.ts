// The container groups a virtual node leaves in ACI. The connector deletes a pod's group
// when the pod goes, but pods it never sees deleted (DaemonSet pods, which a drain skips;
// pods still there when the connector is uninstalled) keep their groups, billing, with
// nothing left to delete them. Each group the connector makes is tagged with the node it
// belongs to (azure-aci v1.6.4 pkg/provider/aci.go: tags PodName, NodeName, Namespace, UID,
// CreationTimestamp), so a removal can find them over ARM.
// REST: https://learn.microsoft.com/rest/api/container-instances/container-groups
import * as core from '@actions/core'
import { ArmError, type ArmClient } from './arm.js'
import { errorText } from './async.js'

/** An API version of Microsoft.ContainerInstance that ARM serves in every public cloud. */
export const ACI_API_VERSION = '2023-05-01'
/** The tag azure-aci writes with the name of the virtual node that owns the group. */
export const NODE_NAME_TAG = 'NodeName'

export interface ContainerGroupRef {
  name: string
  node?: string
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
      groups.push({ name: g.name, node: g.tags?.[NODE_NAME_TAG], cpu: sum('cpu'), memoryInGB: sum('memoryInGB') })
    }
    if (!page.nextLink) return groups
    page = await arm.getNextLink<ListPage>(page.nextLink)
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

/** The groups that belong to one of `nodes`. */
export function groupsOfNodes(groups: ContainerGroupRef[], nodes: string[]): ContainerGroupRef[] {
  return groups.filter(g => g.node !== undefined && nodes.includes(g.node))
}

/**
 * Deletes the container groups tagged for `nodes` (run once their connectors are gone) and
 * returns the names deleted per node. A group already gone counts as deleted.
 */
export async function deleteGroupsOfNodes(arm: ArmClient, resourceGroup: string, nodes: string[]): Promise<Map<string, string[]>> {
  const deleted = new Map<string, string[]>(nodes.map(n => [n, []]))
  const left = groupsOfNodes(await listContainerGroups(arm, resourceGroup), nodes)
  await Promise.all(
    left.map(async g => {
      await deleteContainerGroup(arm, resourceGroup, g.name)
      deleted.get(g.node ?? '')?.push(g.name)
      core.info(`Deleted container group ${g.name} in ${resourceGroup} (left by ${g.node ?? ''})`)
    })
  )
  return deleted
}

/** deleteGroupsOfNodes, with a failure turned into a warning that says how to check by hand. */
export async function sweepContainerGroups(arm: ArmClient, resourceGroup: string, nodes: string[]): Promise<Map<string, string[]> | undefined> {
  try {
    return await deleteGroupsOfNodes(arm, resourceGroup, nodes)
  } catch (err) {
    core.warning(
      `Could not check ${resourceGroup} for container groups the removed nodes left (${errorText(err)}). They may still be billing: ` +
        `\`az container list -g ${resourceGroup} --query "[?tags.NodeName=='${nodes[0] ?? ''}'].name"\`, then \`az container delete\` each.`
    )
    return undefined
  }
}
