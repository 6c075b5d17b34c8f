// The post step (post-if: always()): with `cleanup: true` it removes what the main step
// installed, also after a failure or cancel, using the kubeconfig the main step saved;
// then it deletes every file the action left under RUNNER_TEMP (the kubeconfig holds
// cluster credentials).
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import { parseInputs, readActionInput, type Inputs } from './inputs.js'
import { ArmClient, getArmAccess } from './arm.js'
import { signIn, type AzureSession } from './azure-login.js'
import { sweepContainerGroups } from './container-groups.js'
import { clusterToken, entraAccess } from './cluster-access.js'
import type { RefreshingToken } from './refreshing-token.js'
import { kubeFromString, maskKubeconfig } from './kube.js'
import { maskInputSecrets } from './main.js'
import { removeAll } from './removal.js'
import { loadPostState, type PostState } from './state.js'
import { PhaseClock, writeSummary, type RunReport } from './summary.js'
import { errorText } from './async.js'

export async function runPost(): Promise<void> {
  const state = loadPostState()
  try {
    if (!state) return
    // The main step checked these inputs before it saved any state; the same parser reads them here.
    const inputs = parseInputs(readActionInput())
    maskInputSecrets(inputs)
    if (inputs.cleanup && inputs.command !== 'remove' && state.connectors.length > 0) await cleanup(state, inputs)
    else if (inputs.cleanup) core.info('cleanup: nothing that this run installed needs removing.')
  } catch (err) {
    core.setFailed(`cleanup failed: ${errorText(err)}\nRun the action with command: remove to finish removing it.`)
  } finally {
    await removeFiles(state)
  }
}

async function cleanup(state: PostState, inputs: Inputs): Promise<void> {
  if (!state.kubeconfig || !state.helm) {
    core.warning('cleanup: the main step ended before it had cluster access, so nothing was installed.')
    return
  }
  const clock = new PhaseClock()
  const kubeconfig = await fs.readFile(state.kubeconfig, 'utf8')
  maskKubeconfig(kubeconfig)
  const timeoutMs = inputs.waitTimeoutMs
  const namespace = state.samples[0]?.namespace ?? inputs.samplesNamespace
  const workDir = state.workDir ?? path.dirname(state.kubeconfig)
  const report: RunReport = {
    command: 'remove',
    cluster: `${inputs.resourceGroup}/${inputs.clusterName} (cleanup)`,
    nodes: [],
    samples: [],
    removals: [],
    phases: clock.phases
  }
  let azure: Azure | undefined
  let token: RefreshingToken | undefined
  try {
    let kube = kubeFromString(kubeconfig)
    let helmKubeconfig = state.kubeconfig
    if (state.entra) {
      // The kubeconfig runs kubelogin; the cluster takes the same Entra token the main step used.
      azure = await clock.run('Cleanup: sign in to Azure', () => signInAgain(state, inputs))
      token = clusterToken(azure.session, workDir)
      ;({ kube, helmKubeconfig } = await entraAccess(kubeconfig, token, workDir))
    }
    const access = { kube, helmKubeconfig }
    report.removals = await clock.run('Cleanup: remove what this job installed', () =>
      removeAll(
        access.kube,
        { helm: state.helm ?? 'helm', kubeconfig: access.helmKubeconfig, workDir },
        state.connectors,
        namespace,
        timeoutMs,
        state.aciResourceGroup ?? '',
        azure?.arm
      )
    )
    const deleted = await clock.run('Cleanup: container groups left in ACI', () => sweepAfterCleanup(state, inputs, azure))
    report.removals = report.removals.map(r => ({ ...r, containerGroupsDeleted: deleted?.get(r.node) }))
  } catch (err) {
    report.error = errorText(err)
    throw err
  } finally {
    token?.stop()
    await writeSummary(report).catch(() => undefined)
  }
}

interface Azure {
  session: AzureSession
  arm: ArmClient
}

/** Signs in again as the main step did (its tokens ended with it). */
async function signInAgain(state: PostState, inputs: Inputs): Promise<Azure> {
  const az = async (): Promise<string> => {
    if (!state.az) throw new Error("the main step found no az for the runner's session.")
    return state.az
  }
  const signedIn = await signIn(inputs.signIn, inputs.environment, az, state.subscriptionId)
  return { session: signedIn.session, arm: new ArmClient(await getArmAccess(signedIn.session, signedIn.armToken, state.subscriptionId)) }
}

/**
 * Deletes the container groups the removed nodes left, as `command: remove` does. A
 * sign-in that fails only warns: the cluster side is already clean.
 */
async function sweepAfterCleanup(state: PostState, inputs: Inputs, signedIn: Azure | undefined): Promise<Map<string, string[]> | undefined> {
  if (!state.aciResourceGroup) return undefined
  try {
    const azure = signedIn ?? (await signInAgain(state, inputs))
    return await sweepContainerGroups(
      azure.arm,
      state.aciResourceGroup,
      state.connectors.map(c => c.node)
    )
  } catch (err) {
    core.warning(
      `cleanup: could not sign in again to check ${state.aciResourceGroup} for container groups the removed nodes left (${errorText(err)}). ` +
        `Run the action with command: remove (it sweeps), or check with \`az container list -g ${state.aciResourceGroup} -o table\`.`
    )
    return undefined
  }
}

/** The kubeconfig (credentials) and the work dir; RUNNER_TEMP is emptied by the runner too, but not on every self-hosted setup. */
async function removeFiles(state: PostState | undefined): Promise<void> {
  const dirs = [state?.kubeconfig ? path.dirname(state.kubeconfig) : undefined, state?.workDir].filter((d): d is string => Boolean(d))
  await Promise.all(dirs.map(d => fs.rm(d, { recursive: true, force: true })))
}
