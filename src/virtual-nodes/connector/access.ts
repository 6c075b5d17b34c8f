// May the connector's identity create container groups in the ACI resource group? Checked
// before anything is installed, because the connector itself never says so in a way a
// user sees: it registers a Ready node before its first Azure call, and every pod later
// stays Pending with ProviderFailed. Optionally grants the role instead (role-assignments.ts
// answers the question over ARM).
import * as core from '@actions/core'
import type { ArmClient } from '../../azure/arm.js'
import { checkMayGrant, grantVirtualNodeRole, VIRTUAL_NODE_ACTIONS } from '../../azure/role-definitions.js'
import { CONTAINER_GROUP_WRITE, principalMayCreateGroups, resourceGroupScope, signedInMayCreateGroups, type GrantedRole } from '../../azure/role-assignments.js'
import type { TeardownItem } from '../report.js'
import { grantedRoleItems } from '../granted-roles.js'

/**
 * The description a role assignment made by grant-connector-role carries (a documented
 * property of role assignments), so a later remove can name it for this cluster.
 */
export function grantDescription(cluster: string): string {
  return `Granted by aks-aci-connector-action (grant-connector-role) to the ACI connector of AKS cluster ${cluster}`
}

export interface ConnectorIdentityRef {
  /** As a user would name it in a message. */
  description: string
  /** What `az role assignment create --assignee` takes (client ID). */
  assignee: string
  /** Object ID, when known: needed to check and to grant. */
  objectId?: string
  /** The identity the action itself signed in as (its own permissions can be read directly). */
  isSignedIn: boolean
}

/** allowed: it may; unchecked: it could not be told; grant: it may not, and grant-connector-role lets the install assign the role. */
export type AccessVerdict = { verdict: 'allowed' | 'unchecked' } | { verdict: 'grant'; objectId: string }

/**
 * Checks the connector identity's access before anything changes (reads only). Throws with
 * the command to run when it may not create container groups and may not be granted the
 * role. A check that cannot be made (the sign-in identity may not read role assignments)
 * only warns.
 */
export async function checkConnectorAccess(arm: ArmClient, resourceGroup: string, identity: ConnectorIdentityRef, grant: boolean): Promise<AccessVerdict> {
  const scope = resourceGroupScope(arm, resourceGroup)
  let allowed: boolean
  try {
    if (identity.isSignedIn) allowed = await signedInMayCreateGroups(arm, resourceGroup)
    else if (identity.objectId) allowed = await principalMayCreateGroups(arm, resourceGroup, identity.objectId)
    else {
      core.info(`The connector runs as ${identity.description}; its access to ${resourceGroup} is checked from its first ACI call once its node is Ready.`)
      return { verdict: 'unchecked' }
    }
  } catch (err) {
    core.warning(
      `Could not check whether ${identity.description} may create container groups in ${resourceGroup} (${err instanceof Error ? err.message : String(err)}); the connector's first ACI call is checked once its node is Ready.`
    )
    return { verdict: 'unchecked' }
  }
  if (allowed) {
    core.info(`${identity.description} may create container groups in ${resourceGroup}.`)
    return { verdict: 'allowed' }
  }
  if (grant && identity.objectId) {
    await checkMayGrant(arm, scope)
    core.info(`${identity.description} may not create container groups in ${resourceGroup} yet; the install assigns it the role first (grant-connector-role).`)
    return { verdict: 'grant', objectId: identity.objectId }
  }
  throw new Error(
    `The connector's identity (${identity.description}) may not create container groups in resource group ${resourceGroup}: it needs ${CONTAINER_GROUP_WRITE} there, ` +
      `and without it the virtual node turns Ready but every pod on it stays Pending (ProviderFailed). Nothing was installed. ` +
      `Assign it the Contributor role there: \`az role assignment create --assignee ${identity.assignee} --role Contributor --scope ${scope}\`, ` +
      `or set grant-connector-role: true to let this action assign it the least role that works (${VIRTUAL_NODE_ACTIONS.join(', ')}; the sign-in identity then needs ` +
      `Microsoft.Authorization/roleAssignments/write and roleDefinitions/write on that scope).`
  )
}

/**
 * Assigns the connector identity the role checkConnectorAccess found missing
 * (grant-connector-role): the least that works, a custom role with only what the connector
 * does in ACI (role-definitions.ts), not Contributor on the whole resource group.
 */
export async function grantConnectorAccess(
  arm: ArmClient,
  resourceGroup: string,
  identity: ConnectorIdentityRef,
  objectId: string,
  cluster: string
): Promise<GrantedRole> {
  const scope = resourceGroupScope(arm, resourceGroup)
  const role = await grantVirtualNodeRole(arm, { resourceGroup, principalId: objectId, description: grantDescription(cluster) })
  core.info(
    `${role.outcome === 'created' ? 'Assigned' : 'Found'} role "${role.role}" on ${scope} for ${identity.description} (grant-connector-role): ` +
      `only ${VIRTUAL_NODE_ACTIONS.join(', ')}. It stays after a remove (another connector may use it); the summary says how to delete it.`
  )
  return role
}

/** The role assignments grant-connector-role made for `cluster`'s connectors on these resource groups: a remove lists and leaves them. */
export function connectorRoleItems(arm: ArmClient, resourceGroups: string[], cluster: string): Promise<TeardownItem[]> {
  return grantedRoleItems(
    arm,
    resourceGroups,
    grantDescription(cluster),
    "granted by grant-connector-role for this cluster's connector; left in place (another connector or the next install may use it)"
  )
}
