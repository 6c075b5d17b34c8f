// The teardown commands once the cluster is reached: `command: remove` (what is installed,
// as the cluster and Azure say it is) and `command: sweep` (what a glob, an age and dead
// nodes find), each kind of virtual node taking its part (virtual-nodes/kind.ts), and a
// remove on a cluster that ARM no longer has. Each lists what it found and why, carries it
// out (or, in a dry run, only lists it), and reports every item.
import * as core from '@actions/core'
import type { ArmClient } from '../azure/arm.js'
import { errorText } from '../util/async.js'
import type { ClusterNotFoundError } from '../kubernetes/cluster.js'
import { listContainerGroups } from '../azure/container-groups.js'
import type { Inputs } from './inputs.js'
import { parseNodeName } from '../virtual-nodes/installed.js'
import { connectorOutputs, publishOutputs } from './outputs.js'
import { logItems, teardownOutput } from '../virtual-nodes/removal.js'
import type { RunReport, TeardownItem } from './summary.js'
import type { KindContext, VirtualNodeKind } from '../virtual-nodes/kind.js'

/**
 * Runs each kind's removal (or sweep) in turn, Virtual Nodes v2 first: one kind's failure
 * does not stop the next, and the step fails afterwards with every problem.
 */
export async function runTeardown(kinds: VirtualNodeKind[], ctx: KindContext, sweep: boolean): Promise<void> {
  const { report, inputs } = ctx
  report.dryRun = inputs.dryRun
  report.removalStarted = !sweep && !inputs.dryRun
  report.teardown = []
  const problems: Error[] = []
  for (const k of kinds) {
    let result
    try {
      result = await (sweep ? k.sweep() : k.remove())
    } catch (err) {
      // One kind that cannot be read or removed does not keep the next from its turn.
      const label = kinds.length > 1 ? `${k.name === 'v2' ? 'Virtual Nodes v2' : 'ACI connector'}: ` : ''
      problems.push(new Error(`${label}${errorText(err)}`))
      continue
    }
    report.teardown.push(...result.items)
    report.removals.push(...result.removals)
    problems.push(...result.problems)
    if (result.found) publishOutputs(connectorOutputs(result.found, false))
  }
  publishOutputs({
    swept: teardownOutput(
      report.teardown,
      inputs.dryRun,
      kinds.some(k => k.name === 'v2')
    )
  })
  if (problems.length > 0) throw new Error(problems.map(e => e.message).join('\n\n'))
}

/**
 * `command: remove` on a cluster ARM does not have. AKS deletes the cluster's node resource
 * group, and every container group in it, with the cluster; a custom aci-resource-group
 * stays, and nothing can prove which of its groups were this cluster's (its pods are gone
 * with it), so the groups tagged for this connector's node names are listed with the
 * command to delete each, and none is deleted.
 */
export async function reportClusterGone(arm: ArmClient, inputs: Inputs, report: RunReport, err: ClusterNotFoundError): Promise<undefined> {
  const gone = `${err.message} AKS deletes a cluster's node resource group (MC_*), and every container group in it, with the cluster, so nothing of the connector is left there.`
  report.teardown = []
  if (!inputs.aciResourceGroup) {
    core.warning(`${gone} If the connector used its own ACI resource group, run again with aci-resource-group set to list what it may have left there.`)
    return undefined
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
  report.teardown = items
  logItems(items)
  publishOutputs({ swept: teardownOutput(items, inputs.dryRun) })
  core.warning(
    tagged.length === 0
      ? `${gone} ${rg} holds no container group tagged for a node of connector "${inputs.connectorName}".`
      : `${gone} ${rg} still holds ${tagged.length} container group(s) tagged for a node of connector "${inputs.connectorName}"; they were left (another cluster may use the same names). Delete each one that was this cluster's:\n` +
          tagged.map(g => `az container delete -g ${rg} -n ${g.name} --yes`).join('\n')
  )
  return undefined
}
