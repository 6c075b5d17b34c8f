// The main step's work once its inputs are valid (main.ts loads this only then): get tools,
// sign in, read the cluster, then install, remove or sweep the connector(s), wait for the
// virtual nodes, deploy samples, report.
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import { regionProblem } from '../virtual-nodes/connector/regions.js'
import type { Inputs } from './inputs.js'
import { currentTarget, findAzureCli, installHelm, installKubectl, DEFAULT_HELM_VERSION, DEFAULT_KUBECTL_VERSION } from '../tools/tools.js'
import { signIn, type AzureSession } from '../azure/azure-login.js'
import { ArmClient, getArmAccess } from '../azure/arm.js'
import { clusterLabel, ensureConnectorAccess, tokenObjectId, type ConnectorIdentityRef } from '../virtual-nodes/connector/connector-access.js'
import { ensureProviderRegistered } from '../azure/provider-registration.js'
import { adminCredentialProblem, ClusterNotFoundError, getCluster, type ClusterInfo } from '../kubernetes/cluster.js'
import { INSTALL_PERMISSION, openClusterAccess, REMOVE_PERMISSION, writePrivateFile } from '../kubernetes/cluster-access.js'
import { Deadline, settleAll } from '../util/async.js'
import { connectorNameProblem, connectorNames, type ConnectorNames } from '../virtual-nodes/naming.js'
import { clusterUid, type Kube } from '../kubernetes/kube.js'
import {
  checkNamespaceFree,
  connectorRolloutReason,
  installConnector,
  recoverPendingRelease,
  REINSTALLED_STATUSES,
  RELEASE_NAMESPACE,
  renderValues,
  type ConnectorSettings,
  type HelmContext
} from '../virtual-nodes/connector/connector.js'
import { chartIdentity, readRelease, upgradeReason } from '../kubernetes/helm-releases.js'
import { connectorLogHint, waitForVirtualNode, type DiagnosisContext } from '../virtual-nodes/readiness.js'
import { applySample, ensureSamplesNamespace, placementFor, waitForSample } from '../virtual-nodes/samples.js'
import { PhaseClock, writeSummary, type RunReport } from './summary.js'
import { reportClusterGone, runRemove, runSweepCommand, type TeardownContext } from './teardown.js'
import { runnerTemp, savePostState, type PostState } from './state.js'
import { connectorOutputs, publishOutputs } from './outputs.js'
import { errorText } from '../util/async.js'
import { whenCancelled } from '../tools/process.js'
import { insecureChartWarning, verifiedChart } from '../virtual-nodes/connector/chart.js'
import { kubeloginCacheNote, laterStepAudienceProblem } from '../kubernetes/kubelogin.js'
import { checkV2, installV2, v2NodeNames, v2Placement, waitForV2Nodes, V2_EXTENSION_NAME } from '../virtual-nodes/v2/v2.js'
import type { NodeStatus } from '../virtual-nodes/readiness.js'
import type { OsType } from '../virtual-nodes/naming.js'

/** The post step's copy of the kubeconfig, in the action's work dir. */
const CLEANUP_KUBECONFIG = 'cleanup.kubeconfig'

/** The az the runner's session needs; asked for only when that is the sign-in. */
function azOrFail(az: string | undefined): () => Promise<string> {
  return async () => {
    if (!az) throw new Error("The runner's az session was asked for, but no az was found.")
    return az
  }
}

interface Prepared {
  inputs: Inputs
  session: AzureSession
  /** Object ID of the signed-in identity (from its ARM token). */
  signedInObjectId?: string
  cluster: ClusterInfo
  arm: ArmClient
  /** helm with the kubeconfig it runs with, and the work dir for its values file. */
  helmCtx: HelmContext
  kube: Kube
  location: string
  connectors: ConnectorNames[]
  aciResourceGroup: string
  /** wait-timeout, counted from the step's start: every wait gets what is left. */
  deadline: Deadline
  /** UID of the cluster's kube-system namespace: what v2 container groups are tagged with. */
  clusterUid: string
  /** Virtual Nodes v2 serves Linux on this install: its prerequisites passed; this makes its ACI subnet. */
  v2?: { makeSubnet: () => Promise<void> }
}

/** The OS types the connector serves: every one, or with virtual-node-kind v2 all but Linux (which v2 serves). */
export function connectorOsTypes(inputs: Pick<Inputs, 'osTypes' | 'virtualNodeKind'>): OsType[] {
  return inputs.virtualNodeKind === 'v2' ? inputs.osTypes.filter(o => o !== 'Linux') : inputs.osTypes
}

/** Whether Virtual Nodes v2 is installed (or, for a teardown, looked for): kind v2 with Linux asked for. */
export function wantsV2(inputs: Pick<Inputs, 'osTypes' | 'osTypesGiven' | 'virtualNodeKind' | 'command'>): boolean {
  return inputs.virtualNodeKind === 'v2' && (inputs.osTypes.includes('Linux') || (inputs.command !== 'install' && !inputs.osTypesGiven))
}

/** Runs the command of valid `inputs`; reports failures itself (step failed, summary). */
export async function runPipeline(inputs: Inputs): Promise<void> {
  const clock = new PhaseClock()
  const deadline = Deadline.after(inputs.waitTimeoutMs)
  const report: RunReport = {
    command: inputs.command,
    cluster: `${inputs.resourceGroup}/${inputs.clusterName}`,
    nodes: [],
    samples: [],
    removals: [],
    phases: clock.phases
  }
  const post: PostState = { connectors: [], samples: [] }
  const workDir = await fs.mkdtemp(path.join(runnerTemp(), 'aci-connector-'))
  post.workDir = workDir
  savePostState(post)
  let closeAccess: (() => void) | undefined
  // A cancel stops the tools and exits; first say what it stopped and what is left, in the log and the summary.
  const unhook = whenCancelled(async () => {
    const during = [...clock.running].join(', ') || 'start-up'
    report.error = `The job was cancelled during: ${during}. The tools this step was running were stopped.`
    report.leftBehind = leftBehind(inputs, post, report)
    core.error(report.leftBehind ? `${report.error}\n${report.leftBehind}` : report.error)
    await writeSummary(report)
  })
  try {
    const prepared = await prepare(inputs, deadline, clock, report, post, c => (closeAccess = c))
    if (!prepared) return
    const teardown: TeardownContext = { ...prepared, nodeResourceGroup: prepared.cluster.nodeResourceGroup }
    if (inputs.command === 'install') await install(prepared, clock, report, post)
    else if (inputs.command === 'sweep') await runSweepCommand(teardown, clock, report)
    else await runRemove(teardown, clock, report)
  } catch (err) {
    report.error = errorText(err)
    report.leftBehind = leftBehind(inputs, post, report)
    core.setFailed(report.leftBehind ? `${report.error}\n${report.leftBehind}` : report.error)
  } finally {
    unhook()
    closeAccess?.()
    await writeSummary(report).catch(err => core.warning(`Could not write the job summary: ${errorText(err)}`))
  }
}

/** What a failed run leaves in the cluster, and how to finish or undo it. */
function leftBehind(inputs: Inputs, post: PostState, report: RunReport): string | undefined {
  if (inputs.command === 'sweep') {
    return report.teardown?.some(i => i.outcome === 'failed')
      ? 'The sweep removed what it could; the items marked failed are still there. Re-run the sweep: it finds them again.'
      : undefined
  }
  if (inputs.command === 'remove') {
    // Only a failure during the removal itself leaves the cluster half-done.
    if (!report.removalStarted || inputs.dryRun) return undefined
    return 'The removal stopped part-way; what it already removed stays removed. Re-run the action with command: remove: it finds what is left from the cluster and picks up where this run stopped.'
  }
  const v2 = post.v2
    ? `Virtual Nodes v2 extension ${post.v2.extension}${post.v2.created ? ' (created by this run)' : ''} with node(s) ${post.v2.nodes.join(', ')}`
    : undefined
  if (post.connectors.length === 0 && !v2) return undefined
  const samples = post.samples.length > 0 ? `; sample deployment(s) in namespace ${inputs.samplesNamespace}` : ''
  return (
    `Installed so far: ${[...post.connectors.map(c => `release ${c.release} (node ${c.node})`), ...(v2 ? [v2] : [])].join(', ')}${samples}. ` +
    `Re-run this step to retry (it converges), or run the action with command: remove${inputs.cleanup ? '; cleanup: true removes it in the post step of this job' : ' (or set cleanup: true) to take it away'}.`
  )
}

/** Prepared for the command, or undefined when there is nothing more to do (a remove on a cluster that is gone). */
async function prepare(
  inputs: Inputs,
  deadline: Deadline,
  clock: PhaseClock,
  report: RunReport,
  post: PostState,
  keepClose: (close: () => void) => void
): Promise<Prepared | undefined> {
  // Only the runner's own session needs az: a service principal signs in over HTTPS.
  const needsAz = inputs.signIn.kind === 'ambient'
  const tools = await clock.run(`Tools: ${needsAz ? 'az, ' : ''}kubectl, helm`, async () => {
    const [az, kubectl, helm] = await settleAll([
      needsAz ? findAzureCli(inputs.azureCliVersion) : Promise.resolve(undefined),
      inputs.command === 'install'
        ? installKubectl({ version: inputs.kubectlVersion || DEFAULT_KUBECTL_VERSION, baseUrl: inputs.kubectlBaseUrl })
        : Promise.resolve(undefined),
      installHelm({ version: inputs.helmVersion || DEFAULT_HELM_VERSION, baseUrl: inputs.helmBaseUrl })
    ])
    publishOutputs({ 'az-path': az?.path, 'kubectl-path': kubectl, 'helm-path': helm })
    core.info(`${az ? `az${az.version ? ` ${az.version}` : ''}: ${az.path}\n` : ''}kubectl: ${kubectl ?? '(not needed to remove)'}\nhelm: ${helm}`)
    return { az: az?.path, helm }
  })
  post.helm = tools.helm
  post.az = tools.az

  const { session, arm, signedInObjectId } = await clock.run('Azure sign-in', async () => {
    const signedIn = await signIn(inputs.signIn, inputs.environment, azOrFail(tools.az), inputs.subscriptionId)
    const s = signedIn.session
    const access = await getArmAccess(s, signedIn.armToken, inputs.subscriptionId)
    core.info(`Signed in as ${s.description}; subscription ${access.subscriptionId}, cloud ${access.cloudName} (${access.endpoint})`)
    if (inputs.signIn.kind === 'ambient' && access.cloudName.toLowerCase() !== inputs.environment.toLowerCase()) {
      // The action keeps a session it did not create as it is; it never switches its cloud.
      core.warning(
        `environment is ${inputs.environment}, but the runner's az session is in cloud ${access.cloudName}; the session's cloud is used. Sign in to ${inputs.environment} in the earlier step, or pass credentials to this action.`
      )
    }
    post.subscriptionId = access.subscriptionId
    // A Retry-After that would run past wait-timeout fails at once instead of waiting for nothing.
    return { session: s, arm: new ArmClient(access, { deadline: deadline.at }), signedInObjectId: tokenObjectId(signedIn.armToken.token) }
  })
  report.signedInAs = session.description

  const cluster = await clock.run('Cluster access', async () => {
    const [info] = await settleAll([
      getCluster(arm, inputs.resourceGroup, inputs.clusterName).catch(async (err: unknown) => {
        if (inputs.command === 'remove' && err instanceof ClusterNotFoundError) return reportClusterGone(arm, inputs, report, err)
        throw err
      }),
      // Only an install needs ACI registered; a teardown must work even where it never was.
      inputs.command === 'install' ? ensureProviderRegistered(arm) : Promise.resolve()
    ])
    if (!info) return undefined
    core.info(
      `Cluster ${info.name}: Kubernetes ${info.kubernetesVersion} in ${info.location}, API server ${info.fqdn}, node resource group ${info.nodeResourceGroup}, RBAC ${info.enableRBAC}`
    )
    if (info.virtualNodeAddon) core.info('The managed virtual-node add-on is also enabled; its node (virtual-node-aci-linux) is separate and left alone.')
    return info
  })
  if (!cluster) return undefined

  const adminProblem = adminCredentialProblem(cluster, inputs.admin)
  if (adminProblem) throw new Error(adminProblem)
  // Before anything changes: an install exists to hand later steps a working cluster; a teardown only warns.
  const audienceProblem = laterStepAudienceProblem(inputs.signIn, Boolean(cluster.entra) && !inputs.admin)
  if (audienceProblem && inputs.command === 'install') throw new Error(`${audienceProblem} Nothing was changed.`)
  if (audienceProblem) core.warning(audienceProblem)
  const location = inputs.location ?? cluster.location
  // Only an install starts a connector; a removal must work for any release name.
  const regionIssue = inputs.command === 'install' && inputs.location === undefined ? regionProblem(location) : undefined
  if (regionIssue) throw new Error(`The cluster is in ${location}, but ${regionIssue}.`)
  // Only an install makes names; a remove and a sweep find theirs in the cluster.
  const nameProblem = inputs.command === 'install' ? connectorNameProblem(inputs.connectorName, location) : undefined
  if (nameProblem) throw new Error(`Invalid input: connector-name: "${inputs.connectorName}" is not valid in ${location}; ${nameProblem}.`)
  const connectors = inputs.command === 'install' ? connectorOsTypes(inputs).map(o => connectorNames(inputs.connectorName, o, location)) : []
  // Before anything changes: every v2 prerequisite, each failure naming its fix.
  const v2 =
    inputs.command === 'install' && wantsV2(inputs) ? { makeSubnet: await clock.run('Virtual Nodes v2 prerequisites', () => checkV2(arm, cluster)) } : undefined

  const access = await clock.run('Cluster credentials', async () => {
    const a = await openClusterAccess({
      arm,
      cluster,
      admin: inputs.admin,
      signIn: inputs.signIn,
      session,
      workDir: post.workDir ?? runnerTemp(),
      runnerTemp: runnerTemp(),
      kubelogin: { version: inputs.kubeloginVersion, baseUrl: inputs.kubeloginBaseUrl },
      need: inputs.command === 'install' ? INSTALL_PERMISSION : REMOVE_PERMISSION,
      signedInAs: `The identity the action signed in as (${session.description})`
    })
    keepClose(a.close)
    return a
  })
  post.kubeconfig = access.outputKubeconfig
  post.entra = Boolean(cluster.entra) && !inputs.admin
  const cacheNote = post.entra ? kubeloginCacheNote(currentTarget().platform) : undefined
  if (cacheNote) {
    core.info(cacheNote)
    report.notes = [...(report.notes ?? []), cacheNote]
  }
  post.aciResourceGroup = inputs.aciResourceGroup ?? cluster.nodeResourceGroup
  post.nodeResourceGroup = cluster.nodeResourceGroup
  if (inputs.command === 'install') {
    // The post step's own copy, and the cluster it belongs to: a later step may point the
    // output kubeconfig at another cluster (kind, use-context) or delete it.
    post.cleanupKubeconfig = path.join(post.workDir ?? runnerTemp(), CLEANUP_KUBECONFIG)
    await writePrivateFile(post.cleanupKubeconfig, access.kubeconfigText)
  }
  post.clusterUid = await clusterUid(access.kube)
  savePostState(post)
  publishOutputs({
    'kubeconfig-path': access.outputKubeconfig,
    'kubelogin-path': access.kubelogin,
    ...connectorOutputs(connectors, inputs.command === 'install')
  })
  return {
    inputs,
    session,
    signedInObjectId,
    cluster,
    arm,
    helmCtx: { helm: tools.helm, kubeconfig: access.helmKubeconfig, workDir: post.workDir ?? runnerTemp() },
    kube: access.kube,
    location,
    connectors,
    aciResourceGroup: post.aciResourceGroup,
    deadline,
    clusterUid: post.clusterUid,
    v2
  }
}

function settingsFor(p: Prepared): ConnectorSettings {
  const managed = p.inputs.connectorIdentity === 'managed'
  return {
    tenantId: p.arm.access.tenantId,
    subscriptionId: p.arm.access.subscriptionId,
    aciResourceGroup: p.aciResourceGroup,
    location: p.location,
    masterUri: `https://${p.cluster.fqdn}`,
    enableRBAC: p.cluster.enableRBAC,
    imageTag: p.inputs.imageTag,
    clientId: managed ? undefined : p.inputs.connectorClientId,
    clientSecret: managed ? undefined : p.inputs.connectorClientSecret,
    managedIdentityClientId: managed ? p.cluster.kubeletIdentityClientId : undefined
  }
}

/** Who the connector will run as, for the access check. */
function connectorIdentityRef(p: Prepared, s: ConnectorSettings): ConnectorIdentityRef {
  if (s.managedIdentityClientId) {
    return {
      description: `the cluster's kubelet identity ${s.managedIdentityClientId}`,
      assignee: s.managedIdentityClientId,
      objectId: p.cluster.kubeletIdentityObjectId,
      isSignedIn: false
    }
  }
  const signedIn = p.inputs.signIn.kind !== 'ambient' && s.clientId === p.inputs.signIn.clientId
  return {
    description: `service principal ${s.clientId ?? "(from the nodes' azure.json)"}`,
    assignee: s.clientId ?? '<client-id>',
    objectId: signedIn ? p.signedInObjectId : undefined,
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

async function install(p: Prepared, clock: PhaseClock, report: RunReport, post: PostState): Promise<void> {
  const v2Nodes = p.v2 ? v2NodeNames(V2_EXTENSION_NAME, p.inputs.v2NodeCount) : []
  if (p.v2) {
    const v2 = p.v2
    await clock.run('Install Virtual Nodes v2', async () => {
      const installed = await installV2(
        {
          arm: p.arm,
          kube: p.kube,
          cluster: p.cluster,
          nodeCount: p.inputs.v2NodeCount,
          grantRole: p.inputs.grantConnectorRole,
          clusterLabel: clusterLabel(p.inputs),
          deadline: p.deadline.at
        },
        v2.makeSubnet,
        created => {
          // Recorded before the PUT: cleanup removes an extension this run created, never one that was there.
          post.v2 = { extension: V2_EXTENSION_NAME, created, nodes: v2Nodes }
          savePostState(post)
        }
      )
      if (installed.role) report.roles = [...(report.roles ?? []), installed.role]
    })
  }
  const ctx = p.connectors.length > 0 ? await installConnectors(p, clock, report, post) : undefined

  report.nodes = await clock.run('Wait for virtual nodes', async () => {
    const waits: Array<Promise<NodeStatus[]>> = [
      ...p.connectors.map(c => waitForVirtualNode(p.kube, c, p.deadline.left(), ctx!).then(n => [{ ...n, kind: 'connector' as const }])),
      ...(p.v2 ? [waitForV2Nodes(p.kube, v2Nodes, p.deadline.left())] : [])
    ]
    const settled = await Promise.allSettled(waits)
    const failures = settled.flatMap(s => (s.status === 'rejected' ? [errorText(s.reason)] : []))
    const ready = settled.flatMap(s => (s.status === 'fulfilled' ? s.value : []))
    for (const n of ready) core.info(`${n.node} (${n.kind === 'v2' ? 'Virtual Nodes v2' : 'ACI connector'}) is Ready after ${(n.waitedMs / 1000).toFixed(1)} s`)
    if (failures.length > 0) {
      report.nodes = ready
      throw new Error(failures.join('\n\n'))
    }
    // Every node is Ready: what a later step's own pods need to run on each.
    const placement: Record<string, unknown> = Object.fromEntries(p.connectors.map(c => [c.os.toLowerCase(), { node: c.node, ...placementFor(c.os, c.node) }]))
    if (p.v2) placement.linux = { node: v2Nodes[0], nodes: v2Nodes, kind: 'v2', ...v2Placement(p.clusterUid) }
    publishOutputs({
      placement: JSON.stringify(placement),
      nodes: JSON.stringify(ready.map(n => ({ node: n.node, os: n.os, kind: n.kind }))),
      ...(p.v2 ? { 'linux-node-name': v2Nodes[0], 'node-names': JSON.stringify([...p.connectors.map(c => c.node), ...v2Nodes]) } : {})
    })
    return ready
  })

  if (p.inputs.deploySamples) {
    const kinds: Array<{ os: OsType; node: string; v2: boolean }> = [
      ...p.connectors.map(c => ({ os: c.os, node: c.node, v2: false })),
      ...(p.v2 ? [{ os: 'Linux' as const, node: v2Nodes[0] ?? '', v2: true }] : [])
    ]
    report.samples = await clock.run('Samples', async () => {
      post.samples = kinds.map(k => ({ os: k.os, namespace: p.inputs.samplesNamespace }))
      savePostState(post)
      await ensureSamplesNamespace(p.kube, p.inputs.samplesNamespace)
      await settleAll(kinds.map(k => applySample(p.kube, k.os, p.inputs.samplesNamespace, k.node, k.v2 ? v2Placement(p.clusterUid) : undefined)))
      // A refusal from ACI (a 403 when the connector's role allows reading but not creating) says what to grant.
      const withHint = (err: unknown): never => {
        const hint = ctx ? connectorLogHint(errorText(err), ctx) : undefined
        throw hint ? new Error(`${errorText(err)}\n${hint}`) : err
      }
      return settleAll(kinds.map(k => waitForSample(p.kube, k.os, p.inputs.samplesNamespace, p.deadline.left()).catch(withHint)))
    })
    const ips: Record<string, string[]> = {}
    // The connector reports no pod IP for Windows container groups (azure-aci v1.6.4
    // pkg/provider/containergroup_to_pod.go), so that list stays empty.
    for (const s of report.samples) ips[s.os.toLowerCase()] = s.pods.map(x => x.ip).filter(Boolean)
    publishOutputs({ 'sample-pod-ips': JSON.stringify(ips) })
  }
}

/** The connector's part of an install: its identity's access, then each release (helm). */
async function installConnectors(p: Prepared, clock: PhaseClock, report: RunReport, post: PostState): Promise<DiagnosisContext> {
  const settings = settingsFor(p)
  const { helmCtx } = p
  report.chart = p.inputs.chartUrl
  const insecure = insecureChartWarning(p.inputs.chartUrl, p.inputs.chartSha256)
  if (insecure) core.warning(insecure)
  // Checked before anything is installed; helm then gets the verified file.
  const chartRef = await verifiedChart(p.inputs.chartUrl, p.inputs.chartSha256, helmCtx.workDir)

  // Before anything is installed: a connector that may not create container groups turns
  // Ready anyway, and every pod on it then stays Pending.
  const access = await clock.run('Connector access', () =>
    ensureConnectorAccess(p.arm, p.aciResourceGroup, connectorIdentityRef(p, settings), p.inputs.grantConnectorRole, clusterLabel(p.inputs))
  )
  if (access.verdict === 'granted') report.roles = [...(report.roles ?? []), access.role]
  const ctx: DiagnosisContext = { ...diagnosisContext(settings), roleJustGranted: access.verdict === 'granted' }

  await clock.run(`Install connector (${p.connectors.map(c => c.os).join(', ')})`, async () => {
    // Check every namespace before changing anything, so a conflict leaves nothing half done.
    await settleAll(p.connectors.map(c => checkNamespaceFree(p.kube, c, p.deadline.left())))
    const [records, chart] = await settleAll([
      settleAll(p.connectors.map(c => readRelease(p.kube, c.release, RELEASE_NAMESPACE))),
      chartIdentity(p.inputs.chartUrl)
    ])
    const statuses = records.map(r => r?.status)
    // The post step's cleanup removes what this run created, never a connector that was
    // already there (a shared cluster's, or an earlier job's).
    post.connectors = p.connectors.filter((_c, i) => statuses[i] === undefined || REINSTALLED_STATUSES.includes(statuses[i] ?? ''))
    savePostState(post)
    await settleAll(
      p.connectors.map(async (c, i) => {
        await recoverPendingRelease(p.kube, helmCtx, c, statuses[i], p.deadline.left(), p.aciResourceGroup)
        const values = renderValues(c, settings)
        // A re-run that would change nothing skips helm (the connector must still be there).
        // A re-run that would change nothing skips helm, unless the connector is unhealthy: an
        // upgrade rolls it (the chart renews its certificate, and so its pod, on every upgrade).
        const reason = upgradeReason(records[i], chart, values) ?? (await connectorRolloutReason(p.kube, c))
        const leftByCleanup = p.inputs.cleanup && !post.connectors.includes(c) ? ' (cleanup leaves it: this run did not create it)' : ''
        if (!reason) {
          core.info(`Release ${c.release} is up to date (chart ${chart?.name ?? ''} ${chart?.version ?? ''}, same values): no helm upgrade${leftByCleanup}.`)
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

  return ctx
}
