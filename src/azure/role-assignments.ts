// Azure role assignments: may a principal perform an action at a scope, and assigning a
// role. Shared by every kind of virtual node whose identity must create container groups.
//
// How Azure answers the question:
// - for the signed-in principal, the permissions API lists the actions its roles allow at a
//   scope (https://learn.microsoft.com/rest/api/authorization/permissions/list-for-resource-group);
// - for another principal (the kubelet identity, an extension's), its role assignments that
//   apply at the scope, and the permissions of each role definition
//   (https://learn.microsoft.com/rest/api/authorization/role-assignments/list-for-scope).
// An action is allowed when some permission entry lists it (wildcards allowed) and that
// entry's notActions do not (https://learn.microsoft.com/azure/role-based-access-control/role-definitions).
import { randomUUID } from 'node:crypto'
import * as core from '@actions/core'
import { ArmError, type ArmClient } from './arm.js'
import { errorText } from '../util/async.js'

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

/** Whether the signed-in principal may create container groups in the resource group. */
export async function signedInMayCreateGroups(arm: ArmClient, resourceGroup: string): Promise<boolean> {
  const scope = resourceGroupScope(arm, resourceGroup)
  const result = await arm.get<{ value?: Permission[] }>(`${scope}/providers/Microsoft.Authorization/permissions`, AUTHORIZATION_API_VERSION)
  return permits(result.value ?? [], CONTAINER_GROUP_WRITE)
}

interface RoleAssignmentList {
  value?: Array<{ id?: string; properties?: { roleDefinitionId?: string; scope?: string; principalId?: string; description?: string | null } }>
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

/** The command that deletes a role assignment. */
export function roleDeleteCommand(role: { id?: string; scope: string; principalId: string }): string {
  return role.id
    ? `az role assignment delete --ids ${role.id}`
    : `az role assignment delete --assignee ${role.principalId} --role Contributor --scope ${role.scope}`
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
