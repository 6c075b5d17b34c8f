// The post step (post-if: always()): with `cleanup: true` it removes what the main step
// installed, also after a failure or cancel, using the kubeconfig the main step saved;
// then it deletes every file the action left under RUNNER_TEMP (the kubeconfig holds
// cluster credentials).
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import { parseDuration, parseInputs, readActionInput, DEFAULT_WAIT_TIMEOUT } from './inputs.js'
import { ArmClient, getArmAccess } from './arm.js'
import { signIn, signOut, type AzSession } from './azure-login.js'
import { sweepContainerGroups } from './container-groups.js'
import { kubeFromString, maskKubeconfig } from './kube.js'
import { maskInputSecrets, removeAll } from './main.js'
import { loadPostState, type PostState } from './state.js'
import { PhaseClock, writeSummary, type RunReport } from './summary.js'
import { errorText } from './tools.js'

function cleanupRequested(): boolean {
  return ['true', 'True', 'TRUE'].includes(core.getInput('cleanup'))
}

export async function runPost(): Promise<void> {
  const state = loadPostState()
  try {
    if (!state) return
    if (cleanupRequested() && core.getInput('command') !== 'remove' && state.connectors.length > 0) await cleanup(state)
    else if (cleanupRequested()) core.info('cleanup: nothing that this run installed needs removing.')
  } catch (err) {
    core.setFailed(`cleanup failed: ${errorText(err)}\nRun the action with command: remove to finish removing it.`)
  } finally {
    await removeFiles(state)
  }
}

async function cleanup(state: PostState): Promise<void> {
  if (!state.kubeconfig || !state.helm) {
    core.warning('cleanup: the main step ended before it had cluster access, so nothing was installed.')
    return
  }
  const clock = new PhaseClock()
  const kubeconfig = await fs.readFile(state.kubeconfig, 'utf8')
  maskKubeconfig(kubeconfig)
  const timeoutMs = parseDuration(core.getInput('wait-timeout') || DEFAULT_WAIT_TIMEOUT) ?? 600_000
  const namespace = state.samples[0]?.namespace ?? (core.getInput('samples-namespace') || 'default')
  const report: RunReport = { command: 'remove', cluster: `${core.getInput('resource-group')}/${core.getInput('cluster-name')} (cleanup)`, nodes: [], samples: [], removals: [], phases: clock.phases }
  try {
    report.removals = await clock.run('Cleanup: remove what this job installed', () =>
      removeAll(kubeFromString(kubeconfig), { helm: state.helm ?? 'helm', kubeconfig: state.kubeconfig ?? '', workDir: state.workDir ?? path.dirname(state.kubeconfig ?? '') }, state.connectors, namespace, timeoutMs, state.aciResourceGroup ?? '')
    )
    const deleted = await clock.run('Cleanup: container groups left in ACI', () => sweepAfterCleanup(state))
    report.removals = report.removals.map(r => ({ ...r, containerGroupsDeleted: deleted?.get(r.node) }))
  } catch (err) {
    report.error = errorText(err)
    throw err
  } finally {
    await writeSummary(report).catch(() => undefined)
  }
}

/**
 * Signs in again as the main step did (the main step's session went with its config dir)
 * and deletes the container groups the removed nodes left, as `command: remove` does. A
 * sign-in that fails only warns: the cluster side is already clean.
 */
async function sweepAfterCleanup(state: PostState): Promise<Map<string, string[]> | undefined> {
  if (!state.az || !state.aciResourceGroup || !state.workDir) return undefined
  let session: AzSession | undefined
  try {
    const inputs = parseInputs(readActionInput())
    maskInputSecrets(inputs)
    await fs.mkdir(state.workDir, { recursive: true })
    session = await signIn(state.az, inputs.signIn, inputs.environment, state.workDir)
    const arm = new ArmClient(await getArmAccess(session, state.subscriptionId))
    return await sweepContainerGroups(arm, state.aciResourceGroup, state.connectors.map(c => c.node))
  } catch (err) {
    core.warning(
      `cleanup: could not sign in again to check ${state.aciResourceGroup} for container groups the removed nodes left (${errorText(err)}). ` +
        `Run the action with command: remove (it sweeps), or check with \`az container list -g ${state.aciResourceGroup} -o table\`.`
    )
    return undefined
  } finally {
    await signOut(session)
  }
}

/** The kubeconfig (credentials) and the work dir; RUNNER_TEMP is emptied by the runner too, but not on every self-hosted setup. */
async function removeFiles(state: PostState | undefined): Promise<void> {
  const dirs = [state?.kubeconfig ? path.dirname(state.kubeconfig) : undefined, state?.workDir].filter((d): d is string => Boolean(d))
  await Promise.all(dirs.map(d => fs.rm(d, { recursive: true, force: true })))
}
