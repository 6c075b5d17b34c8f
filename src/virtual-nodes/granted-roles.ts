// The role assignments grant-connector-role made for a cluster that a remove leaves in place
// (the identity they were given to outlives what the remove takes: the connector's identity,
// the kubelet identity), found by the description the action gave them, as teardown items
// that say how to delete them. Listing them is a courtesy: a refusal leaves the list out.
import type { ArmClient } from '../azure/arm.js'
import { AUTHORIZATION_API_VERSION, grantedRoles, grantedRolesAt, roleDeleteCommand } from '../azure/role-assignments.js'
import { errorText } from '../util/async.js'
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

/**
 * The role assignments grant-connector-role gave `principalId` at `scope` (found by their
 * description) deleted with what they were given to, whose identity goes too; a dry run lists
 * them. `rg` is the resource group of `scope` (the role's name is per resource group).
 */
export async function removeGrantedRoles(
  arm: ArmClient,
  target: { scope: string; rg: string; description: string; principalId: string },
  why: string,
  dryRun: boolean
): Promise<TeardownItem[]> {
  const granted = (await grantedRolesAt(arm, target.scope, target.description)).filter(r => r.principalId === target.principalId && r.id)
  return Promise.all(
    granted.map(async role => {
      const item: TeardownItem = {
        kind: 'role assignment',
        name: `${roleLabel(arm, target.rg, role.role)} on ${target.scope.slice(target.scope.lastIndexOf('/') + 1)} for ${target.principalId}`,
        detail: why,
        outcome: dryRun ? 'would remove' : 'removed'
      }
      if (!dryRun)
        await arm
          .delete(role.id!, AUTHORIZATION_API_VERSION)
          .catch((err: unknown) => Object.assign(item, { outcome: 'failed', error: `${errorText(err)}; delete it with \`${roleDeleteCommand(role)}\`` }))
      return item
    })
  )
}
