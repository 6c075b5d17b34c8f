// Pods and nodes as every kind of virtual node sees them: the pods bound to a node, which a
// drain deletes, deleting without a kubelet's confirmation, and whether a node or pod is
// Ready or has failed for good.
import * as core from '@actions/core'
import type { V1Node, V1Pod } from '@kubernetes/client-node'
import { ignoreNotFound, type Kube } from './kube.js'
import { podEntry } from './cluster-view.js'

/** Container states that will not get better by waiting. */
const FATAL_WAITING_REASONS = new Set([
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'ErrImageNeverPull'
])
/** Every pod bound to `node`, DaemonSet pods included (a direct list: what a removal records and deletes). */
export async function podsBoundTo(kube: Kube, node: string): Promise<V1Pod[]> {
  return (await kube.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items
}

/**
 * Pods a removal must delete. DaemonSet pods are left out, as `kubectl drain
 * --ignore-daemonsets` does: their controller recreates them at once, and they go with the
 * node (deleteOrphanedPods).
 */
export function drainable(pods: V1Pod[]): V1Pod[] {
  return pods.filter(p => !p.metadata?.ownerReferences?.some(o => o.kind === 'DaemonSet'))
}

/**
 * Pods still bound to the deleted node (the DaemonSet pods a drain skips) can never run
 * again. Kubernetes' pod garbage collector would delete them some time later
 * (kube-controller-manager PodGC, orphaned pods); a removal deletes them now, so it leaves
 * nothing behind. Their container groups are swept over ARM afterwards.
 */
export async function deleteOrphanedPods(kube: Kube, node: string): Promise<void> {
  const left = await podsBoundTo(kube, node)
  if (left.length === 0) return
  core.info(
    `Deleting ${left.length} pod(s) still bound to the deleted node ${node}: ${left.map(p => `${p.metadata?.namespace}/${p.metadata?.name}`).join(', ')}`
  )
  await forceDeletePods(kube, left.map(podEntry))
}

/** Deletes pods without waiting for a kubelet to confirm (grace period 0); gone ones are skipped. */
export async function forceDeletePods(kube: Kube, pods: Array<{ namespace: string; name: string }>): Promise<void> {
  await Promise.all(pods.map(p => ignoreNotFound(kube.core.deleteNamespacedPod({ name: p.name, namespace: p.namespace, gracePeriodSeconds: 0 }))))
}

export function nodeIsReady(node: V1Node | undefined): boolean {
  return node?.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True') ?? false
}

export function podIsReady(pod: V1Pod): boolean {
  return (
    !pod.metadata?.deletionTimestamp &&
    pod.status?.phase === 'Running' &&
    (pod.status?.containerStatuses?.length ?? 0) > 0 &&
    (pod.status?.containerStatuses ?? []).every(c => c.ready)
  )
}

/** Why this connector pod cannot become healthy, or undefined while it still may. */
export function podFailureReason(pod: V1Pod): string | undefined {
  if (pod.metadata?.deletionTimestamp) return undefined
  // Init containers first: the chart's init-validation runs before the connector starts.
  for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = c.state?.waiting
    if (waiting?.reason && FATAL_WAITING_REASONS.has(waiting.reason)) {
      const last = c.lastState?.terminated
      const exit = last ? ` (last exit code ${last.exitCode}${last.reason ? `, ${last.reason}` : ''}, ${c.restartCount} restarts)` : ''
      return `container ${c.name} is ${waiting.reason}${exit}${waiting.message ? `: ${waiting.message}` : ''}`
    }
  }
  if (pod.status?.phase === 'Failed') return `pod phase Failed${pod.status.reason ? ` (${pod.status.reason})` : ''}`
  return undefined
}

/** When a node stopped being Ready: its Ready condition's last transition; its creation when it never reported one. Undefined while it is Ready. */
export function notReadySince(node: V1Node): Date | undefined {
  const ready = node.status?.conditions?.find(c => c.type === 'Ready')
  if (ready?.status === 'True') return undefined
  const t = ready?.lastTransitionTime ?? node.metadata?.creationTimestamp
  return t ? new Date(t) : new Date(0)
}
