// Builds (once, then caches) every binary the local AKS environment needs,
// using only package registries: Kubernetes, helm and the azure-aci connector (with its
// init-validation program and its chart) and kubelogin from the Go module proxy, etcd, openssl,
// iproute2, zip and unzip from Debian.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { homedir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { delimiter, join } from 'node:path'
import { runChecked, runCommand } from './proc.js'
import { pollUntil } from '../../src/util/async.js'

export const K8S_VERSION = 'v1.34.4'
export const HELM4_VERSION = 'v4.3.1'
export const HELM3_VERSION = 'v3.22.0'
/** github.com/virtual-kubelet/azure-aci: the connector, its init container and its chart (charts/virtual-kubelet). */
export const AZURE_ACI_VERSION = 'v1.6.4'
/** github.com/Azure/kubelogin: the exec plugin of Entra ID clusters' kubeconfigs (v0.2.22 needs Go 1.26.10). */
export const KUBELOGIN_VERSION = 'v0.2.21'

export interface Binaries {
  kubeApiserver: string
  kubeControllerManager: string
  kubeScheduler: string
  kubectl: string
  etcd: string
  helm4: string
  helm3: string
  /** azure-aci cmd/virtual-kubelet: the connector (image mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet). */
  aciConnector: string
  /** azure-aci cmd/init-container (image mcr.microsoft.com/oss/virtual-kubelet/init-validation). */
  aciInitValidation: string
  /** The module's charts/virtual-kubelet: the chart published as virtual-kubelet-azure-aci. */
  aciChartDir: string
  /** kubelogin built from its module, and its release zip (bin/linux_amd64/kubelogin, as release.yml zips it). */
  kubelogin: string
  kubeloginZip: string
  /** stand-ins/pause: what the containers of Virtual Nodes v2's closed images run here. */
  v2Pause: string
}

type Log = (msg: string) => void

const here = fileURLToPath(new URL('.', import.meta.url))

const GO_TIMEOUT_MS = 45 * 60_000
const K8S_CMDS = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl'] as const

/** Cache root, outside the repo so `git clean` and checkouts keep it. */
export function cacheRoot(): string {
  if (process.env.AKS_LOCAL_CACHE) return process.env.AKS_LOCAL_CACHE
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache')
  return join(base, 'aks-aci-connector-action')
}

function binPath(name: string, version: string, binary: string): string {
  return join(cacheRoot(), 'bin', `${name}-${version}`, binary)
}

function goEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, CGO_ENABLED: '0', ...extra }
}

async function requireGo(): Promise<void> {
  const r = await runCommand('go', ['version'], { timeoutMs: 30_000 }).catch(() => undefined)
  if (!r || r.code !== 0) {
    throw new Error(
      'Go is required to build the local AKS test binaries (kube-apiserver, helm, virtual-kubelet) ' +
        'but `go` was not found on PATH. Install Go >= 1.26.6 (https://go.dev/dl/; kubelogin v0.2.21 needs it) and retry.'
    )
  }
}

/** Runs a go command with a progress line every 20 s so long builds don't look hung. */
function go(args: string[], cwd: string, log: Log, what: string, env?: NodeJS.ProcessEnv): Promise<string> {
  return runChecked('go', args, {
    cwd,
    env: env ?? goEnv(),
    timeoutMs: GO_TIMEOUT_MS,
    progressMs: 20_000,
    onProgress: s => log(`  ... still ${what} (${s}s)`)
  })
}

/**
 * Builds into a temp name and renames, so an interrupted build never leaves a
 * half-written binary that a later run would take for a cached one.
 */
async function buildAtomically(out: string, build: (tmpOut: string) => Promise<void>): Promise<void> {
  mkdirSync(join(out, '..'), { recursive: true })
  const tmp = `${out}.tmp-${process.pid}`
  rmSync(tmp, { force: true })
  await build(tmp)
  chmodSync(tmp, 0o755)
  renameSync(tmp, out)
}

async function timed<T>(log: Log, what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now()
  log(`building ${what} ...`)
  const r = await fn()
  log(`built ${what} in ${((Date.now() - t0) / 1000).toFixed(1)}s`)
  return r
}

// ---------------------------------------------------------------- Kubernetes

/** `go mod download` prints the module's directory in the module cache. */
async function moduleDir(mod: string, log: Log): Promise<string> {
  const json = await go(['mod', 'download', '-json', mod], cacheRoot(), log, `downloading ${mod}`)
  const info = JSON.parse(json) as { Dir?: string; Error?: string }
  if (!info.Dir) throw new Error(`go mod download ${mod}: ${info.Error ?? 'no Dir'}`)
  return info.Dir
}

/** The staging modules k8s.io/kubernetes replaces with ./staging/...; they must be pinned to v0.X.Y. */
function stagingModules(kubernetesGoMod: string): string[] {
  const mods = new Set<string>()
  for (const m of kubernetesGoMod.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s+=>\s+\.\/staging\//gm)) mods.add(m[1])
  return [...mods].sort()
}

function stagingVersion(k8sVersion: string): string {
  return k8sVersion.replace(/^v1\./, 'v0.')
}

/**
 * The wrapper module: same settings as the warm-up build in /tmp/warm/k8s so
 * the shared Go build cache is hit. `go install k8s.io/kubernetes/cmd/...@v`
 * does not work because k8s.io/kubernetes has replace directives.
 */
async function prepareK8sModule(dir: string, log: Log): Promise<void> {
  if (existsSync(join(dir, 'go.sum')) && existsSync(join(dir, '.tidy-ok'))) return
  mkdirSync(dir, { recursive: true })
  const kdir = await moduleDir(`k8s.io/kubernetes@${K8S_VERSION}`, log)
  const staging = stagingModules(readFileSync(join(kdir, 'go.mod'), 'utf8'))
  if (staging.length < 20) throw new Error(`found only ${staging.length} staging modules in k8s.io/kubernetes go.mod`)
  const sv = stagingVersion(K8S_VERSION)
  const goMod = [
    'module local/k8sbuild',
    '',
    'go 1.24.0',
    '',
    'godebug default=go1.24',
    '',
    `require k8s.io/kubernetes ${K8S_VERSION}`,
    '',
    'replace (',
    ...staging.map(m => `\t${m} => ${m} ${sv}`),
    ')',
    ''
  ].join('\n')
  const tools = ['//go:build tools', 'package k8sbuild', '', 'import (', ...K8S_CMDS.map(c => `\t_ "k8s.io/kubernetes/cmd/${c}"`), ')', ''].join('\n')
  writeFileSync(join(dir, 'go.mod'), goMod)
  writeFileSync(join(dir, 'tools.go'), tools)
  log(`  wrapper module ${dir}: ${staging.length} staging replaces, running go mod tidy`)
  await go(['mod', 'tidy', '-e'], dir, log, 'resolving Kubernetes dependencies', goEnv({ GOFLAGS: '-mod=mod' }))
  writeFileSync(join(dir, '.tidy-ok'), new Date().toISOString())
}

/** Pids of Kubernetes go builds that are not ours (the warm-up), to wait for. */
async function foreignK8sBuilds(): Promise<number[]> {
  const r = await runCommand('pgrep', ['-f', 'go build .*k8s.io/kubernetes/cmd/'], { timeoutMs: 10_000 })
  return r.stdout
    .split('\n')
    .map(s => Number(s.trim()))
    .filter(p => p > 0 && p !== process.pid)
}

/**
 * Two concurrent Kubernetes builds on a small machine each take as long as
 * both in sequence; waiting lets ours reuse the other's build cache.
 */
async function waitForOtherK8sBuilds(log: Log): Promise<void> {
  let announced = 0
  let pids: number[] = []
  const finished = await pollUntil(
    async () => {
      pids = await foreignK8sBuilds()
      if (pids.length === 0) return true
      if (Date.now() - announced > 30_000) {
        log(`  waiting for another Kubernetes go build to finish (pids ${pids.join(',')}); ours will reuse its cache`)
        announced = Date.now()
      }
      return undefined
    },
    Date.now() + GO_TIMEOUT_MS,
    5000
  )
  if (!finished) throw new Error(`another Kubernetes build (pids ${pids.join(',')}) is still running`)
}

async function ensureK8s(log: Log): Promise<Record<(typeof K8S_CMDS)[number], string>> {
  const paths = Object.fromEntries(K8S_CMDS.map(c => [c, binPath('kubernetes', K8S_VERSION, c)])) as Record<(typeof K8S_CMDS)[number], string>
  const missing = K8S_CMDS.filter(c => !existsSync(paths[c]))
  if (missing.length === 0) return paths
  const modDir = join(cacheRoot(), 'src', `k8sbuild-${K8S_VERSION}`)
  await prepareK8sModule(modDir, log)
  const [, major, minor] = /^v(\d+)\.(\d+)\./.exec(K8S_VERSION) ?? []
  const ldflags = `-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=${major} -X k8s.io/component-base/version.gitMinor=${minor}`
  for (const c of missing) {
    await waitForOtherK8sBuilds(log)
    await timed(log, `${c} ${K8S_VERSION}`, () =>
      buildAtomically(paths[c], async tmp => {
        await go(['build', '-o', tmp, '-ldflags', ldflags, `k8s.io/kubernetes/cmd/${c}`], modDir, log, `building ${c}`)
      })
    )
  }
  return paths
}

// ---------------------------------------------------------- helm, virtual-kubelet

/** `go install pkg@version` into a private GOBIN, then move the binary into place. */
async function goInstall(pkg: string, version: string, out: string, ldflags: string, log: Log): Promise<void> {
  await buildAtomically(out, async tmp => {
    const gobin = `${tmp}.d`
    rmSync(gobin, { recursive: true, force: true })
    mkdirSync(gobin, { recursive: true })
    try {
      await go(['install', '-ldflags', ldflags, `${pkg}@${version}`], cacheRoot(), log, `building ${pkg}`, goEnv({ GOBIN: gobin }))
      renameSync(join(gobin, pkg.split('/').pop() ?? ''), tmp)
    } finally {
      rmSync(gobin, { recursive: true, force: true })
    }
  })
}

/** Version variables live in helm.sh/helm/vN/internal/version for both majors. */
async function ensureHelm(version: string, log: Log): Promise<string> {
  const major = version.split('.')[0] // v3 | v4
  const out = binPath('helm', version, 'helm')
  if (existsSync(out)) return out
  const mod = `helm.sh/helm/${major}`
  const ldflags = `-s -w -X ${mod}/internal/version.version=${version} -X ${mod}/internal/version.gitTreeState=clean`
  await timed(log, `helm ${version}`, () => goInstall(`${mod}/cmd/helm`, version, out, ldflags, log))
  return out
}

/**
 * The azure-aci connector and its init container, through a wrapper module rather than
 * `go install pkg@v`: the proxy refuses the module's version list, which go install reads.
 * Version flags as the module's Makefile sets them (VERSION_FLAGS: main.buildVersion).
 */
async function ensureAzureAci(log: Log): Promise<{ connector: string; initValidation: string; chartDir: string }> {
  const mod = 'github.com/virtual-kubelet/azure-aci'
  const connector = binPath('azure-aci', AZURE_ACI_VERSION, 'virtual-kubelet')
  const initValidation = binPath('azure-aci', AZURE_ACI_VERSION, 'init-validation')
  const dir = join(cacheRoot(), 'src', `acibuild-${AZURE_ACI_VERSION}`)
  const chartDir = join(await moduleDir(`${mod}@${AZURE_ACI_VERSION}`, log), 'charts', 'virtual-kubelet')
  if (existsSync(connector) && existsSync(initValidation)) return { connector, initValidation, chartDir }
  await timed(log, `azure-aci ${AZURE_ACI_VERSION} (connector and init-validation)`, async () => {
    if (!existsSync(join(dir, '.tidy-ok'))) {
      mkdirSync(dir, { recursive: true })
      const aciDir = await moduleDir(`${mod}@${AZURE_ACI_VERSION}`, log)
      // Same language version as the module itself, so the same GODEBUG defaults apply.
      const goLine = /^go\s+(\S+)/m.exec(readFileSync(join(aciDir, 'go.mod'), 'utf8'))?.[1] ?? '1.24.0'
      writeFileSync(join(dir, 'go.mod'), `module local/acibuild\n\ngo ${goLine}\n\nrequire ${mod} ${AZURE_ACI_VERSION}\n`)
      writeFileSync(
        join(dir, 'tools.go'),
        `//go:build tools\npackage acibuild\n\nimport (\n\t_ "${mod}/cmd/virtual-kubelet"\n\t_ "${mod}/cmd/init-container"\n)\n`
      )
      await go(['mod', 'tidy', '-e'], dir, log, 'resolving azure-aci dependencies', goEnv({ GOFLAGS: '-mod=mod' }))
      writeFileSync(join(dir, '.tidy-ok'), new Date().toISOString())
    }
    const tag = AZURE_ACI_VERSION.replace(/^v/, '')
    await buildAtomically(connector, tmp =>
      go(
        ['build', '-o', tmp, '-ldflags', `-s -w -X main.buildVersion=${tag}`, `${mod}/cmd/virtual-kubelet`],
        dir,
        log,
        'building the azure-aci connector'
      ).then(() => undefined)
    )
    await buildAtomically(initValidation, tmp =>
      go(['build', '-o', tmp, '-ldflags', '-s -w', `${mod}/cmd/init-container`], dir, log, 'building azure-aci init-validation').then(() => undefined)
    )
  })
  return { connector, initValidation, chartDir }
}

/**
 * kubelogin from its module, with the version flag its Makefile sets (main.gitTag), zipped
 * as its release workflow does: `zip -qq kubelogin-linux-amd64.zip bin/linux_amd64/kubelogin`
 * (github.com/Azure/kubelogin .github/workflows/release.yml).
 */
async function ensureKubelogin(log: Log): Promise<{ binary: string; zip: string }> {
  const binary = binPath('kubelogin', KUBELOGIN_VERSION, 'kubelogin')
  const zip = binPath('kubelogin', KUBELOGIN_VERSION, 'kubelogin-linux-amd64.zip')
  if (!existsSync(binary)) {
    await timed(log, `kubelogin ${KUBELOGIN_VERSION}`, () =>
      goInstall('github.com/Azure/kubelogin', KUBELOGIN_VERSION, binary, `-s -w -X main.gitTag=${KUBELOGIN_VERSION}`, log)
    )
  }
  if (!existsSync(zip)) {
    const stage = `${zip}.stage-${process.pid}`
    rmSync(stage, { recursive: true, force: true })
    mkdirSync(join(stage, 'bin', 'linux_amd64'), { recursive: true })
    writeFileSync(join(stage, 'bin', 'linux_amd64', 'kubelogin'), readFileSync(binary), { mode: 0o755 })
    try {
      await runChecked('zip', ['-qq', `${zip}.tmp`, 'bin/linux_amd64/kubelogin'], { cwd: stage, timeoutMs: 120_000 })
      renameSync(`${zip}.tmp`, zip)
    } finally {
      rmSync(stage, { recursive: true, force: true })
    }
  }
  return { binary, zip }
}

// ------------------------------------------------------------------- Debian

/** Looks `cmd` up on PATH in-process (a shell could wait seconds while apt keeps the CPUs busy). */
async function which(cmd: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir || '.', cmd)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

async function ensureAptPackage(cmd: string, pkg: string, log: Log): Promise<string> {
  const found = await which(cmd)
  if (found) return found
  log(`installing Debian package ${pkg} (for ${cmd}) ...`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const opts = { timeoutMs: 10 * 60_000, env, onProgress: (s: number) => log(`  ... apt-get (${s}s)`) }
  await runChecked('apt-get', ['update'], opts)
  await runChecked('apt-get', ['install', '-y', '--no-install-recommends', pkg], opts)
  const installed = await which(cmd)
  if (!installed) throw new Error(`apt-get install ${pkg} succeeded but ${cmd} is not on PATH`)
  return installed
}

// --------------------------------------------------------------------- entry

/** Ensures every binary exists in the cache (building what is missing) and returns absolute paths. */
export async function ensureBinaries(log: Log = () => {}): Promise<Binaries> {
  mkdirSync(cacheRoot(), { recursive: true })
  const etcd = await ensureAptPackage('etcd', 'etcd-server', log)
  await ensureAptPackage('openssl', 'openssl', log)
  // The agent node's pod network: `ip netns` / veth pairs (iproute2).
  await ensureAptPackage('ip', 'iproute2', log)
  // kubelogin's release zip is made with zip; the action unpacks it with unzip (tool-cache extractZip).
  await ensureAptPackage('zip', 'zip', log)
  await ensureAptPackage('unzip', 'unzip', log)
  const needGo = [
    binPath('helm', HELM4_VERSION, 'helm'),
    binPath('helm', HELM3_VERSION, 'helm'),
    binPath('azure-aci', AZURE_ACI_VERSION, 'virtual-kubelet'),
    binPath('azure-aci', AZURE_ACI_VERSION, 'init-validation'),
    binPath('kubelogin', KUBELOGIN_VERSION, 'kubelogin'),
    ...K8S_CMDS.map(c => binPath('kubernetes', K8S_VERSION, c))
  ].some(p => !existsSync(p))
  if (needGo) await requireGo()
  // Small builds first: they are useful on their own while Kubernetes builds.
  const aci = await ensureAzureAci(log)
  const helm4 = await ensureHelm(HELM4_VERSION, log)
  const helm3 = await ensureHelm(HELM3_VERSION, log)
  const kubelogin = await ensureKubelogin(log)
  const k8s = await ensureK8s(log)
  return {
    kubeApiserver: k8s['kube-apiserver'],
    kubeControllerManager: k8s['kube-controller-manager'],
    kubeScheduler: k8s['kube-scheduler'],
    kubectl: k8s.kubectl,
    etcd,
    helm4,
    helm3,
    aciConnector: aci.connector,
    aciInitValidation: aci.initValidation,
    aciChartDir: aci.chartDir,
    kubelogin: kubelogin.binary,
    kubeloginZip: kubelogin.zip,
    v2Pause: await ensureStandIn('pause', log)
  }
}

/** A stand-in program of this repository (stand-ins/<name>, no dependencies), built once per source. */
async function ensureStandIn(name: string, log: Log): Promise<string> {
  const dir = join(here, 'stand-ins', name)
  const source = readFileSync(join(dir, 'main.go'))
  const out = binPath(`standin-${name}`, createHash('sha256').update(source).digest('hex').slice(0, 12), name)
  if (!existsSync(out)) {
    await requireGo()
    await timed(log, `stand-in ${name}`, () =>
      buildAtomically(out, tmp =>
        runChecked('go', ['build', '-trimpath', '-o', tmp, '.'], { cwd: dir, env: goEnv({ GOFLAGS: '-mod=mod' }), timeoutMs: GO_TIMEOUT_MS }).then(
          () => undefined
        )
      )
    )
  }
  return out
}
