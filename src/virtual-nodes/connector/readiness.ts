// Waits for each virtual node to be Ready by watching the API server, and stops waiting
// as soon as the connector pod shows it cannot get there (crash loop, image pull, auth
// error), with the reason and what to check. On timeout it says what it saw.
import * as core from '@actions/core'
import type { CoreV1Event, V1ContainerStatus, V1Node, V1Pod } from '@kubernetes/client-node'
import { watchUntil, watchUntilAborted, type Kube } from '../../kubernetes/kube.js'
import { nodeIsReady, podFailureReason, podIsReady } from '../../kubernetes/pods.js'
import { lastLines } from '../../tools/process.js'
import { errorText, pollUntil } from '../../util/async.js'
import type { NodeStatus } from '../report.js'
import { connectorDeploymentName, type ConnectorNames } from './names.js'

/** What a failure message may name to tell the user where to look. */
export interface DiagnosisContext {
  aciResourceGroup: string
  subscriptionId: string
  /** e.g. "service principal 1234..." or "the cluster's kubelet identity". */
  identity: string
  identityId?: string
  /** This run just assigned the connector its role; Azure RBAC can take minutes to apply it. */
  roleJustGranted?: boolean
}

const LOG_TAIL_LINES = 20
const CONDITION_TAINT_PREFIX = 'node.kubernetes.io/'
const EVENT_COUNT = 10

/** The most likely cause in a connector log, phrased as what to do. */
export function connectorLogHint(log: string, ctx: DiagnosisContext): string | undefined {
  const scope = `/subscriptions/${ctx.subscriptionId}/resourceGroups/${ctx.aciResourceGroup}`
  if (/AuthorizationFailed|does not have authorization|StatusCode=403|status code 403/i.test(log)) {
    return (
      `The connector's identity (${ctx.identity}) may not manage container groups in resource group ${ctx.aciResourceGroup}: ` +
      `assign it the Contributor role there, e.g. \`az role assignment create --assignee ${ctx.identityId ?? '<client-id>'} --role Contributor --scope ${scope}\`.`
    )
  }
  if (/AADSTS7000222/.test(log))
    return `The connector's client secret has expired (${ctx.identity}): create a new secret and pass it as connector-client-secret (or client-secret).`
  if (/AADSTS7000215|invalid_client/.test(log)) return `The connector's client secret is wrong (${ctx.identity}): use the secret's Value, not its ID.`
  if (/AADSTS700016/.test(log)) return `The connector's client ID is not known in the tenant (${ctx.identity}).`
  if (/ResourceGroupNotFound/.test(log))
    return `The ACI resource group ${ctx.aciResourceGroup} does not exist: create it or set aci-resource-group to an existing one.`
  if (/quota|capacity|RegionIsNotAvailable|SkuNotAvailable/i.test(log))
    return 'ACI has no capacity or quota for this in the region: try another location, or request more quota.'
  if (/MissingSubscriptionRegistration/.test(log))
    return 'Microsoft.ContainerInstance is not registered in the subscription: run `az provider register -n Microsoft.ContainerInstance --wait`.'
  return undefined
}

/** The most recently created pod that is not being deleted. */
export function newestPod(pods: V1Pod[]): V1Pod | undefined {
  const created = (p: V1Pod): number => new Date(p.metadata?.creationTimestamp ?? 0).getTime()
  return pods.filter(p => !p.metadata?.deletionTimestamp).sort((a, b) => created(b) - created(a))[0]
}

export function describePod(pod: V1Pod): string {
  const containers = (pod.status?.containerStatuses ?? [])
    .map(c => {
      const state = c.state?.running
        ? 'running'
        : c.state?.waiting
          ? `waiting (${c.state.waiting.reason ?? ''})`
          : c.state?.terminated
            ? `terminated (${c.state.terminated.reason ?? c.state.terminated.exitCode})`
            : 'unknown'
      return `${c.name}: ${state}, ready=${c.ready}, restarts=${c.restartCount}`
    })
    .join('; ')
  return `pod ${pod.metadata?.name}: phase ${pod.status?.phase ?? 'unknown'}${pod.spec?.nodeName ? ` on ${pod.spec.nodeName}` : ''}${containers ? ` [${containers}]` : ''}`
}

export function describeEvents(events: CoreV1Event[]): string {
  return events
    .sort((a, b) => eventTime(a) - eventTime(b))
    .slice(-EVENT_COUNT)
    .map(e => `${e.type ?? ''} ${e.reason ?? ''} ${e.involvedObject?.kind ?? ''}/${e.involvedObject?.name ?? ''}: ${e.message ?? ''}`.trim())
    .join('\n')
}

function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp
  return t ? new Date(t as unknown as string).getTime() : 0
}

/**
 * The container whose log explains the pod: an init container that has not completed
 * (while one runs or fails, the main container has not started), else the first container.
 */
export function containerToLog(pod: V1Pod): V1ContainerStatus | undefined {
  const unfinishedInit = (pod.status?.initContainerStatuses ?? []).find(c => c.state?.terminated?.exitCode !== 0)
  return unfinishedInit ?? pod.status?.containerStatuses?.[0]
}

async function podLog(kube: Kube, pod: V1Pod): Promise<string> {
  const name = pod.metadata?.name ?? ''
  const namespace = pod.metadata?.namespace ?? ''
  const status = containerToLog(pod)
  const container = status?.name
  // After a crash the previous container's log holds the error; fall back to the current one.
  for (const previous of (status?.restartCount ?? 0) > 0 ? [true, false] : [false]) {
    try {
      const text = await kube.core.readNamespacedPodLog({ name, namespace, container, tailLines: LOG_TAIL_LINES, previous })
      if (text && String(text).trim()) return String(text)
    } catch {
      // No log yet (container never started), or the node's kubelet endpoint is unreachable.
    }
  }
  return ''
}

/** Pods, events and log lines of a connector namespace, as text for an error message. */
export async function diagnoseConnector(kube: Kube, namespace: string): Promise<{ text: string; log: string }> {
  const [pods, events] = await Promise.all([
    kube.core.listNamespacedPod({ namespace }).then(
      l => l.items,
      () => [] as V1Pod[]
    ),
    kube.core.listNamespacedEvent({ namespace }).then(
      l => l.items,
      () => [] as CoreV1Event[]
    )
  ])
  const newest = pods.sort((a, b) => eventTime({ metadata: b.metadata } as CoreV1Event) - eventTime({ metadata: a.metadata } as CoreV1Event))[0]
  const log = newest ? await podLog(kube, newest) : ''
  const parts = [
    pods.length ? pods.map(describePod).join('\n') : `no connector pod in namespace ${namespace}`,
    events.length ? `events:\n${describeEvents(events)}` : 'no events',
    log
      ? `last log lines of ${newest?.metadata?.name} (container ${newest ? (containerToLog(newest)?.name ?? '') : ''}):\n${lastLines(log, LOG_TAIL_LINES)}`
      : 'no connector log'
  ]
  return { text: parts.join('\n'), log }
}

const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision'
const POLL_MS = 500
/** Consecutive failed log reads (at POLL_MS) before the ACI check gives up with a warning. */
const LOG_READ_ATTEMPTS = 20

/**
 * The pod-template-hash of the connector Deployment's current revision, once the
 * Deployment controller has seen the latest spec (as `kubectl rollout status` decides).
 * Pods of older revisions are being replaced and say nothing about the new settings.
 * Undefined when the namespace has no Deployment (a chart of another shape).
 */
export async function currentPodTemplateHash(kube: Kube, namespace: string, deadline: number): Promise<string | undefined> {
  const found = await pollUntil(
    async (): Promise<{ hash?: string } | undefined> => {
      try {
        const deployment = (await kube.apps.listNamespacedDeployment({ namespace })).items[0]
        if (!deployment) return {}
        const revision = deployment.metadata?.annotations?.[REVISION_ANNOTATION]
        const observed = (deployment.status?.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 1)
        if (!observed || !revision) return undefined
        const sets = (await kube.apps.listNamespacedReplicaSet({ namespace })).items
        const current = sets.find(
          rs => rs.metadata?.ownerReferences?.some(o => o.uid === deployment.metadata?.uid) && rs.metadata?.annotations?.[REVISION_ANNOTATION] === revision
        )
        const hash = current?.metadata?.labels?.['pod-template-hash']
        return hash ? { hash } : undefined
      } catch (err) {
        // A dropped connection or a busy API server: ask again until the deadline.
        core.debug(`reading the rollout of ${namespace}: ${errorText(err)}`)
        return undefined
      }
    },
    deadline,
    POLL_MS
  )
  return found?.hash
}

/**
 * virtual-kubelet's pod controller (v1.11.0 node/podcontroller.go) lists the provider's pods
 * (for azure-aci: the container groups in the ACI resource group) before it logs
 * "starting workers", and logs a failed list as "failed to fetch the list of pods from the
 * provider: <the ARM error>", then carries on: the node stays Ready, every pod later fails.
 */
export const WORKERS_STARTED = 'starting workers'
export const PROVIDER_LIST_FAILED = 'failed to fetch the list of pods from the provider'

/** The connector's verdict on its first ACI call, from its log; undefined while it has not made it. */
export function aciVerdictFromLog(log: string): 'ok' | { failure: string } | undefined {
  const lines = log.split('\n')
  const started = lines.findIndex(l => l.includes(WORKERS_STARTED))
  if (started < 0) return undefined
  const failed = lines.slice(0, started).find(l => l.includes(PROVIDER_LIST_FAILED))
  if (!failed) return 'ok'
  // logrus quotes the message: msg="failed to fetch ...: GET https://...\n----...RESPONSE 403: ...ERROR CODE: AuthorizationFailed..."
  const message = (/msg="((?:[^"\\]|\\.)*)"/.exec(failed)?.[1] ?? failed).replace(/\\n/g, '\n').replace(/\\"/g, '"')
  const code = /ERROR CODE: (\S+)/.exec(message)?.[1]
  const status = /RESPONSE (\d{3})/.exec(message)?.[1]
  const armMessage = /"message":\s*"((?:[^"\\]|\\.)*)"/.exec(message)?.[1]
  const summary = [status && `ARM answered ${status}`, code, armMessage].filter(Boolean).join(': ')
  return { failure: `the connector cannot list container groups in ACI (${summary || message.split('\n')[0]})` }
}

/** Waits for the connector's first ACI call and reads how it went; 'timeout' at the deadline. */
async function connectorAciCheck(kube: Kube, pod: V1Pod, deadline: number): Promise<'ok' | 'timeout' | { failure: string }> {
  const name = pod.metadata?.name ?? ''
  const namespace = pod.metadata?.namespace ?? ''
  const container = pod.spec?.containers?.[0]?.name
  let unreadable = 0
  const verdict = await pollUntil(
    async () => {
      try {
        const log = String(await kube.core.readNamespacedPodLog({ name, namespace, container }))
        unreadable = 0
        return aciVerdictFromLog(log)
      } catch (err) {
        core.debug(`reading the log of ${namespace}/${name}: ${errorText(err)}`)
        // Logs can be out of reach (a kubeconfig without pods/log, a node's log endpoint behind a firewall).
        if (++unreadable < LOG_READ_ATTEMPTS) return undefined
        core.warning(
          `Could not read the log of ${namespace}/${name} (${errorText(err)}), so the connector's access to ACI is not verified; pods on ${pod.spec?.nodeName ? 'its node' : 'the virtual node'} may still fail with ProviderFailed.`
        )
        return 'ok' as const
      }
    },
    deadline,
    POLL_MS
  )
  return verdict ?? 'timeout'
}

export class ConnectorNotReadyError extends Error {
  constructor(
    readonly connector: ConnectorNames,
    message: string
  ) {
    super(message)
    this.name = 'ConnectorNotReadyError'
  }
}

function nodeStatus(c: ConnectorNames, node: V1Node | undefined, started: number): NodeStatus {
  return {
    os: c.os,
    node: c.node,
    ready: nodeIsReady(node),
    waitedMs: Date.now() - started,
    labels: node?.metadata?.labels ?? {},
    // node.kubernetes.io/* taints follow the node's conditions and are cleared by the node
    // controller moments after Ready; shown, they would report a passing state as the node's.
    taints: (node?.spec?.taints ?? []).filter(t => !t.key.startsWith(CONDITION_TAINT_PREFIX)).map(t => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`)
  }
}

/**
 * Resolves when the node is Ready and its connector pod is Running and Ready (a stale
 * Ready node left by an earlier connector does not count); rejects on a connector
 * failure or at the deadline, with a diagnosis.
 */
export async function waitForVirtualNode(kube: Kube, c: ConnectorNames, timeoutMs: number, ctx: DiagnosisContext): Promise<NodeStatus> {
  const started = Date.now()
  let node: V1Node | undefined
  const pods = new Map<string, V1Pod>()

  const hash = await currentPodTemplateHash(kube, c.namespace, started + timeoutMs)
  // One deadline for the whole wait, including the time spent finding the current revision.
  const outcome = await watchUntil<NodeStatus | { failure: string }>(started + timeoutMs - Date.now(), (settle, signal) => {
    const check = (): void => {
      // Only the current revision's newest pod speaks for the release: during a rollout the
      // old pod may still be healthy (the new settings are not proven yet) or still crash.
      const current = [...pods.values()].filter(p => !hash || p.metadata?.labels?.['pod-template-hash'] === hash)
      const newest = newestPod(current)
      const failure = newest && podFailureReason(newest)
      if (failure) settle({ failure })
      else if (newest && podIsReady(newest) && nodeIsReady(node)) settle(nodeStatus(c, node, started))
    }
    void watchUntilAborted<V1Node>(
      kube,
      '/api/v1/nodes',
      { fieldSelector: `metadata.name=${c.node}` },
      (type, obj) => {
        node = type === 'DELETED' ? undefined : obj
        check()
      },
      signal
    )
    void watchUntilAborted<V1Pod>(
      kube,
      `/api/v1/namespaces/${c.namespace}/pods`,
      {},
      (type, obj) => {
        const key = obj.metadata?.name ?? ''
        if (type === 'DELETED') pods.delete(key)
        else pods.set(key, obj)
        check()
      },
      signal
    )
  })
  let result: NodeStatus | { failure: string } | 'timeout' = outcome ?? 'timeout'
  if (result !== 'timeout' && !('failure' in result)) {
    // Ready says nothing about Azure: the connector registers its node before its first ACI call.
    const current = newestPod([...pods.values()].filter(p => !hash || p.metadata?.labels?.['pod-template-hash'] === hash))
    const aci = current ? await connectorAciCheck(kube, current, started + timeoutMs) : 'ok'
    if (aci === 'ok') return result
    if (aci !== 'timeout' && ctx.roleJustGranted) {
      // The connector's one list at start raced the new role assignment; its later calls will see it.
      core.warning(
        `${c.node}: ${aci.failure}. The role was assigned moments ago and Azure can take a few minutes to apply it; pods may stay Pending until then.`
      )
      return result
    }
    result = aci === 'timeout' ? 'timeout' : { failure: aci.failure }
  }

  const diagnosis = await diagnoseConnector(kube, c.namespace)
  const hint = connectorLogHint(diagnosis.log, ctx)
  const what =
    result === 'timeout'
      ? `Virtual node ${c.node} was not Ready after ${Math.round(timeoutMs / 1000)} s, what was left of wait-timeout (node ${node ? (nodeIsReady(node) ? 'Ready' : 'registered, not Ready') : 'never registered'}).`
      : `The ${c.os} connector (release ${c.release}) is failing: ${result.failure}.`
  throw new ConnectorNotReadyError(
    c,
    `${what}\n${hint ? `${hint}\n` : ''}What the cluster shows:\n${diagnosis.text}\n` +
      `More: kubectl -n ${c.namespace} logs deploy/${connectorDeploymentName(c.release)}; kubectl describe node ${c.node}`
  )
}
