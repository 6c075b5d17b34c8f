// The AKS agent node: a node object with its lease and status, its kubelet API (logs), and
// a worker per pod bound to it (pod-worker.ts). The kubelet does what a real one does for the programs this machine can
// run (see container-runtime.ts): a sandbox with its own network and pod IP, the pod's
// volumes (secret, configMap, projected service-account token, downward API, hostPath of
// the node's disk, emptyDir), image pulls, init containers in order and then the main
// containers, each restarted with the kubelet's back-off; states, restarts, exit codes,
// events and logs reach the API server as a real kubelet reports them. The azure-aci
// connector pod therefore runs the real connector and init-validation programs, and the
// virtual nodes, pods and container groups the tests see are the connector's own.
//
// Kubelet behaviour imitated here comes from kubernetes v1.34 pkg/kubelet (kubelet.go:
// backOffPeriod 10 s, MaxContainerBackOff 300 s; kubelet_pods.go: pod phase, container
// statuses, service environment variables, $(VAR) expansion; images/image_manager.go:
// ErrImagePull then ImagePullBackOff; events/event.go: event reasons).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes, randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { dirname, join } from 'node:path'
import type { KubeConfig, V1Pod } from '@kubernetes/client-node'
import { K8S_VERSION } from './binaries.js'
import { freePort, type CertPair, type LocalCluster } from './cluster.js'
import type { ContainerImage } from './container-runtime.js'
import type { PodNetwork } from './pod-network.js'
import { api, errCode, MERGE, renewNodeLease, SMP, timestamp } from './kube-raw.js'
import { PodWorker, type PodHost } from './pod-worker.js'
import { pollUntil } from '../../src/util/async.js'
import { watchUntilAborted } from '../../src/kubernetes/kube.js'

export interface AgentNodeOptions {
  cluster: LocalCluster
  network: PodNetwork
  images: ContainerImage[]
  /** Files on the node's disk (absolute path -> content), e.g. /etc/kubernetes/azure.json as AKS writes it. */
  nodeFiles: Record<string, string>
  /** Variables the cluster puts into every container (service links; AKS's outbound proxy settings). */
  podEnv: Record<string, string>
  region: string
  nodeResourceGroup: string
  subscriptionId: string
  nodeName?: string
  log?: (m: string) => void
}

export interface AgentNodeKnobs {
  /** How long an image pull takes; Infinity: the registry never answers. */
  imagePullMs: number
}

export interface AgentNode {
  nodeName: string
  knobs: AgentNodeKnobs
  /** Replaces a file on the node's disk; containers started later see it. */
  writeNodeFile(path: string, content: string): void
  /** Containers whose process runs now. */
  containers(): Array<{ pod: string; container: string; pid: number }>
  /** As on a fresh node: the next container of each image pulls it again (see knobs.imagePullMs). */
  forgetPulledImages(): void
  /**
   * The node's VM size, as a node pool of that size reports it (capacity = allocatable here):
   * default Standard_DS2_v2's 2 cores and 7 GiB. The status is posted at once.
   */
  setMachine(cores: number, memoryGi: number): Promise<void>
  stop(): Promise<void>
}

const DEFAULT_NODE = 'aks-nodepool1-12345678-vmss000000'
/** kubelet's default --node-status-update-frequency for the lease (10 s) and node status (1 min when unchanged). */
const LEASE_RENEW_MS = 10_000
const NODE_STATUS_MS = 60_000

// ------------------------------------------------------------ the node

class Kubelet implements AgentNode, PodHost {
  readonly nodeName: string
  /** Standard_DS2_v2, the default VM size of `az aks create`. */
  private machine = { cores: 2, memoryGi: 7 }
  readonly knobs: AgentNodeKnobs = { imagePullMs: 0 }
  /** Images pulled so far (pull policy IfNotPresent: a later container starts without pulling). */
  readonly pulled = new Set<string>()
  private readonly workers = new Map<string, PodWorker>()
  private readonly timers: NodeJS.Timeout[] = []
  private watchAbort?: AbortController
  stopped = false
  private server?: Server
  private kubeletPort = 0
  readonly dir: string
  readonly nodeRoot: string
  readonly log: (m: string) => void

  constructor(readonly opts: AgentNodeOptions) {
    this.nodeName = opts.nodeName ?? DEFAULT_NODE
    this.log = opts.log ?? (() => undefined)
    this.dir = join(opts.cluster.dir, 'agent-node')
    this.nodeRoot = join(this.dir, 'node-root')
    mkdirSync(this.nodeRoot, { recursive: true })
    for (const [path, content] of Object.entries(opts.nodeFiles)) this.writeNodeFile(path, content)
  }

  get kc(): KubeConfig {
    return this.opts.cluster.kc
  }

  writeNodeFile(path: string, content: string): void {
    const file = join(this.nodeRoot, path)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, content, { mode: 0o600 })
  }

  nodePath(path: string): string {
    return join(this.nodeRoot, path)
  }

  containers(): Array<{ pod: string; container: string; pid: number }> {
    return [...this.workers.values()].flatMap(w =>
      [...w.runs.values()].filter(r => r.proc?.isRunning()).map(r => ({ pod: `${w.ns}/${w.name}`, container: r.spec.name, pid: r.proc?.pid ?? 0 }))
    )
  }

  forgetPulledImages(): void {
    this.pulled.clear()
  }

  async start(): Promise<void> {
    const kubeletCert = await this.opts.cluster.issueCert('agent-kubelet', { cn: this.nodeName, ips: ['127.0.0.1'], dns: ['localhost'], usage: 'server' })
    await this.startKubeletApi(kubeletCert)
    await this.registerNode()
    await this.renewLease()
    this.timers.push(setInterval(() => void this.renewLease().catch((e: unknown) => this.log(`lease renew failed: ${String(e)}`)), LEASE_RENEW_MS))
    this.timers.push(setInterval(() => void this.patchNodeStatus().catch(() => undefined), NODE_STATUS_MS))
    await this.waitSchedulable()
    this.startWatch()
  }

  // ---- node object

  private nodeStatus(): Record<string, unknown> {
    const now = timestamp()
    const cond = (type: string, status: string, reason: string, message: string): Record<string, string> => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: now
    })
    const resources = { cpu: String(this.machine.cores), memory: `${this.machine.memoryGi}Gi`, pods: '110', 'ephemeral-storage': '128Gi' }
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

  /** The labels AKS puts on a system pool node (kubenet, VM scale set). */
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
      'kubernetes.azure.com/cluster': this.opts.nodeResourceGroup,
      'node.kubernetes.io/instance-type': 'Standard_DS2_v2',
      'topology.kubernetes.io/region': this.opts.region,
      'topology.kubernetes.io/zone': '0'
    }
    const body = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: this.nodeName, labels },
      spec: {
        podCIDR: this.opts.network.podCidr,
        podCIDRs: [this.opts.network.podCidr],
        providerID: `azure:///subscriptions/${this.opts.subscriptionId}/resourceGroups/${this.opts.nodeResourceGroup}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-12345678-vmss/virtualMachines/0`
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

  async setMachine(cores: number, memoryGi: number): Promise<void> {
    this.machine = { cores, memoryGi }
    await this.patchNodeStatus()
  }

  private async patchNodeStatus(): Promise<void> {
    await api(this.kc, 'PATCH', `/api/v1/nodes/${this.nodeName}/status`, { status: this.nodeStatus() }, SMP)
  }

  private async renewLease(): Promise<void> {
    await renewNodeLease(this.kc, this.nodeName)
  }

  /** The node-lifecycle controller removes the not-ready taint once it sees Ready. */
  private async waitSchedulable(): Promise<void> {
    const untainted = await pollUntil(
      async () => {
        const n = (await api(this.kc, 'GET', `/api/v1/nodes/${this.nodeName}`)) as { spec?: { taints?: unknown[] } }
        return n.spec?.taints?.length ? undefined : true
      },
      Date.now() + 60_000,
      300
    )
    if (untainted) return
    throw new Error(`node ${this.nodeName} still tainted after 60 s (is kube-controller-manager running?)`)
  }

  // ---- kubelet API: what the API server calls for `kubectl logs`

  private async startKubeletApi(cert: CertPair): Promise<void> {
    this.kubeletPort = await freePort()
    this.server = createServer({ cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) }, (req, res) => this.serveKubeletApi(req, res))
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject)
      this.server?.listen(this.kubeletPort, '127.0.0.1', () => resolve())
    })
  }

  private serveKubeletApi(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1')
    if (req.method === 'GET' && url.pathname === '/healthz') {
      res.end('ok')
      return
    }
    const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname)
    if (req.method !== 'GET' || !m) {
      res.writeHead(404).end('not found')
      return
    }
    const [, ns, name, container] = m.map(decodeURIComponent)
    const worker = [...this.workers.values()].find(w => w.ns === ns && w.name === name)
    const run = worker?.runs.get(container ?? '')
    if (!worker || !run) {
      res.writeHead(404).end(`container ${container} is not known in pod ${ns}/${name}`)
      return
    }
    const previous = url.searchParams.get('previous') === 'true'
    const file = run.attempts[run.attempts.length - (previous ? 2 : 1)]
    if (!file) {
      // The kubelet's own wording (pkg/kubelet/kubelet_pods.go validateContainerLogStatus).
      const why = previous
        ? `previous terminated container "${container}" in pod "${name}" not found`
        : `container "${container}" in pod "${name}" is waiting to start: ${run.state.waiting?.reason ?? 'ContainerCreating'}`
      res.writeHead(400).end(why)
      return
    }
    let lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : []
    if (lines[lines.length - 1] === '') lines.pop()
    const tail = url.searchParams.get('tailLines')
    if (tail !== null && /^\d+$/.test(tail)) lines = Number(tail) === 0 ? [] : lines.slice(-Number(tail))
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(lines.map(l => `${l}\n`).join(''))
  }

  // ---- pod watch

  /**
   * The pods bound to this node, through the action's own resuming watch (src/kubernetes/kube.ts): it
   * starts from the current state and replays it on every resume, so a pod created while
   * the watch was down is not missed.
   */
  private startWatch(): void {
    this.watchAbort = new AbortController()
    void watchUntilAborted<V1Pod>(
      { kc: this.kc },
      '/api/v1/pods',
      { fieldSelector: `spec.nodeName=${this.nodeName}` },
      (type, obj) => this.onPod(type, obj),
      this.watchAbort.signal
    )
  }

  private onPod(type: string, pod: V1Pod): void {
    if (type === 'BOOKMARK' || type === 'ERROR') return
    const uid = pod.metadata?.uid
    if (!uid) return
    const worker = this.workers.get(uid)
    if (type === 'DELETED') {
      void worker?.terminate()
      return
    }
    if (worker) {
      worker.pod = pod
      if (pod.metadata?.deletionTimestamp) void worker.finalize()
      return
    }
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return
    const created = new PodWorker(this, pod)
    this.workers.set(uid, created)
    if (pod.metadata?.deletionTimestamp) void created.finalize()
    else void created.run().catch((e: unknown) => this.log(`pod ${created.ns}/${created.name}: ${e instanceof Error ? e.message : String(e)}`))
  }

  forget(uid: string): void {
    // A short tombstone, so a late event for the deleted pod does not start it again.
    setTimeout(() => this.workers.delete(uid), 30_000).unref()
  }

  async recordEvent(pod: V1Pod, fieldPath: string | undefined, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const ns = pod.metadata?.namespace ?? 'default'
    const now = timestamp()
    await api(this.kc, 'POST', `/api/v1/namespaces/${ns}/events`, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${pod.metadata?.name ?? 'pod'}.${randomBytes(8).toString('hex')}`, namespace: ns },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: ns, name: pod.metadata?.name, uid: pod.metadata?.uid, ...(fieldPath ? { fieldPath } : {}) },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: 'kubelet', host: this.nodeName },
      reportingComponent: 'kubelet',
      reportingInstance: this.nodeName
    }).catch(() => undefined)
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.watchAbort?.abort()
    for (const t of this.timers) clearTimeout(t)
    await Promise.all([...this.workers.values()].map(w => w.terminate()))
    await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
  }
}

export async function startAgentNode(opts: AgentNodeOptions): Promise<AgentNode> {
  const node = new Kubelet(opts)
  try {
    await node.start()
  } catch (e) {
    await node.stop()
    throw e
  }
  return node
}
