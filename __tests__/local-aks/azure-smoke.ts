/**
 * Proof that the Azure double works with the REAL az CLI and with a direct Node HTTPS call.
 * Run: npx tsx __tests__/local-aks/azure-smoke.ts   (exits non-zero on the first failed check)
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startAzureDouble } from './azure.js'
import type { AzureDouble } from './azure.js'
import { ensureAzCli, prepareRunnerAzConfig, runAz, writeSecretFile } from './az-cli.js'
import type { AzResult } from './az-cli.js'

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..')
const TENANT = '72f988bf-0000-4000-8000-000000000001'
const SUB = { id: '0b1f6471-1bf0-4dda-aec3-111122223333', name: 'Local Subscription' }
const SP = { clientId: '6d8e7a1c-2222-4333-8444-555566667777', secret: 'local~Secret.value_1234567890' }
const FED = { clientId: '9a0b1c2d-3333-4444-8555-666677778888', federatedSubject: 'repo:octo/repo:ref:refs/heads/main' }
const RG = 'rg-local'
const CLUSTER = 'aks-local'

const kubeconfig = (user: string): string => `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://127.0.0.1:6443
  name: ${CLUSTER}
contexts:
- context:
    cluster: ${CLUSTER}
    user: ${user}
  name: ${CLUSTER}
current-context: ${CLUSTER}
users:
- name: ${user}
  user:
    token: not-a-real-token
`

const timings: Array<{ what: string; ms: number }> = []

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`CHECK FAILED: ${what}`)
  console.log(`  ok  ${what}`)
}

async function az(azPath: string, what: string, args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<AzResult> {
  const r = await runAz(azPath, args, env, timeoutMs)
  timings.push({ what, ms: r.ms })
  console.log(`- az ${what}: exit ${String(r.code)} in ${r.ms} ms`)
  return r
}

const json = <T>(r: AzResult): T => JSON.parse(r.stdout) as T

/** The GitHub-like OIDC endpoint, as @actions/core getIDToken calls it (plain http: global fetch is fine). */
async function fetchIdToken(double: AzureDouble): Promise<string> {
  const res = await fetch(`${double.oidc.requestUrl}&audience=${encodeURIComponent('api://AzureADTokenExchange')}`, {
    headers: { Authorization: `Bearer ${double.oidc.requestToken}` }
  })
  const body = (await res.json()) as { value?: string }
  if (!res.ok || !body.value) throw new Error(`OIDC endpoint said ${res.status}`)
  return body.value
}

/** GET the cluster from a child node with NODE_EXTRA_CA_CERTS set at startup, via @actions/http-client. */
function directArmCall(double: AzureDouble, armBase: string, token: string): Promise<{ code: number | null; out: string }> {
  const script = `
    import { HttpClient } from '@actions/http-client'
    const c = new HttpClient('azure-smoke')
    const url = new URL(process.env.ARM_PATH, process.env.ARM_BASE).toString()
    try {
      const r = await c.getJson(url, { Authorization: 'Bearer ' + process.env.ARM_TOKEN })
      console.log(JSON.stringify({ status: r.statusCode, name: r.result?.name, fqdn: r.result?.properties?.fqdn, location: r.result?.location }))
    } catch (e) {
      // http-client throws on >= 400; report the status and ARM's error code, not the stack
      console.log(JSON.stringify({ status: e.statusCode, error: e.result?.error?.code }))
    }
  `
  const path = `/subscriptions/${SUB.id}/resourceGroups/${RG}/providers/Microsoft.ContainerService/managedClusters/${CLUSTER}?api-version=2023-01-01`
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      env: { ...process.env, NODE_EXTRA_CA_CERTS: double.caPath, ARM_BASE: armBase, ARM_PATH: path, ARM_TOKEN: token },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('close', (code) => { clearTimeout(timer); resolvePromise({ code, out }) })
  })
}

async function main(): Promise<void> {
  const azPath = await ensureAzCli()
  const double = await startAzureDouble({
    tenantId: TENANT,
    subscription: SUB,
    principals: [SP, FED],
    cluster: {
      resourceGroup: RG, name: CLUSTER, location: 'East US', fqdn: '127.0.0.1:6443', nodeResourceGroup: `MC_${RG}_${CLUSTER}_eastus`,
      enableRBAC: true, kubernetesVersion: '1.32.4', kubeletIdentityClientId: randomUUID(),
      userKubeconfig: kubeconfig('clusterUser_rg-local_aks-local'), adminKubeconfig: kubeconfig('clusterAdmin_rg-local_aks-local')
    },
    providerRegistrationDelayMs: 3000
  })
  const work = await mkdtemp(join(tmpdir(), 'azure-smoke-'))
  try {
    console.log(`double at ${double.url}, az at ${azPath}`)
    const t0 = Date.now()
    const { env } = await prepareRunnerAzConfig(azPath, double, join(work, 'runner-azure'))
    timings.push({ what: 'prepareRunnerAzConfig (cloud register + cloud set)', ms: Date.now() - t0 })

    // 1. Wrong secret: what the user would see.
    const wrong = await writeSecretFile('not-the-secret')
    const bad = await az(azPath, 'login (wrong secret)', ['login', '--service-principal', '-u', SP.clientId, '--tenant', TENANT, '--password', `@${wrong.file}`], env)
    await wrong.cleanup()
    console.log('    stderr was:\n' + bad.stderr.split('\n').map((l) => `      | ${l}`).join('\n'))
    check(bad.code !== 0 && bad.stderr.includes('AADSTS7000215'), 'wrong secret is refused with AADSTS7000215')

    // 2. Unknown client id.
    const unknownSecret = await writeSecretFile('x')
    const unknown = await az(azPath, 'login (unknown client id)', ['login', '--service-principal', '-u', randomUUID(), '--tenant', TENANT, '--password', `@${unknownSecret.file}`], env)
    await unknownSecret.cleanup()
    console.log('    stderr was:\n' + unknown.stderr.split('\n').map((l) => `      | ${l}`).join('\n'))
    check(unknown.code !== 0 && unknown.stderr.includes('AADSTS700016'), 'unknown client id is refused with AADSTS700016')

    // 3. Federated token from the OIDC endpoint, via @file.
    const idToken = await fetchIdToken(double)
    const fedFile = await writeSecretFile(idToken, 'idtoken')
    const fed = await az(azPath, 'login --federated-token @file', ['login', '--service-principal', '-u', FED.clientId, '--tenant', TENANT, '--federated-token', `@${fedFile.file}`, '-o', 'json'], env)
    await fedFile.cleanup()
    check(fed.code === 0, `federated login succeeds (${fed.stderr.trim()})`)
    check(json<Array<{ id: string }>>(fed)[0]?.id === SUB.id, 'federated login lists the subscription')

    // 4. Secret via @file (last, so it is the session the rest uses).
    const good = await writeSecretFile(SP.secret)
    const ok = await az(azPath, 'login --password @file', ['login', '--service-principal', '-u', SP.clientId, '--tenant', TENANT, '--password', `@${good.file}`, '-o', 'json'], env)
    await good.cleanup()
    check(ok.code === 0, `secret login succeeds (${ok.stderr.trim()})`)
    const subs = json<Array<{ id: string; tenantId: string; isDefault: boolean; user: { name: string; type: string } }>>(ok)
    check(subs[0]?.id === SUB.id && subs[0].isDefault && subs[0].user.type === 'servicePrincipal', 'secret login lists the subscription as default')

    const acct = await az(azPath, 'account show', ['account', 'show', '-o', 'json'], env)
    check(acct.code === 0 && json<{ id: string; tenantId: string }>(acct).tenantId === TENANT, 'account show gives the tenant')

    const tok = await az(azPath, 'account get-access-token', ['account', 'get-access-token', '--subscription', SUB.id, '-o', 'json'], env)
    check(tok.code === 0, `get-access-token succeeds (${tok.stderr.trim()})`)
    const token = json<{ accessToken: string; expiresOn: string; tokenType: string }>(tok)
    console.log(`    expiresOn ${token.expiresOn}, tokenType ${token.tokenType}`)
    check(token.accessToken.split('.').length === 3, 'access token is JWT-shaped')

    const tok2 = await az(azPath, 'get-access-token --resource https://management.azure.com/', ['account', 'get-access-token', '--resource', 'https://management.azure.com/', '-o', 'json'], env)
    check(tok2.code === 0, 'get-access-token for https://management.azure.com/ succeeds')

    // The action's own flow: a private config dir seeded with the runner's cloud files only.
    const priv = join(work, 'action-azure')
    await mkdir(priv, { mode: 0o700 })
    for (const f of ['clouds.config', 'config']) await copyFile(join(env['AZURE_CONFIG_DIR'] ?? '', f), join(priv, f))
    const privEnv = { ...env, AZURE_CONFIG_DIR: priv }
    const privSecret = await writeSecretFile(SP.secret)
    const privLogin = await az(azPath, 'login in a private dir (copied clouds.config + config)', ['login', '--service-principal', '-u', SP.clientId, '--tenant', TENANT, `--password=@${privSecret.file}`, '-o', 'none'], privEnv)
    await privSecret.cleanup()
    check(privLogin.code === 0, `login with --password=@file in a private dir seeded from the runner dir (${privLogin.stderr.trim()})`)

    // A missing @file is NOT an error for az: the literal '@/path' becomes the secret.
    const noFile = await az(azPath, 'login --password @missing-file', ['login', '--service-principal', '-u', SP.clientId, '--tenant', TENANT, '--password', `@${join(work, 'missing')}`, '-o', 'none'], privEnv)
    check(noFile.code !== 0 && noFile.stderr.includes('AADSTS7000215'), 'a missing @file is sent literally (AADSTS7000215): callers must check the file first')

    const cloud = await az(azPath, 'cloud show', ['cloud', 'show', '-o', 'json'], env)
    const armBase = json<{ name: string; endpoints: { resourceManager: string } }>(cloud).endpoints.resourceManager
    console.log(`    endpoints.resourceManager = ${armBase}`)
    check(armBase === `${double.url}/`, 'cloud show points at the double')

    const show = await az(azPath, 'aks show', ['aks', 'show', '-g', RG, '-n', CLUSTER, '-o', 'json'], env)
    check(show.code === 0, `aks show succeeds (${show.stderr.trim()})`)
    const mc = json<{ location: string; fqdn: string; nodeResourceGroup: string; enableRbac: boolean }>(show)
    check(mc.location === 'eastus' && mc.fqdn === '127.0.0.1:6443' && mc.enableRbac, `aks show body (location ${mc.location}, fqdn ${mc.fqdn})`)

    const missing = await az(azPath, 'aks show (unknown cluster)', ['aks', 'show', '-g', RG, '-n', 'nope', '-o', 'json'], env)
    console.log(`    stderr was: ${missing.stderr.trim()}`)
    check(missing.code !== 0 && missing.stderr.includes('ResourceNotFound'), 'unknown cluster gives ResourceNotFound')

    const creds = await az(azPath, 'aks get-credentials --file -', ['aks', 'get-credentials', '-g', RG, '-n', CLUSTER, '--file', '-'], env)
    check(creds.code === 0 && creds.stdout.includes('clusterUser_rg-local_aks-local'), `aks get-credentials prints the user kubeconfig (${creds.stderr.trim()})`)
    const admin = await az(azPath, 'aks get-credentials --admin --file -', ['aks', 'get-credentials', '--admin', '-g', RG, '-n', CLUSTER, '--file', '-'], env)
    check(admin.code === 0 && admin.stdout.includes('clusterAdmin_rg-local_aks-local'), 'aks get-credentials --admin prints the admin kubeconfig')

    const before = await az(azPath, 'provider show', ['provider', 'show', '-n', 'Microsoft.ContainerInstance', '--query', 'registrationState', '-o', 'tsv'], env)
    check(before.stdout.trim() === 'NotRegistered', 'provider starts NotRegistered')
    const reg = await az(azPath, 'provider register --wait', ['provider', 'register', '-n', 'Microsoft.ContainerInstance', '--wait'], env, 90_000)
    check(reg.code === 0 && double.state().providerState === 'Registered' && double.state().registerCalls === 1, `provider register --wait ends Registered (${reg.ms} ms; az sleeps 10 s between polls)`)

    // Throttling: az (azure-core) honours Retry-After and retries.
    double.knobs.failNext(1, 429, 1)
    const throttled = await az(azPath, 'aks show (one 429 first)', ['aks', 'show', '-g', RG, '-n', CLUSTER, '--query', 'name', '-o', 'tsv'], env)
    check(throttled.code === 0 && double.requests.some((r) => r.status === 429), 'az retries after a 429 with Retry-After')

    // Direct HTTPS from Node with the token az gave, against resourceManager from cloud show.
    const direct = await directArmCall(double, armBase, token.accessToken)
    console.log(`    child node said: ${direct.out.trim()}`)
    const d = JSON.parse(direct.out) as { status: number; fqdn: string; location: string }
    check(direct.code === 0 && d.status === 200 && d.fqdn === '127.0.0.1:6443', 'direct @actions/http-client GET of the cluster with the az token')

    const anon = await directArmCall(double, armBase, 'not-a-token')
    const a = JSON.parse(anon.out) as { status: number; error: string }
    check(a.status === 401 && a.error === 'InvalidAuthenticationToken', 'ARM refuses a token it did not issue (401 InvalidAuthenticationToken)')

    console.log('\nrequests seen:')
    for (const r of double.requests) console.log(`  ${r.status} ${r.method} ${r.path}`)
    console.log('\naz timings:')
    for (const t of timings) console.log(`  ${String(t.ms).padStart(6)} ms  ${t.what}`)
    console.log('\nAZURE DOUBLE SMOKE: PASS')
  } finally {
    await double.stop()
    await rm(work, { recursive: true, force: true })
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e)
  process.exitCode = 1
})
