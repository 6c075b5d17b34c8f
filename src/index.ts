// One bundle serves both steps: action.yml runs it as main and as post; the state the
// main step saved tells them apart.
import './quiet-deprecations.js'
import * as core from '@actions/core'
import { run } from './main.js'
import { runPost } from './post.js'
import { isPostStep } from './state.js'
import { endToolsOnSignal, exitIfLingering } from './process.js'
import { errorText } from './tools.js'

endToolsOnSignal()
void (isPostStep() ? runPost() : run())
  // Both report their own failures; this catches what escaped them (e.g. RUNNER_TEMP not writable).
  .catch((err: unknown) => core.setFailed(errorText(err)))
  .finally(exitIfLingering)
