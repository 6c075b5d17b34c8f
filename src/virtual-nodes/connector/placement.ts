// Where a pod goes to run on a connector's virtual node: the node's labels and the taint it tolerates.
import type { OsType } from '../naming.js'
import type { SamplePlacement } from '../samples.js'

/**
 * What a pod needs to run on the connector's virtual node `node`, as the 2019 procedure's
 * samples pinned theirs (the placement output). The connector labels its node with `kubernetes.io/os` (and the older
 * `beta.kubernetes.io/os` the 2019 page selected), `type: virtual-kubelet` and
 * `kubernetes.io/role: agent` (virtual-kubelet v1.11.0 node/nodeutil/controller.go, azure-aci v1.6.4
 * pkg/provider/vk_node.go). The hostname label narrows it to this connector's own node, so
 * a second connector of the same OS (another pull request's, the managed add-on's
 * `virtual-node-aci-linux`) never gets the sample.
 */
export function connectorPlacement(os: OsType, node: string): SamplePlacement {
  return {
    nodeSelector: {
      'kubernetes.io/os': os.toLowerCase(),
      'kubernetes.io/hostname': node,
      'kubernetes.io/role': 'agent',
      type: 'virtual-kubelet'
    },
    tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Equal', value: 'azure', effect: 'NoSchedule' }]
  }
}
