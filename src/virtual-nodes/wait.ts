// Waiting for virtual nodes of a kind whose agent runs as pods in the cluster (Virtual Nodes
// v2's StatefulSet, the virtual-node add-on's connector): one watch of the nodes and one of
// the agent's pods, until every node is registered and Ready; an agent pod that cannot start
// (CrashLoopBackOff, an image it cannot pull) fails the wait at once with its reason.
import type { V1Node, V1Pod } from '@kubernetes/client-node'
import { watchUntil, watchUntilAborted, type Kube } from '../kubernetes/kube.js'
import { nodeIsReady, podFailureReason } from '../kubernetes/pods.js'
import type { NodeStatus } from './report.js'

export interface NodeWait {
  /** The kind's name (for NodeStatus) and how messages name it. */
  kind: string
  label: string
  /** How a message names one node: "v2 node". */
  nodeNoun: string
  names: string[]
  /** Narrows the node watch (the kind's node label). */
  labelSelector?: string
  /** Where the agent's pods run, and which node a pod of it serves (undefined: none of ours). */
  agent: { namespace: string; nodeOf: (pod: string) => string | undefined }
  /** Said after a failure: what stays installed, and how to go on. */
  stays: string
}

function status(kind: string, n: V1Node, started: number): NodeStatus {
  return {
    os: 'Linux',
    kind,
    node: n.metadata?.name ?? '',
    ready: true,
    waitedMs: Date.now() - started,
    labels: n.metadata?.labels ?? {},
    taints: (n.spec?.taints ?? []).filter(t => !t.key.startsWith('node.kubernetes.io/')).map(t => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`)
  }
}

/** Resolves with every node Ready; rejects at once when an agent pod cannot start, or at the deadline with what was seen. */
export async function waitForNodes(kube: Kube, w: NodeWait, timeoutMs: number): Promise<NodeStatus[]> {
  const started = Date.now()
  const ready = new Map<string, NodeStatus>()
  const seen = new Set<string>()
  const done = await watchUntil<true | { failure: string; pod: string }>(timeoutMs, (settle, signal) => {
    void watchUntilAborted<V1Pod>(
      kube,
      `/api/v1/namespaces/${w.agent.namespace}/pods`,
      {},
      (type, pod) => {
        const name = pod.metadata?.name ?? ''
        const node = w.agent.nodeOf(name)
        const failure = type === 'DELETED' || !node || !w.names.includes(node) || ready.has(node) ? undefined : podFailureReason(pod)
        if (failure)
          settle({ failure: `the infrastructure pod ${w.agent.namespace}/${name} of ${w.nodeNoun} ${node ?? ''} cannot start: ${failure}`, pod: name })
      },
      signal
    )
    void watchUntilAborted<V1Node>(
      kube,
      '/api/v1/nodes',
      w.labelSelector ? { labelSelector: w.labelSelector } : {},
      (type, n) => {
        const name = n.metadata?.name ?? ''
        if (!w.names.includes(name) || type === 'DELETED') return
        seen.add(name)
        if (nodeIsReady(n) && !ready.has(name)) ready.set(name, status(w.kind, n, started))
        if (ready.size === w.names.length) settle(true)
      },
      signal
    )
  })
  if (done === true) return w.names.map(n => ready.get(n)!)
  const ns = w.agent.namespace
  if (done)
    throw new Error(
      `${w.label}: ${done.failure}.\nMore: kubectl -n ${ns} describe pod ${done.pod}; kubectl -n ${ns} logs ${done.pod} --all-containers. ${w.stays}`
    )
  const missing = w.names.filter(n => !ready.has(n)).map(n => `${n} (${seen.has(n) ? 'registered, not Ready' : 'not registered'})`)
  const pods = (await kube.core.listNamespacedPod({ namespace: ns }).catch(() => ({ items: [] as V1Pod[] }))).items.filter(p =>
    w.agent.nodeOf(p.metadata?.name ?? '')
  )
  const podText = pods.map(p => `pod ${p.metadata?.name}: ${p.status?.phase ?? 'unknown'}${p.status?.reason ? ` ${p.status.reason}` : ''}`).join('\n')
  throw new Error(
    `${w.label}: ${missing.join(', ')} after ${Math.round(timeoutMs / 1000)} s.\n${podText || `no agent pod in ${ns}`}\n` +
      `More: kubectl -n ${ns} get pods; kubectl -n ${ns} logs <pod> --all-containers. ${w.stays}`
  )
}
