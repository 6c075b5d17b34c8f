// `npm run bench`: how long the action takes and how many processes it starts, against
// the local AKS (no Azure latency: these are the action's own costs). Runs install Both
// with samples on a cold tool cache, the same install again (converge, warm cache), and
// remove; prints a table. Numbers, not assertions: the tests prove behaviour.
import { startLocalAks, IDS } from './local-aks/local-aks.js'
import { runMain, type StepResult } from './local-aks/runner.js'

interface Row {
  run: string
  exit: number
  seconds: string
  az: number
  helm: number
  kubectl: number
  phases: string
}

function processCounts(argv: string): { az: number; helm: number; kubectl: number } {
  const lines = argv.split('\n')
  const count = (tool: string): number => lines.filter(l => l.startsWith(`${tool} `) || l === tool).length
  return { az: count('az'), helm: count('helm'), kubectl: count('kubectl') }
}

function phases(summary: string): string {
  return [...summary.matchAll(/^\| (?:❌ )?([^|*]+?) \| ([\d.]+ s) \|$/gm)].map(m => `${m[1]} ${m[2]}`).join('; ')
}

const env = await startLocalAks()
const rows: Row[] = []
let failed = false
try {
  const inputs = { ...env.baseInputs(), 'client-id': IDS.clientId, 'tenant-id': IDS.tenantId, 'client-secret': IDS.clientSecret, 'os-type': 'Both', 'deploy-samples': 'true' }
  const measure = async (name: string, with_: Record<string, string>): Promise<StepResult> => {
    const before = (await env.argvLog()).length
    const { job, result } = await runMain({ inputs: with_, env: env.actionEnv, toolCache: env.toolCache })
    await job.cleanup()
    rows.push({ run: name, exit: result.exitCode, seconds: (result.durationMs / 1000).toFixed(1), ...processCounts((await env.argvLog()).slice(before)), phases: phases(result.summary) })
    if (result.exitCode !== 0) failed = true
    return result
  }
  await measure('install Both + samples (cold tool cache)', inputs)
  await measure('same install again (converge)', inputs)
  await measure('remove Both', { ...inputs, command: 'remove' })
} finally {
  await env.stop()
}
console.log('| run | exit | seconds | az | helm | kubectl | phases |\n|---|---|---|---|---|---|---|')
for (const r of rows) console.log(`| ${r.run} | ${r.exit} | ${r.seconds} | ${r.az} | ${r.helm} | ${r.kubectl} | ${r.phases} |`)
process.exit(failed ? 1 : 0)
