// The Virtual Kubelet ACI connector as a kind of virtual node (kind.ts): a Helm release of
// the virtual-kubelet-azure-aci chart per OS (Linux, Windows), its region and names checked
// and its identity's role on the ACI resource group too before anything changes, each node
// waited for; removal, cleanup and sweep read the releases and nodes the cluster has
// (targets.ts) and take them in the order that leaves nothing billing (removal.ts).
import * as core from '@actions/core'
import { distinctResourceGroups } from '../../azure/arm.js'
import { chartIdentity, readRelease, upgradeReason, type ChartIdentity, type ReleaseRecord } from '../../kubernetes/helm-releases.js'
import { errorText, settleAll } from '../../util/async.js'
import {
  NodesNotReadyError,
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
import { clusterLabel, type OsType } from '../naming.js'
import { logItems, type InstallItemKind, type NodeStatus, type TeardownItem } from '../report.js'
import { checkConnectorAccess, grantConnectorAccess, connectorRoleItems, type AccessVerdict, type ConnectorIdentityRef } from './access.js'
import { insecureChartWarning, verifiedChart } from '../../kubernetes/chart-file.js'
import { connectorChartPin } from './chart.js'
import { connectorLeftovers } from './cluster-gone.js'
import type { ConnectorInputs } from './inputs.js'
import { connectorPlacement } from './placement.js'
import { connectorNameProblem, connectorNames, REINSTALLED_STATUSES, RELEASE_NAMESPACE, type ConnectorNames } from './names.js'
import { connectorLogHint, waitForVirtualNode, type DiagnosisContext } from './readiness.js'
import { regionProblem } from '../aci-regions.js'
import { checkNamespaceFree, connectorRolloutReason, installConnector, recoverPendingRelease, renderValues, type ConnectorSettings } from './release.js'
import { removeTargets, teardownError, type RemovalResult } from './removal.js'
import { letGo } from '../installs.js'
import { CONNECTOR_KIND, forgetRemoved, keepShared, recordConnectorUse } from './sharing.js'
import { planSweep, runSweep } from './sweep.js'
import { findRemovalTargets, type RemovalScope, type RemovalTarget } from './targets.js'

type Ctx = KindContext<CommonInputs & ConnectorInputs>

/** What the post step's cleanup looks at (recorded before helm runs): the connectors this run created, and those it reused that a run with cleanup made. */
interface ConnectorRecord {
  connectors: ConnectorNames[]
  shared?: ConnectorNames[]
}

function settingsFor(ctx: Ctx, location: string, aciResourceGroup: string): ConnectorSettings {
  const managed = ctx.inputs.connectorIdentity === 'managed'
  return {
    tenantId: ctx.arm.access.tenantId,
    subscriptionId: ctx.arm.access.subscriptionId,
    aciResourceGroup,
    location,
    masterUri: `https://${ctx.cluster.fqdn}`,
    enableRBAC: ctx.cluster.enableRBAC,
    imageTag: ctx.inputs.imageTag,
    clientId: managed ? undefined : ctx.inputs.connectorClientId,
    clientSecret: managed ? undefined : ctx.inputs.connectorClientSecret,
    managedIdentityClientId: managed ? ctx.cluster.kubeletIdentityClientId : undefined
  }
}

/** Who the connector will run as, for the access check. */
function connectorIdentityRef(ctx: Ctx, s: ConnectorSettings): ConnectorIdentityRef {
  if (s.managedIdentityClientId) {
    return {
      description: `the cluster's kubelet identity ${s.managedIdentityClientId}`,
      assignee: s.managedIdentityClientId,
      objectId: ctx.cluster.kubeletIdentityObjectId,
      isSignedIn: false
    }
  }
  const signedIn = ctx.inputs.signIn.kind !== 'ambient' && s.clientId === ctx.inputs.signIn.clientId
  return {
    description: `service principal ${s.clientId ?? "(from the nodes' azure.json)"}`,
    assignee: s.clientId ?? '<client-id>',
    objectId: signedIn ? ctx.signedInObjectId : undefined,
    isSignedIn: signedIn
  }
}

function diagnosisContext(s: ConnectorSettings): DiagnosisContext {
  const identity = s.clientId
    ? `service principal ${s.clientId}`
    : s.managedIdentityClientId
      ? `the cluster's kubelet identity ${s.managedIdentityClientId}`
      : "the cluster identity from the nodes' azure.json"
  return { aciResourceGroup: s.aciResourceGroup, subscriptionId: s.subscriptionId, identity, identityId: s.clientId ?? s.managedIdentityClientId }
}

/** What `command: remove` may take: the connector by name; os-type, location and aci-resource-group only narrow it when given. */
export function removeScope(ctx: Ctx, os: OsType[]): RemovalScope {
  const { inputs } = ctx
  return {
    connector: name => name === inputs.connectorName,
    os: inputs.osTypesGiven ? os : undefined,
    location: inputs.location,
    aciResourceGroup: inputs.aciResourceGroup
  }
}

function describeScope(ctx: Ctx, scope: RemovalScope): string {
  const { inputs } = ctx
  const narrowed = [
    scope.os ? `os-type ${scope.os.join(', ')}` : undefined,
    inputs.location ? `location ${inputs.location}` : undefined,
    inputs.aciResourceGroup ? `aci-resource-group ${inputs.aciResourceGroup}` : undefined
  ].filter(Boolean)
  return `connector "${inputs.connectorName}"${narrowed.length ? ` (only ${narrowed.join(', ')})` : ' (any OS, any region, any ACI resource group)'}`
}

/** A finished connector teardown as the kind's result: the container groups left unproven are warned about. */
function teardownResult(ctx: Ctx, targets: RemovalTarget[], result: RemovalResult, rerun: string, withFound: boolean): KindTeardown {
  logItems(result.items)
  const left = result.items.filter(i => i.outcome === 'left')
  if (left.length > 0)
    core.warning(
      `${left.length} container group(s) are tagged as a removed virtual node's would be, but cannot be proven this cluster's, so they were left: ` +
        `${left.map(i => i.name).join(', ')}. If they are this cluster's, delete each with \`az container delete -g <resource-group> -n <name> --yes\`.`
    )
  const error = teardownError(result, targets, ctx.inputs.verifyAci, rerun)
  return {
    items: result.items,
    removals: result.removals,
    problems: error ? [error] : [],
    found: withFound ? targets.map(t => ({ os: t.names.os, node: t.names.node, release: t.names.release })) : undefined
  }
}

/** The region and connector name an install uses; throws, naming the input, when the connector cannot run there. */
function installLocation(ctx: Ctx): string {
  const { inputs } = ctx
  const location = inputs.location ?? ctx.cluster.location
  // A location given as an input was checked with the inputs; the cluster's is checked here.
  const regionIssue = inputs.location === undefined ? regionProblem(location) : undefined
  if (regionIssue) throw new Error(`The cluster is in ${location}, but ${regionIssue}.`)
  const nameProblem = connectorNameProblem(inputs.connectorName, location)
  if (nameProblem) throw new Error(`Invalid input: connector-name: "${inputs.connectorName}" is not valid in ${location}; ${nameProblem}.`)
  return location
}

/** The connector releases for `os` (one per OS), as a kind of virtual node. */
class ConnectorKind implements Omit<VirtualNodeKind, 'name' | 'label'> {
  readonly installs: InstallItemKind[] = ['release']
  private readonly inputs: CommonInputs & ConnectorInputs
  private readonly aciResourceGroup: string
  /** The releases an install makes (none for a teardown: it reads what is there). */
  private readonly connectors: ConnectorNames[]
  private readonly settings: ConnectorSettings
  private chartRef: string
  private diagnosis: DiagnosisContext
  /** What checkPrerequisites found of the connector identity's role; a grant it calls for is made by install. */
  private access?: AccessVerdict

  constructor(
    private readonly ctx: Ctx,
    private readonly os: OsType[],
    private readonly record: KindRecord<ConnectorRecord>
  ) {
    this.inputs = ctx.inputs
    const install = this.inputs.command === 'install'
    const location = install ? installLocation(ctx) : (this.inputs.location ?? ctx.cluster.location)
    this.aciResourceGroup = this.inputs.aciResourceGroup ?? ctx.cluster.nodeResourceGroup
    this.connectors = install ? os.map(o => connectorNames(this.inputs.connectorName, o, location)) : []
    this.settings = settingsFor(ctx, location, this.aciResourceGroup)
    this.chartRef = this.inputs.chartUrl
    this.diagnosis = diagnosisContext(this.settings)
  }

  async checkPrerequisites(): Promise<void> {
    const { ctx, inputs } = this
    ctx.report.chart = inputs.chartUrl
    const pin = connectorChartPin(inputs.chartUrl, inputs.chartSha256)
    const insecure = insecureChartWarning(pin)
    if (insecure) core.warning(insecure)
    // Checked before anything is installed; helm then gets the verified file.
    this.chartRef = await verifiedChart(pin, ctx.helm.workDir)
    // A connector that may not create container groups turns Ready anyway, and every pod on it then stays Pending.
    this.access = await ctx.phase('Connector access', () =>
      checkConnectorAccess(ctx.arm, this.aciResourceGroup, connectorIdentityRef(ctx, this.settings), inputs.grantConnectorRole)
    )
    // Every namespace before changing anything, so a conflict leaves nothing half done.
    await settleAll(this.connectors.map(c => checkNamespaceFree(ctx.kube, c, ctx.deadline.left())))
  }

  planned(): PlannedNode[] {
    return this.connectors.map(c => ({ os: c.os, node: c.node, release: c.release }))
  }

  async install(): Promise<void> {
    const { ctx, connectors } = this
    if (this.access?.verdict === 'grant') {
      const access = this.access
      const role = await ctx.phase('Connector access: grant', () =>
        grantConnectorAccess(ctx.arm, this.aciResourceGroup, connectorIdentityRef(ctx, this.settings), access.objectId, clusterLabel(this.inputs))
      )
      ctx.report.roles = [...(ctx.report.roles ?? []), role]
      this.diagnosis = { ...this.diagnosis, roleJustGranted: true }
    }
    await ctx.phase(`Install connector (${connectors.map(c => c.os).join(', ')})`, async () => {
      const [records, chart] = await settleAll([
        settleAll(connectors.map(c => readRelease(ctx.kube, c.release, RELEASE_NAMESPACE))),
        chartIdentity(this.inputs.chartUrl)
      ])
      const statuses = records.map(r => r?.status)
      // The post step's cleanup removes what this run created, never a connector that was
      // already there (a shared cluster's, or an earlier job's).
      const created = connectors.filter((_c, i) => statuses[i] === undefined || REINSTALLED_STATUSES.includes(statuses[i] ?? ''))
      // Other runs may use the same releases (sharing.ts): each run's use is recorded.
      const shared = await recordConnectorUse(ctx.kube, connectors, created, this.inputs.cleanup)
      this.record.set(created.length + shared.length > 0 ? { connectors: created, shared: shared.length > 0 ? shared : undefined } : undefined)
      await settleAll(connectors.map((c, i) => this.installRelease(c, statuses[i], records[i], chart, created.includes(c))))
    })
  }

  /** One OS's release: a pending one put right, then upgraded unless nothing would change. */
  private async installRelease(
    c: ConnectorNames,
    status: string | undefined,
    record: ReleaseRecord | undefined,
    chart: ChartIdentity | undefined,
    created: boolean
  ): Promise<void> {
    const { ctx } = this
    await recoverPendingRelease(ctx.kube, ctx.helm, c, status, ctx.deadline.left(), this.aciResourceGroup)
    const values = renderValues(c, this.settings)
    // A re-run that would change nothing skips helm, unless the connector is unhealthy: an
    // upgrade rolls it (the chart renews its certificate, and so its pod, on every upgrade).
    const reason = upgradeReason(record, chart, values) ?? (await connectorRolloutReason(ctx.kube, c))
    const leftByCleanup = this.inputs.cleanup && !created ? ' (cleanup leaves it: this run did not create it)' : ''
    if (!reason) {
      core.info(`Release ${c.release} is up to date (chart ${chart?.name ?? ''} ${chart?.version ?? ''}, same values): no helm upgrade${leftByCleanup}.`)
      return
    }
    // A pending release got its own warning from recoverPendingRelease.
    if (status !== undefined && !status.startsWith('pending-')) {
      core.info(`Release ${c.release} is already there (${status}); upgrading it in place: ${reason}${leftByCleanup}.`)
    }
    await installConnector(ctx.helm, c, this.chartRef, values)
  }

  async waitReady(): Promise<NodeStatus[]> {
    const settled = await Promise.allSettled(this.connectors.map(c => waitForVirtualNode(this.ctx.kube, c, this.ctx.deadline.left(), this.diagnosis)))
    const ready = settled.flatMap(s => (s.status === 'fulfilled' ? [{ ...s.value, kind: 'connector' }] : []))
    const failures = settled.flatMap(s => (s.status === 'rejected' ? [errorText(s.reason)] : []))
    if (failures.length > 0) throw new NodesNotReadyError(failures.join('\n\n'), ready)
    return ready
  }

  samples(): SampleTarget[] {
    return this.connectors.map(c => ({ os: c.os, node: c.node, placement: connectorPlacement(c.os, c.node) }))
  }

  /** A refusal from ACI (a 403 when the connector's role allows reading but not creating) says what to grant. */
  sampleHint(message: string): string | undefined {
    return connectorLogHint(message, this.diagnosis)
  }

  placement(): Record<string, unknown> {
    return Object.fromEntries(this.connectors.map(c => [c.os.toLowerCase(), { node: c.node, kind: 'connector', ...connectorPlacement(c.os, c.node) }]))
  }

  installedSoFar(): string[] {
    return (this.record.get()?.connectors ?? []).map(c => `release ${c.release} (node ${c.node})`)
  }

  async remove(): Promise<KindTeardown> {
    const { ctx, inputs } = this
    const scope = removeScope(ctx, this.os)
    const targets = await ctx.phase('Find what is installed', async () => {
      const found = await findRemovalTargets(ctx.kube, scope, ctx.cluster.nodeResourceGroup)
      core.info(`Looked for ${describeScope(ctx, scope)} in the cluster's Helm releases and virtual nodes: found ${found.length}.`)
      for (const x of found) core.info(`• ${x.names.node}: ${x.reason}`)
      if (found.length === 0)
        core.info(
          `Nothing to remove: no Helm release of connector "${inputs.connectorName}" (today's chart or the old CLI's) and no virtual node of it is in the cluster.`
        )
      return keepShared(ctx.kube, found, 'remove')
    })
    return this.removeFound(
      targets.targets,
      `${inputs.dryRun ? 'Dry run: what a remove would take' : 'Remove'} (${targets.targets.map(x => x.names.node).join(', ') || 'nothing found'})`,
      inputs.dryRun,
      'Re-run the removal: it finds what is left from the cluster.',
      targets.kept
    )
  }

  async cleanup(): Promise<KindTeardown> {
    const used = [...(this.record.get()?.connectors ?? []), ...(this.record.get()?.shared ?? [])]
    if (used.length === 0) return { items: [], removals: [], problems: [] }
    await letGo(
      this.ctx.kube,
      CONNECTOR_KIND,
      used.map(c => c.release)
    )
    const only = { releases: used.map(c => c.release), nodes: used.map(c => c.node) }
    const found = await findRemovalTargets(this.ctx.kube, { only }, this.ctx.cluster.nodeResourceGroup)
    const { targets, kept } = await keepShared(this.ctx.kube, found, 'cleanup')
    for (const t of targets) core.info(`• ${t.names.node}: ${t.reason}`)
    return this.removeFound(targets, 'Cleanup: remove what this job installed', false, '', kept)
  }

  async sweep(): Promise<KindTeardown> {
    const { ctx, inputs } = this
    const opts = {
      glob: inputs.connectorName,
      os: inputs.osTypesGiven ? this.os : undefined,
      location: inputs.location,
      olderThanMs: inputs.olderThanMs,
      dryRun: inputs.dryRun,
      timeoutMs: ctx.deadline.left(),
      nodeResourceGroup: ctx.cluster.nodeResourceGroup,
      aciResourceGroup: inputs.aciResourceGroup
    }
    const { plan, result } = await ctx.phase(`Sweep${inputs.dryRun ? ' (dry run)' : ''}`, async () => {
      const swept = await planSweep(ctx.kube, opts)
      // A release another live run uses is kept (its node stays, so its container groups are not orphans).
      const { targets, kept } = await keepShared(ctx.kube, swept.targets, 'sweep')
      const planned = { ...swept, targets, kept }
      const releases = planned.targets.filter(x => x.release).length
      core.info(
        `Found ${releases} connector release(s) matching "${inputs.connectorName}"${inputs.olderThanMs ? ` first deployed over ${Math.round(inputs.olderThanMs / 60_000)} min ago` : ''}, ` +
          `${planned.targets.length - releases} dead virtual node(s); looking for container groups of gone nodes in ${planned.resourceGroups.join(', ')}${inputs.dryRun ? ' (dry run: nothing is changed)' : ''}`
      )
      for (const x of planned.targets) core.info(`• ${x.names.node}: ${x.reason}`)
      return { plan: planned, result: await runSweep(ctx.kube, ctx.arm, ctx.helm, planned, opts) }
    })
    if (!inputs.dryRun) await forgetRemoved(ctx.kube, result.items)
    result.items.push(...plan.kept)
    return teardownResult(ctx, plan.targets, result, 'Re-run the sweep: it finds them again.', false)
  }

  private async removeFound(targets: RemovalTarget[], phase: string, dryRun: boolean, rerun: string, kept: TeardownItem[]): Promise<KindTeardown> {
    const { ctx } = this
    const result = await ctx.phase(phase, () =>
      removeTargets(ctx.kube, ctx.helm, targets, { timeoutMs: ctx.deadline.left(), dryRun, nodeResourceGroup: ctx.cluster.nodeResourceGroup, arm: ctx.arm })
    )
    if (!dryRun) await forgetRemoved(ctx.kube, result.items)
    result.items.push(...kept)
    // A role grant-connector-role made stays (the next job's install may use it): say so, and how to delete it.
    result.items.push(...(await connectorRoleItems(ctx.arm, distinctResourceGroups(targets.map(x => x.aciResourceGroup)), clusterLabel(this.inputs))))
    return teardownResult(ctx, targets, result, rerun, true)
  }
}

export const connectorKind: KindFactory<CommonInputs & ConnectorInputs> = (ctx, os, record) => new ConnectorKind(ctx, os, record as KindRecord<ConnectorRecord>)

/** For virtual-node-kind auto: this connector's Linux release, or what installing it needs (its region, its name there). Reads only. */
async function probeConnector(ctx: Ctx): Promise<KindProbe> {
  const location = ctx.inputs.location ?? ctx.cluster.location
  const names = connectorNames(ctx.inputs.connectorName, 'Linux', location)
  const release = await readRelease(ctx.kube, names.release, RELEASE_NAMESPACE)
  if (release?.status === 'deployed') return { installed: `release ${names.release} is deployed`, problems: [] }
  const region = regionProblem(location)
  const name = connectorNameProblem(ctx.inputs.connectorName, location)
  return {
    problems: [...(region ? [`The cluster is in ${location}, but ${region}`] : []), ...(name ? [`connector-name ${ctx.inputs.connectorName}: ${name}`] : [])]
  }
}

export const connector: KindModule<CommonInputs & ConnectorInputs> = { create: connectorKind, whenClusterGone: connectorLeftovers, probe: probeConnector }
