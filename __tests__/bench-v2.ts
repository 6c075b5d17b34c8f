// The Virtual Nodes v2 rows of `npm run bench`: the action's install and remove of v2
// through its Helm chart (virtual-node-kind v2-helm, one node, no samples) on a cluster in a
// VNet of its own, against their critical paths, each part timed alone on the same cluster:
// install: one token, `helm upgrade --install` of the same chart file with the same values,
// the node Ready; remove: one token, `helm uninstall`, the Node object deleted (the chart's
// agent leaves it), the release's namespace gone (Kubernetes' namespace controller waits 5 s
// before it finalizes one).
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { IDS, SECRET_SIGN_IN, SUBSCRIPTION_SCOPE, type LocalAks } from './local-aks/local-aks.js'
import { runMain } from './local-aks/runner.js'
import { v2HelmValues, V2_HELM_NAMESPACE, V2_HELM_RELEASE } from '../src/virtual-nodes/v2/helm-release.js'

const V2_ROUNDS = Number(process.env.BENCH_V2_ROUNDS ?? 3)
const HELM_NODE = `${V2_HELM_RELEASE}-virtualnode-0`
const OWN_VNET_GROUP = 'rg-network'
const POLL_MS = 100
const PART_TIMEOUT_MS = 180_000

export interface V2Rows {
  install: number[]
  remove: number[]
  token: number[]
  helmInstall: number[]
  nodeReady: number[]
  uninstall: number[]
  nodeDeleted: number[]
  namespaceGone: number[]
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = Date.now()
  return new Promise((resolve, reject) =>
    execFile(file, args, { env, timeout: PART_TIMEOUT_MS }, (err, _out, stderr) =>
      err ? reject(new Error(`${file} ${args[0]}: ${stderr || err.message}`)) : resolve(Date.now() - t0)
    )
  )
}

/** Polls until `done` (100 ms, in this process); the time it took. */
async function until(what: string, done: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now()
  while (!(await done())) {
    if (Date.now() - t0 > PART_TIMEOUT_MS) throw new Error(`${what}: not after ${PART_TIMEOUT_MS / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
  }
  return Date.now() - t0
}

/** The cluster the chart serves: Azure CNI in a VNet of its own with a delegated cg subnet, a 4-core 16 GB pool, the kubelet identity allowed (so no grant is timed). */
async function shapeCluster(env: LocalAks): Promise<void> {
  env.azure.knobs.setClusterNetwork({
    networkPlugin: 'azure',
    networkPolicy: undefined,
    vmSize: 'Standard_D4s_v5',
    authorizedIpRanges: [],
    workloadIdentity: false
  })
  env.azure.knobs.setOwnVnet(OWN_VNET_GROUP)
  env.azure.knobs.addSubnet('cg', '10.225.0.0/16', ['Microsoft.ContainerInstance/containerGroups'])
  await env.agent.setMachine(4, 16)
  for (const group of [IDS.nodeResourceGroup, OWN_VNET_GROUP])
    env.azure.assignRole({ clientId: IDS.kubeletIdentityClientId, role: 'Contributor', scope: `${SUBSCRIPTION_SCOPE}/resourceGroups/${group}` })
}

/** The phases of the last install and remove, from the job summary (where the time goes). */
const lastPhases: Record<string, string> = {}

async function action(env: LocalAks, inputs: Record<string, string>): Promise<number> {
  const { job, result } = await runMain({
    inputs: {
      ...env.baseInputs(),
      ...SECRET_SIGN_IN,
      'virtual-node-kind': 'v2-helm',
      'v2-chart-url': env.v2Chart.url,
      'v2-chart-sha256': env.v2Chart.sha256,
      ...inputs
    },
    env: env.actionEnv,
    toolCache: env.toolCache
  })
  await job.cleanup()
  if (result.exitCode !== 0) throw new Error(`v2-helm ${inputs.command ?? 'install'} failed:\n${result.log.slice(-3000)}`)
  lastPhases[inputs.command ?? 'install'] = [...result.summary.matchAll(/^\| (?:❌ )?([^|*]+?) \| ([\d.]+ s) \|$/gm)].map(m => `${m[1]} ${m[2]}`).join('; ')
  return result.durationMs
}

/** Install and remove by the action, then each by its critical path, V2_ROUNDS times. `tokenMs` times one token request. */
export async function benchV2Helm(env: LocalAks, kubeconfig: string, helm: string, tokenMs: () => Promise<number>): Promise<V2Rows> {
  await shapeCluster(env)
  const rows: V2Rows = { install: [], remove: [], token: [], helmInstall: [], nodeReady: [], uninstall: [], nodeDeleted: [], namespaceGone: [] }
  const dir = await mkdtemp(join(tmpdir(), 'bench-v2-'))
  const kubeEnv = { ...process.env, ...env.actionEnv, KUBECONFIG: kubeconfig }
  const node = async (): Promise<{ ready: boolean } | undefined> => {
    const n = (await env.core.listNode({ fieldSelector: `metadata.name=${HELM_NODE}` })).items[0]
    return n ? { ready: n.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') ?? false } : undefined
  }
  const namespaceThere = async (): Promise<boolean> => (await env.core.listNamespace({ fieldSelector: `metadata.name=${V2_HELM_NAMESPACE}` })).items.length > 0
  try {
    const uid = (await env.core.readNamespace({ name: 'kube-system' })).metadata?.uid ?? ''
    const values = join(dir, 'values.yaml')
    await writeFile(values, stringify(v2HelmValues(1, 'cg', uid)), { mode: 0o600 })
    // Warm-up (not timed): the tool cache and page caches.
    await action(env, {})
    await action(env, { command: 'remove' })
    for (let round = 1; round <= V2_ROUNDS; round++) {
      rows.install.push(await action(env, {}))
      rows.remove.push(await action(env, { command: 'remove' }))
      rows.token.push(await tokenMs())
      const args = ['upgrade', '--install', V2_HELM_RELEASE, env.v2Chart.file, '--namespace', V2_HELM_NAMESPACE, '--create-namespace', '--values', values]
      rows.helmInstall.push(await run(helm, args, kubeEnv))
      rows.nodeReady.push(await until('v2 node Ready', async () => (await node())?.ready === true))
      rows.uninstall.push(await run(helm, ['uninstall', V2_HELM_RELEASE, '--namespace', V2_HELM_NAMESPACE], kubeEnv))
      const t0 = Date.now()
      await env.core.deleteNode({ name: HELM_NODE })
      await until('v2 node gone', async () => (await node()) === undefined)
      rows.nodeDeleted.push(Date.now() - t0)
      const t1 = Date.now()
      await env.core.deleteNamespace({ name: V2_HELM_NAMESPACE })
      await until('namespace vn2 gone', async () => !(await namespaceThere()))
      rows.namespaceGone.push(Date.now() - t1)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return rows
}

export function printV2Rows(r: V2Rows): void {
  const s = (xs: number[]): string => (median(xs) / 1000).toFixed(2)
  const installPath = median(r.token) + median(r.helmInstall) + median(r.nodeReady)
  const removePath = median(r.token) + median(r.uninstall) + median(r.nodeDeleted) + median(r.namespaceGone)
  console.log(`\n| Virtual Nodes v2 through its Helm chart (1 node, no samples), ${r.install.length} rounds, medians | seconds |\n|---|---|`)
  console.log(`| action install | ${s(r.install)} |`)
  console.log(
    `| critical path: one token ${s(r.token)} + helm upgrade --install ${s(r.helmInstall)} + node Ready ${s(r.nodeReady)} | ${(installPath / 1000).toFixed(2)} |`
  )
  console.log(`| action remove | ${s(r.remove)} |`)
  console.log(
    `| critical path: one token ${s(r.token)} + helm uninstall ${s(r.uninstall)} + node deleted ${s(r.nodeDeleted)} + namespace gone ${s(r.namespaceGone)} | ${(removePath / 1000).toFixed(2)} |`
  )
  for (const [op, phases] of Object.entries(lastPhases)) console.log(`phases of the last ${op}: ${phases}`)
  console.log(
    `\nv2-helm install / critical path: ${(median(r.install) / installPath).toFixed(2)}x; remove / critical path: ${(median(r.remove) / removePath).toFixed(2)}x\n`
  )
}
