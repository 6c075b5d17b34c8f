// `npm run demo`: the whole product on a laptop, no Azure account. Brings the local AKS
// up, runs the built action as a GitHub runner would (install Linux + Windows virtual
// nodes with the samples), shows what a user would see in a later step, removes it all,
// shuts down.
//
// The local AKS's servers (the API front, the Azure double, the tool mirror) live in this
// process, so every child process here is started asynchronously: a synchronous one would
// block the event loop that must serve it.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { startLocalAks, IDS, SECRET_SIGN_IN } from './local-aks/local-aks.js'
import { runMain, runPost } from './local-aks/runner.js'

const run = promisify(execFile)
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s)

function show(title: string, text: string): void {
  console.log(`\n${bold(`== ${title} ==`)}\n${text.trim()}`)
}

/** The step log as the Actions UI shows it: groups folded to their titles, debug hidden. */
function foldedLog(log: string): string {
  return log
    .split('\n')
    .filter(l => !l.startsWith('::debug::') && !l.startsWith('::endgroup::'))
    .map(l => (l.startsWith('::group::') ? `▸ ${l.slice('::group::'.length)}` : `    ${l}`))
    .filter(l => l.startsWith('▸') || /Ready|Signed in|Cluster |• |aci-helloworld|nanoserver-iis|container group|uninstalled|deleted|error|warning/i.test(l))
    .join('\n')
}

async function kubectl(path: string, kubeconfig: string, args: string[]): Promise<string> {
  const { stdout } = await run(path, ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', timeout: 30_000 })
  return stdout
}

const started = Date.now()
console.log('Starting the local AKS (control plane, agent node with the azure-aci connector, Azure double, tool mirror)...')
const env = await startLocalAks({ log: m => console.log(`  ${m}`) })
let exitCode = 0
try {
  const inputs = { ...env.baseInputs(), ...SECRET_SIGN_IN, 'os-type': 'Both', 'deploy-samples': 'true' }
  show(
    'The workflow step',
    Object.entries({ uses: 'this-action@v1', ...inputs })
      .map(([k, v]) => `${k}: ${k.includes('secret') ? '${{ secrets.AZURE_CLIENT_SECRET }}' : v}`)
      .join('\n')
  )
  const install = await runMain({ inputs, env: env.actionEnv, toolCache: env.toolCache })
  show(`Step log (exit ${install.result.exitCode}, ${(install.result.durationMs / 1000).toFixed(1)} s)`, foldedLog(install.result.log))
  show(
    'Outputs',
    Object.entries(install.result.outputs)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')
  )
  if (install.result.exitCode !== 0) throw new Error('the install step failed')

  const kc = install.result.outputs['kubeconfig-path'] ?? ''
  const kubectlPath = install.result.outputs['kubectl-path'] ?? ''
  show('A later step: kubectl get nodes', await kubectl(kubectlPath, kc, ['get', 'nodes', '-o', 'wide']))
  show('kubectl get pods -o wide', await kubectl(kubectlPath, kc, ['get', 'pods', '-o', 'wide']))
  show(
    'The container groups in ACI (resource group ' + IDS.nodeResourceGroup + ')',
    env.azure.aci
      .groups()
      .map(g => `${g.name}  ${g.osType}  ${g.state}  ${g.ip ?? '-'}  node ${g.tags['NodeName'] ?? '-'}`)
      .join('\n') || '(none)'
  )
  show('Job summary (Markdown)', install.result.summary)
  await runPost(install.job)
  await install.job.cleanup()

  const remove = await runMain({ inputs: { ...inputs, command: 'remove' }, env: env.actionEnv, toolCache: env.toolCache })
  show(`Teardown step: command: remove (exit ${remove.result.exitCode}, ${(remove.result.durationMs / 1000).toFixed(1)} s)`, foldedLog(remove.result.log))
  const nodes = (await env.core.listNode()).items.map(n => n.metadata?.name).join('\n')
  show('Nodes left (only the agent pool)', nodes)
  show('Container groups left', String(env.azure.aci.groups().length))
  await runPost(remove.job)
  await remove.job.cleanup()
  if (remove.result.exitCode !== 0) throw new Error('the remove step failed')
} catch (err) {
  exitCode = 1
  console.error(`\nDemo failed: ${err instanceof Error ? err.message : String(err)}`)
} finally {
  await env.stop()
  console.log(`\nLocal AKS stopped. Demo took ${((Date.now() - started) / 1000).toFixed(0)} s.`)
}
process.exit(exitCode)
