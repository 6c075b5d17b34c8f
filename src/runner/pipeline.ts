// The main step's work once its inputs are valid (main.ts loads this only then): get tools,
// sign in, read the cluster and reach it, then hand the command to the kinds of virtual node
// it uses (virtual-nodes/kinds.ts): an install (install.ts), or a remove or sweep (teardown.ts).
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import type { Inputs } from './inputs.js'
import { currentTarget, findAzureCli, installHelm, installKubectl, DEFAULT_HELM_VERSION, DEFAULT_KUBECTL_VERSION } from '../tools/install.js'
import { signIn, tokenObjectId, type AzureSession } from '../azure/azure-login.js'
import { ArmClient, getArmAccess } from '../azure/arm.js'
import { adminCredentialProblem, ClusterNotFoundError, getCluster, type ClusterInfo } from '../kubernetes/cluster.js'
import { INSTALL_PERMISSION, openClusterAccess, REMOVE_PERMISSION, writePrivateFile, type ClusterAccess } from '../kubernetes/cluster-access.js'
import { Deadline, errorText, settleAll } from '../util/async.js'
import { clusterUid } from '../kubernetes/kube.js'
import { PhaseClock, writeSummary, type RunReport } from './summary.js'
import { reportClusterGone, runTeardown } from './teardown.js'
import { kindRecords, runnerTemp, savePostState, type PostState } from './state.js'
import { publishOutputs } from './outputs.js'
import { whenCancelled } from '../tools/process.js'
import { kubeloginCacheNote, laterStepAudienceProblem } from '../kubernetes/kubelogin.js'
import type { KindContext, VirtualNodeKind } from '../virtual-nodes/kind.js'
import { createKinds, kindLabel, kindUses, type KindUse } from '../virtual-nodes/kinds.js'
import { runInstall, type StepContext } from './install.js'
import { chooseKinds } from '../virtual-nodes/choose.js'

/** The post step's copy of the kubeconfig, in the action's work dir. */
const CLEANUP_KUBECONFIG = 'cleanup.kubeconfig'

/** The az the runner's session needs; asked for only when that is the sign-in. */
function azOrFail(az: string | undefined): () => Promise<string> {
  return async () => {
    if (!az) throw new Error("The runner's az session was asked for, but no az was found.")
    return az
  }
}

/** What every command works with once it has signed in and reached the cluster. */
type Prepared = Omit<KindContext, 'report' | 'phase' | 'inputs'>

/** Runs the command of valid `inputs`; reports failures itself (step failed, summary). */
export async function runPipeline(inputs: Inputs): Promise<void> {
  const clock = new PhaseClock()
  const deadline = Deadline.after(inputs.waitTimeoutMs)
  let uses = kindUses(inputs)
  const report: RunReport = {
    command: inputs.command,
    kinds: uses.map(u => kindLabel(u.name)),
    cluster: `${inputs.resourceGroup}/${inputs.clusterName}`,
    nodes: [],
    samples: [],
    removals: [],
    phases: clock.phases
  }
  const post: PostState = { kinds: {}, samples: [] }
  post.workDir = await fs.mkdtemp(path.join(runnerTemp(), 'aci-connector-'))
  savePostState(post)
  let kinds: VirtualNodeKind[] = []
  let closeAccess: (() => void) | undefined
  // A cancel stops the tools and exits; first say what it stopped and what is left, in the log and the summary.
  const unhook = whenCancelled(async () => {
    const during = [...clock.running].join(', ') || 'start-up'
    report.error = `The job was cancelled during: ${during}. The tools this step was running were stopped.`
    report.leftBehind = leftBehind(inputs, kinds, post, report)
    core.error(report.leftBehind ? `${report.error}\n${report.leftBehind}` : report.error)
    await writeSummary(report)
  })
  try {
    const prepared = await prepare(inputs, deadline, clock, report, post, uses, c => (closeAccess = c))
    if (!prepared) return
    const ctx: StepContext = { ...prepared, inputs, report, phase: (name, work) => clock.run(name, work) }
    if (inputs.command === 'install' && inputs.virtualNodeKind === 'auto') uses = await chooseForAuto(ctx)
    kinds = await createKinds(uses, ctx, kindRecords(post))
    if (inputs.command === 'install') await runInstall(kinds, ctx, post)
    else await runTeardown(kinds, report, inputs.command, inputs.dryRun)
  } catch (err) {
    report.error = errorText(err)
    report.leftBehind = leftBehind(inputs, kinds, post, report)
    core.setFailed(report.leftBehind ? `${report.error}\n${report.leftBehind}` : report.error)
  } finally {
    unhook()
    closeAccess?.()
    await writeSummary(report).catch(err => core.warning(`Could not write the job summary: ${errorText(err)}`))
  }
}

/** virtual-node-kind auto: the kinds the cluster supports, said in the log and the summary. */
async function chooseForAuto(ctx: StepContext): Promise<KindUse[]> {
  const choice = await ctx.phase('Choose the kind of virtual node (auto)', () => chooseKinds(ctx, ctx.inputs.osTypes))
  ctx.report.kinds = choice.uses.map(u => kindLabel(u.name))
  ctx.report.notes = [...(ctx.report.notes ?? []), choice.reason]
  return choice.uses
}

/** What a failed run leaves in the cluster, and how to finish or undo it. */
function leftBehind(inputs: Inputs, kinds: VirtualNodeKind[], post: PostState, report: RunReport): string | undefined {
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
  const installed = kinds.flatMap(k => k.installedSoFar())
  if (installed.length === 0) return undefined
  const samples = post.samples.length > 0 ? `; sample deployment(s) in namespace ${inputs.samplesNamespace}` : ''
  return (
    `Installed so far: ${installed.join(', ')}${samples}. ` +
    `Re-run this step to retry (it converges), or run the action with command: remove${inputs.cleanup ? '; cleanup: true removes it in the post step of this job' : ' (or set cleanup: true) to take it away'}.`
  )
}

/** kubectl (only an install hands it on), helm, and az when the runner's own session is the sign-in. */
async function getTools(inputs: Inputs, clock: PhaseClock, post: PostState): Promise<{ az?: string; helm: string }> {
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
  return tools
}

interface SignedIn {
  session: AzureSession
  arm: ArmClient
  signedInObjectId?: string
}

async function signInToAzure(inputs: Inputs, az: string | undefined, deadline: Deadline, clock: PhaseClock, post: PostState): Promise<SignedIn> {
  return clock.run('Azure sign-in', async () => {
    const signedIn = await signIn(inputs.signIn, inputs.environment, azOrFail(az), inputs.subscriptionId)
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
}

/** The cluster from ARM, or undefined for a remove of a cluster that is gone (reported here). */
async function readCluster(inputs: Inputs, arm: ArmClient, clock: PhaseClock, report: RunReport, uses: KindUse[]): Promise<ClusterInfo | undefined> {
  return clock.run('Cluster access', async () => {
    const info = await getCluster(arm, inputs.resourceGroup, inputs.clusterName).catch(async (err: unknown) => {
      if (inputs.command === 'remove' && err instanceof ClusterNotFoundError)
        return reportClusterGone(
          arm,
          inputs,
          report,
          err,
          uses.map(u => u.name)
        )
      throw err
    })
    if (!info) return undefined
    core.info(
      `Cluster ${info.name}: Kubernetes ${info.kubernetesVersion} in ${info.location}, API server ${info.fqdn}, node resource group ${info.nodeResourceGroup}, RBAC ${info.enableRBAC}`
    )
    return info
  })
}

/** Problems with how the action reaches the cluster, found before anything changes: an install fails on them, a teardown warns. */
function checkClusterAccess(inputs: Inputs, cluster: ClusterInfo): void {
  const adminProblem = adminCredentialProblem(cluster, inputs.admin)
  if (adminProblem) throw new Error(adminProblem)
  // An install exists to hand later steps a working cluster; a teardown only warns.
  const audienceProblem = laterStepAudienceProblem(inputs.signIn, Boolean(cluster.entra) && !inputs.admin)
  if (audienceProblem && inputs.command === 'install') throw new Error(`${audienceProblem} Nothing was changed.`)
  if (audienceProblem) core.warning(audienceProblem)
}

async function reachCluster(inputs: Inputs, signedIn: SignedIn, cluster: ClusterInfo, clock: PhaseClock, post: PostState): Promise<ClusterAccess> {
  return clock.run('Cluster credentials', () =>
    openClusterAccess({
      arm: signedIn.arm,
      cluster,
      admin: inputs.admin,
      signIn: inputs.signIn,
      session: signedIn.session,
      workDir: post.workDir ?? runnerTemp(),
      runnerTemp: runnerTemp(),
      kubelogin: { version: inputs.kubeloginVersion, baseUrl: inputs.kubeloginBaseUrl },
      need: inputs.command === 'install' ? INSTALL_PERMISSION : REMOVE_PERMISSION,
      signedInAs: `The identity the action signed in as (${signedIn.session.description})`,
      // Saved at once: the post step deletes it even when the step fails right after.
      onKubeconfig: file => {
        post.kubeconfig = file
        savePostState(post)
      }
    })
  )
}

/** Prepared for the command, or undefined when there is nothing more to do (a remove on a cluster that is gone). */
async function prepare(
  inputs: Inputs,
  deadline: Deadline,
  clock: PhaseClock,
  report: RunReport,
  post: PostState,
  uses: KindUse[],
  keepClose: (close: () => void) => void
): Promise<Prepared | undefined> {
  const tools = await getTools(inputs, clock, post)
  const signedIn = await signInToAzure(inputs, tools.az, deadline, clock, post)
  report.signedInAs = signedIn.session.description
  const cluster = await readCluster(inputs, signedIn.arm, clock, report, uses)
  if (!cluster) return undefined
  checkClusterAccess(inputs, cluster)
  const access = await reachCluster(inputs, signedIn, cluster, clock, post)
  keepClose(access.close)
  post.kubeconfig = access.outputKubeconfig
  post.entra = Boolean(cluster.entra) && !inputs.admin
  const cacheNote = post.entra ? kubeloginCacheNote(currentTarget().platform) : undefined
  if (cacheNote) {
    core.info(cacheNote)
    report.notes = [...(report.notes ?? []), cacheNote]
  }
  post.cluster = cluster
  if (inputs.command === 'install') {
    // The post step's own copy, and the cluster it belongs to: a later step may point the
    // output kubeconfig at another cluster (kind, use-context) or delete it.
    post.cleanupKubeconfig = path.join(post.workDir ?? runnerTemp(), CLEANUP_KUBECONFIG)
    await writePrivateFile(post.cleanupKubeconfig, access.kubeconfigText)
  }
  // What names this cluster apart from any other (the post step checks it; v2's container groups are tagged with it).
  post.clusterUid = await clusterUid(access.kube)
  savePostState(post)
  publishOutputs({ 'kubeconfig-path': access.outputKubeconfig, 'kubelogin-path': access.kubelogin })
  return {
    arm: signedIn.arm,
    kube: access.kube,
    cluster,
    helm: { helm: tools.helm, kubeconfig: access.helmKubeconfig, workDir: post.workDir ?? runnerTemp() },
    deadline,
    clusterUid: post.clusterUid,
    signedInObjectId: signedIn.signedInObjectId
  }
}
