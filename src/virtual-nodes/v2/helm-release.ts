// Virtual Nodes v2 as a Helm release of its published chart (github.com/microsoft/virtualnodesOnAzureContainerInstances,
// Helm/virtualnode at commit 089513172f2f8503b5a4ac9f0a309c1a487ac403): the release's name
// and namespace, the values the action sets, the release as Helm records it, and the install.
// The chart's StatefulSet `<fullname>` runs one infrastructure pod per virtual node, and each
// registers the node of its own name (templates/deployment.yaml: env NodeName from
// metadata.name; Docs/NodeCustomizations.md "virtual node node names are the same as the pod
// backing them").
import * as core from '@actions/core'
import type { V1Secret } from '@kubernetes/client-node'
import { helmEnv, HELM_TIMEOUT_MS, withValuesFile, type HelmContext } from '../../kubernetes/helm.js'
import { decodeReleaseRecord, type ReleaseRecord } from '../../kubernetes/helm-releases.js'
import { ignoreNotFound, isConflict, listPaged, type Kube } from '../../kubernetes/kube.js'
import { readableEcho, runChecked } from '../../tools/process.js'
import { pollUntil } from '../../util/async.js'
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../naming.js'
import { v2FullName } from './extension.js'
import { OWNER_TAG } from './nodes.js'

/** The chart's name (Chart.yaml `name: virtualnode`). */
export const V2_CHART_NAME = 'virtualnode'
/** The release the action installs; the chart names its StatefulSet, and so each node, `aci-vn2-virtualnode-<i>` (_helpers.tpl virtualnode2.fullname). */
export const V2_HELM_RELEASE = 'aci-vn2'
/**
 * Where the release goes: the chart's own default namespace (values.yaml `namespace: vn2`).
 * Installed with --namespace, the chart renders no Namespace object (templates/namespace.yml
 * only when the release namespace is `default`), so the action makes it, labelled as its own.
 */
export const V2_HELM_NAMESPACE = 'vn2'
/** The chart's default ACI subnet (values.yaml `aciSubnetName: cg`; README: "The above subnet name (`cg`) ... must be used exactly, as those are the default values"). */
/** The kind's name (kinds.ts) and the name its use record has (installs.ts). */
export const V2_HELM_KIND = 'v2-helm'
export const V2_HELM_RECORD = `${V2_HELM_NAMESPACE}/${V2_HELM_RELEASE}`
export const V2_HELM_DEFAULT_SUBNET = 'cg'

/** The nodes of `replicas` virtual nodes of the release. */
export function v2HelmNodeNames(replicas: number): string[] {
  return Array.from({ length: replicas }, (_x, i) => `${v2FullName(V2_HELM_RELEASE)}-${i}`)
}

/**
 * The values the action sets (values.yaml keys): replicaCount (the number of virtual nodes),
 * aciSubnetName (a subnet name "within the AKS VNET", Docs/NodeCustomizations.md), and
 * customTags (values.yaml: "Custom tags to add to ACI container groups", `key1=value1;key2=value2`)
 * naming this cluster, so every container group of these nodes is provably this cluster's.
 */
export function v2HelmValues(replicas: number, subnet: string, clusterUid: string): Record<string, unknown> {
  return { replicaCount: replicas, aciSubnetName: subnet, customTags: `${OWNER_TAG}=${clusterUid}` }
}

/** A release of the v2 chart, wherever Helm keeps it. */
export interface V2HelmRelease {
  name: string
  namespace: string
  record: ReleaseRecord
}

/** Every release of the v2 chart in the cluster (Helm's release Secrets, read a page at a time; the newest revision of each). */
export async function findV2HelmReleases(kube: Kube): Promise<V2HelmRelease[]> {
  const secrets = await listPaged<V1Secret>(opts =>
    kube.core.listSecretForAllNamespaces({ ...opts, labelSelector: 'owner=helm', fieldSelector: 'type=helm.sh/release.v1' })
  )
  const newest = new Map<string, V1Secret>()
  for (const s of secrets) {
    const key = `${s.metadata?.namespace}/${s.metadata?.labels?.name}`
    const seen = newest.get(key)
    if (!seen || Number(s.metadata?.labels?.version ?? 0) > Number(seen.metadata?.labels?.version ?? 0)) newest.set(key, s)
  }
  return [...newest.values()].flatMap(s => {
    const record = decodeReleaseRecord(s)
    return record?.chart === V2_CHART_NAME ? [{ name: s.metadata?.labels?.name ?? '', namespace: s.metadata?.namespace ?? '', record }] : []
  })
}

/** How often the namespace is looked at while it terminates (the namespace controller finishes within seconds). */
const NAMESPACE_POLL_MS = 250

/**
 * Makes the release's namespace, labelled as this action's (a teardown deletes only such a
 * one); one that is there is used as it is. One still terminating (a remove just before) is
 * waited out first: the API server refuses new objects in it ("is being terminated").
 */
export async function ensureV2Namespace(kube: Kube, deadline: number): Promise<void> {
  const ready = await pollUntil(
    async () => {
      const ns = await ignoreNotFound(kube.core.readNamespace({ name: V2_HELM_NAMESPACE }))
      if (ns?.metadata?.deletionTimestamp) return undefined
      if (ns) return true
      const made = await kube.core
        .createNamespace({ body: { metadata: { name: V2_HELM_NAMESPACE, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } } } })
        .then(() => true)
        .catch((err: unknown) => {
          if (!isConflict(err)) throw err
          return undefined
        })
      return made
    },
    deadline,
    NAMESPACE_POLL_MS
  )
  if (!ready)
    throw new Error(
      `Namespace ${V2_HELM_NAMESPACE} is still terminating from an earlier removal; re-run when it is gone (\`kubectl get namespace ${V2_HELM_NAMESPACE}\`).`
    )
}

/**
 * Deletes the namespace when this action made it, and waits until it is gone (so that an
 * install right after finds none terminating); true when it deleted it. Still there at the
 * deadline: a warning, it goes by itself.
 */
export async function deleteV2Namespace(kube: Kube, deadline: number): Promise<boolean> {
  const ns = await ignoreNotFound(kube.core.readNamespace({ name: V2_HELM_NAMESPACE }))
  if (ns?.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) return false
  await ignoreNotFound(kube.core.deleteNamespace({ name: V2_HELM_NAMESPACE }))
  const uid = ns.metadata?.uid
  const gone = await pollUntil(
    async () => ((await ignoreNotFound(kube.core.readNamespace({ name: V2_HELM_NAMESPACE })))?.metadata?.uid === uid ? undefined : true),
    deadline,
    NAMESPACE_POLL_MS
  )
  if (!gone) core.warning(`Namespace ${V2_HELM_NAMESPACE} is still terminating; it will go by itself (\`kubectl get namespace ${V2_HELM_NAMESPACE}\`).`)
  return true
}

/** `helm upgrade --install` of the verified chart file with the values through a 0600 file. */
export async function installV2Release(ctx: HelmContext, chart: string, values: Record<string, unknown>): Promise<void> {
  await withValuesFile(ctx.workDir, values, async file => {
    const args = [
      'upgrade',
      '--install',
      V2_HELM_RELEASE,
      chart,
      '--namespace',
      V2_HELM_NAMESPACE,
      '--kubeconfig',
      ctx.kubeconfig,
      '--values',
      file,
      '--history-max',
      '5'
    ]
    await runChecked(`helm upgrade --install ${V2_HELM_RELEASE}`, ctx.helm, args, { env: helmEnv(ctx), timeoutMs: HELM_TIMEOUT_MS, echo: readableEcho('helm') })
  })
}
