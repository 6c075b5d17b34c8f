// Azure sign-in. When the action signs in itself it uses a private AZURE_CONFIG_DIR
// under RUNNER_TEMP (so it never clobbers another job's ~/.azure on a shared runner),
// hands secrets to az through 0600 files with az's `@file` argument form (never in
// argv), and deletes that directory when the step ends: on Linux az keeps the service
// principal's secret there as plain JSON.
import { promises as fs } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as core from '@actions/core'
import type { SignIn } from './inputs.js'
import { runProcess, lastLines, type ProcessResult } from './process.js'

const AZ_TIMEOUT_MS = 3 * 60_000
/**
 * Files of the runner's az config that a private one keeps: registered clouds and
 * settings, and the command index (without it az spends ~1.5 s rebuilding it).
 */
const CARRIED_CONFIG_FILES = ['clouds.config', 'config', 'commandIndex.json']

export interface AzSession {
  az: string
  /** Environment for every az process of this run. */
  env: NodeJS.ProcessEnv
  /** The private config dir, when the action signed in itself (deleted by `signOut`). */
  privateConfigDir?: string
  /** What signed in, for the summary (never a secret). */
  description: string
}

/** Where az keeps its state for processes that do not set AZURE_CONFIG_DIR. */
export function ambientConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.AZURE_CONFIG_DIR || path.join(os.homedir(), '.azure')
}

/** Telemetry makes every az call start a background upload; the action does not need it. */
export function azEnv(base: NodeJS.ProcessEnv, configDir?: string): NodeJS.ProcessEnv {
  return { ...base, ...(configDir ? { AZURE_CONFIG_DIR: configDir } : {}), AZURE_CORE_COLLECT_TELEMETRY: 'no', AZURE_CORE_NO_COLOR: 'true' }
}

/**
 * The `az login` arguments for a service principal. The secret or federated token is
 * never an argument: az reads `@<file>` values from the file.
 */
export function loginArgs(signIn: Exclude<SignIn, { kind: 'ambient' }>, secretFile: string): string[] {
  const credential = signIn.kind === 'secret' ? `--password=@${secretFile}` : `--federated-token=@${secretFile}`
  return ['login', '--service-principal', '--username', signIn.clientId, '--tenant', signIn.tenantId, credential, '--output', 'json', '--only-show-errors']
}

/**
 * The private config starts from the runner's: registered clouds (private endpoints,
 * sovereign clouds) stay usable, and `[cloud] name` selects the requested cloud without
 * an extra `az cloud set` process.
 */
export function privateConfigText(ambientConfig: string | undefined, cloud: string): string {
  const kept = (ambientConfig ?? '').split(/^(?=\[)/m).filter(section => !/^\[cloud\]/.test(section.trim()) && section.trim())
  return [...kept.map(s => s.trimEnd() + '\n'), `[cloud]\nname = ${cloud}\n`].join('\n')
}

async function preparePrivateConfigDir(parentDir: string, cloud: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(parentDir, 'azure-config-'))
  await fs.chmod(dir, 0o700)
  const ambient = ambientConfigDir()
  for (const name of CARRIED_CONFIG_FILES) {
    const text = await fs.readFile(path.join(ambient, name), 'utf8').catch(() => undefined)
    if (name === 'config') await fs.writeFile(path.join(dir, name), privateConfigText(text, cloud), { mode: 0o600 })
    else if (text !== undefined) await fs.writeFile(path.join(dir, name), text, { mode: 0o600 })
  }
  return dir
}

/** Known sign-in failures and what the user should do about them. */
const AADSTS_HINTS: Array<[RegExp, string]> = [
  [/AADSTS7000215/, 'The client secret is wrong: use the secret\'s Value (not its Secret ID) from the app registration.'],
  [/AADSTS7000222/, 'The client secret has expired: create a new one for the app registration and update the repository secret.'],
  [/AADSTS700016/, 'No application with this client ID exists in the tenant: check client-id and tenant-id.'],
  [/AADSTS90002|AADSTS900023/, 'The tenant was not found: check tenant-id.'],
  [/AADSTS70021|AADSTS700213|AADSTS700212/, 'No federated credential matches this workflow: add one whose subject matches the repository, branch or environment of this job.'],
  [/AADSTS700024|AADSTS700027/, 'The federated token was rejected (expired or not signed as expected): request a fresh one; check the audience input.']
]

export function signInHint(stderr: string): string {
  return AADSTS_HINTS.find(([re]) => re.test(stderr))?.[1] ?? 'Check the credentials and that the service principal exists in the tenant.'
}

/** az ends a failed service-principal login with "Please run: az login", which misleads in CI. */
export function withoutInteractiveAdvice(stderr: string): string {
  return stderr
    .split(/\r?\n/)
    .filter(l => !/^(Interactive authentication is needed\b.*|Please run:|az login)$/.test(l.trim()))
    .join('\n')
}

async function withSecretFile<T>(dir: string, secret: string, use: (file: string) => Promise<T>): Promise<T> {
  const file = path.join(dir, `.credential-${process.pid}-${Date.now()}`)
  await fs.writeFile(file, secret, { mode: 0o600 })
  try {
    return await use(file)
  } finally {
    await fs.rm(file, { force: true })
  }
}

async function federatedToken(audience: string): Promise<string> {
  if (!process.env.ACTIONS_ID_TOKEN_REQUEST_URL) {
    throw new Error(
      'client-id and tenant-id are set without client-secret, so the action signs in with OpenID Connect, but the job has no ID token: ' +
        'add `permissions: id-token: write` to the job (or workflow), or set client-secret.'
    )
  }
  const token = await core.getIDToken(audience)
  core.setSecret(token)
  return token
}

/** Signs in as the inputs say; returns the session every later az call uses. */
export async function signIn(az: string, signInInput: SignIn, cloud: string, parentDir: string): Promise<AzSession> {
  if (signInInput.kind === 'ambient') {
    return {
      az,
      env: azEnv(process.env),
      description: `the runner's existing az session (${ambientConfigDir()})`
    }
  }
  const secret = signInInput.kind === 'secret' ? signInInput.clientSecret : await federatedToken(signInInput.audience)
  const how = signInInput.kind === 'secret' ? 'client secret' : 'OIDC federated token'
  const configDir = await preparePrivateConfigDir(parentDir, cloud)
  const env = azEnv(process.env, configDir)
  let result: ProcessResult
  try {
    result = await withSecretFile(configDir, secret, file => runProcess(az, loginArgs(signInInput, file), { env, timeoutMs: AZ_TIMEOUT_MS }))
  } catch (err) {
    await fs.rm(configDir, { recursive: true, force: true })
    throw err
  }
  if (result.code !== 0) {
    await fs.rm(configDir, { recursive: true, force: true })
    throw new Error(
      `Azure sign-in failed for client ${signInInput.clientId} in tenant ${signInInput.tenantId} (${how}, cloud ${cloud}).\n` +
        `${signInHint(result.stderr)}\naz said:\n${lastLines(withoutInteractiveAdvice(result.stderr), 8)}`
    )
  }
  return {
    az,
    env,
    privateConfigDir: configDir,
    description: `service principal ${signInInput.clientId} (${how})`
  }
}

/** Removes the private config dir (tokens, cached secret). Safe to call twice. */
export async function signOut(session: AzSession | undefined): Promise<void> {
  if (session?.privateConfigDir) await fs.rm(session.privateConfigDir, { recursive: true, force: true })
}

/** Runs az in the session and parses its JSON output; the output is never logged. */
export async function azJson<T>(session: AzSession, args: string[]): Promise<T> {
  const result: ProcessResult & { timedOut: boolean } = await runProcess(session.az, [...args, '--output', 'json', '--only-show-errors'], {
    env: session.env,
    timeoutMs: AZ_TIMEOUT_MS
  })
  if (result.code !== 0) {
    const notLoggedIn = /az login|Please run 'az login'|No subscription found/i.test(result.stderr)
    throw new Error(
      `az ${args.slice(0, 2).join(' ')} failed${result.timedOut ? ' (timed out)' : ''}.` +
        (notLoggedIn
          ? ' The runner has no az session: set creds, or client-id + tenant-id (+ client-secret), or sign in with Azure/login in an earlier step.'
          : '') +
        `\n${lastLines(result.stderr, 8)}`
    )
  }
  return JSON.parse(result.stdout) as T
}
