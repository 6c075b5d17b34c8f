// Where a pod goes to run on the add-on's virtual node.
import type { SamplePlacement } from '../samples.js'

/** The node the add-on's connector registers (AKS docs virtual-nodes-cli.md, `kubectl get nodes`). */
export const ADDON_NODE = 'virtual-node-aci-linux'

/**
 * The selector and tolerations of AKS's own sample for the add-on (MicrosoftDocs/azure-aks-docs
 * articles/aks/virtual-nodes-cli.md "Deploy a sample app"), plus the node's hostname label so a
 * pod lands on the add-on's node and not on a connector's that carries the same labels.
 */
export function addonPlacement(): SamplePlacement {
  return {
    nodeSelector: { 'kubernetes.io/role': 'agent', 'beta.kubernetes.io/os': 'linux', type: 'virtual-kubelet', 'kubernetes.io/hostname': ADDON_NODE },
    tolerations: [
      { key: 'virtual-kubelet.io/provider', operator: 'Exists' },
      { key: 'azure.com/aci', effect: 'NoSchedule' }
    ]
  }
}
