// The post step (post-if: always()): with `cleanup: true` it removes what the main step
// installed, also after a failure or cancel, using its own copy of the kubeconfig the main
// step took (checked to reach the same cluster) and what the cluster says is installed;
// then it deletes every file the action left under RUNNER_TEMP (the kubeconfig holds
// cluster credentials).
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import { parseInputs, readActionInput, type Inputs } from './inputs.js'
import { ArmClient, getArmAccess } from '../azure/arm.js'
import { signIn, type AzureSession } from '../azure/azure-login.js'
import { clusterToken, entraAccess } from '../kubernetes/cluster-access.js'
import type { RefreshingToken } from '../azure/refreshing-token.js'
import { clusterUid, kubeFromString, maskKubeconfig, type Kube } from '../kubernetes/kube.js'
import { findRemovalTargets, logItems, removeTargets, teardownError } from '../virtual-nodes/removal.js'
import { distinctResourceGroups } from '../virtual-nodes/attribution.js'
import { clusterLabel, grantedRoleItems } from '../virtual-nodes/connector/connector-access.js'
import { loadPostState, type PostState } from './state.js'
import { maskInputSecrets } from './secrets.js'
import { PhaseClock, writeSummary, type RunReport, type TeardownItem } from './summary.js'
import { Deadline, errorText } from '../util/async.js'
import { findV2Targets, removeV2 } from '../virtual-nodes/v2/v2.js'

export async function runPost(): Promise<void> {
  const state = loadPostState()
  try {
    if (!state) return
    // The main step checked these inputs before it saved any state; the same parser reads them here.
    const inputs = parseInputs(readActionInput())
    maskInputSecrets(inputs)
    if (inputs.cleanup && inputs.command !== 'remove' && (state.connectors.length > 0 || state.v2?.created)) await cleanup(state, inputs)
    else if (inputs.cleanup) core.info('cleanup: nothing that this run installed needs removing.')
  } catch (err) {
    core.setFailed(`cleanup failed: ${errorText(err)}\nRun the action with command: remove to finish removing it.`)
  } finally {
    await removeFiles(state)
  }
}

async function cleanup(state: PostState, inputs: Inputs): Promise<void> {
  if (!state.cleanupKubeconfig || !state.helm) {
    core.warning('cleanup: the main step ended before it had cluster access, so nothing was installed.')
    return
  }
  const clock = new PhaseClock()
  const deadline = Deadline.after(inputs.waitTimeoutMs)
  // The main step's own copy: a later step may have switched the output kubeconfig's context or deleted it.
  const kubeconfig = await fs.readFile(state.cleanupKubeconfig, 'utf8').catch((err: unknown) => {
    throw new Error(`the action's copy of the kubeconfig (${state.cleanupKubeconfig}) is gone (${errorText(err)}); was RUNNER_TEMP emptied by a later step?`)
  })
  maskKubeconfig(kubeconfig)
  const workDir = state.workDir ?? path.dirname(state.cleanupKubeconfig)
  const report: RunReport = {
    command: 'remove',
    cluster: `${inputs.resourceGroup}/${inputs.clusterName} (cleanup)`,
    nodes: [],
    samples: [],
    removals: [],
    phases: clock.phases
  }
  let token: RefreshingToken | undefined
  try {
    // ARM for ACI (and, on an Entra ID cluster, the cluster token): the main step's tokens ended with it.
    const azure = await clock
      .run('Cleanup: sign in to Azure', () => signInAgain(state, inputs, deadline))
      .catch((err: unknown) => {
        if (state.entra) throw err
        core.warning(
          `cleanup: could not sign in to Azure again (${errorText(err)}); the connectors are still removed from the cluster, but ACI cannot be checked.`
        )
        return undefined
      })
    let kube = kubeFromString(kubeconfig)
    let helmKubeconfig = state.cleanupKubeconfig
    if (state.entra && azure) {
      // The kubeconfig runs kubelogin; the cluster takes the same Entra token the main step used.
      token = clusterToken(azure.session, workDir)
      ;({ kube, helmKubeconfig } = await entraAccess(kubeconfig, token, workDir))
    }
    await clock.run('Cleanup: check the cluster', () => checkSameCluster(kube, state))
    // Virtual Nodes v2 first (its pods, extension, nodes, tagged groups), when this run created the extension.
    const v2Items = await cleanupV2(kube, azure?.arm, state, inputs, deadline, clock)
    const targets = await findRemovalTargets(
      kube,
      { only: { releases: state.connectors.map(c => c.release), nodes: state.connectors.map(c => c.node) } },
      state.nodeResourceGroup ?? state.aciResourceGroup ?? ''
    )
    for (const t of targets) core.info(`• ${t.names.node}: ${t.reason}`)
    const result = await clock.run('Cleanup: remove what this job installed', () =>
      removeTargets(kube, { helm: state.helm ?? 'helm', kubeconfig: helmKubeconfig, workDir }, targets, {
        timeoutMs: deadline.left(),
        dryRun: false,
        nodeResourceGroup: state.nodeResourceGroup ?? '',
        arm: azure?.arm
      })
    )
    // A role grant-connector-role made stays (the next job's install may use it): say so, and how to delete it.
    if (azure) result.items.push(...(await grantedRoleItems(azure.arm, distinctResourceGroups(targets.map(t => t.aciResourceGroup)), clusterLabel(inputs))))
    result.items.unshift(...v2Items)
    report.teardown = result.items
    report.removals = result.removals
    logItems(result.items)
    const error = teardownError(result, targets, inputs.verifyAci, '')
    if (error) throw error
  } catch (err) {
    report.error = errorText(err)
    throw err
  } finally {
    token?.stop()
    await writeSummary(report).catch(() => undefined)
  }
}

/** Virtual Nodes v2, when this run created its extension: what a remove with virtual-node-kind v2 takes (only this action's extension and its nodes). */
async function cleanupV2(
  kube: Kube,
  arm: ArmClient | undefined,
  state: PostState,
  inputs: Inputs,
  deadline: Deadline,
  clock: PhaseClock
): Promise<TeardownItem[]> {
  const v2 = state.v2
  if (!v2?.created) return []
  if (!arm)
    throw new Error(
      `cleanup: Virtual Nodes v2 extension ${v2.extension} is removed over ARM, and the sign-in failed; run the action with command: remove and virtual-node-kind: v2.`
    )
  const cluster = { resourceGroup: inputs.resourceGroup, name: inputs.clusterName, nodeResourceGroup: state.nodeResourceGroup ?? '' }
  const { targets } = await findV2Targets(arm, cluster, kube)
  return clock.run('Cleanup: remove Virtual Nodes v2', () =>
    removeV2(kube, arm, cluster, targets, { dryRun: false, deadline: deadline.at, clusterUid: state.clusterUid ?? '', clusterLabel: clusterLabel(inputs) })
  )
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
