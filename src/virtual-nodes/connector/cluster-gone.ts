// A remove on a cluster ARM no longer has: what the connector may have left outside it.
import * as core from '@actions/core'
import type { ArmClient } from '../../azure/arm.js'
import { listContainerGroups } from '../../azure/container-groups.js'
import { errorText } from '../../util/async.js'
import type { CommonInputs } from '../kind.js'
import type { ConnectorInputs } from './inputs.js'
import type { TeardownItem } from '../report.js'
import { parseNodeName } from './installed.js'

/**
 * `command: remove` on a cluster ARM does not have. AKS deletes the cluster's node resource
 * group, and every container group in it, with the cluster; a custom aci-resource-group
 * stays, and nothing can prove which of its groups were this cluster's (its pods are gone
 * with it), so the groups tagged for this connector's node names are listed with the
 * command to delete each, and none is deleted.
 */
export async function connectorLeftovers(arm: ArmClient, inputs: CommonInputs & ConnectorInputs, clusterGone: string): Promise<TeardownItem[]> {
  const gone = `${clusterGone} AKS deletes a cluster's node resource group (MC_*), and every container group in it, with the cluster, so nothing of the connector is left there.`
  if (!inputs.aciResourceGroup) {
    core.warning(`${gone} If the connector used its own ACI resource group, run again with aci-resource-group set to list what it may have left there.`)
    return []
  }
  const rg = inputs.aciResourceGroup
  let groups
  try {
    groups = await listContainerGroups(arm, rg)
  } catch (listErr) {
    throw new Error(`${gone} Could not list the container groups in ${rg} (${errorText(listErr)}); check with \`az container list -g ${rg} -o table\`.`)
  }
  const tagged = groups.filter(g => g.node !== undefined && parseNodeName(g.node)?.connector === inputs.connectorName)
  const items: TeardownItem[] = tagged.map(g => ({
    kind: 'container group',
    name: `${rg}/${g.name}`,
    detail: `tagged for node ${g.node}; the cluster is gone, so nothing proves it was this cluster's: if it was, \`az container delete -g ${rg} -n ${g.name} --yes\``,
    outcome: 'left'
  }))
  core.warning(
    tagged.length === 0
      ? `${gone} ${rg} holds no container group tagged for a node of connector "${inputs.connectorName}".`
      : `${gone} ${rg} still holds ${tagged.length} container group(s) tagged for a node of connector "${inputs.connectorName}"; they were left (another cluster may use the same names). Delete each one that was this cluster's:\n` +
          tagged.map(g => `az container delete -g ${rg} -n ${g.name} --yes`).join('\n')
  )
  return items
}
