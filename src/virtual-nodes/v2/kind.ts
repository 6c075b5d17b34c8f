// Virtual Nodes v2 as a kind of virtual node (kind.ts): Linux nodes from the AKS cluster
// extension Microsoft.virtualnodes. Prerequisites over ARM, then the ACI subnet, the
// extension and its identity's role (install.ts), its nodes Ready (nodes.ts); removal,
// cleanup and sweep find what the cluster and ARM have and take it workloads first (teardown.ts).
import * as core from '@actions/core'
import {
  type CommonInputs,
  type KindContext,
  type KindFactory,
  type KindModule,
  type KindProbe,
  type KindRecord,
  type KindTeardown,
  type PlannedNode,
  type SampleTarget,
  type VirtualNodeKind
} from '../kind.js'
import { globToRegExp } from '../../util/glob.js'
import { clusterLabel } from '../naming.js'
import { checkMayGrant } from '../../azure/role-definitions.js'
import { resourceGroupScope } from '../../azure/role-assignments.js'
import { currentRun, useVerdict, recordUse } from '../installs.js'
import type { InstallItemKind, NodeStatus, TeardownItem } from '../report.js'
import { listV2Extensions, v2NodeNames, V2_EXTENSION_NAME } from './extension.js'
import { judgeV2Prerequisites, KUBERNETES_CONFIGURATION_PROVIDER, readV2Facts } from './prerequisites.js'
import { checkV2, installV2, type V2Plan } from './install.js'
import { V2_KIND, v2Ownership } from './ownership.js'
import { V2_SAMPLE_REQUESTS, v2Placement, waitForV2Nodes } from './nodes.js'
import { findV2Targets, type V2SweepScope } from './teardown.js'
import { runV2Teardown, type V2Found, type V2TeardownOp } from './teardown-run.js'

/** The inputs Virtual Nodes v2 reads, beside the common ones. */
export interface V2Inputs {
  /** virtual-nodes: how many v2 nodes (the extension's replicaCount); undefined keeps what an extension has (1 for a new one). */
  v2NodeCount?: number
}

/** What the post step's cleanup takes: the extension this run created. */
interface V2Record {
  extension: string
  nodes: string[]
}

type Ctx = KindContext<CommonInputs & V2Inputs>

class V2Kind implements Omit<VirtualNodeKind, 'name' | 'label'> {
  readonly installs: InstallItemKind[] = ['extension']
  private nodes: string[]
  private plan?: V2Plan
  /** The extension this run started to install or update, and whether it created it. */
  private touched: { created: boolean } | undefined

  constructor(
    private readonly ctx: Ctx,
    private readonly record: KindRecord<V2Record>
  ) {
    this.nodes = v2NodeNames(V2_EXTENSION_NAME, ctx.inputs.v2NodeCount ?? 1)
  }

  async checkPrerequisites(): Promise<void> {
    const { ctx } = this
    await ctx.phase('Virtual Nodes v2 prerequisites', async () => {
      const owner = await v2Ownership(ctx.arm, ctx.cluster, ctx.kube, clusterLabel(ctx.inputs))
      this.plan = await checkV2(ctx.arm, ctx.cluster, ctx.inputs.v2NodeCount, owner.isOurs)
      this.nodes = v2NodeNames(V2_EXTENSION_NAME, this.plan.nodeCount)
      // A new extension's identity has no role yet: a grant that could not be made is refused before the extension is created.
      if (ctx.inputs.grantConnectorRole && !this.plan.existing) await checkMayGrant(ctx.arm, resourceGroupScope(ctx.arm, ctx.cluster.nodeResourceGroup))
    })
  }

  planned(): PlannedNode[] {
    return this.nodes.map(node => ({ os: 'Linux', node }))
  }

  async install(): Promise<void> {
    const { ctx } = this
    const plan = this.plan
    if (!plan) throw new Error('Virtual Nodes v2: install before its prerequisites were checked.')
    await ctx.phase('Install Virtual Nodes v2', async () => {
      const run = { run: currentRun(), cleanup: ctx.inputs.cleanup }
      const installed = await installV2(
        {
          arm: ctx.arm,
          cluster: ctx.cluster,
          nodeCount: ctx.inputs.v2NodeCount,
          grantRole: ctx.inputs.grantConnectorRole,
          clusterLabel: clusterLabel(ctx.inputs),
          deadline: ctx.deadline.at
        },
        plan,
        async created => {
          // Recorded before the PUT: cleanup removes an extension this run created; a teardown proves it this action's by the record.
          this.touched = { created }
          await recordUse(ctx.kube, { kind: V2_KIND, name: V2_EXTENSION_NAME }, run, { created })
          this.record.set({ extension: V2_EXTENSION_NAME, nodes: this.nodes })
        }
      )
      if (installed.extension.principalId && (plan.ours || installed.created))
        await recordUse(ctx.kube, { kind: V2_KIND, name: V2_EXTENSION_NAME, identity: installed.extension.principalId }, run)
      if (installed.role) ctx.report.roles = [...(ctx.report.roles ?? []), { ...installed.role, removedWith: 'the extension (a remove of it)' }]
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
    return this.teardown('remove')
  }

  sweep(): Promise<KindTeardown> {
    return this.teardown('sweep')
  }

  /** Only this action's extension, when this run used it and no other run still does, with its nodes. */
  cleanup(): Promise<KindTeardown> {
    if (!this.record.get()) return Promise.resolve({ items: [], removals: [], problems: [] })
    return this.teardown('cleanup')
  }

  private teardown(op: V2TeardownOp): Promise<KindTeardown> {
    return runV2Teardown(this.ctx, op, {
      kind: V2_KIND,
      recordName: V2_EXTENSION_NAME,
      label: 'Virtual Nodes v2',
      isRecorded: t => t.extension !== undefined,
      find: op => this.find(op)
    })
  }

  /** This action's extension (proven by its record or its tags) and its nodes; another run that still uses it keeps it. */
  private async find(op: V2TeardownOp): Promise<V2Found> {
    const { ctx } = this
    const owner = await v2Ownership(ctx.arm, ctx.cluster, ctx.kube, clusterLabel(ctx.inputs))
    const sweep: V2SweepScope | undefined =
      op === 'sweep' ? { now: Date.now(), olderThanMs: ctx.inputs.olderThanMs, matches: name => globToRegExp(ctx.inputs.connectorName).test(name) } : undefined
    const found = await findV2Targets(ctx.arm, ctx.cluster, ctx.kube, { isOurs: owner.isOurs, recorded: owner.record !== undefined }, sweep)
    // Another run that still uses this action's extension keeps it (a cleanup lets go of this run's use first).
    const verdict = owner.record && found.targets.some(t => t.extension) ? useVerdict(owner.record, op) : undefined
    const kept: TeardownItem[] = verdict && !verdict.take ? [{ kind: 'extension', name: V2_EXTENSION_NAME, detail: verdict.why, outcome: 'kept' }] : []
    core.info(`Looked for Virtual Nodes v2 (this action's extension ${V2_EXTENSION_NAME} and its nodes): found ${found.targets.length}.`)
    for (const x of found.targets) core.info(`• ${x.reason}${x.nodes.length ? `: ${x.nodes.map(n => n.metadata?.name).join(', ')}` : ''}`)
    return { ...found, targets: kept.length ? found.targets.filter(t => !t.extension) : found.targets, kept }
  }
}

export const v2Kind: KindFactory<CommonInputs & V2Inputs> = (ctx, _os, record) => new V2Kind(ctx, record as KindRecord<V2Record>)

/** For virtual-node-kind auto: a v2 extension the cluster has, or what the extension needs. Reads only. */
async function probeV2(ctx: Ctx): Promise<KindProbe> {
  const facts = await readV2Facts(ctx.arm, ctx.cluster)
  const problems = judgeV2Prerequisites(facts).problems
  if (facts.providers[KUBERNETES_CONFIGURATION_PROVIDER] !== 'Registered') return { problems }
  const extension = (await listV2Extensions(ctx.arm, ctx.cluster))[0]
  return extension ? { installed: `extension ${extension.name} (${extension.provisioningState})`, problems: [] } : { problems }
}

export const v2: KindModule<CommonInputs & V2Inputs> = { create: v2Kind, probe: probeV2 }
