// The busy-cluster rows of `npm run bench`: what the action costs on a cluster full of
// pods that are not its own (BUSY_PODS in BUSY_NAMESPACES, on BUSY_NODES nodes), against the
// same operation on the empty cluster. Install, remove and sweep, each BUSY_ROUNDS times,
// timed, with the peak resident memory of the action's own process (VmHWM from
// /proc/self/status, written at exit by a preload; helm's and az's processes are their own). The goal: each
// operation within 1.1x the time and 1.2x the peak memory of the empty cluster's.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SECRET_SIGN_IN, type LocalAks } from './local-aks/local-aks.js'
import { runMain, type RunOptions } from './local-aks/runner.js'
import { pool } from '../src/util/async.js'

export const BUSY_PODS = 3000
export const BUSY_NAMESPACES = 20
export const BUSY_NODES = 200
const BUSY_ROUNDS = Number(process.env.BENCH_BUSY_ROUNDS ?? 3)
/** How many objects are created at once while the cluster is filled. */
const FILL_CONCURRENCY = 32

/**
 * Writes the process's peak RSS (kB) to BENCH_MAXRSS_FILE when it exits. VmHWM, not getrusage's
 * ru_maxrss: Linux carries a forked child's high-water mark across execve (fs/exec.c,
 * exec_mmap: setmax_mm_hiwater_rss into signal->maxrss), so ru_maxrss of the action's process
 * starts at the bench process's own size when it was forked (300 MB held by the parent shows as
 * a 297 MB maxRSS in a child whose VmHWM is 40 MB). VmHWM belongs to the address space exec made.
 */
const MAXRSS_PRELOAD = `process.on('exit', () => { try { const fs = require('node:fs'); let kb = process.resourceUsage().maxRSS; try { kb = Number(/VmHWM:\\s*(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) } catch {} fs.writeFileSync(process.env.BENCH_MAXRSS_FILE, String(kb)) } catch {} })\n`

export interface BusyRow {
  operation: string
  emptyMs: number
  busyMs: number
  emptyKb: number
  busyKb: number
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/**
 * Fills the cluster: nodes with no kubelet (NotReady; pods bound to them tolerate every taint,
 * so the node lifecycle controller never evicts them) and pods bound to them, spread over
 * namespaces, as a busy CI cluster's other workloads look to the API server.
 */
export async function fillCluster(env: LocalAks): Promise<void> {
  const all = async <T>(items: T[], make: (item: T) => Promise<unknown>): Promise<void> => {
    const failed = (await pool(items, FILL_CONCURRENCY, make)).filter(r => !r.ok)
    if (failed.length > 0) throw new Error(`filling the cluster: ${failed.length} creations failed, e.g. ${JSON.stringify(failed[0])}`)
  }
  const nodes = Array.from({ length: BUSY_NODES }, (_, i) => `busy-node-${i}`)
  await all(nodes, name => env.core.createNode({ body: { metadata: { name, labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': name } } } }))
  const namespaces = Array.from({ length: BUSY_NAMESPACES }, (_, i) => `busy-${i}`)
  await all(namespaces, name => env.core.createNamespace({ body: { metadata: { name } } }))
  const pods = Array.from({ length: BUSY_PODS }, (_, i) => i)
  await all(pods, i =>
    env.core.createNamespacedPod({
      namespace: namespaces[i % BUSY_NAMESPACES]!,
      body: {
        metadata: { name: `app-${i}`, labels: { app: `app-${i % 50}` } },
        spec: {
          nodeName: nodes[i % BUSY_NODES],
          tolerations: [{ operator: 'Exists' }],
          containers: [{ name: 'app', image: 'mcr.microsoft.com/azuredocs/aci-helloworld', env: [{ name: 'INDEX', value: String(i) }] }]
        }
      }
    })
  )
}

/** Runs the action once with its peak RSS recorded; fails loudly when the step fails. */
async function measured(env: LocalAks, inputs: Record<string, string>, actionDir?: string): Promise<{ ms: number; kb: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-rss-'))
  try {
    const preload = join(dir, 'maxrss.cjs')
    const out = join(dir, 'maxrss')
    await writeFile(preload, MAXRSS_PRELOAD)
    const opts: RunOptions = {
      inputs: { ...env.baseInputs(), ...SECRET_SIGN_IN, ...inputs },
      env: { ...env.actionEnv, NODE_OPTIONS: `--require ${preload}`, BENCH_MAXRSS_FILE: out },
      toolCache: env.toolCache,
      actionDir
    }
    const { job, result } = await runMain(opts)
    await job.cleanup()
    if (result.exitCode !== 0) throw new Error(`${JSON.stringify(inputs)} failed:\n${result.log.slice(-3000)}`)
    return { ms: result.durationMs, kb: Number(await readFile(out, 'utf8')) }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Install, remove and sweep of one Linux connector, BUSY_ROUNDS times: their median time and peak RSS. */
async function operations(env: LocalAks, actionDir?: string): Promise<Record<string, { ms: number; kb: number }>> {
  const runs: Record<string, Array<{ ms: number; kb: number }>> = { install: [], remove: [], sweep: [] }
  for (let round = 1; round <= BUSY_ROUNDS; round++) {
    runs.install!.push(await measured(env, { 'connector-name': 'busy' }, actionDir))
    runs.remove!.push(await measured(env, { command: 'remove', 'connector-name': 'busy' }, actionDir))
    await measured(env, { 'connector-name': 'busy' }, actionDir)
    runs.sweep!.push(await measured(env, { command: 'sweep', 'connector-name': 'busy' }, actionDir))
  }
  return Object.fromEntries(Object.entries(runs).map(([op, xs]) => [op, { ms: median(xs.map(x => x.ms)), kb: median(xs.map(x => x.kb)) }]))
}

/** The rows: each operation on the empty cluster, then the same once it is busy. `actionDir`: another build of the action (BENCH_ACTION_DIR), for a before/after. */
export async function benchBusyCluster(env: LocalAks, actionDir?: string): Promise<BusyRow[]> {
  const empty = await operations(env, actionDir)
  const t0 = Date.now()
  await fillCluster(env)
  console.log(`filled the cluster with ${BUSY_PODS} pods in ${BUSY_NAMESPACES} namespaces on ${BUSY_NODES} nodes in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const busy = await operations(env, actionDir)
  return Object.keys(empty).map(operation => ({
    operation,
    emptyMs: empty[operation]!.ms,
    busyMs: busy[operation]!.ms,
    emptyKb: empty[operation]!.kb,
    busyKb: busy[operation]!.kb
  }))
}

export function printBusyRows(rows: BusyRow[]): void {
  const s = (ms: number): string => (ms / 1000).toFixed(2)
  const mb = (kb: number): string => (kb / 1024).toFixed(0)
  console.log(
    `\n| busy cluster (${BUSY_PODS} pods, ${BUSY_NAMESPACES} namespaces, ${BUSY_NODES} nodes) vs empty, ${BUSY_ROUNDS} rounds, medians | empty s | busy s | time ratio (goal ≤ 1.10) | empty peak RSS MB | busy peak RSS MB | memory ratio (goal ≤ 1.20) |\n|---|---|---|---|---|---|---|`
  )
  for (const r of rows)
    console.log(
      `| ${r.operation} | ${s(r.emptyMs)} | ${s(r.busyMs)} | ${(r.busyMs / r.emptyMs).toFixed(2)}x | ${mb(r.emptyKb)} | ${mb(r.busyKb)} | ${(r.busyKb / r.emptyKb).toFixed(2)}x |`
    )
}
