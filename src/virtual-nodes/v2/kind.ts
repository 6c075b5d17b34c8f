// Virtual Nodes v2 as a kind of virtual node (kind.ts): Linux nodes from the AKS cluster
// extension Microsoft.virtualnodes. Prerequisites over ARM, then the ACI subnet, the
// extension and its identity's role (v2.ts installV2), its nodes Ready; removal and sweep
// find what the cluster and ARM have (v2.ts findV2Targets) and take it workloads first.
import * as core from '@actions/core'
import { failedItemsError, logItems } from '../removal.js'
import type { KindContext, KindTeardown, VirtualNodeKind } from '../kind.js'
import { clusterLabel } from '../connector/connector-access.js'
import { V2_SAMPLE_REQUESTS, checkV2, findV2Targets, installV2, removeV2, v2Placement, waitForV2Nodes, type V2Findings } from './v2.js'
import { v2NodeNames, V2_EXTENSION_NAME } from './extension.js'

export function v2Kind(ctx: KindContext): VirtualNodeKind {
  const nodes = v2NodeNames(V2_EXTENSION_NAME, ctx.inputs.v2NodeCount)
  let makeSubnet: () => Promise<void> = async () => undefined

  const teardown = async (sweep: boolean): Promise<KindTeardown> => {
    const dry = ctx.inputs.dryRun
    const { targets, left }: V2Findings = await ctx.phase('Find Virtual Nodes v2', async () => {
      const found = await findV2Targets(ctx.arm, ctx.cluster, ctx.kube, sweep ? { now: Date.now() } : undefined)
      core.info(`Looked for Virtual Nodes v2 (extension ${V2_EXTENSION_NAME} and its nodes): found ${found.targets.length}.`)
      for (const x of found.targets) core.info(`• ${x.reason}${x.nodes.length ? `: ${x.nodes.map(n => n.metadata?.name).join(', ')}` : ''}`)
      return found
    })
    if (left.length > 0) core.warning(`Virtual Nodes v2 this action did not install is left as it is: ${left.map(i => `${i.kind} ${i.name}`).join(', ')}.`)
    const items = await ctx.phase(dry ? 'Dry run: what removing Virtual Nodes v2 would take' : 'Remove Virtual Nodes v2', async () => [
      ...(await removeV2(ctx.kube, ctx.arm, ctx.cluster, targets, {
        dryRun: dry,
        deadline: ctx.deadline.at,
        clusterUid: ctx.clusterUid,
        clusterLabel: clusterLabel(ctx.inputs)
      })),
      ...left
    ])
    logItems(items)
    const error = failedItemsError(
      items,
      sweep ? 'Re-run the sweep: it finds them again.' : 'Re-run the removal: it finds what is left from the cluster and Azure.'
    )
    return { items, removals: [], problems: error ? [error] : [] }
  }

  return {
    name: 'v2',
    async checkPrerequisites() {
      makeSubnet = await ctx.phase('Virtual Nodes v2 prerequisites', () => checkV2(ctx.arm, ctx.cluster))
    },
    async install() {
      await ctx.phase('Install Virtual Nodes v2', async () => {
        const installed = await installV2(
          {
            arm: ctx.arm,
            cluster: ctx.cluster,
            nodeCount: ctx.inputs.v2NodeCount,
            grantRole: ctx.inputs.grantConnectorRole,
            clusterLabel: clusterLabel(ctx.inputs),
            deadline: ctx.deadline.at
          },
          makeSubnet,
          created => {
            // Recorded before the PUT: cleanup removes an extension this run created, never one that was there.
            ctx.post.v2 = { extension: V2_EXTENSION_NAME, created, nodes }
            ctx.savePost()
          }
        )
        if (installed.role) ctx.report.roles = [...(ctx.report.roles ?? []), installed.role]
      })
    },
    waitReady: () => waitForV2Nodes(ctx.kube, nodes, ctx.deadline.left()),
    samples: () => [{ os: 'Linux', node: nodes[0] ?? '', placement: v2Placement(ctx.clusterUid), requests: V2_SAMPLE_REQUESTS }],
    sampleHint: () => undefined,
    placement: () => ({ linux: { node: nodes[0], nodes, kind: 'v2', ...v2Placement(ctx.clusterUid) } }),
    remove: () => teardown(false),
    sweep: () => teardown(true)
  }
}
