// command: install, through the seam: every kind's prerequisites first (nothing has changed
// yet), then each installs, then all are waited for, then the samples; the outputs as soon as
// each is known.
import * as core from '@actions/core'
import { ensureProviderRegistered } from '../azure/provider-registration.js'
import { errorText, settleAll } from '../util/async.js'
import { NodesNotReadyError, type KindContext, type VirtualNodeKind } from '../virtual-nodes/kind.js'
import type { Inputs } from './inputs.js'
import type { RunReport } from './summary.js'
import { kindLabel } from '../virtual-nodes/kinds.js'
import type { NodeStatus } from '../virtual-nodes/report.js'
import { applySample, ensureSamplesNamespace, waitForSample } from '../virtual-nodes/samples.js'
import { nodeOutputs, publishOutputs } from './outputs.js'
import { savePostState, type PostState } from './state.js'

/** What the install works with: the kinds' context, with all the inputs and the whole report. */
export type StepContext = KindContext<Inputs> & { report: RunReport }

export async function runInstall(kinds: VirtualNodeKind[], ctx: StepContext, post: PostState): Promise<void> {
  // Reads only: nothing in Azure or the cluster changes before every kind's prerequisites have passed.
  for (const k of kinds) await k.checkPrerequisites()
  publishPlanned(kinds)
  // Every kind runs its pods in ACI. Registering is a subscription-wide write, so it comes only now.
  await ctx.phase('Resource provider', () => ensureProviderRegistered(ctx.arm, { timeoutMs: ctx.deadline.left() }))
  for (const k of kinds) await k.install()
  ctx.report.nodes = await ctx
    .phase('Wait for virtual nodes', () => waitForNodes(kinds))
    .catch((err: unknown) => {
      if (err instanceof NodesNotReadyError) ctx.report.nodes = err.ready
      throw err
    })
  if (ctx.inputs.deploySamples) await deploySamples(kinds, ctx, post)
}

/** The names an install makes, before it makes them: a later step with `if: always()` gets them even when the wait fails. */
function publishPlanned(kinds: VirtualNodeKind[]): void {
  publishOutputs(
    nodeOutputs(
      kinds.flatMap(k => k.planned()),
      true
    )
  )
}

/** Every kind's nodes waited for at once; every failure in one error, the Ready nodes in the report either way. */
async function waitForNodes(kinds: VirtualNodeKind[]): Promise<NodeStatus[]> {
  const settled = await Promise.allSettled(kinds.map(k => k.waitReady()))
  const failures = settled.flatMap(s => (s.status === 'rejected' ? [errorText(s.reason)] : []))
  const ready = settled.flatMap(s => (s.status === 'fulfilled' ? s.value : s.reason instanceof NodesNotReadyError ? s.reason.ready : []))
  for (const n of ready) core.info(`${n.node} is Ready after ${(n.waitedMs / 1000).toFixed(1)} s${kinds.length > 1 && n.kind ? ` (${kindLabel(n.kind)})` : ''}`)
  if (failures.length > 0) throw new NodesNotReadyError(failures.join('\n\n'), ready)
  // Every node is Ready: what a later step's own pods need to run on each.
  const linux = ready.find(n => n.os === 'Linux')?.node
  publishOutputs({
    placement: JSON.stringify(Object.assign({}, ...kinds.map(k => k.placement()))),
    nodes: JSON.stringify(ready.map(n => ({ node: n.node, os: n.os, kind: n.kind }))),
    'node-names': JSON.stringify(ready.map(n => n.node)),
    ...(linux ? { 'linux-node-name': linux } : {})
  })
  return ready
}

/** The samples on each kind's nodes, applied and waited for; their pod IPs as an output. */
async function deploySamples(kinds: VirtualNodeKind[], ctx: StepContext, post: PostState): Promise<void> {
  const { inputs, report } = ctx
  const targets = kinds.flatMap(k => k.samples().map(t => ({ ...t, kind: k })))
  report.samples = await ctx.phase('Samples', async () => {
    post.samples = targets.map(t => ({ os: t.os, namespace: inputs.samplesNamespace }))
    savePostState(post)
    await ensureSamplesNamespace(ctx.kube, inputs.samplesNamespace)
    await settleAll(targets.map(t => applySample(ctx.kube, t.os, inputs.samplesNamespace, t.placement, t.requests)))
    return settleAll(
      targets.map(t =>
        waitForSample(ctx.kube, t.os, inputs.samplesNamespace, ctx.deadline.left()).catch((err: unknown) => {
          const hint = t.kind.sampleHint(errorText(err))
          throw hint ? new Error(`${errorText(err)}\n${hint}`) : err
        })
      )
    )
  })
  const ips: Record<string, string[]> = {}
  // The connector reports no pod IP for Windows container groups (azure-aci v1.6.4
  // pkg/provider/containergroup_to_pod.go), so that list stays empty.
  for (const s of report.samples) ips[s.os.toLowerCase()] = s.pods.map(x => x.ip).filter(Boolean)
  publishOutputs({ 'sample-pod-ips': JSON.stringify(ips) })
}
