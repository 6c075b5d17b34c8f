// The role assignments grant-connector-role made for a cluster that a remove leaves in place
// (the identity they were given to outlives what the remove takes: the connector's identity,
// the kubelet identity), found by the description the action gave them, as teardown items
// that say how to delete them. Listing them is a courtesy: a refusal leaves the list out.
import type { ArmClient } from '../azure/arm.js'
import { grantedRoles, roleDeleteCommand } from '../azure/role-assignments.js'
import { roleLabel } from '../azure/role-definitions.js'
import type { TeardownItem } from './report.js'

/** `why`: for whom they were granted and why they stay, as the item's detail begins. */
export async function grantedRoleItems(arm: ArmClient, resourceGroups: string[], description: string, why: string): Promise<TeardownItem[]> {
  const found = await Promise.all(resourceGroups.map(rg => grantedRoles(arm, rg, description).then(roles => roles.map(role => ({ rg, role })))))
  return found.flat().map(({ rg, role }) => ({
    kind: 'role assignment',
    name: `${roleLabel(arm, rg, role.role)} on ${rg} for ${role.principalId}`,
    detail: `${why}: delete with \`${roleDeleteCommand(role)}\``,
    outcome: 'kept'
  }))
}
