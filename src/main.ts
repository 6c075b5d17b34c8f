// The main step. It checks every input first and says what it will do (loading only what
// that needs, so the first line appears at once), then loads the rest of the action for
// the command (pipeline.ts).
import * as os from 'node:os'
import * as core from '@actions/core'
import { checkInputsOnRunner, parseInputs, readActionInput, type Inputs } from './inputs.js'
import { markMainStarted } from './state.js'
import { errorText } from './async.js'
import { maskSecret } from './secrets.js'

/** Where the action may write files that the runner removes after the job. */
export function runnerTemp(): string {
  return process.env.RUNNER_TEMP || os.tmpdir()
}

export function maskInputSecrets(inputs: Inputs): void {
  if (inputs.signIn.kind === 'secret') maskSecret(inputs.signIn.clientSecret)
  maskSecret(inputs.connectorClientSecret)
}

/** One line naming what this step will do, as soon as the inputs are known to be good. */
export function intentLine(inputs: Inputs): string {
  const what =
    inputs.command === 'sweep'
      ? `sweep connectors matching "${inputs.connectorName}"`
      : `${inputs.command}${inputs.dryRun ? ' (dry run)' : ''} connector "${inputs.connectorName}" (${
          inputs.command === 'remove' && !inputs.osTypesGiven ? 'every OS installed' : inputs.osTypes.join(', ')
        })`
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
  const { runPipeline } = await import('./pipeline.js')
  await runPipeline(inputs)
}
