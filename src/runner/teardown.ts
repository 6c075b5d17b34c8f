// The teardown commands (remove, sweep) and the post step's cleanup: each kind of virtual
// node takes its own part through the seam (virtual-nodes/kind.ts), one after the other, one
// kind's failure never keeping the next from its turn; then the outputs and one error with
// every problem. And a remove on a cluster that is gone, which no kind can read.
import type { ArmClient } from '../azure/arm.js'
import type { ClusterNotFoundError } from '../kubernetes/cluster.js'
import { errorText } from '../util/async.js'
import type { KindTeardown, VirtualNodeKind } from '../virtual-nodes/kind.js'
import { KINDS, type KindName } from '../virtual-nodes/kinds.js'
import { logItems, teardownOutput } from '../virtual-nodes/report.js'
import type { Inputs } from './inputs.js'
import { nodeOutputs, publishOutputs } from './outputs.js'
import type { RunReport } from './summary.js'

export type TeardownOperation = 'remove' | 'sweep' | 'cleanup'

/** Runs one kind's part of the teardown. */
function runKind(k: VirtualNodeKind, op: TeardownOperation): Promise<KindTeardown> {
  return op === 'remove' ? k.remove() : op === 'sweep' ? k.sweep() : k.cleanup()
}

/**
 * Runs each kind's removal, sweep or cleanup in turn (kinds.ts orders them): one kind's
 * failure does not stop the next, and the step fails afterwards with every problem. Fills
 * the report's teardown items and removals; publishes node-names, release-names and swept.
 */
export async function runTeardown(kinds: VirtualNodeKind[], report: RunReport, op: TeardownOperation, dryRun: boolean): Promise<void> {
  report.dryRun = dryRun
  report.removalStarted = op !== 'sweep' && !dryRun
  report.teardown = []
  const problems: Error[] = []
  const found: Array<{ os: string; node: string; release?: string }> = []
  for (const k of kinds) {
    let result: KindTeardown
    try {
      result = await runKind(k, op)
    } catch (err) {
      // One kind that cannot be read or removed does not keep the next from its turn.
      problems.push(new Error(`${kinds.length > 1 ? `${k.label}: ` : ''}${errorText(err)}`))
      continue
    }
    report.teardown.push(...result.items)
    report.removals.push(...result.removals)
    problems.push(...result.problems)
    found.push(...(result.found ?? []))
  }
  if (op === 'remove') publishOutputs(nodeOutputs(found, false))
  if (op !== 'cleanup') publishOutputs({ swept: teardownOutput(report.teardown, dryRun, [...new Set(kinds.flatMap(k => k.installs))]) })
  if (problems.length > 0) throw new Error(problems.map(e => e.message).join('\n\n'))
}

/**
 * `command: remove` on a cluster ARM does not have: no kind can read what is installed, so
 * each says what it may have left outside the cluster (listed, never deleted).
 */
export async function reportClusterGone(arm: ArmClient, inputs: Inputs, report: RunReport, err: ClusterNotFoundError, kinds: KindName[]): Promise<undefined> {
  report.teardown = []
  for (const name of kinds) {
    const whenGone = (await KINDS[name].load()).whenClusterGone
    if (whenGone) report.teardown.push(...(await whenGone(arm, inputs, err.message)))
  }
  logItems(report.teardown)
  publishOutputs({ swept: teardownOutput(report.teardown, inputs.dryRun, ['release']) })
  return undefined
}
