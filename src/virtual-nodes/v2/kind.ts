// Virtual Nodes v2 as a kind of virtual node (kind.ts): Linux nodes from the AKS cluster
// extension Microsoft.virtualnodes. Prerequisites over ARM, then the ACI subnet, the
// extension and its identity's role (install.ts), its nodes Ready (nodes.ts); removal,
// cleanup and sweep find what the cluster and ARM have and take it workloads first (teardown.ts).
import * as core from '@actions/core'
import type { CommonInputs, KindContext, KindFactory, KindModule, KindRecord, KindTeardown, PlannedNode, SampleTarget, VirtualNodeKind } from '../kind.js'
import { clusterLabel } from '../naming.js'
import { failedItemsError, logItems, type InstallItemKind, type NodeStatus, type TeardownItem } from '../report.js'
import { v2NodeNames, V2_EXTENSION_NAME } from './extension.js'
import { checkV2, installV2 } from './install.js'
import { V2_SAMPLE_REQUESTS, v2Placement, waitForV2Nodes } from './nodes.js'
import { findV2Targets, removeV2, type V2Findings, type V2Target } from './teardown.js'

/** The inputs Virtual Nodes v2 reads, beside the common ones. */
export interface V2Inputs {
  /** virtual-nodes: how many v2 nodes (the extension's replicaCount). */
  v2NodeCount: number
}

/** What the post step's cleanup takes: the extension this run created. */
interface V2Record {
  extension: string
  nodes: string[]
}

type Ctx = KindContext<CommonInputs & V2Inputs>

class V2Kind implements Omit<VirtualNodeKind, 'name' | 'label'> {
  readonly installs: InstallItemKind[] = ['extension']
  private readonly nodes: string[]
  private makeSubnet: () => Promise<void> = async () => undefined
  /** The extension this run started to install or update, and whether it created it. */
  private touched: { created: boolean } | undefined

  constructor(
    private readonly ctx: Ctx,
    private readonly record: KindRecord<V2Record>
  ) {
    this.nodes = v2NodeNames(V2_EXTENSION_NAME, ctx.inputs.v2NodeCount)
  }

  async checkPrerequisites(): Promise<void> {
    this.makeSubnet = await this.ctx.phase('Virtual Nodes v2 prerequisites', () => checkV2(this.ctx.arm, this.ctx.cluster))
  }

  planned(): PlannedNode[] {
    return this.nodes.map(node => ({ os: 'Linux', node }))
  }

  async install(): Promise<void> {
    const { ctx } = this
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
        this.makeSubnet,
        created => {
          // Recorded before the PUT: cleanup removes an extension this run created, never one that was there.
          this.touched = { created }
          this.record.set(created ? { extension: V2_EXTENSION_NAME, nodes: this.nodes } : undefined)
        }
      )
      if (installed.role) ctx.report.roles = [...(ctx.report.roles ?? []), installed.role]
    })
  }

  waitReady(): Promise<NodeStatus[]> {
    return waitForV2Nodes(this.ctx.kube, this.nodes, this.ctx.deadline.left())
  }

  samples(): SampleTarget[] {
    return [{ os: 'Linux', node: this.nodes[0] ?? '', placement: v2Placement(this.ctx.clusterUid), requests: V2_SAMPLE_REQUESTS }]
  }

  sampleHint(): string | undefined {
    return undefined
  }

  placement(): Record<string, unknown> {
    return { linux: { node: this.nodes[0], nodes: this.nodes, kind: 'v2', ...v2Placement(this.ctx.clusterUid) } }
  }

  installedSoFar(): string[] {
    if (!this.touched) return []
    return [`Virtual Nodes v2 extension ${V2_EXTENSION_NAME}${this.touched.created ? ' (created by this run)' : ''} with node(s) ${this.nodes.join(', ')}`]
  }

  remove(): Promise<KindTeardown> {
    return this.teardown(false)
  }

  sweep(): Promise<KindTeardown> {
    return this.teardown(true)
  }

  /** Only this action's extension, when this run created it, with its nodes. */
  async cleanup(): Promise<KindTeardown> {
    if (!this.record.get()) return { items: [], removals: [], problems: [] }
    const { targets } = await findV2Targets(this.ctx.arm, this.ctx.cluster, this.ctx.kube)
    const items = await this.removeFound(targets, false, 'Cleanup: remove Virtual Nodes v2')
    logItems(items)
    const error = failedItemsError(items, '')
    return { items, removals: [], problems: error ? [error] : [] }
  }

  private async teardown(sweep: boolean): Promise<KindTeardown> {
    const { ctx } = this
    const dry = ctx.inputs.dryRun
    const { targets, left }: V2Findings = await ctx.phase('Find Virtual Nodes v2', async () => {
      const found = await findV2Targets(ctx.arm, ctx.cluster, ctx.kube, sweep ? { now: Date.now() } : undefined)
      core.info(`Looked for Virtual Nodes v2 (extension ${V2_EXTENSION_NAME} and its nodes): found ${found.targets.length}.`)
      for (const x of found.targets) core.info(`• ${x.reason}${x.nodes.length ? `: ${x.nodes.map(n => n.metadata?.name).join(', ')}` : ''}`)
      return found
    })
    if (left.length > 0) core.warning(`Virtual Nodes v2 this action did not install is left as it is: ${left.map(i => `${i.kind} ${i.name}`).join(', ')}.`)
    const items = [...(await this.removeFound(targets, dry, dry ? 'Dry run: what removing Virtual Nodes v2 would take' : 'Remove Virtual Nodes v2')), ...left]
    logItems(items)
    const error = failedItemsError(
      items,
      sweep ? 'Re-run the sweep: it finds them again.' : 'Re-run the removal: it finds what is left from the cluster and Azure.'
    )
    return { items, removals: [], problems: error ? [error] : [] }
  }

  private removeFound(targets: V2Target[], dryRun: boolean, phase: string): Promise<TeardownItem[]> {
    const { ctx } = this
    return ctx.phase(phase, () =>
      removeV2(ctx.kube, ctx.arm, ctx.cluster, targets, {
        dryRun,
        deadline: ctx.deadline.at,
        clusterUid: ctx.clusterUid,
        clusterLabel: clusterLabel(ctx.inputs)
      })
    )
  }
}

export const v2Kind: KindFactory<CommonInputs & V2Inputs> = (ctx, _os, record) => new V2Kind(ctx, record as KindRecord<V2Record>)

export const v2: KindModule<CommonInputs & V2Inputs> = { create: v2Kind }
