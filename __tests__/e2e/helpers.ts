// Shared by the end-to-end tests: run the built action as the runner does against the
// local AKS, and look at what it left in the cluster.
import { readdir } from 'node:fs/promises'
import { gunzipSync, gzipSync } from 'node:zlib'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect } from 'vitest'
import type { V1Node } from '@kubernetes/client-node'
import { runJob, runMain, type JobStatus, type StepResult } from '../local-aks/runner.js'
import { IDS, SECRET_SIGN_IN, startLocalAks, type LocalAks, type LocalAksOptions } from '../local-aks/local-aks.js'
import { LINGERING_EXIT_MESSAGE } from '../../src/tools/process.js'
import { pollUntil } from '../../src/util/async.js'

export const SECRETS = [IDS.clientSecret, IDS.connectorClientSecret]

/**
 * The prologue of every e2e file: a local AKS started before its tests (one per file: files
 * run one by one) and stopped after them. `ready` gets it once it is up (keep it, set knobs).
 */
export function useLocalAks(options: Omit<LocalAksOptions, 'log'>, ready: (env: LocalAks) => unknown): void {
  let env: LocalAks | undefined
  beforeAll(async () => {
    env = await startLocalAks({ log: m => console.log(`[local-aks] ${m}`), ...options })
    await ready(env)
  })
  afterAll(async () => {
    await env?.stop()
  })
}

export const secretSignIn = SECRET_SIGN_IN

/** Every step must end by itself: a connection left open would hold a real job until its timeout. */
function expectCleanExit(step: StepResult | null): void {
  expect(step?.log ?? '', 'the step kept a connection open after its work was done').not.toContain(LINGERING_EXIT_MESSAGE)
}

export async function job(
  env: LocalAks,
  inputs: Record<string, string>,
  opts: { failLaterStep?: boolean; jobStatus?: JobStatus; toolCache?: string; extraEnv?: Record<string, string> } = {}
) {
  const result = await runJob({
    inputs: { ...env.baseInputs(), ...inputs },
    env: { ...env.actionEnv, ...opts.extraEnv },
    toolCache: opts.toolCache ?? env.toolCache,
    failLaterStep: opts.failLaterStep,
    jobStatus: opts.jobStatus,
    timeoutMs: 8 * 60_000
  })
  expectCleanExit(result.main)
  expectCleanExit(result.post)
  return result
}

export async function mainOnly(env: LocalAks, inputs: Record<string, string>, toolCache?: string, extraEnv: Record<string, string> = {}) {
  const run = await runMain({
    inputs: { ...env.baseInputs(), ...inputs },
    env: { ...env.actionEnv, ...extraEnv },
    toolCache: toolCache ?? env.toolCache,
    timeoutMs: 8 * 60_000
  })
  expectCleanExit(run.result)
  return run
}

/** The step succeeded; otherwise show its log so the failure says why. */
export function expectSuccess(step: StepResult | null): asserts step is StepResult {
  expect(step, 'step did not run').not.toBeNull()
  const log =
    step?.log
      .split('\n')
      .filter(l => !l.startsWith('::debug::'))
      .join('\n') ?? ''
  if (step && step.exitCode !== 0) expect.fail(`step failed (exit ${step.exitCode}):\n${log.slice(-6000)}`)
}

/** No secret in the log (even before masking), the summary, the outputs, or any process argument. */
export async function expectNoSecretLeak(env: LocalAks, steps: Array<StepResult | null>, extraSecrets: string[] = []): Promise<void> {
  const argv = await env.argvLog()
  for (const secret of [...SECRETS, ...extraSecrets]) {
    for (const step of steps) {
      if (!step) continue
      // The runner consumes ::add-mask:: commands; every other line is what a user could see.
      const visible = step.rawLog
        .split('\n')
        .filter(l => !l.startsWith('::add-mask::'))
        .join('\n')
      expect(visible, 'secret in the log').not.toContain(secret)
      expect(step.summary, 'secret in the summary').not.toContain(secret)
      expect(JSON.stringify(step.outputs), 'secret in an output').not.toContain(secret)
    }
    expect(argv, 'secret in a process argument').not.toContain(secret)
  }
}

export async function node(env: LocalAks, name: string): Promise<V1Node | undefined> {
  try {
    return await env.core.readNode({ name })
  } catch {
    return undefined
  }
}

export function isReady(n: V1Node | undefined): boolean {
  return n?.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') ?? false
}

/** Helm 3 and 4 keep release records as Secrets of type helm.sh/release.v1. */
export async function releasesIn(env: LocalAks, namespace = 'default'): Promise<string[]> {
  const list = await env.core.listNamespacedSecret({ namespace, fieldSelector: 'type=helm.sh/release.v1' })
  return [...new Set(list.items.map(s => s.metadata?.labels?.name ?? ''))].sort()
}

export async function namespaceExists(env: LocalAks, name: string): Promise<boolean> {
  try {
    await env.core.readNamespace({ name })
    return true
  } catch {
    return false
  }
}

/** Everything the action may leave in RUNNER_TEMP after its post step: must be nothing of ours. */
export async function leftoverFiles(runnerTemp: string): Promise<string[]> {
  return (await readdir(runnerTemp)).filter(f => /^(azure-config-|kubeconfig-|aci-connector-)/.test(f))
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const v = await pollUntil(async () => (await fn()) || undefined, Date.now() + timeoutMs, 500)
  if (v === undefined) throw new Error(`timed out waiting for ${what}`)
  return v
}

/**
 * Rewrites the newest revision of a Helm release as `change` says (Helm keeps each
 * revision as a Secret: base64 of gzipped JSON, plus labels), e.g. to leave it as a helm
 * stopped mid-way would, or to make it older.
 */
export async function rewriteRelease(
  env: LocalAks,
  release: string,
  change: (body: { info: { status: string; first_deployed: string } }) => void
): Promise<void> {
  const list = await env.core.listNamespacedSecret({ namespace: 'default', labelSelector: `owner=helm,name=${release}` })
  const newest = list.items.sort((a, b) => Number(b.metadata?.labels?.version) - Number(a.metadata?.labels?.version))[0]
  if (!newest?.metadata?.name || !newest.data?.release) throw new Error(`no Helm release ${release}`)
  const body = JSON.parse(gunzipSync(Buffer.from(Buffer.from(newest.data.release, 'base64').toString(), 'base64')).toString()) as {
    info: { status: string; first_deployed: string }
  }
  change(body)
  const encoded = Buffer.from(gzipSync(JSON.stringify(body)).toString('base64')).toString('base64')
  await env.core.replaceNamespacedSecret({
    name: newest.metadata.name,
    namespace: 'default',
    body: { ...newest, metadata: { ...newest.metadata, labels: { ...newest.metadata.labels, status: body.info.status } }, data: { release: encoded } }
  })
}

/** Marks the newest revision of a Helm release with `status`, as a helm stopped mid-way leaves it. */
export function setReleaseStatus(env: LocalAks, release: string, status: string): Promise<void> {
  return rewriteRelease(env, release, body => (body.info.status = status))
}

/**
 * Command lines of the processes on this machine whose arguments contain `text`. Async: the
 * local AKS's servers run in the test's own process and must keep serving meanwhile.
 */
export async function processesMatching(text: string): Promise<string[]> {
  try {
    const { stdout } = await promisify(execFile)('pgrep', ['-af', '--', text], { encoding: 'utf8', timeout: 10_000 })
    return stdout.trim().split('\n').filter(Boolean)
  } catch {
    // pgrep exits 1 when nothing matches.
    return []
  }
}

/**
 * A DaemonSet that tolerates the virtual nodes' taint and lands one pod on each Linux
 * virtual node: a drain skips DaemonSet pods (as `kubectl drain --ignore-daemonsets`), so
 * their container groups outlive the connector and only a removal's own ARM pass deletes them.
 */
export async function createNodeAgentDaemonSet(env: LocalAks): Promise<void> {
  await env.apps.createNamespacedDaemonSet({
    namespace: 'default',
    body: {
      metadata: { name: 'node-agent' },
      spec: {
        selector: { matchLabels: { app: 'node-agent' } },
        template: {
          metadata: { labels: { app: 'node-agent' } },
          spec: {
            nodeSelector: { type: 'virtual-kubelet', 'kubernetes.io/os': 'linux' },
            tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Exists' }],
            containers: [{ name: 'agent', image: 'mcr.microsoft.com/azuredocs/aci-helloworld', resources: { requests: { cpu: '1', memory: '1Gi' } } }]
          }
        }
      }
    }
  })
}

/** A container group put in ACI over ARM with the connector's tags (azure-aci v1.6.4 pkg/provider/aci.go), as one left behind would be. */
export function putContainerGroup(env: LocalAks, resourceGroup: string, name: string, tags: Record<string, string>, location = 'eastus'): void {
  const reply = env.azure.aci.handle({
    method: 'PUT',
    resourceGroup,
    rest: ['containerGroups', name],
    query: new URLSearchParams(),
    body: JSON.stringify({
      location,
      tags,
      properties: {
        osType: 'Linux',
        containers: [{ name: 'c', properties: { image: 'mcr.microsoft.com/azuredocs/aci-helloworld', resources: { requests: { cpu: 1, memoryInGB: 1.5 } } } }]
      }
    })
  })
  expect(reply.status).toBe(201)
}

/** Sign-in with the OIDC principal (GitHub's federated token), as the README's examples do. */
export const OIDC_SIGN_IN = { 'client-id': IDS.oidcClientId, 'tenant-id': IDS.tenantId }

/** What Virtual Nodes v2's extension and the add-on need: Azure CNI node subnet, Calico, a 4-core 16 GB pool, workload identity. */
export const V2_READY_CLUSTER = {
  networkPlugin: 'azure' as const,
  networkPolicy: 'calico' as const,
  vmSize: 'Standard_D4s_v5',
  workloadIdentity: true,
  authorizedIpRanges: [] as string[]
}

/** One main step signed in with OIDC; its job's files cleaned up afterwards. */
export async function oidcStep(env: LocalAks, inputs: Record<string, string>): Promise<StepResult> {
  const { job: j, result } = await mainOnly(env, { ...OIDC_SIGN_IN, ...inputs })
  await j.cleanup()
  return result
}

/** Every write the action sent ARM so far (PUT, DELETE, and POSTs other than credentials and tokens), to compare before and after a step. */
export function armWrites(env: LocalAks): string[] {
  return env.azure.requests
    .filter(r => r.method === 'PUT' || r.method === 'DELETE' || (r.method === 'POST' && !/listCluster\w*Credential|oauth2|token/i.test(r.path)))
    .map(r => `${r.method} ${r.path}`)
}
