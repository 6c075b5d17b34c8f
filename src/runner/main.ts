// The main step. It checks every input first and says what it will do (loading only what
// that needs, so the first line appears at once), then loads the rest of the action for
// the command (pipeline.ts).
import * as core from '@actions/core'
import { checkInputsOnRunner, parseInputs, readActionInput, type Inputs } from './inputs.js'
import { markMainStarted } from './state.js'
import { errorText } from '../util/async.js'
import { maskInputSecrets } from './secrets.js'

/** One line naming what this step will do, as soon as the inputs are known to be good. */
export function intentLine(inputs: Inputs): string {
  const what =
    inputs.command === 'sweep'
      ? `sweep connectors matching "${inputs.connectorName}"`
      : `${inputs.command}${inputs.dryRun ? ' (dry run)' : ''} connector "${inputs.connectorName}" (${
          inputs.command === 'remove' && !inputs.osTypesGiven ? 'every OS installed' : inputs.osTypes.join(', ')
        })`
  const v2 =
    inputs.virtualNodeKind !== 'v2'
      ? ''
      : inputs.command === 'install'
        ? `, Linux as Virtual Nodes v2 (${inputs.v2NodeCount} node(s))`
        : ', and Virtual Nodes v2'
  return `Inputs checked: ${what}${v2} on cluster ${inputs.resourceGroup}/${inputs.clusterName}`
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
  const { runPipeline } = await import('./pipeline.js')
  await runPipeline(inputs)
}
