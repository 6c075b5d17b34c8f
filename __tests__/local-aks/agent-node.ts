// A simulated AKS agent node (a "kubelet" that runs no containers) which also
// plays Azure Container Instances: when the Virtual Kubelet ACI connector pod
// lands on it, it runs the real virtual-kubelet binary with its mock provider,
// so a real virtual node registers and runs pods - or it fails the way the
// real connector fails, depending on the ConnectorBehaviour.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { createServer, request, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { randomBytes, randomUUID } from 'node:crypto'
import { Watch, type KubeConfig, type V1Pod, type V1Container, type V1ContainerStatus } from '@kubernetes/client-node'
import type { Binaries } from './binaries.js'
import { K8S_VERSION, VIRTUAL_KUBELET_VERSION } from './binaries.js'
import { freePort, type LocalCluster, type CertPair } from './cluster.js'
import { spawnLogged, type ManagedProcess } from './proc.js'

export type ConnectorBehaviour = {
  mode: 'normal' | 'crashloop' | 'never-ready' | 'auth-error'
  registrationDelayMs?: number
}

export interface AgentNode {
  nodeName: string
  setConnectorBehaviour(b: ConnectorBehaviour): void
  connectorProcesses(): Array<{ pod: string; nodeName: string; pid: number }>
  stop(): Promise<void>
}

export interface AgentNodeOptions {
  nodeName?: string
  region?: string
  /** The cluster's node resource group (MC_...). */
  nodeResourceGroup?: string
  behaviour?: ConnectorBehaviour
  log?: (m: string) => void
  /** Seconds between simulated container restarts in crashloop/auth-error modes. Default 5. */
  restartEverySec?: number
}

const DEFAULT_NODE = 'aks-nodepool1-12345678-vmss000000'
const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000'

// ------------------------------------------------------------ raw API calls

/**
 * Minimal JSON request to the apiserver. Used instead of the generated client
 * for patches (content type control) and Leases (client-node serializes
 * MicroTime with millisecond precision, which the apiserver rejects).
 */
async function api(kc: KubeConfig, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('kubeconfig has no current cluster')
  const url = new URL(path, cluster.server)
  const opts: Parameters<typeof request>[1] = { method, headers: { 'content-type': contentType, accept: 'application/json' }, timeout: 15_000 }
  await kc.applyToHTTPSOptions(opts)
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request(url, opts, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d.toString()))
      res.on('end', () => {
        const status = res.statusCode ?? 0
        if (status >= 200 && status < 300) resolve(text ? (JSON.parse(text) as unknown) : undefined)
        else reject(Object.assign(new Error(`${method} ${path}: ${status} ${text.slice(0, 500)}`), { code: status }))
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)))
    req.on('error', reject)
    if (payload) req.write(payload)
    req.end()
  })
}

const SMP = 'application/strategic-merge-patch+json'
const MERGE = 'application/merge-patch+json'

function errCode(e: unknown): number | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? Number((e as { code: unknown }).code) : undefined
}

/** metav1.MicroTime wants exactly six fractional digits. */
function microTime(d = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ------------------------------------------------------------ connector pods

interface ConnectorSpec {
  container: V1Container
  nodeName: string
  os: string
  env: Record<string, string>
}

function commandLine(c: V1Container): string[] {
  return [...(c.command ?? []), ...(c.args ?? [])]
}

/** Value of --flag X or --flag=X in a command line. */
function flagValue(argv: string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag) return argv[i + 1]
    if (argv[i].startsWith(`${flag}=`)) return argv[i].slice(flag.length + 1)
  }
  return undefined
}

function isConnectorContainer(c: V1Container): boolean {
  const argv = commandLine(c)
  // The chart may render the command as one shell string, so look at words too.
  const words = argv.flatMap((a) => a.split(/\s+/))
  return flagValue(words, '--provider') === 'azure'
}

async function resolveEnv(kc: KubeConfig, ns: string, c: V1Container): Promise<Record<string, string>> {
  const env: Record<string, string> = {}
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value
    const ref = e.valueFrom?.secretKeyRef
    if (ref?.name && ref.key) {
      try {
        const s = (await api(kc, 'GET', `/api/v1/namespaces/${ns}/secrets/${ref.name}`)) as { data?: Record<string, string> }
        const v = s.data?.[ref.key]
        if (v !== undefined) env[e.name] = Buffer.from(v, 'base64').toString()
      } catch {
        // A missing secret is the connector's problem; the real kubelet would not even start it.
      }
    }
  }
  return env
}

async function connectorSpec(kc: KubeConfig, pod: V1Pod): Promise<ConnectorSpec | undefined> {
  const container = pod.spec?.containers.find(isConnectorContainer)
  if (!container) return undefined
  const words = commandLine(container).flatMap((a) => a.split(/\s+/))
  const env = await resolveEnv(kc, pod.metadata?.namespace ?? 'default', container)
  return {
    container,
    nodeName: flagValue(words, '--nodename') ?? env.DEFAULT_NODE_NAME ?? 'virtual-kubelet',
    os: flagValue(words, '--os') ?? 'Linux',
    env
  }
}

// ------------------------------------------------------------ the node

interface PodRun {
  uid: string
  ns: string
  name: string
  podIP: string
  startedAt: string
  /** container name -> log lines of the current attempt */
  logs: Map<string, string[]>
  restartCount: number
  connector?: ConnectorSpec
  vk?: ManagedProcess
  vkLogPath?: string
  timers: NodeJS.Timeout[]
  stopping: boolean
  /** Set once stopping began; every finalize waits for it, then deletes the pod. */
  stopped?: Promise<void>
}

class AgentNodeImpl implements AgentNode {
  readonly nodeName: string
  private behaviour: ConnectorBehaviour
  private readonly pods = new Map<string, PodRun>()
  private readonly timers: NodeJS.Timeout[] = []
  private watchAbort?: AbortController
  private stopped = false
  private server?: Server
  private kubeletPort = 0
  private nextIp = 10
  private vkCert?: CertPair
  private readonly dir: string
  private readonly log: (m: string) => void
  private readonly region: string
  private readonly nodeRg: string
  private readonly restartEverySec: number

  constructor(
    private readonly cluster: LocalCluster,
    private readonly bins: Binaries,
    opts: AgentNodeOptions
  ) {
    this.nodeName = opts.nodeName ?? DEFAULT_NODE
    this.behaviour = opts.behaviour ?? { mode: 'normal' }
    this.log = opts.log ?? (() => {})
    this.region = opts.region ?? 'eastus'
    this.nodeRg = opts.nodeResourceGroup ?? `MC_rg_aks_${this.region}`
    this.restartEverySec = opts.restartEverySec ?? 5
    this.dir = join(cluster.dir, 'agent-node')
    mkdirSync(this.dir, { recursive: true })
  }

  private get kc(): KubeConfig {
    return this.cluster.kc
  }

  setConnectorBehaviour(b: ConnectorBehaviour): void {
    this.behaviour = { ...b }
  }

  connectorProcesses(): Array<{ pod: string; nodeName: string; pid: number }> {
    return [...this.pods.values()]
      .filter((r) => r.vk?.isRunning() && r.connector)
      .map((r) => ({ pod: `${r.ns}/${r.name}`, nodeName: r.connector?.nodeName ?? '', pid: r.vk?.pid ?? 0 }))
  }

  async start(): Promise<void> {
    const certIp = { ips: ['127.0.0.1'], dns: ['localhost'], usage: 'server' as const }
    const kubeletCert = await this.cluster.issueCert('agent-kubelet', { cn: this.nodeName, ...certIp })
    this.vkCert = await this.cluster.issueCert('virtual-kubelet-serving', { cn: 'virtual-kubelet', ...certIp })
    await this.startLogServer(kubeletCert)
    await this.registerNode()
    await this.renewLease()
    this.timers.push(setInterval(() => void this.renewLease().catch((e: unknown) => this.log(`lease renew failed: ${String(e)}`)), 10_000))
    this.timers.push(setInterval(() => void this.patchNodeStatus().catch(() => {}), 60_000))
    await this.waitSchedulable()
    await this.startWatch()
  }

  // ---- node object

  private nodeStatus(): Record<string, unknown> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
    const cond = (type: string, status: string, reason: string, message: string): Record<string, string> => ({
      type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: now
    })
    const resources = { cpu: '2', memory: '7Gi', pods: '110', 'ephemeral-storage': '128Gi' }
    return {
      conditions: [
        cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status')
      ],
      addresses: [
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: this.nodeName }
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: this.kubeletPort } },
      capacity: resources,
      allocatable: resources,
      nodeInfo: {
        machineID: randomBytes(16).toString('hex'),
        systemUUID: randomUUID(),
        bootID: randomUUID(),
        kernelVersion: '5.15.0-1079-azure',
        osImage: 'Ubuntu 22.04.5 LTS',
        containerRuntimeVersion: 'containerd://1.7.27-1',
        kubeletVersion: K8S_VERSION,
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: 'amd64'
      }
    }
  }

  private async registerNode(): Promise<void> {
    const labels = {
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      'beta.kubernetes.io/os': 'linux',
      'beta.kubernetes.io/arch': 'amd64',
      'kubernetes.io/role': 'agent',
      'kubernetes.io/hostname': this.nodeName,
      agentpool: 'nodepool1',
      'kubernetes.azure.com/agentpool': 'nodepool1',
      'kubernetes.azure.com/role': 'agent',
      'kubernetes.azure.com/mode': 'system',
      'kubernetes.azure.com/cluster': this.nodeRg,
      'node.kubernetes.io/instance-type': 'Standard_DS2_v2',
      'topology.kubernetes.io/region': this.region,
      'topology.kubernetes.io/zone': '0'
    }
    const body = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: this.nodeName, labels },
      spec: {
        providerID: `azure:///subscriptions/${SUBSCRIPTION}/resourceGroups/${this.nodeRg}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-12345678-vmss/virtualMachines/0`
      }
    }
    try {
      await api(this.kc, 'POST', '/api/v1/nodes', body)
    } catch (e) {
      if (errCode(e) !== 409) throw e
      await api(this.kc, 'PATCH', `/api/v1/nodes/${this.nodeName}`, { metadata: { labels } }, MERGE)
    }
    await this.patchNodeStatus()
  }

  private async patchNodeStatus(): Promise<void> {
    await api(this.kc, 'PATCH', `/api/v1/nodes/${this.nodeName}/status`, { status: this.nodeStatus() }, SMP)
  }

  private async renewLease(): Promise<void> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.nodeName}`
    try {
      await api(this.kc, 'PATCH', path, { spec: { renewTime: microTime() } }, MERGE)
    } catch (e) {
      if (errCode(e) !== 404) throw e
      await api(this.kc, 'POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.nodeName, namespace: 'kube-node-lease' },
        spec: { holderIdentity: this.nodeName, leaseDurationSeconds: 40, renewTime: microTime() }
      })
    }
  }

  /** The node-lifecycle controller removes the not-ready taint once it sees Ready. */
  private async waitSchedulable(): Promise<void> {
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      const n = (await api(this.kc, 'GET', `/api/v1/nodes/${this.nodeName}`)) as { spec?: { taints?: unknown[] } }
      if (!n.spec?.taints?.length) return
      await sleep(300)
    }
    throw new Error(`node ${this.nodeName} still tainted after 60 s (is kube-controller-manager running?)`)
  }

  // ---- kubelet API (logs only)

  private async startLogServer(cert: CertPair): Promise<void> {
    this.kubeletPort = await freePort()
    this.server = createServer({ cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) }, (req, res) =>
      this.serveKubelet(req, res)
    )
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject)
      this.server?.listen(this.kubeletPort, '127.0.0.1', () => resolve())
    })
  }

  private serveKubelet(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1')
    const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname)
    if (req.method === 'GET' && url.pathname === '/healthz') {
      res.end('ok')
      return
    }
    if (req.method !== 'GET' || !m) {
      res.writeHead(404).end('not found')
      return
    }
    const [, ns, name, container] = m.map(decodeURIComponent)
    const run = [...this.pods.values()].find((r) => r.ns === ns && r.name === name && !r.stopping)
    if (!run) {
      res.writeHead(404).end(`pod ${ns}/${name} not found on this node`)
      return
    }
    let lines = this.containerLog(run, container)
    if (lines === undefined) {
      res.writeHead(404).end(`container ${container} not found in pod ${name}`)
      return
    }
    const tail = Number(url.searchParams.get('tailLines') ?? '')
    if (Number.isInteger(tail) && tail >= 0 && url.searchParams.has('tailLines')) lines = tail === 0 ? [] : lines.slice(-tail)
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(lines.map((l) => `${l}\n`).join(''))
  }

  /** Our own lines first, then whatever the virtual-kubelet process wrote. */
  private containerLog(run: PodRun, container: string): string[] | undefined {
    const own = run.logs.get(container)
    if (!own) return undefined
    const vkLines =
      run.connector?.container.name === container && run.vkLogPath && existsSync(run.vkLogPath)
        ? readFileSync(run.vkLogPath, 'utf8').split('\n').filter((l) => l !== '')
        : []
    return [...own, ...vkLines]
  }

  // ---- pod watch

  private async startWatch(): Promise<void> {
    if (this.stopped) return
    // List first so pods created while the watch was down are not missed.
    const list = (await api(this.kc, 'GET', `/api/v1/pods?fieldSelector=spec.nodeName%3D${this.nodeName}`)) as {
      items: V1Pod[]
      metadata: { resourceVersion: string }
    }
    for (const p of list.items) this.onPod('ADDED', p)
    const w = new Watch(this.kc)
    this.watchAbort = await w.watch(
      '/api/v1/pods',
      { fieldSelector: `spec.nodeName=${this.nodeName}`, resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
      (phase: string, obj: V1Pod) => this.onPod(phase, obj),
      (err: unknown) => {
        if (this.stopped) return
        if (err) this.log(`pod watch dropped (${String(err)}), resuming`)
        // Resume after a short pause; a fresh list reconciles anything missed.
        const t = setTimeout(() => void this.startWatch().catch((e: unknown) => this.log(`watch restart failed: ${String(e)}`)), 1000)
        this.timers.push(t)
      }
    )
  }

  private onPod(phase: string, pod: V1Pod): void {
    if (phase === 'BOOKMARK' || phase === 'ERROR') return
    const uid = pod.metadata?.uid
    if (!uid) return
    if (phase === 'DELETED') {
      void this.forget(uid)
      return
    }
    if (pod.metadata?.deletionTimestamp) {
      void this.finalize(pod)
      return
    }
    if (!this.pods.has(uid) && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') {
      void this.startPod(pod).catch((e: unknown) => this.log(`pod ${pod.metadata?.name}: ${String(e)}`))
    }
  }

  private async startPod(pod: V1Pod): Promise<void> {
    const uid = pod.metadata?.uid ?? ''
    const run: PodRun = {
      uid,
      ns: pod.metadata?.namespace ?? 'default',
      name: pod.metadata?.name ?? '',
      podIP: `10.244.0.${this.nextIp++}`,
      startedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      logs: new Map((pod.spec?.containers ?? []).map((c) => [c.name, []])),
      restartCount: 0,
      timers: [],
      stopping: false
    }
    this.pods.set(uid, run)
    run.connector = await connectorSpec(this.kc, pod)
    if (!run.connector) {
      await this.patchPodStatus(run, pod, { running: true, ready: true })
      return
    }
    this.log(`connector pod ${run.ns}/${run.name} -> virtual node ${run.connector.nodeName} (${this.behaviour.mode})`)
    await this.runConnector(run, pod)
  }

  // ---- connector behaviours

  private connectorBanner(run: PodRun): string[] {
    const c = run.connector
    const tag = c?.container.image?.split(':')[1] ?? 'latest'
    const ts = new Date().toISOString()
    return [
      `time="${ts}" level=info msg="Virtual Kubelet for Azure Container Instances ${tag} (virtual-kubelet ${VIRTUAL_KUBELET_VERSION})"`,
      `time="${ts}" level=info msg="node name: ${c?.nodeName}, operating system: ${c?.os}, ACI resource group: ${c?.env.ACI_RESOURCE_GROUP ?? this.nodeRg}, region: ${c?.env.ACI_REGION ?? this.region}"`
    ]
  }

  private failureLines(run: PodRun, mode: 'crashloop' | 'auth-error'): string[] {
    const env = run.connector?.env ?? {}
    const ts = new Date().toISOString()
    const rg = env.ACI_RESOURCE_GROUP || this.nodeRg
    const sub = env.AZURE_SUBSCRIPTION_ID || SUBSCRIPTION
    if (mode === 'auth-error') {
      const clientId = env.AZURE_CLIENT_ID || '11111111-1111-1111-1111-111111111111'
      return [
        `time="${ts}" level=fatal msg="error initializing provider azure: GET https://management.azure.com/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.ContainerInstance/containerGroups\\n--------------------------------------------------------------------------------\\nRESPONSE 403: 403 Forbidden\\nERROR CODE: AuthorizationFailed\\n--------------------------------------------------------------------------------\\n{\\n  \\"error\\": {\\n    \\"code\\": \\"AuthorizationFailed\\",\\n    \\"message\\": \\"The client '${clientId}' with object id '22222222-2222-2222-2222-222222222222' does not have authorization to perform action 'Microsoft.ContainerInstance/containerGroups/read' over scope '/subscriptions/${sub}/resourceGroups/${rg}' or the scope is invalid. If access was recently granted, please refresh your credentials.\\"\\n  }\\n}\\n" status code 403`
      ]
    }
    return [
      `time="${ts}" level=fatal msg="error initializing provider azure: error setting up AKS credentials: AZURE_CLIENT_ID is not set and no managed identity found in /etc/kubernetes/azure.json"`,
      `Error: exit status 1 (missing AZURE_CLIENT_ID)`
    ]
  }

  private async runConnector(run: PodRun, pod: V1Pod): Promise<void> {
    const mode = this.behaviour.mode
    const c = run.connector
    if (!c) return
    const logs = run.logs.get(c.container.name) ?? []
    run.logs.set(c.container.name, logs)
    if (mode === 'normal') {
      const delay = this.behaviour.registrationDelayMs ?? 0
      logs.push(...this.connectorBanner(run))
      if (delay > 0) await sleep(delay)
      if (run.stopping || this.stopped) return
      this.spawnVk(run)
      await this.patchPodStatus(run, pod, { running: true, ready: true })
      void this.afterRegistration(run)
      return
    }
    if (mode === 'never-ready') {
      logs.push(...this.connectorBanner(run))
      await this.patchPodStatus(run, pod, { running: true, ready: true })
      const tick = (): void => {
        logs.push(
          `time="${new Date().toISOString()}" level=warning msg="waiting for ACI container group list in ${c.env.ACI_RESOURCE_GROUP || this.nodeRg}: context deadline exceeded, retrying"`
        )
      }
      tick()
      run.timers.push(setInterval(tick, 5000))
      return
    }
    // crashloop / auth-error: the container exits at once; kubelet restarts it with backoff.
    const crash = async (): Promise<void> => {
      if (run.stopping || this.stopped) return
      if (this.behaviour.mode === 'normal') {
        // The cause was fixed (secret, role assignment): the next restart succeeds.
        run.logs.set(c.container.name, [])
        await this.runConnector(run, pod)
        return
      }
      const failMode = this.behaviour.mode === 'auth-error' ? 'auth-error' : 'crashloop'
      run.logs.set(c.container.name, [...this.connectorBanner(run), ...this.failureLines(run, failMode)])
      run.restartCount++
      await this.patchPodStatus(run, pod, { running: false, ready: false, crashed: true }).catch(() => {})
      const t = setTimeout(() => void crash(), this.restartEverySec * 1000)
      run.timers.push(t)
    }
    run.logs.set(c.container.name, [...this.connectorBanner(run), ...this.failureLines(run, mode)])
    await this.patchPodStatus(run, pod, { running: false, ready: false, crashed: true })
    run.timers.push(setTimeout(() => void crash(), this.restartEverySec * 1000))
  }

  private spawnVk(run: PodRun): void {
    const c = run.connector
    if (!c || !this.vkCert) return
    const base = join(this.dir, `${run.ns}_${run.name}`)
    const providerConfig = `${base}.mock.json`
    // The mock provider reads its capacity keyed by node name; ACI is "unlimited".
    writeFileSync(providerConfig, JSON.stringify({ [c.nodeName]: { cpu: '10000', memory: '4Ti', pods: '5000' } }))
    run.vkLogPath = `${base}.vk.log`
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KUBECONFIG: this.cluster.adminKubeconfigPath,
      APISERVER_CERT_LOCATION: this.vkCert.certPath,
      APISERVER_KEY_LOCATION: this.vkCert.keyPath,
      // The connector advertises its pod IP; here the apiserver must reach vk on loopback.
      VKUBELET_POD_IP: '127.0.0.1'
    }
    for (const k of ['VKUBELET_TAINT_KEY', 'VKUBELET_TAINT_VALUE', 'VKUBELET_TAINT_EFFECT']) {
      if (c.env[k] !== undefined) env[k] = c.env[k]
    }
    void freePort().then((port) => {
      if (run.stopping || this.stopped) return
      env.KUBELET_PORT = String(port)
      // vk's own command accepts only lower-case OS names (the azure-aci connector takes "Linux").
      const args = ['--provider', 'mock', '--provider-config', providerConfig, '--nodename', c.nodeName, '--os', c.os.toLowerCase()]
      run.vk = spawnLogged(`virtual-kubelet[${c.nodeName}]`, this.bins.virtualKubelet, args, run.vkLogPath ?? '', { env })
      this.log(`started virtual-kubelet pid ${run.vk.pid} for ${c.nodeName} on port ${port}`)
      const vk = run.vk
      void vk.exited.then((code) => {
        if (run.stopping || this.stopped || run.vk !== vk) return
        // Unexpected exit: behave like kubelet restarting the container.
        this.log(`virtual-kubelet for ${c.nodeName} exited with ${code}; restarting`)
        run.restartCount++
        const backoff = Math.min(2000 * 2 ** (run.restartCount - 1), 30_000)
        run.timers.push(setTimeout(() => this.spawnVk(run), backoff))
      })
    })
  }

  /**
   * Waits for the virtual node, then adds the one label the real azure-aci
   * provider sets in ConfigureNode that the mock provider does not.
   */
  private async afterRegistration(run: PodRun): Promise<void> {
    const name = run.connector?.nodeName
    if (!name) return
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline && !run.stopping && !this.stopped) {
      try {
        await api(this.kc, 'PATCH', `/api/v1/nodes/${name}`, { metadata: { labels: { 'kubernetes.azure.com/managed': 'false' } } }, MERGE)
        this.log(`virtual node ${name} registered`)
        return
      } catch (e) {
        if (errCode(e) !== 404) this.log(`labelling ${name}: ${String(e)}`)
      }
      await sleep(500)
    }
  }

  // ---- pod status

  private async patchPodStatus(
    run: PodRun,
    pod: V1Pod,
    s: { running: boolean; ready: boolean; crashed?: boolean }
  ): Promise<void> {
    if (run.stopping || this.stopped) return
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
    const cond = (type: string, ok: boolean, reason?: string): Record<string, string> => ({
      type, status: ok ? 'True' : 'False', lastTransitionTime: now, ...(reason ? { reason } : {})
    })
    const statuses: V1ContainerStatus[] = (pod.spec?.containers ?? []).map((c) => {
      const isConnector = run.connector?.container.name === c.name
      const crashed = isConnector && s.crashed === true
      const base = {
        name: c.name,
        image: c.image ?? '',
        imageID: `${c.image ?? ''}@sha256:${randomBytes(32).toString('hex')}`,
        containerID: `containerd://${randomBytes(32).toString('hex')}`,
        restartCount: isConnector ? run.restartCount : 0
      }
      if (crashed) {
        return {
          ...base,
          ready: false,
          started: false,
          state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${Math.min(10 * 2 ** run.restartCount, 300)}s restarting failed container=${c.name} pod=${run.name}_${run.ns}(${run.uid})` } },
          lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: now as unknown as Date, finishedAt: now as unknown as Date } }
        } as V1ContainerStatus
      }
      return { ...base, ready: s.ready, started: true, state: { running: { startedAt: run.startedAt as unknown as Date } } } as V1ContainerStatus
    })
    const ready = s.ready && !s.crashed
    const status = {
      phase: 'Running',
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      podIP: run.podIP,
      podIPs: [{ ip: run.podIP }],
      startTime: run.startedAt,
      qosClass: pod.status?.qosClass ?? 'BestEffort',
      conditions: [
        cond('PodReadyToStartContainers', true),
        cond('Initialized', true),
        cond('Ready', ready, ready ? undefined : 'ContainersNotReady'),
        cond('ContainersReady', ready, ready ? undefined : 'ContainersNotReady'),
        cond('PodScheduled', true)
      ],
      containerStatuses: statuses
    }
    try {
      await api(this.kc, 'PATCH', `/api/v1/namespaces/${run.ns}/pods/${run.name}/status`, { status }, SMP)
    } catch (e) {
      if (errCode(e) !== 404) throw e
    }
  }

  // ---- deletion

  /** Like kubelet: stop the containers, then remove the pod object for good. */
  private async finalize(pod: V1Pod): Promise<void> {
    const uid = pod.metadata?.uid ?? ''
    const run = this.pods.get(uid)
    // Every event for a terminating pod tries the delete again (a kubelet keeps syncing
    // until the pod is gone), so one failed DELETE cannot leave it Terminating forever.
    if (run) await this.stopRun(run)
    else this.pods.set(uid, { uid, ns: '', name: '', podIP: '', startedAt: '', logs: new Map(), restartCount: 0, timers: [], stopping: true })
    const ns = pod.metadata?.namespace ?? 'default'
    const name = pod.metadata?.name ?? ''
    this.log(`finalizing pod ${ns}/${name}`)
    try {
      const deleted = await api(this.kc, 'DELETE', `/api/v1/namespaces/${ns}/pods/${name}?gracePeriodSeconds=0`, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid }
      })
      this.log(`deleted pod ${ns}/${name}: ${JSON.stringify((deleted as V1Pod | undefined)?.metadata?.deletionGracePeriodSeconds ?? 'gone')}`)
    } catch (e) {
      const code = errCode(e)
      if (code !== 404) this.log(`deleting pod ${ns}/${name}: ${String(e)}`)
    }
  }

  private stopRun(run: PodRun): Promise<void> {
    run.stopping = true
    run.stopped ??= (async () => {
      for (const t of run.timers) clearTimeout(t)
      if (run.vk?.isRunning()) {
        this.log(`stopping virtual-kubelet pid ${run.vk.pid} (${run.connector?.nodeName})`)
        await run.vk.kill(5000)
      }
    })()
    return run.stopped
  }

  private async forget(uid: string): Promise<void> {
    const run = this.pods.get(uid)
    if (run) await this.stopRun(run)
    // Keep a tombstone briefly so a late MODIFIED event doesn't restart it.
    setTimeout(() => this.pods.delete(uid), 30_000).unref()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.watchAbort?.abort()
    for (const t of this.timers) clearTimeout(t)
    await Promise.all([...this.pods.values()].map((r) => this.stopRun(r)))
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
  }
}

export async function startAgentNode(cluster: LocalCluster, bins: Binaries, opts: AgentNodeOptions = {}): Promise<AgentNode> {
  const node = new AgentNodeImpl(cluster, bins, opts)
  try {
    await node.start()
  } catch (e) {
    await node.stop()
    throw e
  }
  return node
}
