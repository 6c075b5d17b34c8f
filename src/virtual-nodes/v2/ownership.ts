// Whether a Virtual Nodes v2 extension is this action's. Its name alone proves nothing (another
// team may name theirs aci-virtual-nodes too): the action's record in the cluster (installs.ts)
// names it with the identity AKS gave that instance (aksAssignedIdentity: a new extension of
// the same name gets another), or, for an extension an earlier version of this action made
// before it kept records, the role grant-connector-role assigned that identity (its
// description names this cluster).
import { grantedRoles } from '../../azure/role-assignments.js'
import type { ArmClient } from '../../azure/arm.js'
import type { ClusterInfo } from '../../kubernetes/cluster.js'
import type { Kube } from '../../kubernetes/kube.js'
import { installKey, readInstalls, type InstallRecord } from '../installs.js'
import { V2_EXTENSION_NAME, type Extension } from './extension.js'
import { v2GrantDescription } from './install.js'

export const V2_KIND = 'v2'
export const V2_RECORD_KEY = installKey(V2_KIND, V2_EXTENSION_NAME)

/** Judges extensions against the record (read once) and, lazily, the roles this action granted. */
export async function v2Ownership(
  arm: ArmClient,
  cluster: Pick<ClusterInfo, 'nodeResourceGroup'>,
  kube: Kube,
  clusterLabel: string
): Promise<{ record?: InstallRecord; isOurs: (e: Extension) => Promise<boolean> }> {
  const record = (await readInstalls(kube)).get(V2_RECORD_KEY)
  let granted: Promise<Set<string>> | undefined
  const isOurs = async (e: Extension): Promise<boolean> => {
    if (e.name !== V2_EXTENSION_NAME) return false
    if (record) return !record.identity || !e.principalId || record.identity === e.principalId
    if (!e.principalId) return false
    granted ??= grantedRoles(arm, cluster.nodeResourceGroup, v2GrantDescription(clusterLabel)).then(roles => new Set(roles.map(r => r.principalId)))
    return (await granted).has(e.principalId)
  }
  return { record, isOurs }
}
