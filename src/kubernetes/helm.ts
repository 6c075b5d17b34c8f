// Running helm: with the kubeconfig the action hands it and none of the job's settings that
// would point it elsewhere or make it print values, values through a 0600 file that is
// deleted once helm has read them, each process bounded in time.
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import { lastLines, runProcess, whenCancelled } from '../tools/process.js'

/** The longest one helm command may take (an install waits for nothing: the action waits itself). */
export const HELM_TIMEOUT_MS = 5 * 60_000

export interface HelmContext {
  helm: string
  kubeconfig: string
  /** Where the 0600 values file lives for the seconds helm needs it. */
  workDir: string
}

/**
 * helm's own environment settings (helm v4.3.1 pkg/cli/environment.go, pkg/cmd/root.go)
 * that the action must not inherit from the job: HELM_DEBUG makes helm print the release's
 * values and manifest (the chart's Secret holds the client secret in base64); the HELM_KUBE*
 * settings and HELM_NAMESPACE would point it at another cluster, user or namespace than the
 * kubeconfig the action hands it; HELM_DRIVER would keep releases elsewhere than the Secrets
 * teardown reads; HELM_MAX_HISTORY would override --history-max. Registry, repository,
 * cache and plugin settings pass through (a private OCI chart needs them).
 */
export const HELM_ENV_OVERRIDES = /^HELM_(DEBUG|NAMESPACE|KUBE[A-Z_]*|DRIVER|MAX_HISTORY)$/

export function helmEnv(ctx: HelmContext, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const kept = Object.fromEntries(Object.entries(env).filter(([name]) => !HELM_ENV_OVERRIDES.test(name.toUpperCase())))
  return { ...kept, KUBECONFIG: ctx.kubeconfig }
}

/** Values go through a 0600 file that is deleted right after helm read it (they hold the client secret). */
export async function withValuesFile<T>(workDir: string, values: Record<string, unknown>, use: (file: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(workDir, 'values-'))
  const file = path.join(dir, 'values.json')
  // A cancel ends helm and exits without running this finally: the hook removes the values (they may hold a secret).
  const unhook = whenCancelled(() => fs.rm(dir, { recursive: true, force: true }))
  try {
    await fs.writeFile(file, JSON.stringify(values), { mode: 0o600 })
    return await use(file)
  } finally {
    unhook()
    await fs.rm(dir, { recursive: true, force: true })
  }
}

/** `helm uninstall`; false when the release was not there. */
export async function uninstallRelease(ctx: HelmContext, release: string, helmNamespace: string): Promise<boolean> {
  const result = await runProcess(ctx.helm, ['uninstall', release, '--namespace', helmNamespace, '--kubeconfig', ctx.kubeconfig], {
    env: helmEnv(ctx),
    timeoutMs: HELM_TIMEOUT_MS
  })
  if (result.code === 0) {
    core.info(lastLines(result.stdout, 3))
    return true
  }
  if (/not found/i.test(result.stderr)) return false
  throw new Error(`helm uninstall ${release} failed${result.timedOut ? ' (timed out)' : ''}:\n${lastLines(result.stderr, 10)}`)
}
