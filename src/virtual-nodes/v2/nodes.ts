// Virtual Nodes v2's nodes as the cluster shows them: the label and taint its chart gives
// them, the placement a pod needs to run on one (and to have its container group tagged for
// this cluster), the names an extension's nodes get, and the wait until they are Ready.
import type { V1Node, V1Toleration } from '@kubernetes/client-node'
import type { Kube } from '../../kubernetes/kube.js'
import { waitForNodes } from '../wait.js'
import type { NodeStatus } from '../report.js'
import type { SamplePlacement } from '../samples.js'
import { v2FullName, V2_NAMESPACE } from './extension.js'

/**
 * How pods select a v2 node and tolerate its taint (Microsoft Learn articles/aks/virtual-nodes-v2.md;
 * the chart's README: nodeSelector `virtualization: virtualnode2`, toleration
 * `virtual-kubelet.io/provider` Exists NoSchedule).
 */
export const V2_NODE_LABEL = 'virtualization'
export const V2_NODE_LABEL_VALUE = 'virtualnode2'
export const V2_TOLERATION: V1Toleration = { key: 'virtual-kubelet.io/provider', operator: 'Exists', effect: 'NoSchedule' }
/**
 * A pod annotation v2 turns into ARM tags on the pod's container group
 * (Docs/PodCustomizations.md "Using Custom ARM Tags": `microsoft.containerinstance.virtualnode.customtags`,
 * `key1=value1;key2=value2`). v2 tags its groups with nothing documented that names the
 * cluster, so the action's placement adds OWNER_TAG = the cluster's kube-system UID: a
 * teardown then proves a group this cluster's by that tag alone, in any resource group.
 */
export const CUSTOM_TAGS_ANNOTATION = 'microsoft.containerinstance.virtualnode.customtags'
export const OWNER_TAG = 'aks-aci-connector-action-cluster'
/** The sample's requests on v2: a v2 pod asks for what its container group needs, as the v2 README's first pod does (100m CPU, 128Mi). */
export const V2_SAMPLE_REQUESTS = { cpu: '100m', memory: '128Mi' }

/** What a pod needs to run on a v2 node, and to have its container group attributed to this cluster. */
export function v2Placement(clusterUid: string): SamplePlacement {
  return {
    nodeSelector: { 'kubernetes.io/os': 'linux', [V2_NODE_LABEL]: V2_NODE_LABEL_VALUE },
    tolerations: [V2_TOLERATION],
    annotations: { [CUSTOM_TAGS_ANNOTATION]: `${OWNER_TAG}=${clusterUid}` }
  }
}

export const isV2Node = (n: V1Node): boolean => n.metadata?.labels?.[V2_NODE_LABEL] === V2_NODE_LABEL_VALUE

/** The v2 nodes of an extension: labelled as v2 and named `<fullname>-<i>` (node name = the StatefulSet pod's name). */
export function nodesOfExtension(extensionName: string, nodes: V1Node[]): V1Node[] {
  const prefix = `${v2FullName(extensionName)}-`
  return nodes.filter(n => isV2Node(n) && (n.metadata?.name ?? '').startsWith(prefix) && /^\d+$/.test((n.metadata?.name ?? '').slice(prefix.length)))
}

/**
 * Waits until every node in `names` is registered with the v2 label and Ready. Each node is
 * the StatefulSet pod of the same name in vn-system (node name = pod name,
 * Helm/virtualnode/templates/deployment.yaml NodeName from metadata.name).
 */
export function waitForV2Nodes(kube: Kube, names: string[], timeoutMs: number): Promise<NodeStatus[]> {
  return waitForNodes(
    kube,
    {
      kind: 'v2',
      label: 'Virtual Nodes v2',
      nodeNoun: 'v2 node',
      names,
      labelSelector: `${V2_NODE_LABEL}=${V2_NODE_LABEL_VALUE}`,
      agent: { namespace: V2_NAMESPACE, nodeOf: pod => (names.includes(pod) ? pod : undefined) },
      stays: 'The extension stays installed: fix the cause and re-run this step (it converges), or run the action with command: remove.'
    },
    timeoutMs
  )
}
