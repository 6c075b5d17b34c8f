// `npm run bench`: the action side by side with the 2019 procedure scripted as a user
// would write it today (bench-2019-procedure.sh, beside this file), against the local AKS
// (no Azure latency: these are each side's own costs). Both install Both with samples and
// remove it, alternately, ROUNDS times on a warm tool cache; the bench prints medians and
// ratios, the install's critical path (the work no implementation can skip: one token,
// the slower connector's helm install and node registration, the samples starting), each
// part timed alone on the same cluster, the processes the action starts, a re-run that
// changes nothing, and how long `dist/` takes to its first log line. Then teardown: the
// action's remove against its critical path (per OS: the sample's container group gone,
// helm uninstall, the node deleted, the connector namespace gone; the slower OS counts),
// and a `command: sweep` of 1 and of SWEEP_MANY connectors side by side, with the ARM 429s
// the action got in those runs counted. Numbers, not assertions: the tests prove behaviour.
import { spawn } from 'node:child_process'
import { request } from 'node:https'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { startLocalAks, IDS, SECRET_SIGN_IN, type LocalAks } from './local-aks/local-aks.js'
import { runCommand } from './local-aks/proc.js'
import { NODE24, REPO_ROOT, runMain, type StepResult } from './local-aks/runner.js'
import type { OsType } from '../src/virtual-nodes/naming.js'
import { connectorNames } from '../src/virtual-nodes/connector/names.js'
import { connectorPlacement } from '../src/virtual-nodes/connector/placement.js'
import { installArgs, renderValues } from '../src/virtual-nodes/connector/release.js'
import { sampleDeployment } from '../src/virtual-nodes/samples.js'
import { benchV2Helm, printV2Rows, type V2Rows } from './bench-v2.js'
import { benchBusyCluster, printBusyRows, type BusyRow } from './bench-busy.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
/** The nightly sweep of a busy CI cluster: connectors of a dozen closed pull requests. */
const SWEEP_MANY = 12
/** Sweeps wait on Kubernetes' namespace controller, whose timing varies by seconds: more rounds for a steadier median. */
const SWEEP_ROUNDS = Math.max(ROUNDS, 5)
const OS: OsType[] = ['Linux', 'Windows']
const SCRIPT = join(REPO_ROOT, '__tests__', 'bench-2019-procedure.sh')

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const secs = (ms: number): string => (ms / 1000).toFixed(2)

function counts(argv: string): Record<'az' | 'helm' | 'kubectl' | 'kubelogin', number> {
  const lines = argv.split('\n')
  const count = (tool: string): number => lines.filter(l => l.startsWith(`${tool} `)).length
  return { az: count('az'), helm: count('helm'), kubectl: count('kubectl'), kubelogin: count('kubelogin') }
}

/** Runs `file args` to completion (bounded); rejects with its stderr on failure. */
async function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 5 * 60_000): Promise<{ ms: number; stdout: string }> {
  const t0 = Date.now()
  const r = await runCommand(file, args, { env, timeoutMs })
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${String(r.code)}:\n${r.stderr.slice(-3000)}`)
  return { ms: Date.now() - t0, stdout: r.stdout }
}

interface Fixture {
  settings: Parameters<typeof renderValues>[1]
  dir: string
  scriptEnv: NodeJS.ProcessEnv
  kubeEnv: NodeJS.ProcessEnv
  helm: string
  kubectl: string
}

/** Values, samples and credentials for the script, the same chart settings the action renders. */
async function fixture(env: LocalAks): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-2019-'))
  await chmod(dir, 0o700)
  const settings = {
    tenantId: IDS.tenantId,
    subscriptionId: IDS.subscriptionId,
    aciResourceGroup: IDS.nodeResourceGroup,
    location: 'eastus',
    masterUri: `https://${env.front.host}`,
    enableRBAC: true,
    clientId: IDS.clientId,
    clientSecret: IDS.clientSecret
  }
  const names = Object.fromEntries(OS.map(os => [os, connectorNames('aci-connector', os, 'eastus')]))
  for (const os of OS) await writeFile(join(dir, `${os}.values.yaml`), stringify(renderValues(names[os]!, settings)), { mode: 0o600 })
  await writeFile(join(dir, 'samples.yaml'), OS.map(os => stringify(sampleDeployment(os, 'default', connectorPlacement(os, names[os]!.node)))).join('---\n'))
  await writeFile(join(dir, 'secret'), IDS.clientSecret, { mode: 0o600 })
  const helm = env.bins.helm4
  const kubectl = env.bins.kubectl
  const kubeEnv = { ...process.env, ...env.actionEnv, KUBECONFIG: join(dir, 'kubeconfig') }
  const scriptEnv: NodeJS.ProcessEnv = {
    ...kubeEnv,
    AZ: 'az',
    HELM: helm,
    KUBECTL: kubectl,
    WORK: dir,
    RG: IDS.resourceGroup,
    CLUSTER: IDS.clusterName,
    CLIENT_ID: IDS.clientId,
    TENANT_ID: IDS.tenantId,
    SECRET_FILE: join(dir, 'secret'),
    CHART: env.chartUrl,
    SAMPLES: join(dir, 'samples.yaml'),
    LINUX_RELEASE: names.Linux!.release,
    WINDOWS_RELEASE: names.Windows!.release,
    LINUX_NODE: names.Linux!.node,
    WINDOWS_NODE: names.Windows!.node,
    LINUX_VALUES: join(dir, 'Linux.values.yaml'),
    WINDOWS_VALUES: join(dir, 'Windows.values.yaml')
  }
  return { settings, dir, scriptEnv, kubeEnv, helm, kubectl }
}

/** A fresh az config per script run (the runner-level one, cloud registered), as a fresh job has. */
async function scriptRun(env: LocalAks, f: Fixture, command: 'install' | 'remove'): Promise<number> {
  const azDir = await mkdtemp(join(tmpdir(), 'bench-az-'))
  const base = env.actionEnv.AZURE_CONFIG_DIR ?? ''
  for (const file of ['config', 'clouds.config']) await writeFile(join(azDir, file), await readFile(join(base, file), 'utf8').catch(() => ''))
  try {
    return (await run('bash', [SCRIPT, command], { ...f.scriptEnv, AZURE_CONFIG_DIR: azDir })).ms
  } finally {
    await rm(azDir, { recursive: true, force: true })
  }
}

/**
 * The install's critical path, each part alone: a client-credentials token from the token
 * endpoint; per OS, helm upgrade --install and then its node turning Ready (the slower OS
 * counts: the action installs both at once); both samples applied and running.
 */
async function criticalPath(env: LocalAks, f: Fixture): Promise<{ token: number; connector: number; samples: number }> {
  const t0 = Date.now()
  await tokenRequest(env)
  const token = Date.now() - t0
  await run(
    'az',
    [
      'aks',
      'get-credentials',
      '-g',
      IDS.resourceGroup,
      '-n',
      IDS.clusterName,
      '--file',
      f.kubeEnv.KUBECONFIG ?? '',
      '--overwrite-existing',
      '--only-show-errors'
    ],
    {
      ...f.kubeEnv,
      AZURE_CONFIG_DIR: await signedInAzDir(env, f)
    }
  )
  const perOs: number[] = []
  for (const os of OS) {
    const s = Date.now()
    await run(
      f.helm,
      [
        'upgrade',
        '--install',
        String(f.scriptEnv[`${os.toUpperCase()}_RELEASE`]),
        env.chartUrl,
        '--namespace',
        'default',
        '--values',
        join(f.dir, `${os}.values.yaml`)
      ],
      f.kubeEnv
    )
    const node = `node/${String(f.scriptEnv[`${os.toUpperCase()}_NODE`])}`
    await run(f.kubectl, ['wait', '--for=create', node, '--timeout=120s'], f.kubeEnv)
    await run(f.kubectl, ['wait', '--for=condition=Ready', node, '--timeout=120s'], f.kubeEnv)
    perOs.push(Date.now() - s)
  }
  const s = Date.now()
  await run(f.kubectl, ['apply', '--server-side', '-f', join(f.dir, 'samples.yaml')], f.kubeEnv)
  await Promise.all(['aci-helloworld', 'nanoserver-iis'].map(d => run(f.kubectl, ['rollout', 'status', `deployment/${d}`, '--timeout=120s'], f.kubeEnv)))
  return { token, connector: Math.max(...perOs), samples: Date.now() - s }
}

/**
 * The remove's critical path, each part alone, from an install of Both with samples: one
 * token; per OS, its sample Deployment deleted until the sample's container group is gone
 * from ACI, helm uninstall, the node deleted, and the connector's namespace gone (Kubernetes'
 * namespace controller waits 5 s before it finalizes one); the slower OS counts (the action
 * removes both at once).
 */
async function removeCriticalPath(env: LocalAks, f: Fixture): Promise<{ token: number; connector: number; parts: string }> {
  const t0 = Date.now()
  await tokenRequest(env)
  const token = Date.now() - t0
  const perOs: Array<{ total: number; parts: string }> = []
  const sample: Record<OsType, string> = { Linux: 'aci-helloworld', Windows: 'nanoserver-iis' }
  for (const os of OS) {
    const names = connectorNames('aci-connector', os, 'eastus')
    const timed: string[] = []
    const part = async (what: string, file: string, args: string[]): Promise<number> => {
      const { ms } = await run(file, args, f.kubeEnv)
      timed.push(`${what} ${secs(ms)}`)
      return ms
    }
    // A 100 ms poll from this process: `kubectl wait --for=delete` adds seconds of its own here
    // (its watch starts from a quorum list's version, which the API server's watch cache may
    // not have reached on an etcd without progress notifications).
    const gone = async (what: string, check: () => Promise<boolean>): Promise<number> => {
      const s = Date.now()
      while (!(await check())) {
        if (Date.now() - s > 120_000) throw new Error(`${what}: still there after 120 s`)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      timed.push(`${what} ${secs(Date.now() - s)}`)
      return Date.now() - s
    }
    const total =
      (await part('sample', f.kubectl, ['delete', 'deployment', sample[os], '--wait=false'])) +
      // What must go is the sample's container group; its pod object the connector confirms a grace period later.
      (await gone('container group gone', async () => !env.azure.aci.groups().some(g => g.tags.NodeName === names.node))) +
      (await part('uninstall', f.helm, ['uninstall', names.release, '--namespace', 'default'])) +
      (await part('node', f.kubectl, ['delete', 'node', names.node, '--wait=false'])) +
      (await gone('namespace gone', async () => !(await env.core.listNamespace()).items.some(n => n.metadata?.name === names.namespace)))
    perOs.push({ total, parts: `${os}: ${timed.join(', ')}` })
  }
  const slower = perOs.reduce((a, b) => (b.total > a.total ? b : a))
  return { token, connector: slower.total, parts: slower.parts }
}

/**
 * `n` Linux connectors `<prefix>1..n` installed straight with helm (values as the action
 * renders them), each node Ready: what a nightly sweep finds. Each sweep gets names of its
 * own: the namespace controller keeps timers per namespace name for a while after one is
 * gone, so a name used again is finalized sooner, and a sweep of reused names would be
 * measured against one of fresh names.
 */
async function installForSweep(env: LocalAks, f: Fixture, prefix: string, n: number): Promise<void> {
  const names = Array.from({ length: n }, (_, i) => connectorNames(`${prefix}${i + 1}`, 'Linux', 'eastus'))
  await Promise.all(
    names.map(async c => {
      const values = join(f.dir, `${c.release}.values.yaml`)
      await writeFile(values, stringify(renderValues(c, f.settings)), { mode: 0o600 })
      await run(f.helm, installArgs(c, env.chartUrl, values, f.kubeEnv.KUBECONFIG ?? ''), f.kubeEnv)
    })
  )
  for (const c of names) {
    await run(f.kubectl, ['wait', '--for=create', `node/${c.node}`, '--timeout=180s'], f.kubeEnv)
    await run(f.kubectl, ['wait', '--for=condition=Ready', `node/${c.node}`, '--timeout=180s'], f.kubeEnv)
  }
}

/** ARM answers of 429 to the action (the local cloud's host; the connectors reach ARM by its public name). */
function throttledSince(env: LocalAks, since: number): number {
  const host = new URL(env.azure.url).host
  return env.azure.requests.filter(r => r.at >= since && r.host === host && r.status === 429).length
}

/** One client-credentials POST to the double's token endpoint (the authority az is registered with), in this process. */
async function tokenRequest(env: LocalAks): Promise<void> {
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: IDS.clientId,
    client_secret: IDS.clientSecret,
    scope: 'https://management.core.windows.net//.default'
  }).toString()
  const ca = await readFile(env.azure.caPath)
  await new Promise<void>((resolve, reject) => {
    const req = request(`${env.azure.url}/adfs/oauth2/token`, { method: 'POST', ca, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, res => {
      res.resume()
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`token endpoint answered ${String(res.statusCode)}`))))
    })
    req.on('error', reject)
    req.end(form)
  })
}

let signedIn: string | undefined
/** One signed-in az config for the bench's own set-up calls (not timed). */
async function signedInAzDir(env: LocalAks, f: Fixture): Promise<string> {
  if (signedIn) return signedIn
  signedIn = await mkdtemp(join(tmpdir(), 'bench-az-'))
  const base = env.actionEnv.AZURE_CONFIG_DIR ?? ''
  for (const file of ['config', 'clouds.config']) await writeFile(join(signedIn, file), await readFile(join(base, file), 'utf8').catch(() => ''))
  await run(
    'az',
    [
      'login',
      '--service-principal',
      '--username',
      IDS.clientId,
      '--tenant',
      IDS.tenantId,
      '--password',
      `@${String(f.scriptEnv.SECRET_FILE)}`,
      '--output',
      'none'
    ],
    { ...f.kubeEnv, AZURE_CONFIG_DIR: signedIn }
  )
  return signedIn
}

/** Time from starting `dist/index.js` (valid inputs, as a step would) to its first line on stdout; then it is stopped. */
async function distFirstLine(env: LocalAks): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-dist-'))
  const inputs: Record<string, string> = { ...env.baseInputs(), 'client-id': IDS.clientId, 'tenant-id': IDS.tenantId, 'client-secret': IDS.clientSecret }
  const stepEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    RUNNER_TEMP: dir,
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_OUTPUT: join(dir, 'out'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary')
  }
  for (const [k, v] of Object.entries(inputs)) stepEnv[`INPUT_${k.toUpperCase()}`] = v
  for (const f of ['state', 'out', 'summary']) await writeFile(join(dir, f), '')
  const t0 = Date.now()
  const child = spawn(NODE24, [join(REPO_ROOT, 'dist', 'index.js')], { env: stepEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  try {
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no output within 30 s')), 30_000)
      child.stdout.once('data', () => {
        clearTimeout(timer)
        resolve(Date.now() - t0)
      })
      child.on('error', reject)
    })
  } finally {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL')
    } catch {
      // ended already
    }
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * BENCH_ONLY=busy runs only the busy-cluster rows (BENCH_ACTION_DIR benches another build of
 * the action there, a before/after); BENCH_ONLY=v2 only the Virtual Nodes v2 (Helm) rows.
 */
const ONLY = process.env.BENCH_ONLY
const ONLY_BUSY = ONLY === 'busy'
const ONLY_SOME = ONLY === 'busy' || ONLY === 'v2'
const env = await startLocalAks()
const f = await fixture(env)
let busyRows: BusyRow[] = []
let v2Rows: V2Rows | undefined
const timedToken = async (): Promise<number> => {
  const t0 = Date.now()
  await tokenRequest(env)
  return Date.now() - t0
}
const t = {
  scriptInstall: [] as number[],
  scriptRemove: [] as number[],
  actionInstall: [] as number[],
  actionRemove: [] as number[],
  converge: [] as number[],
  token: [] as number[],
  connector: [] as number[],
  samples: [] as number[],
  dist: [] as number[],
  removeToken: [] as number[],
  removeConnector: [] as number[],
  removeParts: [] as string[],
  sweepOne: [] as number[],
  sweepMany: [] as number[]
}
const processes: Array<{ run: string; counts: ReturnType<typeof counts>; throttled: number; phases: string }> = []
let failed = false
try {
  const inputs = { ...env.baseInputs(), ...SECRET_SIGN_IN, 'os-type': 'Both', 'deploy-samples': 'true' }
  const action = async (name: string, with_: Record<string, string>): Promise<StepResult> => {
    const before = (await env.argvLog()).length
    const since = Date.now()
    const { job, result } = await runMain({ inputs: with_, env: env.actionEnv, toolCache: env.toolCache })
    await job.cleanup()
    if (result.exitCode !== 0) {
      failed = true
      throw new Error(`${name} failed:\n${result.log.slice(-3000)}`)
    }
    const phases = [...result.summary.matchAll(/^\| (?:❌ )?([^|*]+?) \| ([\d.]+ s) \|$/gm)].map(m => `${m[1]} ${m[2]}`).join('; ')
    processes.push({ run: name, counts: counts((await env.argvLog()).slice(before)), throttled: throttledSince(env, since), phases })
    return result
  }
  // Warm-up (not timed): the tool cache, the provider registration, page caches.
  await action('warm-up install', inputs)
  await action('warm-up remove', { ...inputs, command: 'remove' })
  for (let round = 1; round <= (ONLY_SOME ? 0 : ROUNDS); round++) {
    t.scriptInstall.push(await scriptRun(env, f, 'install'))
    t.scriptRemove.push(await scriptRun(env, f, 'remove'))
    t.actionInstall.push((await action(`install round ${round}`, inputs)).durationMs)
    t.converge.push((await action(`re-run round ${round}`, inputs)).durationMs)
    t.actionRemove.push((await action(`remove round ${round}`, { ...inputs, command: 'remove' })).durationMs)
    const parts = await criticalPath(env, f)
    t.token.push(parts.token)
    t.connector.push(parts.connector)
    t.samples.push(parts.samples)
    const removal = await removeCriticalPath(env, f)
    t.removeToken.push(removal.token)
    t.removeConnector.push(removal.connector)
    t.removeParts.push(removal.parts)
    await scriptRun(env, f, 'remove')
    t.dist.push(await distFirstLine(env))
  }
  for (let round = 1; round <= (ONLY_SOME ? 0 : SWEEP_ROUNDS); round++) {
    for (const n of [1, SWEEP_MANY]) {
      const prefix = `sw${round}n${n}-`
      await installForSweep(env, f, prefix, n)
      const result = await action(`sweep of ${n}, round ${round}`, {
        ...env.baseInputs(),
        ...SECRET_SIGN_IN,
        command: 'sweep',
        'connector-name': `${prefix}*`
      })
      const swept = JSON.parse(result.outputs.swept ?? '{}') as { releases?: string[]; nodes?: string[] }
      if (swept.releases?.length !== n || swept.nodes?.length !== n) throw new Error(`sweep of ${n} took ${result.outputs.swept ?? 'nothing'}`)
      ;(n === 1 ? t.sweepOne : t.sweepMany).push(result.durationMs)
    }
  }
  // Then v2 through its chart (it reshapes the cluster: Azure CNI in a VNet of its own).
  if (!ONLY_BUSY) v2Rows = await benchV2Helm(env, env.cluster.adminKubeconfigPath, f.helm, timedToken)
  // Last: it leaves the cluster busy.
  if (ONLY !== 'v2') busyRows = await benchBusyCluster(env, process.env.BENCH_ACTION_DIR)
} catch (err) {
  failed = true
  console.error(err)
} finally {
  await env.stop()
  await rm(f.dir, { recursive: true, force: true })
  if (signedIn) await rm(signedIn, { recursive: true, force: true })
}

if (t.actionInstall.length > 0) {
  const path = median(t.token) + median(t.connector) + median(t.samples)
  console.log(`\n${ROUNDS} rounds, medians (seconds), warm tool cache, provider registered, os-type Both with samples\n`)
  console.log('| measure | scripted 2019 procedure | action | action / script |\n|---|---|---|---|')
  console.log(
    `| install | ${secs(median(t.scriptInstall))} | ${secs(median(t.actionInstall))} | ${(median(t.actionInstall) / median(t.scriptInstall)).toFixed(2)}x |`
  )
  console.log(
    `| remove | ${secs(median(t.scriptRemove))} | ${secs(median(t.actionRemove))} | ${(median(t.actionRemove) / median(t.scriptRemove)).toFixed(2)}x |`
  )
  console.log(`\n| critical path part (each timed alone) | seconds |\n|---|---|`)
  console.log(`| one token (client credentials) | ${secs(median(t.token))} |`)
  console.log(`| slower OS: helm upgrade --install, node Ready | ${secs(median(t.connector))} |`)
  console.log(`| samples applied and running (both) | ${secs(median(t.samples))} |`)
  console.log(`| sum | ${secs(path)} |`)
  console.log(`\naction install / critical path: ${(median(t.actionInstall) / path).toFixed(2)}x`)
  console.log(`re-run that changes nothing: ${secs(median(t.converge))} s`)
  console.log(`dist/ start to first log line: ${secs(median(t.dist))} s\n`)
  const removePath = median(t.removeToken) + median(t.removeConnector)
  console.log(`| remove: critical path part (each timed alone) | seconds |\n|---|---|`)
  console.log(`| one token (client credentials) | ${secs(median(t.removeToken))} |`)
  console.log(`| slower OS: sample's container group gone, helm uninstall, node deleted, namespace gone | ${secs(median(t.removeConnector))} |`)
  console.log(`| sum | ${secs(removePath)} |`)
  console.log(`\nslower OS per round (seconds): ${t.removeParts.join('; ')}`)
  console.log(`\naction remove / critical path: ${(median(t.actionRemove) / removePath).toFixed(2)}x\n`)
  if (t.sweepMany.length > 0) {
    console.log(`| sweep (Linux connectors, nodes Ready), ${SWEEP_ROUNDS} rounds | seconds |\n|---|---|`)
    console.log(`| sweep of 1 | ${secs(median(t.sweepOne))} |`)
    console.log(`| sweep of ${SWEEP_MANY} | ${secs(median(t.sweepMany))} |`)
    console.log(`\nsweep of ${SWEEP_MANY} / sweep of 1: ${(median(t.sweepMany) / median(t.sweepOne)).toFixed(2)}x`)
  }
  console.log(`ARM 429 answers to the action, all runs: ${processes.reduce((n, p) => n + p.throttled, 0)}\n`)
  console.log('| action run | az | helm | kubectl | kubelogin | ARM 429 | phases |\n|---|---|---|---|---|---|---|')
  for (const p of processes)
    console.log(`| ${p.run} | ${p.counts.az} | ${p.counts.helm} | ${p.counts.kubectl} | ${p.counts.kubelogin} | ${p.throttled} | ${p.phases} |`)
  console.log('\nThe script starts az 2 times (login, aks get-credentials), helm 2, kubectl 7 per install; az 2, helm 2, kubectl 3 per removal.')
}
if (v2Rows) printV2Rows(v2Rows)
if (busyRows.length > 0) printBusyRows(busyRows)
process.exit(failed ? 1 : 0)
