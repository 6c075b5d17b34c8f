// What both routes of Virtual Nodes v2 (the extension, the Helm chart) do in a remove, sweep
// or cleanup once they know what is theirs: warn of what is left, take the targets in
// teardown.ts's order (or list them in a dry run), forget this action's record once all of
// it went, and say what failed with the way on.
import * as core from '@actions/core'
import { outsideGivenLocation, type CommonInputs, type KindContext, type KindTeardown } from '../kind.js'
import { forgetInstall, letGo } from '../installs.js'
import { clusterLabel } from '../naming.js'
import { failedItemsError, logItems, type TeardownItem } from '../report.js'
import { removeV2, type V2Target } from './teardown.js'

export type V2TeardownOp = 'remove' | 'sweep' | 'cleanup'

export interface V2Found {
  targets: V2Target[]
  /** What this action cannot prove its own: listed, left. */
  left: TeardownItem[]
  /** This action's, still used by another run: kept. */
  kept?: TeardownItem[]
}

export interface V2TeardownRoute {
  /** The kind's name and the name its use record has (installs.ts). */
  kind: string
  recordName: string
  /** How the log names the route ("Virtual Nodes v2", "Virtual Nodes v2 (Helm)"). */
  label: string
  /** The target that is the install this action recorded (its extension, its release). */
  isRecorded: (t: V2Target) => boolean
  /** Finds what is there and this action's, for `op`. */
  find: (op: V2TeardownOp) => Promise<V2Found>
}

/** The teardown of one v2 route: a cleanup first lets go of this run's use, so another run's keeps what it needs. */
export async function runV2Teardown(ctx: KindContext<CommonInputs>, op: V2TeardownOp, route: V2TeardownRoute): Promise<KindTeardown> {
  // A location given to a remove or sweep narrows it: v2 runs in the cluster's region only.
  if (op !== 'cleanup' && outsideGivenLocation(ctx.inputs, ctx.cluster, 'Virtual Nodes v2')) return { items: [], removals: [], problems: [] }
  if (op === 'cleanup') await letGo(ctx.kube, route.kind, [route.recordName])
  const dry = op !== 'cleanup' && ctx.inputs.dryRun
  const { targets, left, kept = [] } = await ctx.phase(`Find ${route.label}`, () => route.find(op))
  if (left.length > 0)
    core.warning(`Virtual Nodes v2 this action cannot prove it installed is left as it is: ${left.map(i => `${i.kind} ${i.name}`).join(', ')}.`)
  const phase = dry ? `Dry run: what removing ${route.label} would take` : op === 'cleanup' ? `Cleanup: remove ${route.label}` : `Remove ${route.label}`
  const removed = await ctx.phase(phase, () =>
    removeV2(ctx.kube, ctx.arm, ctx.cluster, targets, {
      helm: ctx.helm,
      dryRun: dry,
      deadline: ctx.deadline.at,
      clusterUid: ctx.clusterUid,
      clusterLabel: clusterLabel(ctx.inputs)
    })
  )
  if (!dry && targets.some(route.isRecorded) && !removed.some(i => i.outcome === 'failed')) await forgetInstall(ctx.kube, route.kind, route.recordName)
  const items = [...removed, ...kept, ...left]
  logItems(items)
  const way =
    op === 'sweep' ? 'Re-run the sweep: it finds them again.' : op === 'cleanup' ? '' : 'Re-run the removal: it finds what is left from the cluster and Azure.'
  const error = failedItemsError(items, way)
  return { items, removals: [], problems: error ? [error] : [] }
}
