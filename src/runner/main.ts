// The main step. It checks every input first and says what it will do (loading only what
// that needs, so the first line appears at once), then loads the rest of the action for
// the command (pipeline.ts).
import * as core from '@actions/core'
import { checkInputsOnRunner, parseInputs, readActionInput, type Inputs } from './inputs.js'
import { markMainStarted } from './state.js'
import { errorText } from '../util/async.js'
import { maskInputSecrets } from './secrets.js'
import { FALLBACK_KIND, kindLabel, kindUses } from '../virtual-nodes/kinds.js'

/** One line naming what this step will do, as soon as the inputs are known to be good. */
export function intentLine(inputs: Inputs): string {
  const uses = kindUses(inputs)
  const auto = inputs.virtualNodeKind === 'auto' && inputs.command === 'install'
  const kinds = auto
    ? `the kind of virtual node the cluster supports (virtual-node-kind: auto, chosen once it is read) (${inputs.osTypes.join(', ')})`
    : uses.map(u => `${kindLabel(u.name)}${u.name === FALLBACK_KIND ? ` "${inputs.connectorName}"` : ''} (${u.os?.join(', ') ?? 'every OS'})`).join(' and ')
  const what =
    inputs.command === 'sweep'
      ? `sweep what matches "${inputs.connectorName}"${inputs.dryRun ? ' (dry run)' : ''} of ${kinds}`
      : `${inputs.command}${inputs.dryRun ? ' (dry run)' : ''} ${kinds}`
  return `Inputs checked: ${what} on cluster ${inputs.resourceGroup}/${inputs.clusterName}`
}

export async function run(): Promise<void> {
  markMainStarted()
  let inputs: Inputs
  try {
    inputs = parseInputs(readActionInput())
    await checkInputsOnRunner(inputs)
  } catch (err) {
    core.setFailed(errorText(err))
    return
  }
  maskInputSecrets(inputs)
  core.info(intentLine(inputs))
  for (const note of inputs.unused) core.warning(note)
  const { runPipeline } = await import('./pipeline.js')
  await runPipeline(inputs)
}
