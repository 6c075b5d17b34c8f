// The two sample workloads of the 2019 Azure doc "Use Virtual Kubelet with AKS" (the page this action grew from), with today's images: applied (server-side, so a
// re-run converges), waited for, and their pod IPs reported; deleted on removal.
import * as core from '@actions/core'
import { KubernetesObjectApi, PatchStrategy, type V1Deployment, type V1Pod, type V1Toleration } from '@kubernetes/client-node'
import { ignoreNotFound, isConflict, watchUntil, watchUntilAborted, type Kube } from '../kubernetes/kube.js'
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './naming.js'
import type { OsType } from './naming.js'

const FIELD_MANAGER = 'aks-aci-connector-action'

interface SampleSpec {
  name: string
  image: string
}

/**
 * Linux: the ACI hello-world (moved from Docker Hub to MCR). Windows: the 2019 doc's
 * `microsoft/iis:nanoserver` is gone; IIS on Server Core LTSC 2022 is a current image
 * that ACI's Windows container groups run. The 2019 doc's deployment names are kept.
 */
export const SAMPLES: Record<OsType, SampleSpec> = {
  Linux: { name: 'aci-helloworld', image: 'mcr.microsoft.com/azuredocs/aci-helloworld' },
  Windows: { name: 'nanoserver-iis', image: 'mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022' }
}

/** What a pod needs to run on a kind's virtual node: its selector, tolerations and (for some kinds) pod annotations; the placement output. */
export interface SamplePlacement {
  nodeSelector: Record<string, string>
  tolerations: V1Toleration[]
  annotations?: Record<string, string>
}

export function sampleDeployment(os: OsType, namespace: string, placement: SamplePlacement, requests?: Record<string, string>): V1Deployment {
  const { name, image } = SAMPLES[os]
  const labels = { app: name, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels, ...(placement.annotations ? { annotations: placement.annotations } : {}) },
        spec: {
          containers: [{ name, image, ports: [{ containerPort: 80 }], ...(requests ? { resources: { requests } } : {}) }],
          // A sample has nothing to drain; a short grace keeps teardown (and ACI billing) short.
          terminationGracePeriodSeconds: 5,
          nodeSelector: placement.nodeSelector,
          tolerations: placement.tolerations
        }
      }
    }
  }
}

/**
 * The samples' namespace, made when it is missing (labelled as the action's). A removal
 * leaves it: deleting a namespace deletes whatever a later step put there, which the
 * action cannot prove is its own. True when it was made now.
 */
export async function ensureSamplesNamespace(kube: Kube, namespace: string): Promise<boolean> {
  if (await ignoreNotFound(kube.core.readNamespace({ name: namespace }))) return false
  try {
    await kube.core.createNamespace({ body: { metadata: { name: namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } } } })
  } catch (err) {
    // Made by another step meanwhile: it is there, which is all the samples need.
    if (isConflict(err)) return false
    throw err
  }
  core.info(
    `Created namespace ${namespace} for the samples (label ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}); a remove deletes the samples and leaves the namespace.`
  )
  return true
}

export async function applySample(kube: Kube, os: OsType, namespace: string, placement: SamplePlacement, requests?: Record<string, string>): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kube.kc)
  await api.patch(sampleDeployment(os, namespace, placement, requests), undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply)
}

export interface SampleStatus {
  os: OsType
  name: string
  namespace: string
  pods: Array<{ name: string; ip: string; node: string; phase: string }>
}

function deploymentAvailable(d: V1Deployment | undefined): boolean {
  if (!d?.status || !d.metadata) return false
  const wanted = d.spec?.replicas ?? 1
  return (
    (d.status.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
    (d.status.availableReplicas ?? 0) >= wanted &&
    (d.status.updatedReplicas ?? 0) >= wanted
  )
}

/** Why the sample's pods are stuck (scheduling, provider errors), for the failure message. */
async function sampleProblems(kube: Kube, os: OsType, namespace: string): Promise<string> {
  const { name } = SAMPLES[os]
  const pods = (await kube.core.listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items
  const events = (await kube.core.listNamespacedEvent({ namespace })).items.filter(e => pods.some(p => p.metadata?.name === e.involvedObject?.name))
  return [
    ...pods.map(
      p =>
        `pod ${p.metadata?.name}: ${p.status?.phase ?? 'unknown'}${p.spec?.nodeName ? ` on ${p.spec.nodeName}` : ' (not scheduled)'}${p.status?.reason ? ` ${p.status.reason}` : ''}`
    ),
    ...events.slice(-5).map(e => `${e.reason}: ${e.message}`)
  ].join('\n')
}

/**
 * virtual-kubelet marks a pod its provider refused with reason ProviderFailed and the
 * provider's error as the message (v1.11.0 node/pod.go handleProviderError); for azure-aci
 * that is ACI's answer to creating the container group. Waiting longer does not help.
 */
export const PROVIDER_FAILED = 'ProviderFailed'

export function providerFailure(pod: V1Pod): string | undefined {
  if (pod.metadata?.deletionTimestamp || pod.status?.reason !== PROVIDER_FAILED) return undefined
  return `pod ${pod.metadata?.name ?? ''}: ACI refused its container group: ${pod.status.message ?? '(no message)'}`
}

export async function waitForSample(kube: Kube, os: OsType, namespace: string, timeoutMs: number): Promise<SampleStatus> {
  const { name } = SAMPLES[os]
  const result = await watchUntil<true | { failure: string }>(timeoutMs, (settle, signal) => {
    void watchUntilAborted<V1Deployment>(
      kube,
      `/apis/apps/v1/namespaces/${namespace}/deployments`,
      { fieldSelector: `metadata.name=${name}` },
      (_type, d) => {
        if (deploymentAvailable(d)) settle(true)
      },
      signal
    )
    void watchUntilAborted<V1Pod>(
      kube,
      `/api/v1/namespaces/${namespace}/pods`,
      { labelSelector: `app=${name}` },
      (type, pod) => {
        const failure = type === 'DELETED' ? undefined : providerFailure(pod)
        if (failure) settle({ failure })
      },
      signal
    )
  })
  if (result !== true) {
    const what =
      result === undefined
        ? `Sample ${name} was not available after ${Math.round(timeoutMs / 1000)} s.`
        : `Sample ${name} cannot run on the virtual node: ${result.failure}`
    throw new Error(`${what}\n${await sampleProblems(kube, os, namespace)}\nMore: kubectl -n ${namespace} describe deployment ${name}`)
  }
  const pods: V1Pod[] = (await kube.core.listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items.filter(
    p => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp
  )
  const status: SampleStatus = {
    os,
    name,
    namespace,
    pods: pods.map(p => ({ name: p.metadata?.name ?? '', ip: p.status?.podIP ?? '', node: p.spec?.nodeName ?? '', phase: p.status?.phase ?? '' }))
  }
  core.info(`${name}: ${status.pods.map(p => `${p.name} ${p.ip} on ${p.node}`).join(', ')}`)
  return status
}

/**
 * The sample Deployments this action made (its managed-by label) for one of `nodes`, in any
 * namespace: each names its own virtual node in its nodeSelector (sampleDeployment).
 */
export async function samplesOnNodes(kube: Kube, nodes: string[]): Promise<V1Deployment[]> {
  return (await actionSamples(kube)).filter(d => nodes.includes(d.spec?.template.spec?.nodeSelector?.['kubernetes.io/hostname'] ?? ''))
}

/** Every sample Deployment this action made (its managed-by label), in any namespace. */
export async function actionSamples(kube: Kube): Promise<V1Deployment[]> {
  return (await kube.apps.listDeploymentForAllNamespaces({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}` })).items
}

/** Deletes a sample Deployment (and, in the foreground, its pods); one already gone is fine. */
export async function deleteSampleDeployment(kube: Kube, d: V1Deployment): Promise<void> {
  await ignoreNotFound(
    kube.apps.deleteNamespacedDeployment({ name: d.metadata?.name ?? '', namespace: d.metadata?.namespace ?? '', propagationPolicy: 'Foreground' })
  )
}
