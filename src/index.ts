// One bundle serves both steps: action.yml runs it as main and as post; the state the
// main step saved tells them apart.
import './runner/quiet-deprecations.js'
import * as core from '@actions/core'
import { isPostStep } from './runner/state.js'
import { endToolsOnSignal, exitIfLingering } from './tools/process.js'
import { errorText } from './util/async.js'

endToolsOnSignal()
// Each step loads only its own code: the main step's first line must not wait for the whole bundle.
void (isPostStep() ? import('./runner/post.js').then(m => m.runPost()) : import('./runner/main.js').then(m => m.run()))
  // Both report their own failures; this catches what escaped them (e.g. RUNNER_TEMP not writable).
  .catch((err: unknown) => core.setFailed(errorText(err)))
  .finally(exitIfLingering)
