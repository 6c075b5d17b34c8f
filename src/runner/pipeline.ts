// The main step's work once its inputs are valid (main.ts loads this only then): get tools,
// sign in, read the cluster, then have each kind of virtual node (the ACI connector, Virtual
// Nodes v2; virtual-nodes/kind.ts) check its prerequisites, install, and be waited for, deploy
// samples, report; or remove or sweep what each kind finds.
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import { regionProblem } from '../virtual-nodes/connector/regions.js'
import type { Inputs } from './inputs.js'
import { currentTarget, findAzureCli, installHelm, installKubectl, DEFAULT_HELM_VERSION, DEFAULT_KUBECTL_VERSION } from '../tools/tools.js'
import { signIn, type AzureSession } from '../azure/azure-login.js'
import { ArmClient, getArmAccess } from '../azure/arm.js'
import { tokenObjectId } from '../virtual-nodes/connector/connector-access.js'
import { ensureProviderRegistered } from '../azure/provider-registration.js'
import { adminCredentialProblem, ClusterNotFoundError, getCluster, type ClusterInfo } from '../kubernetes/cluster.js'
import { INSTALL_PERMISSION, openClusterAccess, REMOVE_PERMISSION, writePrivateFile } from '../kubernetes/cluster-access.js'
import { Deadline, errorText, settleAll } from '../util/async.js'
import { connectorNameProblem, connectorNames, type ConnectorNames } from '../virtual-nodes/naming.js'
import { clusterUid, type Kube } from '../kubernetes/kube.js'
import type { HelmContext } from '../virtual-nodes/connector/connector.js'
import { applySample, ensureSamplesNamespace, waitForSample } from '../virtual-nodes/samples.js'
import { PhaseClock, writeSummary, type RunReport } from './summary.js'
import { reportClusterGone, runTeardown } from './teardown.js'
import { runnerTemp, savePostState, type PostState } from './state.js'
import { connectorOutputs, publishOutputs } from './outputs.js'
import { whenCancelled } from '../tools/process.js'
import { kubeloginCacheNote, laterStepAudienceProblem } from '../kubernetes/kubelogin.js'
import { NodesNotReadyError, type KindContext, type VirtualNodeKind } from '../virtual-nodes/kind.js'
import { connectorKind, connectorOsTypes, connectorRemovalOs } from '../virtual-nodes/connector/kind.js'
import { v2Kind } from '../virtual-nodes/v2/kind.js'

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
    virtualNodeKind: inputs.virtualNodeKind,
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
    const ctx: KindContext = {
      ...prepared,
      report,
      post,
      phase: (name, work) => clock.run(name, work),
      savePost: () => savePostState(post)
    }
    const kinds = kindsFor(ctx, prepared.connectors)
    if (inputs.command === 'install') await install(kinds, ctx)
    else await runTeardown(kinds, ctx, inputs.command === 'sweep')
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
  const v2Part = post.v2
    ? `Virtual Nodes v2 extension ${post.v2.extension}${post.v2.created ? ' (created by this run)' : ''} with node(s) ${post.v2.nodes.join(', ')}`
    : undefined
  if (post.connectors.length === 0 && !v2Part) return undefined
  const samples = post.samples.length > 0 ? `; sample deployment(s) in namespace ${inputs.samplesNamespace}` : ''
  return (
    `Installed so far: ${[...post.connectors.map(c => `release ${c.release} (node ${c.node})`), ...(v2Part ? [v2Part] : [])].join(', ')}${samples}. ` +
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
    const [uid] = await settleAll([clusterUid(access.kube), writePrivateFile(post.cleanupKubeconfig, access.kubeconfigText)])
    post.clusterUid = uid
  } else if (wantsV2(inputs)) {
    // What v2's container groups are tagged with (v2.ts OWNER_TAG); a connector teardown needs none.
    post.clusterUid = await clusterUid(access.kube)
  }
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
    clusterUid: post.clusterUid ?? ''
  }
}

/** The kinds of virtual node an install or teardown works with: the connector for its OS types, Virtual Nodes v2 for Linux when asked for. */
export function kindsFor(ctx: KindContext, connectors: ConnectorNames[]): VirtualNodeKind[] {
  const { inputs } = ctx
  const v2 = wantsV2(inputs) ? [v2Kind(ctx)] : []
  if (inputs.command === 'install') return [...v2, ...(connectors.length > 0 ? [connectorKind(ctx, connectors)] : [])]
  // A teardown with v2 and only os-type Linux takes no connector.
  const connectorOs = connectorRemovalOs(inputs)
  return [...v2, ...(connectorOs?.length === 0 ? [] : [connectorKind(ctx, [])])]
}

/** Every kind's prerequisites first (nothing has changed yet), then each installs, then all are waited for, then the samples. */
async function install(kinds: VirtualNodeKind[], ctx: KindContext): Promise<void> {
  const { report, post, inputs } = ctx
  for (const k of kinds) await k.checkPrerequisites()
  for (const k of kinds) await k.install()

  report.nodes = await ctx.phase('Wait for virtual nodes', async () => {
    const settled = await Promise.allSettled(kinds.map(k => k.waitReady()))
    const failures = settled.flatMap(s => (s.status === 'rejected' ? [errorText(s.reason)] : []))
    const ready = settled.flatMap(s => (s.status === 'fulfilled' ? s.value : s.reason instanceof NodesNotReadyError ? s.reason.ready : []))
    for (const n of ready) core.info(`${n.node} is Ready after ${(n.waitedMs / 1000).toFixed(1)} s${n.kind === 'v2' ? ' (Virtual Nodes v2)' : ''}`)
    if (failures.length > 0) {
      report.nodes = ready
      throw new Error(failures.join('\n\n'))
    }
    // Every node is Ready: what a later step's own pods need to run on each.
    const linux = ready.find(n => n.os === 'Linux')?.node
    publishOutputs({
      placement: JSON.stringify(Object.assign({}, ...kinds.map(k => k.placement()))),
      nodes: JSON.stringify(ready.map(n => ({ node: n.node, os: n.os, kind: n.kind }))),
      'node-names': JSON.stringify(ready.map(n => n.node)),
      ...(linux ? { 'linux-node-name': linux } : {})
    })
    return ready
  })

  if (inputs.deploySamples) {
    const targets = kinds.flatMap(k => k.samples().map(t => ({ ...t, kind: k })))
    report.samples = await ctx.phase('Samples', async () => {
      post.samples = targets.map(t => ({ os: t.os, namespace: inputs.samplesNamespace }))
      ctx.savePost()
      await ensureSamplesNamespace(ctx.kube, inputs.samplesNamespace)
      await settleAll(targets.map(t => applySample(ctx.kube, t.os, inputs.samplesNamespace, t.node, t.placement, t.requests)))
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
}
