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
import type { ClusterInfo } from '../kubernetes/cluster.js'
import { findV2Targets, removeV2, type V2Target } from '../virtual-nodes/v2/v2.js'
import type { OsType } from '../virtual-nodes/naming.js'

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
  cluster: ClusterInfo
  /** UID of the cluster's kube-system namespace (v2's container groups carry it as a tag). */
  clusterUid: string
}

/** With virtual-node-kind v2, Linux is v2's: the connector removal takes the other OS types given. */
function connectorOs(inputs: Inputs): OsType[] | undefined {
  if (!inputs.osTypesGiven) return undefined
  return inputs.virtualNodeKind === 'v2' ? inputs.osTypes.filter(o => o !== 'Linux') : inputs.osTypes
}

/** Whether a teardown also takes Virtual Nodes v2: kind v2, and os-type Linux, Both or not given. */
function takesV2(inputs: Inputs): boolean {
  return inputs.virtualNodeKind === 'v2' && (!inputs.osTypesGiven || inputs.osTypes.includes('Linux'))
}

/** Lists the v2 targets found, and removes them (or, in a dry run, lists what would go). */
async function tearDownV2(t: TeardownContext, clock: PhaseClock, sweep: boolean): Promise<TeardownItem[]> {
  if (!takesV2(t.inputs)) return []
  const dry = t.inputs.dryRun
  const targets: V2Target[] = await clock.run('Find Virtual Nodes v2', async () => {
    const found = await findV2Targets(t.arm, t.cluster, t.kube, sweep ? { now: Date.now() } : undefined)
    core.info(`Looked for Virtual Nodes v2 (microsoft.virtualnodes extensions and v2 nodes): found ${found.length}.`)
    for (const x of found) core.info(`• ${x.reason}${x.nodes.length ? `: ${x.nodes.map(n => n.metadata?.name).join(', ')}` : ''}`)
    return found
  })
  return clock.run(`${dry ? 'Dry run: what removing Virtual Nodes v2 would take' : 'Remove Virtual Nodes v2'}`, () =>
    removeV2(t.kube, t.arm, t.cluster, targets, { dryRun: dry, deadline: t.deadline.at, clusterUid: t.clusterUid })
  )
}

/** What `command: remove` may take: the connector by name; os-type, location and aci-resource-group only narrow it when given. */
export function removeScope(inputs: Inputs): RemovalScope {
  return {
    connector: name => name === inputs.connectorName,
    os: connectorOs(inputs),
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
  report.removalStarted = !dry
  const v2Items = await tearDownV2(t, clock, false)
  if (t.inputs.virtualNodeKind === 'v2' && connectorOs(t.inputs)?.length === 0) {
    finishTeardown(t, report, [], { items: v2Items, removals: [], unchecked: [] }, 'Re-run the removal: it finds what is left from the cluster and Azure.')
    return
  }
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
  const result = await clock.run(
    `${dry ? 'Dry run: what a remove would take' : 'Remove'} (${targets.map(x => x.names.node).join(', ') || 'nothing found'})`,
    () => removeTargets(t.kube, t.helmCtx, targets, { timeoutMs: t.deadline.left(), dryRun: dry, nodeResourceGroup: t.nodeResourceGroup, arm: t.arm })
  )
  const roles = await grantedRoleItems(t.arm, distinctResourceGroups(targets.map(x => x.aciResourceGroup)), clusterLabel(t.inputs))
  result.items.unshift(...v2Items)
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
  result.items.push(...(await tearDownV2(t, clock, true)))
  finishTeardown(t, report, plan.targets, result, 'Re-run the sweep: it finds them again.')
}
