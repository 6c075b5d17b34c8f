// The post step (post-if: always()): with `cleanup: true` it removes what the main step
// installed, also after a failure or cancel: each kind of virtual node that recorded an
// install takes its own part (the seam's cleanup), working from the post step's own copy of
// the kubeconfig (checked to reach the same cluster). Then it deletes every file the action
// left under RUNNER_TEMP (the kubeconfig holds cluster credentials).
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import { parseInputs, readActionInput, type Inputs } from './inputs.js'
import { ArmClient, getArmAccess } from '../azure/arm.js'
import { signIn, type AzureSession } from '../azure/azure-login.js'
import { clusterToken, entraAccess } from '../kubernetes/cluster-access.js'
import type { RefreshingToken } from '../azure/refreshing-token.js'
import { clusterUid, kubeFromString, maskKubeconfig, type Kube } from '../kubernetes/kube.js'
import { kindRecords, loadPostState, type PostState } from './state.js'
import { maskInputSecrets } from './secrets.js'
import { PhaseClock, writeSummary, type RunReport } from './summary.js'
import { Deadline, errorText } from '../util/async.js'
import { createKinds, KIND_NAMES, kindLabel } from '../virtual-nodes/kinds.js'
import { runTeardown } from './teardown.js'

/** The kinds that recorded something this run installed (kinds.ts order). */
function recordedKinds(state: PostState): typeof KIND_NAMES {
  return KIND_NAMES.filter(k => state.kinds[k] !== undefined)
}

export async function runPost(): Promise<void> {
  const state = loadPostState()
  try {
    if (!state) return
    // The main step checked these inputs before it saved any state; the same parser reads them here.
    const inputs = parseInputs(readActionInput())
    maskInputSecrets(inputs)
    if (inputs.cleanup && inputs.command !== 'remove' && recordedKinds(state).length > 0) await cleanup(state, inputs)
    else if (inputs.cleanup) core.info('cleanup: nothing that this run installed needs removing.')
  } catch (err) {
    core.setFailed(`cleanup failed: ${errorText(err)}\nRun the action with command: remove to finish removing it.`)
  } finally {
    await removeFiles(state)
  }
}

interface ClusterSide {
  kube: Kube
  helmKubeconfig: string
  token?: RefreshingToken
}

/** The cluster through the main step's own kubeconfig (on an Entra ID cluster with a fresh Entra token). */
async function reachCluster(state: PostState, azure: Azure | undefined, workDir: string): Promise<ClusterSide> {
  const file = state.cleanupKubeconfig ?? ''
  // The main step's own copy: a later step may have switched the output kubeconfig's context or deleted it.
  const kubeconfig = await fs.readFile(file, 'utf8').catch((err: unknown) => {
    throw new Error(`the action's copy of the kubeconfig (${file}) is gone (${errorText(err)}); was RUNNER_TEMP emptied by a later step?`)
  })
  maskKubeconfig(kubeconfig)
  if (!state.entra || !azure) return { kube: kubeFromString(kubeconfig), helmKubeconfig: file }
  // The kubeconfig runs kubelogin; the cluster takes the same Entra token the main step used.
  const token = clusterToken(azure.session, workDir)
  return { ...(await entraAccess(kubeconfig, token, workDir)), token }
}

async function cleanup(state: PostState, inputs: Inputs): Promise<void> {
  if (!state.cleanupKubeconfig || !state.helm || !state.cluster) {
    core.warning('cleanup: the main step ended before it had cluster access, so nothing was installed.')
    return
  }
  const clock = new PhaseClock()
  const deadline = Deadline.after(inputs.waitTimeoutMs)
  const workDir = state.workDir ?? path.dirname(state.cleanupKubeconfig)
  const names = recordedKinds(state)
  const report: RunReport = {
    command: 'remove',
    kinds: names.map(kindLabel),
    cluster: `${inputs.resourceGroup}/${inputs.clusterName} (cleanup)`,
    nodes: [],
    samples: [],
    removals: [],
    phases: clock.phases
  }
  let side: ClusterSide | undefined
  try {
    // ARM (and, on an Entra ID cluster, the cluster token): the main step's tokens ended with it.
    const azure = await clock
      .run('Cleanup: sign in to Azure', () => signInAgain(state, inputs, deadline))
      .catch((err: unknown) => {
        if (state.entra) throw err
        core.warning(
          `cleanup: could not sign in to Azure again (${errorText(err)}); what needs no Azure call is still removed from the cluster, but ACI cannot be checked.`
        )
        return undefined
      })
    side = await reachCluster(state, azure, workDir)
    const kube = side.kube
    await clock.run('Cleanup: check the cluster', () => checkSameCluster(kube, state))
    const ctx = {
      inputs,
      arm: azure?.arm ?? ArmClient.unavailable('the post step could not sign in to Azure again', state.subscriptionId ?? ''),
      kube,
      cluster: state.cluster,
      helm: { helm: state.helm, kubeconfig: side.helmKubeconfig, workDir },
      deadline,
      clusterUid: state.clusterUid ?? '',
      report,
      phase: <T>(name: string, work: () => Promise<T>) => clock.run(name, work)
    }
    const kinds = await createKinds(
      names.map(name => ({ name })),
      ctx,
      kindRecords(state, () => undefined)
    )
    await runTeardown(kinds, report, 'cleanup', false)
  } catch (err) {
    report.error = errorText(err)
    throw err
  } finally {
    side?.token?.stop()
    await writeSummary(report).catch(() => undefined)
  }
}

/** The API server answers as the cluster the main step installed on (its kube-system namespace UID), or nothing is changed. */
async function checkSameCluster(kube: Kube, state: PostState): Promise<void> {
  if (!state.clusterUid) return
  const uid = await clusterUid(kube)
  if (uid !== state.clusterUid)
    throw new Error(
      `the API server ${kube.kc.getCurrentCluster()?.server ?? ''} is not the cluster the main step installed on (its kube-system namespace UID is ${uid}, the main step's was ${state.clusterUid}); nothing was changed.`
    )
}

interface Azure {
  session: AzureSession
  arm: ArmClient
}

/** Signs in again as the main step did (its tokens ended with it). */
async function signInAgain(state: PostState, inputs: Inputs, deadline: Deadline): Promise<Azure> {
  const az = async (): Promise<string> => {
    if (!state.az) throw new Error("the main step found no az for the runner's session.")
    return state.az
  }
  const signedIn = await signIn(inputs.signIn, inputs.environment, az, state.subscriptionId)
  const access = await getArmAccess(signedIn.session, signedIn.armToken, state.subscriptionId)
  return { session: signedIn.session, arm: new ArmClient(access, { deadline: deadline.at }) }
}

/** The kubeconfig (credentials) and the work dir; RUNNER_TEMP is emptied by the runner too, but not on every self-hosted setup. */
async function removeFiles(state: PostState | undefined): Promise<void> {
  const dirs = [state?.kubeconfig ? path.dirname(state.kubeconfig) : undefined, state?.workDir].filter((d): d is string => Boolean(d))
  await Promise.all(dirs.map(d => fs.rm(d, { recursive: true, force: true })))
}
