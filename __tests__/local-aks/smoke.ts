// Dev tool: `tsx __tests__/local-aks/smoke.ts` proves the local AKS pieces
// work together without helm: control plane + agent node + a hand-made
// connector Deployment -> a real virtual node that runs pods; then the
// crashloop behaviour. Prints timings. Exit code 0 = all checks passed.
import { AppsV1Api, CoreV1Api, type V1Deployment, type V1Node, type V1Pod } from '@kubernetes/client-node'
import { ensureBinaries } from './binaries.js'
import { startCluster, type LocalCluster } from './cluster.js'
import { startAgentNode, type AgentNode } from './agent-node.js'

const NS = 'vk-azure-aci'
const VNODE = 'virtual-kubelet-aci-connector-linux-eastus'
const t0 = Date.now()
const secs = (from = t0): string => `${((Date.now() - from) / 1000).toFixed(1)}s`
const say = (m: string): void => console.log(`[${secs().padStart(6)}] ${m}`)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`CHECK FAILED: ${msg}`)
  say(`ok: ${msg}`)
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (e) {
      last = e instanceof Error ? e.message : String(e)
    }
    await sleep(250)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${last}`)
}

function connectorDeployment(name: string): V1Deployment {
  return {
    metadata: { name, namespace: NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'virtual-kubelet-azure-aci' } },
      template: {
        metadata: { labels: { app: 'virtual-kubelet-azure-aci' } },
        spec: {
          containers: [
            {
              name: 'virtual-kubelet-azure-aci',
              image: 'mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet:1.6.4',
              command: ['virtual-kubelet'],
              args: ['--provider', 'azure', '--nodename', VNODE, '--os', 'Linux'],
              env: [
                { name: 'VKUBELET_TAINT_KEY', value: 'virtual-kubelet.io/provider' },
                { name: 'VKUBELET_TAINT_VALUE', value: 'azure' },
                { name: 'VKUBELET_TAINT_EFFECT', value: 'NoSchedule' },
                { name: 'ACI_RESOURCE_GROUP', value: 'MC_rg_aks_eastus' },
                { name: 'ACI_REGION', value: 'eastus' }
              ]
            }
          ]
        }
      }
    }
  }
}

const isReady = (n: V1Node): boolean => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false

async function connectorPod(core: CoreV1Api): Promise<V1Pod | undefined> {
  const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=virtual-kubelet-azure-aci' })
  return pods.items.find((p) => !p.metadata?.deletionTimestamp)
}

async function normalMode(cluster: LocalCluster, agent: AgentNode): Promise<void> {
  const core = cluster.kc.makeApiClient(CoreV1Api)
  const apps = cluster.kc.makeApiClient(AppsV1Api)
  await core.createNamespace({ body: { metadata: { name: NS } } })
  const tDeploy = Date.now()
  await apps.createNamespacedDeployment({ namespace: NS, body: connectorDeployment('aci-connector-linux') })

  const vnode = await until('virtual node Ready', 90_000, async () => {
    const n = await core.readNode({ name: VNODE })
    return isReady(n) ? n : undefined
  })
  const readyAfter = secs(tDeploy)
  say(`virtual node ${VNODE} Ready ${readyAfter} after the Deployment was created`)
  const labels = vnode.metadata?.labels ?? {}
  console.log('  virtual node labels:', JSON.stringify(labels))
  console.log('  virtual node taints:', JSON.stringify(vnode.spec?.taints))
  console.log('  virtual node nodeInfo:', JSON.stringify(vnode.status?.nodeInfo), 'addresses:', JSON.stringify(vnode.status?.addresses))
  check(labels.type === 'virtual-kubelet', 'label type=virtual-kubelet')
  check(labels['kubernetes.io/role'] === 'agent', 'label kubernetes.io/role=agent')
  check(
    vnode.spec?.taints?.some((t) => t.key === 'virtual-kubelet.io/provider' && t.value === 'azure' && t.effect === 'NoSchedule'),
    'taint virtual-kubelet.io/provider=azure:NoSchedule'
  )
  // Reported, not enforced: the mock provider does not set the OS labels.
  console.log(`  kubernetes.io/os=${labels['kubernetes.io/os'] ?? '(unset)'} beta.kubernetes.io/os=${labels['beta.kubernetes.io/os'] ?? '(unset)'}`)

  const cpod = await until('connector pod Ready', 30_000, async () => {
    const p = await connectorPod(core)
    return p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined
  })
  check(cpod.status?.podIP?.startsWith('10.244.'), `connector pod Running with podIP ${cpod.status?.podIP}`)
  check(agent.connectorProcesses().length === 1, `one virtual-kubelet process: ${JSON.stringify(agent.connectorProcesses())}`)

  // A workload pod on the virtual node, as the sample Deployments do.
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: 'aci-helloworld' },
      spec: {
        nodeSelector: { type: 'virtual-kubelet' },
        tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Equal', value: 'azure', effect: 'NoSchedule' }],
        containers: [{ name: 'hello', image: 'mcr.microsoft.com/azuredocs/aci-helloworld', ports: [{ containerPort: 80 }] }]
      }
    }
  })
  const wpod = await until('workload pod Running on the virtual node', 60_000, async () => {
    const p = await core.readNamespacedPod({ name: 'aci-helloworld', namespace: 'default' })
    return p.status?.phase === 'Running' && p.status.podIP ? p : undefined
  })
  check(wpod.spec?.nodeName === VNODE, `workload pod on ${wpod.spec?.nodeName}`)
  say(`workload pod status from vk mock: podIP=${wpod.status?.podIP} hostIP=${wpod.status?.hostIP} conditions=${JSON.stringify(wpod.status?.conditions?.map((c) => `${c.type}=${c.status}`))}`)

  const log = await core.readNamespacedPodLog({ name: cpod.metadata?.name ?? '', namespace: NS, tailLines: 50 })
  check(log.includes('Virtual Kubelet for Azure Container Instances'), 'connector log readable through the apiserver')
  console.log('  connector log (first 3 lines):\n    ' + log.split('\n').slice(0, 3).join('\n    '))
  const tail2 = await core.readNamespacedPodLog({ name: cpod.metadata?.name ?? '', namespace: NS, tailLines: 2 })
  check(tail2.trimEnd().split('\n').length === 2, 'tailLines honoured')

  const pid = agent.connectorProcesses()[0]?.pid
  // Delete workloads first: a pod on a virtual node whose connector is gone is never finalized (as on AKS).
  // virtual-kubelet finalizes a deleted pod only once its grace period has elapsed (default 30 s).
  await core.deleteNamespacedPod({ name: 'aci-helloworld', namespace: 'default', gracePeriodSeconds: 1 })
  await until('workload pod gone', 30_000, async () => {
    try {
      await core.readNamespacedPod({ name: 'aci-helloworld', namespace: 'default' })
      return undefined
    } catch {
      return true
    }
  })
  say('workload pod deleted by the virtual kubelet')
  await apps.deleteNamespacedDeployment({ name: 'aci-connector-linux', namespace: NS, propagationPolicy: 'Foreground' })
  await until('connector pod gone', 60_000, async () => ((await connectorPod(core)) ? undefined : true))
  check(agent.connectorProcesses().length === 0, 'virtual-kubelet process stopped')
  check(pid !== undefined && !processAlive(pid), `pid ${pid} no longer exists`)
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function crashloopMode(cluster: LocalCluster, agent: AgentNode): Promise<void> {
  const core = cluster.kc.makeApiClient(CoreV1Api)
  const apps = cluster.kc.makeApiClient(AppsV1Api)
  for (const mode of ['crashloop', 'auth-error'] as const) {
    agent.setConnectorBehaviour({ mode })
    const name = `aci-connector-${mode}`
    await apps.createNamespacedDeployment({ namespace: NS, body: connectorDeployment(name) })
    const pod = await until(`${mode}: restartCount >= 2`, 30_000, async () => {
      const p = await connectorPod(core)
      const cs = p?.status?.containerStatuses?.[0]
      return cs && cs.restartCount >= 2 ? p : undefined
    })
    const cs = pod.status?.containerStatuses?.[0]
    check(cs?.state?.waiting?.reason === 'CrashLoopBackOff', `${mode}: CrashLoopBackOff`)
    check(cs?.lastState?.terminated?.exitCode === 1, `${mode}: lastState terminated exitCode 1`)
    check(agent.connectorProcesses().length === 0, `${mode}: no virtual-kubelet started`)
    const log = await core.readNamespacedPodLog({ name: pod.metadata?.name ?? '', namespace: NS })
    check(mode === 'auth-error' ? log.includes('AuthorizationFailed') && log.includes('MC_rg_aks_eastus') : log.includes('AZURE_CLIENT_ID'), `${mode}: log explains the failure`)
    console.log('  ' + log.split('\n').slice(-2).join('\n  ').slice(0, 400))
    await apps.deleteNamespacedDeployment({ name, namespace: NS, propagationPolicy: 'Foreground' })
    await until(`${mode}: pod gone`, 60_000, async () => ((await connectorPod(core)) ? undefined : true))
  }
  // never-ready: the container runs and is Ready, but no virtual node registers.
  agent.setConnectorBehaviour({ mode: 'never-ready' })
  await apps.createNamespacedDeployment({ namespace: NS, body: connectorDeployment('aci-connector-never-ready') })
  const pod = await until('never-ready: pod Ready', 30_000, async () => {
    const p = await connectorPod(core)
    return p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined
  })
  check(agent.connectorProcesses().length === 0, 'never-ready: no virtual-kubelet started')
  const log = await core.readNamespacedPodLog({ name: pod.metadata?.name ?? '', namespace: NS })
  check(log.includes('retrying'), 'never-ready: log says it is retrying')
  await apps.deleteNamespacedDeployment({ name: 'aci-connector-never-ready', namespace: NS, propagationPolicy: 'Foreground' })
  await until('never-ready: pod gone', 60_000, async () => ((await connectorPod(core)) ? undefined : true))
  agent.setConnectorBehaviour({ mode: 'normal' })
}

async function main(): Promise<void> {
  const bins = await ensureBinaries((m) => say(m))
  say('binaries ready')
  const tc = Date.now()
  const cluster = await startCluster({ bins, log: (m) => say(`cluster: ${m}`) })
  const clusterStart = secs(tc)
  let agent: AgentNode | undefined
  try {
    const ta = Date.now()
    agent = await startAgentNode(cluster, bins, { log: (m) => say(`agent: ${m}`) })
    const agentStart = secs(ta)
    const core = cluster.kc.makeApiClient(CoreV1Api)
    const n = await core.readNode({ name: agent.nodeName })
    check(isReady(n) && !n.spec?.taints?.length, `agent node ${agent.nodeName} Ready and untainted`)
    await normalMode(cluster, agent)
    await crashloopMode(cluster, agent)
    say(`TIMINGS: cluster start ${clusterStart}, agent node Ready ${agentStart}`)
  } finally {
    await agent?.stop()
    await cluster.stop()
  }
  say('smoke PASSED')
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e))
    process.exit(1)
  }
)
