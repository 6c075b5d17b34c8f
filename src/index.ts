// One bundle serves both steps: action.yml runs it as main and as post; the state the
// main step saved tells them apart.
import './quiet-deprecations.js'
import { run } from './main.js'
import { runPost } from './post.js'
import { isPostStep } from './state.js'

void (isPostStep() ? runPost() : run())
