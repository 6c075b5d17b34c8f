// The Virtual Kubelet ACI connector as a kind of virtual node (kind.ts): a Helm release of
// the virtual-kubelet-azure-aci chart per OS (Linux, Windows), its identity's role on the
// ACI resource group checked first, each node waited for; removal and sweep read the
// releases and nodes the cluster has (installed.ts) and take them in the order that
// leaves nothing billing (removal.ts).
import * as core from '@actions/core'
import { errorText, settleAll } from '../../util/async.js'
import { chartIdentity, readRelease, upgradeReason } from '../../kubernetes/helm-releases.js'
import { NodesNotReadyError, type KindContext, type KindTeardown, type VirtualNodeKind } from '../kind.js'
import type { ConnectorNames } from '../naming.js'
import { connectorLogHint, waitForVirtualNode, type DiagnosisContext } from '../readiness.js'
import { placementFor } from '../samples.js'
import { distinctResourceGroups } from '../attribution.js'
import { findRemovalTargets, logItems, removeTargets, teardownError, type RemovalResult, type RemovalScope, type RemovalTarget } from '../removal.js'
import { planSweep, runSweep } from '../sweep.js'
import { insecureChartWarning, verifiedChart } from './chart.js'
import { clusterLabel, ensureConnectorAccess, grantedRoleItems, type ConnectorIdentityRef } from './connector-access.js'
import {
  checkNamespaceFree,
  connectorRolloutReason,
  installConnector,
  recoverPendingRelease,
  REINSTALLED_STATUSES,
  RELEASE_NAMESPACE,
  renderValues,
  type ConnectorSettings
} from './connector.js'
import type { OsType } from '../naming.js'
import type { Inputs } from '../../runner/inputs.js'

function settingsFor(ctx: KindContext): ConnectorSettings {
  const managed = ctx.inputs.connectorIdentity === 'managed'
  return {
    tenantId: ctx.arm.access.tenantId,
    subscriptionId: ctx.arm.access.subscriptionId,
    aciResourceGroup: ctx.aciResourceGroup,
    location: ctx.location,
    masterUri: `https://${ctx.cluster.fqdn}`,
    enableRBAC: ctx.cluster.enableRBAC,
    imageTag: ctx.inputs.imageTag,
    clientId: managed ? undefined : ctx.inputs.connectorClientId,
    clientSecret: managed ? undefined : ctx.inputs.connectorClientSecret,
    managedIdentityClientId: managed ? ctx.cluster.kubeletIdentityClientId : undefined
  }
}

/** Who the connector will run as, for the access check. */
function connectorIdentityRef(ctx: KindContext, s: ConnectorSettings): ConnectorIdentityRef {
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

/** The OS types the connector serves: every one asked for, or with virtual-node-kind v2 all but Linux (which v2 serves). */
export function connectorOsTypes(inputs: Pick<Inputs, 'osTypes' | 'virtualNodeKind'>): OsType[] {
  return inputs.virtualNodeKind === 'v2' ? inputs.osTypes.filter(o => o !== 'Linux') : inputs.osTypes
}

/** What a connector removal narrows to: the OS types given, less v2's Linux; none given: every OS. */
export function connectorRemovalOs(inputs: Pick<Inputs, 'osTypesGiven' | 'osTypes' | 'virtualNodeKind'>): OsType[] | undefined {
  return inputs.osTypesGiven ? connectorOsTypes(inputs) : undefined
}

/** What `command: remove` may take: the connector by name; os-type, location and aci-resource-group only narrow it when given. */
export function removeScope(inputs: Inputs): RemovalScope {
  return {
    connector: name => name === inputs.connectorName,
    os: connectorRemovalOs(inputs),
    location: inputs.location,
    aciResourceGroup: inputs.aciResourceGroup
  }
}

function describeScope(inputs: Inputs): string {
  const os = connectorRemovalOs(inputs)
  const narrowed = [
    os ? `os-type ${os.join(', ')}` : undefined,
    inputs.location ? `location ${inputs.location}` : undefined,
    inputs.aciResourceGroup ? `aci-resource-group ${inputs.aciResourceGroup}` : undefined
  ].filter(Boolean)
  return `connector "${inputs.connectorName}"${narrowed.length ? ` (only ${narrowed.join(', ')})` : ' (any OS, any region, any ACI resource group)'}`
}

/** A finished connector teardown as the kind's result: the container groups left unproven are warned about. */
function teardownResult(ctx: KindContext, targets: RemovalTarget[], result: RemovalResult, rerun: string): KindTeardown {
  logItems(result.items)
  const left = result.items.filter(i => i.outcome === 'left')
  if (left.length > 0)
    core.warning(
      `${left.length} container group(s) are tagged as a removed virtual node's would be, but cannot be proven this cluster's, so they were left: ` +
        `${left.map(i => i.name).join(', ')}. If they are this cluster's, delete each with \`az container delete -g <resource-group> -n <name> --yes\`.`
    )
  const error = teardownError(result, targets, ctx.inputs.verifyAci, rerun)
  return { items: result.items, removals: result.removals, problems: error ? [error] : [] }
}

/** The connector releases `connectors` name (one per OS), as a kind of virtual node. */
export function connectorKind(ctx: KindContext, connectors: ConnectorNames[]): VirtualNodeKind {
  const settings = settingsFor(ctx)
  let chartRef = ctx.inputs.chartUrl
  let diagnosis: DiagnosisContext = diagnosisContext(settings)
  return {
    name: 'connector',

    async checkPrerequisites() {
      ctx.report.chart = ctx.inputs.chartUrl
      const insecure = insecureChartWarning(ctx.inputs.chartUrl, ctx.inputs.chartSha256)
      if (insecure) core.warning(insecure)
      // Checked before anything is installed; helm then gets the verified file.
      chartRef = await verifiedChart(ctx.inputs.chartUrl, ctx.inputs.chartSha256, ctx.helmCtx.workDir)
      // A connector that may not create container groups turns Ready anyway, and every pod on it then stays Pending.
      const access = await ctx.phase('Connector access', () =>
        ensureConnectorAccess(ctx.arm, ctx.aciResourceGroup, connectorIdentityRef(ctx, settings), ctx.inputs.grantConnectorRole, clusterLabel(ctx.inputs))
      )
      if (access.verdict === 'granted') ctx.report.roles = [...(ctx.report.roles ?? []), access.role]
      diagnosis = { ...diagnosis, roleJustGranted: access.verdict === 'granted' }
      // Every namespace before changing anything, so a conflict leaves nothing half done.
      await settleAll(connectors.map(c => checkNamespaceFree(ctx.kube, c, ctx.deadline.left())))
    },

    async install() {
      const { helmCtx, post } = ctx
      await ctx.phase(`Install connector (${connectors.map(c => c.os).join(', ')})`, async () => {
        const [records, chart] = await settleAll([
          settleAll(connectors.map(c => readRelease(ctx.kube, c.release, RELEASE_NAMESPACE))),
          chartIdentity(ctx.inputs.chartUrl)
        ])
        const statuses = records.map(r => r?.status)
        // The post step's cleanup removes what this run created, never a connector that was
        // already there (a shared cluster's, or an earlier job's).
        post.connectors = connectors.filter((_c, i) => statuses[i] === undefined || REINSTALLED_STATUSES.includes(statuses[i] ?? ''))
        ctx.savePost()
        await settleAll(
          connectors.map(async (c, i) => {
            await recoverPendingRelease(ctx.kube, helmCtx, c, statuses[i], ctx.deadline.left(), ctx.aciResourceGroup)
            const values = renderValues(c, settings)
            // A re-run that would change nothing skips helm, unless the connector is unhealthy: an
            // upgrade rolls it (the chart renews its certificate, and so its pod, on every upgrade).
            const reason = upgradeReason(records[i], chart, values) ?? (await connectorRolloutReason(ctx.kube, c))
            const leftByCleanup = ctx.inputs.cleanup && !post.connectors.includes(c) ? ' (cleanup leaves it: this run did not create it)' : ''
            if (!reason) {
              core.info(
                `Release ${c.release} is up to date (chart ${chart?.name ?? ''} ${chart?.version ?? ''}, same values): no helm upgrade${leftByCleanup}.`
              )
              return
            }
            // A pending release got its own warning from recoverPendingRelease.
            if (statuses[i] !== undefined && !statuses[i]?.startsWith('pending-')) {
              core.info(`Release ${c.release} is already there (${statuses[i]}); upgrading it in place: ${reason}${leftByCleanup}.`)
            }
            await installConnector(helmCtx, c, chartRef, values)
          })
        )
      })
    },

    async waitReady() {
      const settled = await Promise.allSettled(connectors.map(c => waitForVirtualNode(ctx.kube, c, ctx.deadline.left(), diagnosis)))
      const ready = settled.flatMap(s => (s.status === 'fulfilled' ? [{ ...s.value, kind: 'connector' as const }] : []))
      const failures = settled.flatMap(s => (s.status === 'rejected' ? [errorText(s.reason)] : []))
      if (failures.length > 0) throw new NodesNotReadyError(failures.join('\n\n'), ready)
      return ready
    },

    samples: () => connectors.map(c => ({ os: c.os, node: c.node })),
    // A refusal from ACI (a 403 when the connector's role allows reading but not creating) says what to grant.
    sampleHint: message => connectorLogHint(message, diagnosis),
    placement: () => Object.fromEntries(connectors.map(c => [c.os.toLowerCase(), { node: c.node, kind: 'connector', ...placementFor(c.os, c.node) }])),

    async remove() {
      const { inputs } = ctx
      const targets = await ctx.phase('Find what is installed', async () => {
        const found = await findRemovalTargets(ctx.kube, removeScope(inputs), ctx.cluster.nodeResourceGroup)
        core.info(`Looked for ${describeScope(inputs)} in the cluster's Helm releases and virtual nodes: found ${found.length}.`)
        for (const x of found) core.info(`• ${x.names.node}: ${x.reason}`)
        if (found.length === 0)
          core.info(
            `Nothing to remove: no Helm release of connector "${inputs.connectorName}" (today's chart or the old CLI's) and no virtual node of it is in the cluster.`
          )
        return found
      })
      const result = await ctx.phase(
        `${inputs.dryRun ? 'Dry run: what a remove would take' : 'Remove'} (${targets.map(x => x.names.node).join(', ') || 'nothing found'})`,
        () =>
          removeTargets(ctx.kube, ctx.helmCtx, targets, {
            timeoutMs: ctx.deadline.left(),
            dryRun: inputs.dryRun,
            nodeResourceGroup: ctx.cluster.nodeResourceGroup,
            arm: ctx.arm
          })
      )
      result.items.push(...(await grantedRoleItems(ctx.arm, distinctResourceGroups(targets.map(x => x.aciResourceGroup)), clusterLabel(inputs))))
      return { ...teardownResult(ctx, targets, result, 'Re-run the removal: it finds what is left from the cluster.'), found: targets.map(x => x.names) }
    },

    async sweep() {
      const { inputs } = ctx
      const opts = {
        glob: inputs.connectorName,
        olderThanMs: inputs.olderThanMs,
        dryRun: inputs.dryRun,
        timeoutMs: ctx.deadline.left(),
        nodeResourceGroup: ctx.cluster.nodeResourceGroup,
        aciResourceGroup: inputs.aciResourceGroup
      }
      const { plan, result } = await ctx.phase(`Sweep${inputs.dryRun ? ' (dry run)' : ''}`, async () => {
        const planned = await planSweep(ctx.kube, opts)
        const releases = planned.targets.filter(x => x.release).length
        core.info(
          `Found ${releases} connector release(s) matching "${inputs.connectorName}"${inputs.olderThanMs ? ` first deployed over ${Math.round(inputs.olderThanMs / 60_000)} min ago` : ''}, ` +
            `${planned.targets.length - releases} dead virtual node(s); looking for container groups of gone nodes in ${planned.resourceGroups.join(', ')}${inputs.dryRun ? ' (dry run: nothing is changed)' : ''}`
        )
        for (const x of planned.targets) core.info(`• ${x.names.node}: ${x.reason}`)
        return { plan: planned, result: await runSweep(ctx.kube, ctx.arm, ctx.helmCtx, planned, opts) }
      })
      return teardownResult(ctx, plan.targets, result, 'Re-run the sweep: it finds them again.')
    }
  }
}
