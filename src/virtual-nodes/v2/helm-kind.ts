// Virtual Nodes v2 through its Helm chart, as a kind of virtual node (kind.ts): the route for
// clusters the extension cannot serve (a VNet of the user's own). Prerequisites over ARM and
// from the cluster (helm-prerequisites.ts), the chart of the cluster's Kubernetes minor
// (helm-chart.ts) verified against its published digest, the kubelet identity's least role,
// then the release (helm-release.ts) and its nodes Ready; teardown as the extension's
// (teardown.ts): workloads first, then the release, then the Node objects the chart leaves.
import * as core from '@actions/core'
import type { V1Node } from '@kubernetes/client-node'
import type { GrantedRole } from '../../azure/role-assignments.js'
import { checkMayGrant, grantVirtualNodeRole } from '../../azure/role-definitions.js'
import { resourceGroupOf } from '../../azure/network.js'
import { chartIdentity, upgradeReason } from '../../kubernetes/helm-releases.js'
import { insecureChartWarning, verifiedChart, type ChartPin } from '../../kubernetes/chart-file.js'
import { notReadySince } from '../../kubernetes/pods.js'
import { globToRegExp } from '../../util/glob.js'
import { currentRun, installKey, useVerdict, readInstalls, recordUse, type InstallRecord } from '../installs.js'
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
import { clusterLabel } from '../naming.js'
import type { InstallItemKind, NodeStatus, TeardownItem } from '../report.js'
import { waitForNodes } from '../wait.js'
import { readClusterVnet } from '../cluster-vnet.js'
import { grantedRoleItems } from '../granted-roles.js'
import { judgeV2HelmPrerequisites, readV2HelmFacts, type V2HelmVerdict } from './helm-prerequisites.js'
import {
  ensureV2Namespace,
  findV2HelmReleases,
  installV2Release,
  v2HelmNodeNames,
  v2HelmValues,
  V2_HELM_DEFAULT_SUBNET,
  V2_HELM_KIND,
  V2_HELM_RECORD,
  V2_HELM_NAMESPACE,
  V2_HELM_RELEASE,
  type V2HelmRelease
} from './helm-release.js'
import { isV2Node, nodesOfExtension, V2_NODE_LABEL, V2_NODE_LABEL_VALUE, V2_SAMPLE_REQUESTS, v2Placement } from './nodes.js'
import { V2_NOT_READY_GRACE_MS } from './teardown.js'
import { runV2Teardown, type V2Found, type V2TeardownOp } from './teardown-run.js'

const RECORD_NAME = V2_HELM_RECORD

/** The inputs the Helm route reads, beside the common ones. */
export interface V2HelmInputs {
  v2NodeCount?: number
  /** subnet-name: the ACI subnet in the cluster's VNet; undefined: the chart's `cg`. */
  subnetName?: string
  /** v2-chart-url / v2-chart-sha256: a chart of the user's own (a mirror); undefined: the published one for the cluster. */
  v2ChartUrl?: string
  v2ChartSha256?: string
}

type Ctx = KindContext<CommonInputs & V2HelmInputs>

/** What the post step's cleanup looks at: the release this run installed or reused. */
interface V2HelmRecord {
  release: string
}

/** The grant of the least role to the kubelet identity where it lacks one (the node resource group, the VNet's resource group). */
async function grantKubeletAccess(ctx: Ctx, verdict: V2HelmVerdict): Promise<GrantedRole[]> {
  const principal = ctx.cluster.kubeletIdentityObjectId ?? ''
  const groups = [...new Set(verdict.missing.map(m => resourceGroupOf(m.scope) ?? ctx.cluster.nodeResourceGroup))]
  const roles: GrantedRole[] = []
  for (const rg of groups) {
    const role = await grantVirtualNodeRole(ctx.arm, {
      resourceGroup: rg,
      principalId: principal,
      description: v2HelmGrantDescription(clusterLabel(ctx.inputs))
    })
    core.info(`${role.outcome === 'created' ? 'Assigned' : 'Found'} role "${role.role}" on ${rg} for the cluster's kubelet identity (grant-connector-role).`)
    roles.push(role)
  }
  return roles
}

export function v2HelmGrantDescription(cluster: string): string {
  return `Granted by aks-aci-connector-action (grant-connector-role) to Virtual Nodes v2 (Helm) of AKS cluster ${cluster}`
}

class V2HelmKind implements Omit<VirtualNodeKind, 'name' | 'label'> {
  readonly installs: InstallItemKind[] = ['release']
  private nodes: string[]
  private verdict?: V2HelmVerdict
  /** This action's release as the prerequisites read it (undefined: none yet). */
  private existing?: V2HelmRelease
  private pin?: ChartPin
  private touched?: { created: boolean }

  constructor(
    private readonly ctx: Ctx,
    private readonly record: KindRecord<V2HelmRecord>
  ) {
    this.nodes = v2HelmNodeNames(ctx.inputs.v2NodeCount ?? 1)
  }

  private get subnet(): string {
    return this.ctx.inputs.subnetName ?? V2_HELM_DEFAULT_SUBNET
  }

  async checkPrerequisites(): Promise<void> {
    const { ctx } = this
    const { inputs } = ctx
    this.verdict = await ctx.phase('Virtual Nodes v2 (Helm) prerequisites', async () => {
      const userVersion = inputs.v2ChartUrl ? (await chartIdentity(inputs.v2ChartUrl))?.version : undefined
      const facts = await readV2HelmFacts(ctx.arm, ctx.kube, ctx.cluster, this.subnet, { url: inputs.v2ChartUrl, version: userVersion })
      const verdict = judgeV2HelmPrerequisites(facts, this.subnet, inputs.grantConnectorRole)
      if (verdict.problems.length > 0)
        throw new Error(
          `Cluster ${ctx.cluster.name} does not meet what Virtual Nodes v2 through its Helm chart needs; nothing was changed:\n${verdict.problems.map(p => `- ${p}`).join('\n')}`
        )
      for (const m of verdict.missing) await checkMayGrant(ctx.arm, m.scope.replace(/(\/resourceGroups\/[^/]+).*/i, '$1'))
      const existing = facts.releases.find(r => r.name === V2_HELM_RELEASE && r.namespace === V2_HELM_NAMESPACE)
      this.existing = existing
      const replicas = inputs.v2NodeCount ?? Number(existing?.record.config?.replicaCount ?? 1)
      this.nodes = v2HelmNodeNames(Number.isInteger(replicas) && replicas > 0 ? replicas : 1)
      core.info(
        `Virtual Nodes v2 (Helm) prerequisites met: chart ${verdict.chart ? `virtualnode ${verdict.chart.version} (for Kubernetes ${ctx.cluster.kubernetesVersion})` : inputs.v2ChartUrl}, ` +
          `subnet ${this.subnet} of VNet ${verdict.vnet?.name ?? '?'}, ${this.nodes.length} node(s).`
      )
      return verdict
    })
    const chart = this.verdict.chart
    this.pin = chart
      ? {
          url: chart.url,
          sha256: chart.sha256,
          urlInput: 'v2-chart-url',
          shaInput: 'v2-chart-sha256',
          published: { url: chart.url, sha256: chart.sha256, where: 'index.yaml of https://microsoft.github.io/virtualnodesOnAzureContainerInstances/' }
        }
      : { url: inputs.v2ChartUrl ?? '', sha256: inputs.v2ChartSha256, urlInput: 'v2-chart-url', shaInput: 'v2-chart-sha256' }
    const insecure = insecureChartWarning(this.pin)
    if (insecure) core.warning(insecure)
  }

  planned(): PlannedNode[] {
    return this.nodes.map(node => ({ os: 'Linux', node, release: V2_HELM_RELEASE }))
  }

  async install(): Promise<void> {
    const { ctx } = this
    const verdict = this.verdict
    const pin = this.pin
    if (!verdict || !pin) throw new Error('Virtual Nodes v2 (Helm): install before its prerequisites were checked.')
    await ctx.phase('Install Virtual Nodes v2 (Helm)', async () => {
      const existing = this.existing
      // Recorded before anything changes: cleanup takes a release this run created; a teardown proves it this action's by the record.
      this.touched = { created: !existing }
      await recordUse(ctx.kube, { kind: V2_HELM_KIND, name: RECORD_NAME }, { run: currentRun(), cleanup: ctx.inputs.cleanup }, { created: !existing })
      this.record.set({ release: RECORD_NAME })
      if (verdict.missing.length > 0) ctx.report.roles = [...(ctx.report.roles ?? []), ...(await grantKubeletAccess(ctx, verdict))]
      const values = v2HelmValues(this.nodes.length, this.subnet, ctx.clusterUid)
      // The chart's name and version come from its file name (or Chart.yaml): a release that is up to date needs no download.
      const reason = upgradeReason(existing?.record, await chartIdentity(pin.url), values)
      if (!reason) {
        core.info(`Release ${V2_HELM_NAMESPACE}/${V2_HELM_RELEASE} is up to date (same chart, same values): no helm upgrade.`)
        return
      }
      const chartFile = await verifiedChart(pin, ctx.helm.workDir)
      ctx.report.chart = pin.url
      await ensureV2Namespace(ctx.kube, ctx.deadline.at)
      core.info(`helm upgrade --install ${V2_HELM_RELEASE} (${reason}) in namespace ${V2_HELM_NAMESPACE}`)
      await installV2Release(ctx.helm, chartFile, values)
    })
  }

  waitReady(): Promise<NodeStatus[]> {
    return waitForNodes(
      this.ctx.kube,
      {
        kind: V2_HELM_KIND,
        label: 'Virtual Nodes v2 (Helm)',
        nodeNoun: 'v2 node',
        names: this.nodes,
        labelSelector: `${V2_NODE_LABEL}=${V2_NODE_LABEL_VALUE}`,
        // Each node is its StatefulSet pod of the same name (node name = pod name).
        agent: { namespace: V2_HELM_NAMESPACE, nodeOf: pod => (this.nodes.includes(pod) ? pod : undefined) },
        stays: `The release stays installed: fix the cause and re-run this step (it converges), or run the action with command: remove.`
      },
      this.ctx.deadline.left()
    )
  }

  samples(): SampleTarget[] {
    return [{ os: 'Linux', node: this.nodes[0] ?? '', placement: v2Placement(this.ctx.clusterUid), requests: V2_SAMPLE_REQUESTS }]
  }

  sampleHint(): string | undefined {
    return undefined
  }

  placement(): Record<string, unknown> {
    return { linux: { node: this.nodes[0], nodes: this.nodes, kind: V2_HELM_KIND, ...v2Placement(this.ctx.clusterUid) } }
  }

  installedSoFar(): string[] {
    if (!this.touched) return []
    return [`Virtual Nodes v2 Helm release ${RECORD_NAME}${this.touched.created ? ' (created by this run)' : ''} with node(s) ${this.nodes.join(', ')}`]
  }

  remove(): Promise<KindTeardown> {
    return this.teardown('remove')
  }

  sweep(): Promise<KindTeardown> {
    return this.teardown('sweep')
  }

  cleanup(): Promise<KindTeardown> {
    if (!this.record.get()) return Promise.resolve({ items: [], removals: [], problems: [] })
    return this.teardown('cleanup')
  }

  private teardown(op: V2TeardownOp): Promise<KindTeardown> {
    return runV2Teardown(this.ctx, op, {
      kind: V2_HELM_KIND,
      recordName: RECORD_NAME,
      label: 'Virtual Nodes v2 (Helm)',
      isRecorded: t => t.release !== undefined,
      find: op => this.find(op)
    })
  }

  /** This action's release (its record proves it) and its nodes; any other release of the chart listed and left. */
  private async find(op: V2TeardownOp): Promise<V2Found> {
    const { ctx } = this
    const [releases, installs, nodes] = await Promise.all([
      findV2HelmReleases(ctx.kube),
      readInstalls(ctx.kube),
      ctx.kube.core.listNode({ labelSelector: `${V2_NODE_LABEL}=${V2_NODE_LABEL_VALUE}` }).then(l => l.items.filter(isV2Node))
    ])
    const record: InstallRecord | undefined = installs.get(installKey(V2_HELM_KIND, RECORD_NAME))
    // Proven this action's by its record: made by a run of it (a release found there and used is someone else's).
    const ours = releases.find(r => r.name === V2_HELM_RELEASE && r.namespace === V2_HELM_NAMESPACE && record?.created === true)
    const left: TeardownItem[] = releases
      .filter(r => r !== ours)
      .map(r => ({
        kind: 'release',
        name: `${r.namespace}/${r.name}`,
        detail: `a Virtual Nodes v2 Helm release this action cannot prove it installed (no record that it made it); remove it with \`helm uninstall ${r.name} -n ${r.namespace}\``,
        outcome: 'left'
      }))
    const mine = record?.created === true ? nodesOfExtension(V2_HELM_RELEASE, nodes) : []
    if (!ours) {
      // The release is gone and its Node objects stay (the chart leaves them): taken once NotReady.
      const stale = mine.filter(n => notReadySince(n) !== undefined)
      core.info(`Looked for Virtual Nodes v2 through Helm (release ${RECORD_NAME}): ${stale.length ? `${stale.length} node(s) it left` : 'not installed'}.`)
      return { targets: stale.length ? [{ nodes: stale, reason: `node(s) of Helm release ${RECORD_NAME}, which is gone, NotReady` }] : [], left }
    }
    const verdict = record ? useVerdict(record, op) : { take: true as const }
    if (!verdict.take) return { targets: [], left, kept: [{ kind: 'release', name: RECORD_NAME, detail: verdict.why, outcome: 'kept' }] }
    if (op === 'sweep' && !this.sweepable(ours.record.firstDeployed, mine)) return { targets: [], left }
    core.info(
      `Looked for Virtual Nodes v2 through Helm: release ${RECORD_NAME} (chart virtualnode ${ours.record.chartVersion ?? '?'}) with ${mine.length} node(s).`
    )
    return {
      kept: await this.grantedKubeletRoles(),
      targets: [
        {
          release: { name: V2_HELM_RELEASE, namespace: V2_HELM_NAMESPACE },
          nodes: mine,
          reason: `Helm release ${RECORD_NAME} of chart virtualnode ${ours.record.chartVersion ?? '?'}`
        }
      ],
      left
    }
  }

  /** The roles grant-connector-role gave the kubelet identity for this route: listed and left, since the kubelet identity outlives the release. */
  private async grantedKubeletRoles(): Promise<TeardownItem[]> {
    const { ctx } = this
    const net = await readClusterVnet(ctx.arm, ctx.cluster).catch(() => undefined)
    const groups = [...new Set([ctx.cluster.nodeResourceGroup, net?.vnet?.resourceGroup].filter((g): g is string => g !== undefined))]
    return grantedRoleItems(
      ctx.arm,
      groups,
      v2HelmGrantDescription(clusterLabel(ctx.inputs)),
      "granted by grant-connector-role to the cluster's kubelet identity for Virtual Nodes v2 (Helm); left in place (the identity outlives the release, and the next install uses it)"
    )
  }

  /** A sweep takes the release when it matches the glob, is older than older-than, and every node of it has been NotReady for the grace period. */
  private sweepable(firstDeployed: string | undefined, nodes: V1Node[]): boolean {
    const { inputs } = this.ctx
    const now = Date.now()
    const old = !inputs.olderThanMs || (firstDeployed !== undefined && now - new Date(firstDeployed).getTime() >= inputs.olderThanMs)
    const dead = nodes.length > 0 && nodes.every(n => (notReadySince(n)?.getTime() ?? now) <= now - V2_NOT_READY_GRACE_MS)
    return old && dead && globToRegExp(inputs.connectorName).test(V2_HELM_RELEASE)
  }
}

export const v2HelmKind: KindFactory<CommonInputs & V2HelmInputs> = (ctx, _os, record) => new V2HelmKind(ctx, record as KindRecord<V2HelmRecord>)

/** For virtual-node-kind auto: this action's release of the chart, or what installing it needs. Reads only. */
async function probeV2Helm(ctx: Ctx): Promise<KindProbe> {
  const { inputs } = ctx
  const subnet = inputs.subnetName ?? V2_HELM_DEFAULT_SUBNET
  const version = inputs.v2ChartUrl ? (await chartIdentity(inputs.v2ChartUrl))?.version : undefined
  const facts = await readV2HelmFacts(ctx.arm, ctx.kube, ctx.cluster, subnet, { url: inputs.v2ChartUrl, version })
  if (facts.releaseIsOurs && facts.releases.some(r => r.name === V2_HELM_RELEASE && r.namespace === V2_HELM_NAMESPACE))
    return { installed: `Helm release ${RECORD_NAME}`, problems: [] }
  return { problems: judgeV2HelmPrerequisites(facts, subnet, inputs.grantConnectorRole).problems }
}

export const v2Helm: KindModule<CommonInputs & V2HelmInputs> = { create: v2HelmKind, probe: probeV2Helm }
