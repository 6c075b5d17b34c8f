// kubelogin (https://github.com/Azure/kubelogin), the exec credential plugin an Entra ID
// cluster's user kubeconfig runs. The action downloads it (checksum-verified, cached like
// kubectl and helm) and converts the kubeconfig it hands to later steps to the login mode
// that fits how the action signed in, so `kubectl` in a later step works without a prompt.
// No secret is ever written into that kubeconfig: kubelogin reads it from the later
// step's environment.
import * as path from 'node:path'
import { promises as fs } from 'node:fs'
import * as core from '@actions/core'
import * as tc from '@actions/tool-cache'
import { KubeConfig } from '@kubernetes/client-node'
import type { SignIn } from '../azure/azure-login.js'
import { DEFAULT_KUBELOGIN_BASE_URL } from '../tools/versions.js'
import { runChecked } from '../tools/process.js'
import { currentTarget, downloadVerified, exe, type Target } from '../tools/install.js'

const CONVERT_TIMEOUT_MS = 60_000

/** The release asset: `kubelogin-<os>-<arch>.zip`, Windows named `win` (kubelogin release.yml). */
export function kubeloginAssetName(t: Target): string {
  return `kubelogin-${t.platform === 'windows' ? 'win' : t.platform}-${t.arch}.zip`
}

export function kubeloginUrl(base: string, version: string, t: Target): string {
  return `${base.replace(/\/+$/, '')}/${version}/${kubeloginAssetName(t)}`
}

/** Where the binary sits inside the zip: `bin/<os>_<arch>/kubelogin[.exe]`. */
export function kubeloginPathInZip(t: Target): string {
  return path.join('bin', `${t.platform}_${t.arch}`, `kubelogin${exe(t)}`)
}

/** kubelogin of `version`; returns the binary's full path. */
export async function installKubelogin(version: string, baseUrl: string, target?: Target): Promise<string> {
  const t = target ?? currentTarget()
  const binary = `kubelogin${exe(t)}`
  const cached = tc.find('kubelogin', version, t.arch)
  if (cached) {
    core.info(`kubelogin ${version} found in the tool cache`)
    return path.join(cached, binary)
  }
  const url = kubeloginUrl(baseUrl, version, t)
  // The release's checksum file is `sha256sum` output: `<digest>  <file name>`.
  const archive = await downloadVerified('kubelogin', version, url, `${url}.sha256`)
  const extracted = await tc.extractZip(archive)
  const inner = path.join(extracted, kubeloginPathInZip(t))
  await fs.access(inner).catch(() => {
    throw new Error(
      `The kubelogin archive from ${url} has no ${kubeloginPathInZip(t)}; is kubelogin-download-base-url laid out like ${DEFAULT_KUBELOGIN_BASE_URL}?`
    )
  })
  const dir = await tc.cacheFile(inner, binary, 'kubelogin', version, t.arch)
  await fs.rm(archive, { force: true })
  await fs.rm(extracted, { recursive: true, force: true })
  return path.join(dir, binary)
}

/** Public Azure's name in az; other clouds' authority hosts are passed to kubelogin explicitly. */
const PUBLIC_CLOUD = 'azurecloud'

/**
 * `kubelogin convert-kubeconfig` arguments for the way the action signed in. Client and
 * tenant are passed explicitly: without them kubelogin keeps the kubeconfig's own
 * `--client-id`, which is the az CLI's public client (kubelogin converter/convert.go).
 */
export function convertArgs(signIn: SignIn, kubeconfig: string, cloud: { name: string; authority: string }): string[] {
  const args = ['convert-kubeconfig', '--kubeconfig', kubeconfig]
  if (signIn.kind === 'ambient') return [...args, '--login', 'azurecli']
  const who = ['--client-id', signIn.clientId, '--tenant-id', signIn.tenantId]
  if (signIn.kind === 'secret') return [...args, '--login', 'spn', ...who]
  // workloadidentity takes no --environment; outside public Azure it needs the authority host
  // (an ADFS-style authority, Azure Stack, has no workload identity federation to point at).
  const authority = cloud.authority.replace(/\/+$/, '')
  const host = cloud.name.toLowerCase() !== PUBLIC_CLOUD && !/\/adfs$/i.test(authority) ? ['--authority-host', `${authority}/`] : []
  return [...args, '--login', 'workloadidentity', ...who, ...host]
}

/** What a later step must have in its environment for the converted kubeconfig, for the log and README. */
export function laterStepNeeds(signIn: SignIn): string {
  if (signIn.kind === 'secret')
    return 'AAD_SERVICE_PRINCIPAL_CLIENT_SECRET (or AZURE_CLIENT_SECRET) set to the client secret, e.g. `env: AZURE_CLIENT_SECRET: ${{ secrets.AZURE_CLIENT_SECRET }}`'
  if (signIn.kind === 'oidc') return 'nothing more: kubelogin requests a GitHub ID token itself (the job keeps `permissions: id-token: write`)'
  return 'the az session this step used (same runner user and AZURE_CONFIG_DIR)'
}

/**
 * The variable that moves kubelogin's token cache. `get-token` keeps tokens in azidentity's
 * persistent cache (kubelogin v0.2.21 pkg/internal/token/persistentcache.go: cache.New), which
 * on Linux lives in $XDG_CACHE_HOME/.IdentityService/msal.cache (azidentity/cache v0.4.0
 * cache_linux.go, cache.go). Pointed into the job's work dir, no token outlives the job.
 * Windows and macOS have no such variable: see kubeloginCacheNote.
 */
export function cacheDirVariable(platform: Target['platform']): string | undefined {
  return platform === 'linux' ? 'XDG_CACHE_HOME' : undefined
}

/**
 * Where kubelogin keeps later steps' cluster tokens when no variable can move it into the
 * job's work dir (azidentity/cache v0.4.0): on Windows %LOCALAPPDATA%\.IdentityService\msal.cache
 * (the folder comes from KnownFolderPath(FOLDERID_LocalAppData), which ignores the
 * LocalAppData variable; DPAPI-encrypted), on macOS the login Keychain item "msal.cache"
 * (account MSALCache). Both are shared by every azidentity program of the runner user, so
 * the post step does not delete them (it would sign other tools out); a GitHub-hosted
 * runner's machine goes with the job. Undefined on Linux, where the cache is job-scoped.
 */
export function kubeloginCacheNote(platform: Target['platform']): string | undefined {
  const place =
    platform === 'windows'
      ? '%LOCALAPPDATA%\\.IdentityService\\msal.cache (encrypted with DPAPI for the runner user)'
      : platform === 'darwin'
        ? 'the runner user\'s login Keychain, item "msal.cache" (account MSALCache)'
        : undefined
  if (!place) return undefined
  return (
    `kubelogin keeps the cluster tokens of later steps in ${place}, shared with other Azure SDK programs of this user, so the post step leaves it. ` +
    'On a GitHub-hosted runner it goes with the machine; on a self-hosted runner a token stays there until it expires (an Entra access token lasts 60 to 90 minutes).'
  )
}

interface ExecConfig {
  command?: string
  env?: Array<{ name: string; value: string }> | null
}

/**
 * Rewrites the user entry of `kubeconfig` (in place) to run `kubelogin get-token` in the
 * fitting login mode, with its token cache in `cacheDir` (deleted with the job's files).
 */
export async function convertKubeconfig(
  kubelogin: string,
  kubeconfig: string,
  signIn: SignIn,
  cloud: { name: string; authority: string },
  cacheDir: string,
  target?: Target
): Promise<void> {
  await runChecked('kubelogin convert-kubeconfig', kubelogin, convertArgs(signIn, kubeconfig, cloud), { timeoutMs: CONVERT_TIMEOUT_MS })
  const variable = cacheDirVariable((target ?? currentTarget()).platform)
  if (!variable) return
  const kc = new KubeConfig()
  kc.loadFromString(await fs.readFile(kubeconfig, 'utf8'))
  for (const user of kc.getUsers()) {
    const exec = user.exec as ExecConfig | undefined
    if (!exec?.command?.toLowerCase().includes('kubelogin')) continue
    exec.env = [...(exec.env ?? []).filter(e => e.name !== variable), { name: variable, value: cacheDir }]
  }
  // JSON is YAML: kubectl, helm and kubelogin read it as they read the YAML kubelogin wrote.
  await fs.writeFile(kubeconfig, kc.exportConfig(), { mode: 0o600 })
}

/** The audience kubelogin asks GitHub for in workloadidentity mode, whatever the step used (v0.2.21 pkg/internal/token/githubactionscredential.go). */
export const KUBELOGIN_GITHUB_AUDIENCE = 'api://AzureADTokenExchange'

/**
 * Why an OIDC sign-in with its own `audience` cannot give later steps a working kubeconfig
 * on an Entra ID cluster, or undefined. The action signs in to the cluster with its own
 * token, but the kubeconfig it hands on runs kubelogin, which asks GitHub for an ID token
 * for api://AzureADTokenExchange only; a federated credential that accepts just the custom
 * audience then refuses every later kubectl (AADSTS700212/700213).
 */
export function laterStepAudienceProblem(signIn: SignIn, entraKubeconfig: boolean): string | undefined {
  if (!entraKubeconfig || signIn.kind !== 'oidc' || signIn.audience === KUBELOGIN_GITHUB_AUDIENCE) return undefined
  return (
    `audience: "${signIn.audience}" cannot serve later steps on this cluster with Microsoft Entra ID integration: the kubeconfig the action hands on runs kubelogin, ` +
    `which asks GitHub for an ID token for ${KUBELOGIN_GITHUB_AUDIENCE} only, so every later kubectl would fail (AADSTS700212/700213) unless the app's federated credential also accepts ${KUBELOGIN_GITHUB_AUDIENCE}. ` +
    `Add ${KUBELOGIN_GITHUB_AUDIENCE} to the federated credential's audiences and leave audience at its default.`
  )
}
