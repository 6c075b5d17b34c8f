// Gets kubectl, helm and az: from the tool cache or PATH when the right version is
// already there (no network), otherwise downloaded from the official hosts (or a mirror)
// and checked against the published SHA-256 before anything is cached.
import { createHash } from 'node:crypto'
import { createReadStream, promises as fs } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as core from '@actions/core'
import * as io from '@actions/io'
import * as tc from '@actions/tool-cache'
import { HttpClient } from '@actions/http-client'
import { runProcess, runChecked } from './process.js'
import { errorText, withTimeout } from '../util/async.js'
import { compareVersions, MIN_AZURE_CLI_VERSION, sameVersion } from './versions.js'

/** Pinned defaults: installing them needs no look-up of the latest version. */
export const DEFAULT_KUBECTL_VERSION = 'v1.34.4'
export const DEFAULT_HELM_VERSION = 'v4.3.1'
/** Pinned az for runners that have none (or too old a one). */
export const DEFAULT_AZURE_CLI_VERSION = '2.67.0'

/** Bounds for network and process work done here. */
const LATEST_LOOKUP_TIMEOUT_MS = 10_000
/** kubectl is ~60 MB; a download that has not finished in this time has stalled. */
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000
const VERSION_PROBE_TIMEOUT_MS = 60_000
const PIP_INSTALL_TIMEOUT_MS = 20 * 60_000
/** Unpacking helm (~20 MB) takes about a second. */
const EXTRACT_TIMEOUT_MS = 2 * 60_000
const USER_AGENT = 'aks-aci-connector-action'

export type Platform = 'linux' | 'darwin' | 'windows'
export type Arch = 'amd64' | 'arm64'

export interface Target {
  platform: Platform
  arch: Arch
}

export function currentTarget(): Target {
  const platform: Platform = process.platform === 'win32' ? 'windows' : process.platform === 'darwin' ? 'darwin' : 'linux'
  const arch = process.arch
  if (arch !== 'x64' && arch !== 'arm64') {
    throw new Error(`This runner's architecture (${arch}) has no kubectl/helm builds used by this action; use an x64 or arm64 runner.`)
  }
  return { platform, arch: arch === 'x64' ? 'amd64' : 'arm64' }
}

export const exe = (t: Target): string => (t.platform === 'windows' ? '.exe' : '')

export function kubectlUrl(base: string, version: string, t: Target): string {
  return `${base}/${version}/bin/${t.platform}/${t.arch}/kubectl${exe(t)}`
}

export function kubectlChecksumUrl(base: string, version: string, t: Target): string {
  return `${kubectlUrl(base, version, t)}.sha256`
}

export function helmArchiveName(version: string, t: Target): string {
  return `helm-${version}-${t.platform}-${t.arch}.${t.platform === 'windows' ? 'zip' : 'tar.gz'}`
}

export function helmUrl(base: string, version: string, t: Target): string {
  return `${base}/${helmArchiveName(version, t)}`
}

export function helmChecksumUrl(base: string, version: string, t: Target): string {
  return `${helmUrl(base, version, t)}.sha256sum`
}

/** Where the latest version is published on each host. */
export function latestVersionUrl(tool: 'kubectl' | 'helm', base: string): string {
  return tool === 'kubectl' ? `${base}/stable.txt` : `${base}/helm-latest-version`
}

/**
 * The hex digest in a published checksum file: kubectl's holds just the digest,
 * helm's `<digest>  <file name>`.
 */
export function parseChecksumFile(text: string): string {
  const digest = text.trim().split(/\s+/)[0]?.toLowerCase() ?? ''
  if (!/^[0-9a-f]{64}$/.test(digest)) {
    throw new Error(`The checksum file does not hold a SHA-256 digest (got "${text.trim().slice(0, 80)}").`)
  }
  return digest
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Fails (and deletes the download) when the file is not what the host published. */
export async function verifyChecksum(file: string, expected: string, url: string): Promise<void> {
  const actual = await sha256File(file)
  if (actual !== expected) {
    await fs.rm(file, { force: true })
    throw new Error(
      `SHA-256 mismatch for ${url}: expected ${expected}, got ${actual}. The download is corrupt or the ` +
        'host serves another file; nothing was cached. Retry, or check the download base URL / mirror.'
    )
  }
}

function http(): HttpClient {
  // http-client honours https_proxy/no_proxy, as the tool cache's own downloads do.
  return new HttpClient(USER_AGENT, undefined, { socketTimeout: LATEST_LOOKUP_TIMEOUT_MS, allowRetries: true, maxRetries: 2 })
}

async function getText(url: string): Promise<string> {
  const response = await http().get(url)
  const body = await response.readBody()
  const status = response.message.statusCode ?? 0
  if (status < 200 || status >= 300) throw new Error(`GET ${url} answered HTTP ${status}`)
  return body
}

/**
 * `latest` -> the host's current version; a failed look-up falls back to the pinned
 * default with a warning, so a flaky mirror does not fail the job.
 */
export async function resolveVersion(tool: 'kubectl' | 'helm', requested: string, base: string, pinned: string): Promise<string> {
  if (requested !== 'latest') return requested
  try {
    const text = (await withTimeout(getText(latestVersionUrl(tool, base)), LATEST_LOOKUP_TIMEOUT_MS)).trim()
    if (!/^v\d+\.\d+\.\d+/.test(text)) throw new Error(`unexpected answer "${text.slice(0, 40)}"`)
    core.info(`Latest ${tool} is ${text}`)
    return text
  } catch (err) {
    core.warning(`Could not look up the latest ${tool} (${errorText(err)}); using the pinned ${pinned}.`)
    return pinned
  }
}

/** The version a binary on PATH reports, or undefined when there is none or it cannot say. */
async function versionOnPath(tool: 'kubectl' | 'helm'): Promise<{ path: string; version: string } | undefined> {
  const found = await io.which(tool, false)
  if (!found) return undefined
  const args = tool === 'kubectl' ? ['version', '--client', '-o', 'json'] : ['version', '--template', '{{.Version}}']
  const result = await runProcess(found, args, { timeoutMs: VERSION_PROBE_TIMEOUT_MS })
  if (result.code !== 0) return undefined
  if (tool === 'helm') return { path: found, version: result.stdout.trim() }
  try {
    const parsed = JSON.parse(result.stdout) as { clientVersion?: { gitVersion?: string } }
    return parsed.clientVersion?.gitVersion ? { path: found, version: parsed.clientVersion.gitVersion } : undefined
  } catch {
    return undefined
  }
}

export interface ToolRequest {
  version: string
  baseUrl: string
  target?: Target
}

/** kubectl of the requested version; returns the binary's full path. */
export async function installKubectl(request: ToolRequest): Promise<string> {
  const t = request.target ?? currentTarget()
  const version = await resolveVersion('kubectl', request.version, request.baseUrl, DEFAULT_KUBECTL_VERSION)
  const binary = `kubectl${exe(t)}`
  const reused = await reuse('kubectl', version, t, binary)
  if (reused) return reused

  const downloaded = await downloadVerified('kubectl', version, kubectlUrl(request.baseUrl, version, t), kubectlChecksumUrl(request.baseUrl, version, t))
  await fs.chmod(downloaded, 0o755)
  const dir = await tc.cacheFile(downloaded, binary, 'kubectl', version, t.arch)
  return path.join(dir, binary)
}

/**
 * Unpacks a .tar.gz into a new directory next to the tool cache's temp files. Not
 * tc.extractTar: it prints its whole tar command line into the step log.
 */
export async function extractTarGz(archive: string): Promise<string> {
  const dest = await fs.mkdtemp(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'extract-'))
  core.debug(`tar xzf ${archive} -C ${dest}`)
  await runChecked('tar', 'tar', ['xzf', archive, '-C', dest], { timeoutMs: EXTRACT_TIMEOUT_MS })
  return dest
}

/** helm of the requested version; returns the binary's full path. */
export async function installHelm(request: ToolRequest): Promise<string> {
  const t = request.target ?? currentTarget()
  const version = await resolveVersion('helm', request.version, request.baseUrl, DEFAULT_HELM_VERSION)
  const binary = `helm${exe(t)}`
  const reused = await reuse('helm', version, t, binary)
  if (reused) return reused

  const url = helmUrl(request.baseUrl, version, t)
  const archive = await downloadVerified('helm', version, url, helmChecksumUrl(request.baseUrl, version, t))
  const extracted = t.platform === 'windows' ? await tc.extractZip(archive) : await extractTarGz(archive)
  const inner = path.join(extracted, `${t.platform}-${t.arch}`, binary)
  await fs.access(inner).catch(() => {
    throw new Error(`The helm archive from ${url} has no ${t.platform}-${t.arch}/${binary}; is the download base URL laid out like get.helm.sh?`)
  })
  const dir = await tc.cacheFile(inner, binary, 'helm', version, t.arch)
  await fs.rm(archive, { force: true })
  await fs.rm(extracted, { recursive: true, force: true })
  return path.join(dir, binary)
}

/** Downloads `url` and checks it against the published SHA-256; a mismatch throws before anything is cached. */
export async function downloadVerified(tool: string, version: string, url: string, checksumUrl: string): Promise<string> {
  core.info(`Downloading ${tool} ${version} from ${url}`)
  const [file, expected] = await Promise.all([
    withTimeout(tc.downloadTool(url), DOWNLOAD_TIMEOUT_MS).catch((err: unknown) => {
      throw new Error(`Could not download ${tool} ${version} from ${url}: ${errorText(err)}. Check the download base URL (mirror) and the runner's network.`)
    }),
    withTimeout(fetchChecksum(checksumUrl), DOWNLOAD_TIMEOUT_MS)
  ])
  await verifyChecksum(file, expected, url)
  return file
}

async function fetchChecksum(url: string): Promise<string> {
  try {
    return parseChecksumFile(await getText(url))
  } catch (err) {
    throw new Error(`Could not get the published checksum ${url}: ${errorText(err)}. The download is not used unverified.`)
  }
}

/** A tool-cache hit, or the same version already on PATH; neither needs the network. */
async function reuse(tool: 'kubectl' | 'helm', version: string, t: Target, binary: string): Promise<string | undefined> {
  const cached = tc.find(tool, version, t.arch)
  if (cached) {
    core.info(`${tool} ${version} found in the tool cache`)
    return path.join(cached, binary)
  }
  const onPath = await versionOnPath(tool)
  if (onPath && sameVersion(onPath.version, version)) {
    core.info(`${tool} ${version} found on PATH at ${onPath.path}`)
    return onPath.path
  }
  return undefined
}

/** The az version an `az version -o json` output names. */
export function parseAzVersion(json: string): string | undefined {
  try {
    const v = (JSON.parse(json) as Record<string, unknown>)['azure-cli']
    return typeof v === 'string' ? v : undefined
  } catch {
    return undefined
  }
}

/**
 * Whether the az on PATH will do: any version >= the minimum when none was asked for,
 * otherwise exactly the one asked for.
 */
export function azSatisfies(found: string, requested: string): boolean {
  if (!requested) return compareVersions(found, MIN_AZURE_CLI_VERSION) >= 0
  return sameVersion(found, requested)
}

async function azVersionOf(az: string): Promise<string | undefined> {
  const result = await runProcess(az, ['version', '-o', 'json', '--only-show-errors'], { timeoutMs: VERSION_PROBE_TIMEOUT_MS })
  return result.code === 0 ? parseAzVersion(result.stdout) : undefined
}

/** The newest azure-cli on PyPI, for `azure-cli-version: latest`. */
async function latestAzVersion(): Promise<string | undefined> {
  try {
    const body = await withTimeout(getText('https://pypi.org/pypi/azure-cli/json'), LATEST_LOOKUP_TIMEOUT_MS)
    return (JSON.parse(body) as { info?: { version?: string } }).info?.version
  } catch (err) {
    core.warning(`Could not look up the latest azure-cli on PyPI (${errorText(err)}).`)
    return undefined
  }
}

/**
 * The az for the runner's own session. Without azure-cli-version the session's own az is
 * used as it is: found on PATH without starting it (a version probe costs a Python start).
 */
export async function findAzureCli(requested: string): Promise<{ path: string; version?: string }> {
  if (requested) return installAzureCli(requested)
  const onPath = await io.which('az', false)
  if (!onPath) {
    throw new Error(
      "No client-id/creds are set, so the action uses the runner's az session, but there is no az on PATH: " +
        'sign in with Azure/login in an earlier step, or pass creds, or client-id + tenant-id (+ client-secret) to this action.'
    )
  }
  return { path: onPath }
}

/**
 * az: the one on PATH if it satisfies the request, else a cached venv install, else a
 * fresh `pip install azure-cli==<v>` into a venv in the tool cache (Linux, macOS).
 */
export async function installAzureCli(requested: string): Promise<{ path: string; version: string }> {
  const onPath = await io.which('az', false)
  const pathVersion = onPath ? await azVersionOf(onPath) : undefined
  let wanted = requested
  if (requested === 'latest') {
    wanted = (await latestAzVersion()) ?? ''
    if (!wanted) core.warning(`Using any az >= ${MIN_AZURE_CLI_VERSION} instead of the latest.`)
  }
  if (onPath && pathVersion && azSatisfies(pathVersion, wanted)) {
    core.info(`az ${pathVersion} found on PATH at ${onPath}`)
    return { path: onPath, version: pathVersion }
  }
  const version = wanted || DEFAULT_AZURE_CLI_VERSION
  if (onPath) core.info(`az on PATH is ${pathVersion ?? 'of unknown version'}; ${wanted ? `${version} was asked for` : `need >= ${MIN_AZURE_CLI_VERSION}`}.`)
  const arch = process.arch
  const scripts = process.platform === 'win32' ? 'Scripts' : 'bin'
  const azName = process.platform === 'win32' ? 'az.bat' : 'az'
  const cached = tc.find('azure-cli', version, arch)
  if (cached) return { path: path.join(cached, scripts, azName), version }
  if (process.platform === 'win32') {
    throw new Error(
      `az ${version} is not on this Windows runner and the action installs az with pip only on Linux and macOS. ` +
        'Install the Azure CLI MSI in an earlier step, or leave azure-cli-version empty to use the one on PATH.'
    )
  }
  return { path: path.join(await pipInstallAzureCli(version, arch), scripts, azName), version }
}

/**
 * A venv cannot be moved after creation (its scripts name their interpreter by path), so
 * it is built in place in the tool cache and marked complete the way tool-cache does.
 */
async function pipInstallAzureCli(version: string, arch: string): Promise<string> {
  const cacheRoot = process.env.RUNNER_TOOL_CACHE || path.join(os.homedir(), '.cache', 'tool-cache')
  const dir = path.join(cacheRoot, 'azure-cli', version, arch)
  const python = (await io.which('python3', false)) || (await io.which('python', false))
  if (!python)
    throw new Error(`az ${version} is needed, but there is no python3 on this runner to install it with pip; install the Azure CLI in an earlier step.`)
  core.info(`Installing azure-cli==${version} with pip into ${dir} (takes a few minutes; cached for later jobs on this runner)`)
  await fs.rm(dir, { recursive: true, force: true })
  await fs.mkdir(path.dirname(dir), { recursive: true })
  await runChecked('python3 -m venv', python, ['-m', 'venv', dir], { timeoutMs: VERSION_PROBE_TIMEOUT_MS })
  await runChecked('pip install azure-cli', path.join(dir, 'bin', 'pip'), ['install', '--disable-pip-version-check', '--quiet', `azure-cli==${version}`], {
    timeoutMs: PIP_INSTALL_TIMEOUT_MS
  })
  await fs.writeFile(`${dir}.complete`, '')
  return dir
}
