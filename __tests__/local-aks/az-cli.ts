/**
 * The real Azure CLI against the Azure double: make sure `az` exists, and prepare a
 * "runner-level" AZURE_CONFIG_DIR in which the double is a registered, active cloud -
 * the state a self-hosted runner would be in after an admin ran `az cloud register`.
 */
import { accessSync, constants } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import type { AzureDouble } from './azure.js'
import { runCommand } from './proc.js'

export interface AzResult {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** The audience a token for ARM is asked for; the double's cloud reuses public Azure's resource ids. */
export const LOCAL_CLOUD_AD_RESOURCE = 'https://management.core.windows.net/'

/** az on PATH (or /usr/bin/az), else undefined. */
function findAz(): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).concat('/usr/bin')
  for (const d of dirs) {
    const candidate = join(d, 'az')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** Path of az; installs Debian's azure-cli when missing (needs root and the apt mirror). */
export async function ensureAzCli(): Promise<string> {
  const found = findAz()
  if (found) return found
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (!isRoot || !findOnPath('apt-get')) {
    throw new Error(
      'The Azure CLI (az) is not installed and cannot be installed here (needs root and apt-get). Install it: apt-get install azure-cli, or pip install azure-cli.'
    )
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'azure-cli']]) {
    // Bounded (a slow mirror must not hang the run) and asynchronous (servers may share this process).
    const r = await runCommand('apt-get', args, { env, timeoutMs: 15 * 60_000 })
    if (r.code !== 0) throw new Error(`apt-get ${args.join(' ')} failed (exit ${String(r.code)}):\n${r.stderr.slice(-2000)}`)
  }
  const installed = findAz()
  if (!installed) throw new Error('apt-get installed azure-cli but az is still not on PATH')
  return installed
}

function findOnPath(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(delimiter).some(d => {
    try {
      accessSync(join(d, cmd), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

/**
 * Run az with `env` on top of the current environment, bounded by `timeoutMs` (proc.ts).
 * Resolves with the exit code and both outputs; rejects only when it ran out of time.
 */
export async function runAz(az: string, args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<AzResult> {
  const started = Date.now()
  const r = await runCommand(az, args, { env: { ...process.env, ...env }, timeoutMs })
  return { ...r, ms: Date.now() - started }
}

async function mustAz(az: string, args: string[], env: Record<string, string>): Promise<AzResult> {
  const r = await runAz(az, args, env)
  if (r.code !== 0) throw new Error(`az ${args.slice(0, 2).join(' ')} failed (${String(r.code)}): ${r.stderr.trim()}`)
  return r
}

/** The environment a process needs to use the double through az or directly. */
export function localAzureEnv(double: AzureDouble, configDir: string): Record<string, string> {
  return {
    AZURE_CONFIG_DIR: configDir,
    // python requests (az) trusts only this bundle; fine, the double is all az talks to.
    REQUESTS_CA_BUNDLE: double.caPath,
    // Node reads this at startup only: child processes (the action) get it, this process does not.
    NODE_EXTRA_CA_CERTS: double.caPath,
    AZURE_CORE_COLLECT_TELEMETRY: 'no'
  }
}

/**
 * A fresh AZURE_CONFIG_DIR at `dir` with the double registered as cloud `double.cloudName`
 * and active. The action copies `clouds.config` and `config` from here into its private dir.
 */
export async function prepareRunnerAzConfig(az: string, double: AzureDouble, dir: string): Promise<{ env: Record<string, string> }> {
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true, mode: 0o700 })
  // Written before az first runs so it never tries telemetry or the survey prompt; az keeps the section.
  await writeFile(join(dir, 'config'), '[core]\ncollect_telemetry = no\nsurvey_message = no\n\n[output]\nshow_survey_link = no\n', { mode: 0o600 })
  const env = localAzureEnv(double, dir)
  await mustAz(
    az,
    [
      'cloud',
      'register',
      '-n',
      double.cloudName,
      '--endpoint-resource-manager',
      `${double.url}/`,
      // '/adfs' makes MSAL skip instance discovery against login.microsoftonline.com (az 2.45 has no switch for it).
      '--endpoint-active-directory',
      `${double.url}/adfs`,
      '--endpoint-active-directory-resource-id',
      LOCAL_CLOUD_AD_RESOURCE,
      '--endpoint-active-directory-graph-resource-id',
      'https://graph.windows.net/',
      '--endpoint-management',
      LOCAL_CLOUD_AD_RESOURCE,
      '--profile',
      'latest'
    ],
    env
  )
  await mustAz(az, ['cloud', 'set', '-n', double.cloudName], env)
  return { env }
}

/** Write `content` to a fresh 0600 file in a 0700 temp dir; the caller removes the dir. */
export async function writeSecretFile(content: string, name = 'secret'): Promise<{ file: string; cleanup: () => Promise<void> }> {
  const d = await mkdtemp(join(tmpdir(), 'az-secret-'))
  await chmod(d, 0o700)
  const file = join(d, name)
  await writeFile(file, content, { mode: 0o600 })
  return { file, cleanup: () => rm(d, { recursive: true, force: true }) }
}

/**
 * Sign a service principal in at env.AZURE_CONFIG_DIR, as a user would have done on a
 * self-hosted runner (the "ambient session"). The secret goes via `@file`, never argv.
 */
export async function azLoginAmbient(
  az: string,
  env: Record<string, string>,
  principal: { clientId: string; secret: string; tenantId: string }
): Promise<void> {
  const secret = await writeSecretFile(principal.secret)
  try {
    await mustAz(
      az,
      ['login', '--service-principal', '--username', principal.clientId, '--tenant', principal.tenantId, '--password', `@${secret.file}`, '--output', 'none'],
      env
    )
  } finally {
    await secret.cleanup()
  }
}
