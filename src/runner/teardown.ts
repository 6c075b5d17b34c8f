// The teardown commands once the cluster is reached: `command: remove` (the connector by
// name, as the cluster says it is installed), `command: sweep` (what a glob, an age and
// dead nodes find), and a remove on a cluster that ARM no longer has. Each lists what it
// found and why, carries it out (or, in a dry run, only lists it), and reports every item.
import * as core from '@actions/core'
import type { ArmClient } from '../azure/arm.js'
import { errorText, type Deadline } from '../util/async.js'
import type { ClusterNotFoundError } from '../kubernetes/cluster.js'
import { clusterLabel, grantedRoleItems } from '../virtual-nodes/connector/connector-access.js'
import { distinctResourceGroups } from '../virtual-nodes/attribution.js'
import type { HelmContext } from '../virtual-nodes/connector/connector.js'
import { listContainerGroups } from '../azure/container-groups.js'
import type { Inputs } from './inputs.js'
import { parseNodeName } from '../virtual-nodes/installed.js'
import type { Kube } from '../kubernetes/kube.js'
import { connectorOutputs, publishOutputs } from './outputs.js'
import {
  findRemovalTargets,
  logItems,
  removeTargets,
  teardownError,
  teardownOutput,
  type RemovalResult,
  type RemovalScope,
  type RemovalTarget
} from '../virtual-nodes/removal.js'
import type { PhaseClock, RunReport, TeardownItem } from './summary.js'
import { planSweep, runSweep } from '../virtual-nodes/sweep.js'

/** What a teardown command works with once it has cluster access. */
export interface TeardownContext {
  inputs: Inputs
  kube: Kube
  helmCtx: HelmContext
  arm: ArmClient
  /** The cluster's own node resource group (MC_*). */
  nodeResourceGroup: string
  /** wait-timeout, counted from the step's start. */
  deadline: Deadline
}

/** What `command: remove` may take: the connector by name; os-type, location and aci-resource-group only narrow it when given. */
export function removeScope(inputs: Inputs): RemovalScope {
  return {
    connector: name => name === inputs.connectorName,
    os: inputs.osTypesGiven ? inputs.osTypes : undefined,
    location: inputs.location,
    aciResourceGroup: inputs.aciResourceGroup
  }
}

function describeScope(inputs: Inputs): string {
  const narrowed = [
    inputs.osTypesGiven ? `os-type ${inputs.osTypes.join(', ')}` : undefined,
    inputs.location ? `location ${inputs.location}` : undefined,
    inputs.aciResourceGroup ? `aci-resource-group ${inputs.aciResourceGroup}` : undefined
  ].filter(Boolean)
  return `connector "${inputs.connectorName}"${narrowed.length ? ` (only ${narrowed.join(', ')})` : ' (any OS, any region, any ACI resource group)'}`
}

/** Puts a teardown's result in the report and outputs, then fails the step for what failed or could not be checked. */
function finishTeardown(t: TeardownContext, report: RunReport, targets: RemovalTarget[], result: RemovalResult, rerun: string): void {
  report.teardown = [...(report.teardown ?? []), ...result.items]
  report.removals = result.removals
  logItems(result.items)
  publishOutputs({ swept: teardownOutput(result.items, t.inputs.dryRun) })
  const left = result.items.filter(i => i.outcome === 'left')
  if (left.length > 0)
    core.warning(
      `${left.length} container group(s) are tagged as a removed virtual node's would be, but cannot be proven this cluster's, so they were left: ` +
        `${left.map(i => i.name).join(', ')}. If they are this cluster's, delete each with \`az container delete -g <resource-group> -n <name> --yes\`.`
    )
  const error = teardownError(result, targets, t.inputs.verifyAci, rerun)
  if (error) throw error
}

export async function runRemove(t: TeardownContext, clock: PhaseClock, report: RunReport): Promise<void> {
  const dry = t.inputs.dryRun
  report.dryRun = dry
  const targets = await clock.run('Find what is installed', async () => {
    const found = await findRemovalTargets(t.kube, removeScope(t.inputs), t.nodeResourceGroup)
    core.info(`Looked for ${describeScope(t.inputs)} in the cluster's Helm releases and virtual nodes: found ${found.length}.`)
    for (const x of found) core.info(`• ${x.names.node}: ${x.reason}`)
    if (found.length === 0)
      core.info(
        `Nothing to remove: no Helm release of connector "${t.inputs.connectorName}" (today's chart or the old CLI's) and no virtual node of it is in the cluster.`
      )
    return found
  })
  publishOutputs(
    connectorOutputs(
      targets.map(x => x.names),
      false
    )
  )
  report.removalStarted = !dry
  const result = await clock.run(
    `${dry ? 'Dry run: what a remove would take' : 'Remove'} (${targets.map(x => x.names.node).join(', ') || 'nothing found'})`,
    () => removeTargets(t.kube, t.helmCtx, targets, { timeoutMs: t.deadline.left(), dryRun: dry, nodeResourceGroup: t.nodeResourceGroup, arm: t.arm })
  )
  const roles = await grantedRoleItems(t.arm, distinctResourceGroups(targets.map(x => x.aciResourceGroup)), clusterLabel(t.inputs))
  result.items.push(...roles)
  finishTeardown(t, report, targets, result, 'Re-run the removal: it finds what is left from the cluster.')
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

const SWEEP_PHASE = 'Sweep'

export async function runSweepCommand(t: TeardownContext, clock: PhaseClock, report: RunReport): Promise<void> {
  report.dryRun = t.inputs.dryRun
  const opts = {
    glob: t.inputs.connectorName,
    olderThanMs: t.inputs.olderThanMs,
    dryRun: t.inputs.dryRun,
    timeoutMs: t.deadline.left(),
    nodeResourceGroup: t.nodeResourceGroup,
    aciResourceGroup: t.inputs.aciResourceGroup
  }
  const { plan, result } = await clock.run(`${SWEEP_PHASE}${t.inputs.dryRun ? ' (dry run)' : ''}`, async () => {
    const planned = await planSweep(t.kube, opts)
    const releases = planned.targets.filter(x => x.release).length
    core.info(
      `Found ${releases} connector release(s) matching "${t.inputs.connectorName}"${t.inputs.olderThanMs ? ` first deployed over ${Math.round(t.inputs.olderThanMs / 60_000)} min ago` : ''}, ` +
        `${planned.targets.length - releases} dead virtual node(s); looking for container groups of gone nodes in ${planned.resourceGroups.join(', ')}${t.inputs.dryRun ? ' (dry run: nothing is changed)' : ''}`
    )
    for (const x of planned.targets) core.info(`• ${x.names.node}: ${x.reason}`)
    return { plan: planned, result: await runSweep(t.kube, t.arm, t.helmCtx, planned, opts) }
  })
  finishTeardown(t, report, plan.targets, result, 'Re-run the sweep: it finds them again.')
}
