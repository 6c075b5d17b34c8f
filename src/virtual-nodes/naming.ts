// Names every kind of virtual node shares: the operating systems, how the action labels what
// it owns, and how it names the cluster in role assignments and messages.

export type OsType = 'Linux' | 'Windows'

/** Labels the action adds to what it owns, so teardown finds only its own objects. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
export const MANAGED_BY_VALUE = 'aks-aci-connector-action'

/** How the cluster is named in role assignment descriptions and messages: <resource-group>/<cluster-name>. */
export function clusterLabel(inputs: { resourceGroup: string; clusterName: string }): string {
  return `${inputs.resourceGroup}/${inputs.clusterName}`
}
