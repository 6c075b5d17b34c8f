// May the connector's identity create container groups in the ACI resource group? Checked
// before anything is installed, because the connector itself never says so in a way a
// user sees: it registers a Ready node before its first Azure call, and every pod later
// stays Pending with ProviderFailed. Optionally grants the role instead.
//
// How Azure answers the question:
// - for the signed-in principal, the permissions API lists the actions its roles allow at a
//   scope (https://learn.microsoft.com/rest/api/authorization/permissions/list-for-resource-group);
// - for another principal (the kubelet identity), its role assignments that apply at the
//   scope, and the permissions of each role definition
//   (https://learn.microsoft.com/rest/api/authorization/role-assignments/list-for-scope).
// An action is allowed when some permission entry lists it (wildcards allowed) and that
// entry's notActions do not (https://learn.microsoft.com/azure/role-based-access-control/role-definitions).
import { randomUUID } from 'node:crypto'
import * as core from '@actions/core'
import { ArmError, type ArmClient } from '../../azure/arm.js'
import { errorText } from '../../util/async.js'
import type { TeardownItem } from '../../runner/summary.js'

/** What the connector does first with a pod: create its container group. */
export const CONTAINER_GROUP_WRITE = 'Microsoft.ContainerInstance/containerGroups/write'
export const AUTHORIZATION_API_VERSION = '2022-04-01'
/** The role the azure-aci project and the old CLI give the connector (built-in Contributor; same id in every tenant). */
export const CONTRIBUTOR_ROLE_ID = 'b24988ac-6180-42a0-ab88-20f7382dd24c'

export interface Permission {
  actions?: string[]
  notActions?: string[]
}

function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map(p => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
      .join('.*')}$`,
    'i'
  )
  return re.test(action)
}

/** Whether any permission entry allows `action`. */
export function permits(permissions: Permission[], action: string): boolean {
  return permissions.some(p => (p.actions ?? []).some(a => actionMatches(a, action)) && !(p.notActions ?? []).some(n => actionMatches(n, action)))
}

/** A scope covers itself and what is below it. */
export function scopeCovers(assigned: string, scope: string): boolean {
  const a = assigned.replace(/\/+$/, '').toLowerCase()
  const s = scope.replace(/\/+$/, '').toLowerCase()
  return s === a || s.startsWith(`${a}/`)
}

/**
 * Whether an assignment ARM listed for `scope` applies there: at the scope or above it in
 * the path, or at the root (`/`) or a management group. ARM lists management-group
 * assignments for a scope only from the groups above its subscription, so each one it
 * returns applies (https://learn.microsoft.com/azure/role-based-access-control/scope-overview).
 */
export function assignmentApplies(assigned: string, scope: string): boolean {
  return scopeCovers(assigned, scope) || assigned === '/' || /^\/providers\/Microsoft\.Management\/managementGroups\/[^/]+\/?$/i.test(assigned)
}

export function resourceGroupScope(arm: ArmClient, resourceGroup: string): string {
  return arm.subscriptionPath(`/resourceGroups/${resourceGroup}`)
}

/** The signed-in principal's object ID, from the `oid` claim of its ARM token. */
export function tokenObjectId(token: string): string | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { oid?: string }
    return claims.oid
  } catch {
    return undefined
  }
}

/** Whether the signed-in principal may create container groups in the resource group. */
export async function signedInMayCreateGroups(arm: ArmClient, resourceGroup: string): Promise<boolean> {
  const scope = resourceGroupScope(arm, resourceGroup)
  const result = await arm.get<{ value?: Permission[] }>(`${scope}/providers/Microsoft.Authorization/permissions`, AUTHORIZATION_API_VERSION)
  return permits(result.value ?? [], CONTAINER_GROUP_WRITE)
}

interface RoleAssignmentList {
  value?: Array<{ id?: string; properties?: { roleDefinitionId?: string; scope?: string; principalId?: string; description?: string | null } }>
}

/** How the cluster is named in role assignment descriptions and messages: <resource-group>/<cluster-name>. */
export function clusterLabel(inputs: { resourceGroup: string; clusterName: string }): string {
  return `${inputs.resourceGroup}/${inputs.clusterName}`
}

/**
 * The description a role assignment made by grant-connector-role carries (a documented
 * property of role assignments), so a later remove can name it for this cluster.
 */
export function grantDescription(cluster: string): string {
  return `Granted by aks-aci-connector-action (grant-connector-role) to the ACI connector of AKS cluster ${cluster}`
}

/** A role assignment grant-connector-role made (or found), for the summary. */
export interface GrantedRole {
  id?: string
  scope: string
  principalId: string
  outcome: 'created' | 'existed'
}

/**
 * Whether `principalId` holds a role at or above the resource group that allows creating
 * container groups, itself or through a group it is in: `assignedTo('<id>')` lists those
 * too, transitively (https://learn.microsoft.com/azure/role-based-access-control/role-assignments-list-rest),
 * where `principalId eq` lists only its own.
 */
export async function principalMayCreateGroups(arm: ArmClient, resourceGroup: string, principalId: string): Promise<boolean> {
  const scope = resourceGroupScope(arm, resourceGroup)
  const filter = encodeURIComponent(`assignedTo('${principalId}')`)
  const assignments = await arm.get<RoleAssignmentList>(
    `${scope}/providers/Microsoft.Authorization/roleAssignments?$filter=${filter}`,
    AUTHORIZATION_API_VERSION
  )
  // The list also holds assignments below the scope (one container group), which do not count.
  const roles = new Set(
    (assignments.value ?? []).filter(a => assignmentApplies(a.properties?.scope ?? '', scope)).map(a => a.properties?.roleDefinitionId ?? '')
  )
  for (const id of roles) {
    if (!id) continue
    const definition = await arm.get<{ properties?: { permissions?: Permission[] } }>(id, AUTHORIZATION_API_VERSION)
    if (permits(definition.properties?.permissions ?? [], CONTAINER_GROUP_WRITE)) return true
  }
  return false
}

/**
 * Assigns Contributor on the resource group to `principalId`; 'existed' when it already
 * had it. Needs Microsoft.Authorization/roleAssignments/write there.
 */
export async function grantContributor(
  arm: ArmClient,
  resourceGroup: string,
  principalId: string,
  principalType: 'ServicePrincipal',
  description?: string
): Promise<GrantedRole> {
  const scope = resourceGroupScope(arm, resourceGroup)
  const roleDefinitionId = arm.subscriptionPath(`/providers/Microsoft.Authorization/roleDefinitions/${CONTRIBUTOR_ROLE_ID}`)
  const body = { properties: { roleDefinitionId, principalId, principalType, description } }
  const id = `${scope}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`
  try {
    await arm.put(id, AUTHORIZATION_API_VERSION, body)
    return { id, scope, principalId, outcome: 'created' }
  } catch (err) {
    if (err instanceof ArmError && err.status === 409 && err.code === 'RoleAssignmentExists') return { scope, principalId, outcome: 'existed' }
    if (err instanceof ArmError && err.status === 403) {
      throw new Error(
        `grant-connector-role: the sign-in identity may not assign roles on ${scope} (it needs Microsoft.Authorization/roleAssignments/write there, e.g. as User Access Administrator or Owner). ` +
          `Ask someone who may to run \`az role assignment create --assignee-object-id ${principalId} --assignee-principal-type ${principalType} --role Contributor --scope ${scope}\`, or sign in with such an identity.\n${err.message}`
      )
    }
    throw err
  }
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

export type AccessVerdict = { verdict: 'allowed' | 'unchecked' } | { verdict: 'granted'; role: GrantedRole }

/**
 * Checks (and with `grant`, fixes) the connector identity's access before the install.
 * Throws with the command to run when it may not create container groups. A check that
 * cannot be made (the sign-in identity may not read role assignments) only warns.
 */
export async function ensureConnectorAccess(
  arm: ArmClient,
  resourceGroup: string,
  identity: ConnectorIdentityRef,
  grant: boolean,
  cluster: string
): Promise<AccessVerdict> {
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
    const role = await grantContributor(arm, resourceGroup, identity.objectId, 'ServicePrincipal', grantDescription(cluster))
    core.info(
      `${role.outcome === 'created' ? 'Assigned' : 'Found'} Contributor on ${scope} for ${identity.description} (grant-connector-role). ` +
        'It stays after a remove (another connector may use it); the summary says how to delete it.'
    )
    return { verdict: 'granted', role }
  }
  throw new Error(
    `The connector's identity (${identity.description}) may not create container groups in resource group ${resourceGroup}: it needs ${CONTAINER_GROUP_WRITE} there, ` +
      `and without it the virtual node turns Ready but every pod on it stays Pending (ProviderFailed). Nothing was installed. ` +
      `Assign it the Contributor role there: \`az role assignment create --assignee ${identity.assignee} --role Contributor --scope ${scope}\`, ` +
      `or set grant-connector-role: true to let this action assign it (the sign-in identity then needs Microsoft.Authorization/roleAssignments/write on that scope).`
  )
}

/** The command that deletes a role assignment. */
export function roleDeleteCommand(role: { id?: string; scope: string; principalId: string }): string {
  return role.id
    ? `az role assignment delete --ids ${role.id}`
    : `az role assignment delete --assignee ${role.principalId} --role Contributor --scope ${role.scope}`
}

/**
 * The role assignments grant-connector-role made for `cluster` on these resource groups
 * (found by their description), as teardown items: a remove leaves them (another connector
 * or the next install may need them) and says how to delete them. Listing them is only a
 * courtesy: a refusal leaves the list out.
 */
export async function grantedRoleItems(arm: ArmClient, resourceGroups: string[], cluster: string): Promise<TeardownItem[]> {
  const found = await Promise.all(resourceGroups.map(rg => grantedRoles(arm, rg, grantDescription(cluster)).then(roles => roles.map(role => ({ rg, role })))))
  return found.flat().map(({ rg, role }) => ({
    kind: 'role assignment',
    name: `Contributor on ${rg} for ${role.principalId}`,
    detail: `granted by grant-connector-role for this cluster's connector; left in place (another connector or the next install may use it): delete with \`${roleDeleteCommand(role)}\``,
    outcome: 'kept'
  }))
}

/**
 * The role assignments on the resource group that grant-connector-role made with this
 * description (the connector's, or a Virtual Nodes v2 extension's identity's). Listing them
 * is only a courtesy: a refusal gives none.
 */
export async function grantedRoles(
  arm: ArmClient,
  resourceGroup: string,
  description: string
): Promise<Array<{ id?: string; scope: string; principalId: string }>> {
  const scope = resourceGroupScope(arm, resourceGroup)
  try {
    const list = await arm.get<RoleAssignmentList>(
      `${scope}/providers/Microsoft.Authorization/roleAssignments?$filter=${encodeURIComponent('atScope()')}`,
      AUTHORIZATION_API_VERSION
    )
    return (list.value ?? [])
      .filter(a => a.properties?.description === description && scopeCovers(scope, a.properties.scope ?? ''))
      .map(a => ({ id: a.id, scope, principalId: a.properties?.principalId ?? '' }))
  } catch (err) {
    core.debug(`Could not list role assignments on ${scope}: ${errorText(err)}`)
    return []
  }
}
