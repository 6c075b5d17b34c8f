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

/** The actions of `actions` the signed-in principal may not perform at `scope` (the permissions API). */
export async function signedInLacks(arm: ArmClient, scope: string, actions: string[]): Promise<string[]> {
  const result = await arm.get<{ value?: Permission[] }>(`${scope}/providers/Microsoft.Authorization/permissions`, AUTHORIZATION_API_VERSION)
  return actions.filter(a => !permits(result.value ?? [], a))
}

/** What grant-connector-role needs of the sign-in identity: making the custom role and assigning it. */
export const GRANT_ACTIONS = ['Microsoft.Authorization/roleAssignments/write', 'Microsoft.Authorization/roleDefinitions/write']

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
  /** The role's name. */
  role: string
  outcome: 'created' | 'existed'
  /** What a remove takes it with (the extension, the add-on); undefined: a remove leaves it. */
  removedWith?: string
}

/**
 * Whether `principalId` holds a role at or above `scope` that allows `action`, itself or
 * through a group it is in: `assignedTo('<id>')` lists those too, transitively
 * (https://learn.microsoft.com/azure/role-based-access-control/role-assignments-list-rest),
 * where `principalId eq` lists only its own.
 */
export async function principalMay(arm: ArmClient, scope: string, principalId: string, action: string): Promise<boolean> {
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
    if (permits(definition.properties?.permissions ?? [], action)) return true
  }
  return false
}

/** Whether `principalId` may create container groups in the resource group (principalMay). */
export async function principalMayCreateGroups(arm: ArmClient, resourceGroup: string, principalId: string): Promise<boolean> {
  return principalMay(arm, resourceGroupScope(arm, resourceGroup), principalId, CONTAINER_GROUP_WRITE)
}

/** A role to assign: its full definition id and its name, as a message says it. */
export interface RoleRef {
  id: string
  name: string
}

export function contributorRole(arm: ArmClient): RoleRef {
  return { id: arm.subscriptionPath(`/providers/Microsoft.Authorization/roleDefinitions/${CONTRIBUTOR_ROLE_ID}`), name: 'Contributor' }
}

/**
 * Assigns `role` at `scope` to `principalId`; 'existed' when it already had it. Needs
 * Microsoft.Authorization/roleAssignments/write there.
 */
export async function grantRoleAt(
  arm: ArmClient,
  scope: string,
  role: RoleRef,
  principalId: string,
  principalType: 'ServicePrincipal',
  description?: string
): Promise<GrantedRole> {
  const body = { properties: { roleDefinitionId: role.id, principalId, principalType, description } }
  const id = `${scope}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`
  try {
    await arm.put(id, AUTHORIZATION_API_VERSION, body)
    return { id, scope, principalId, role: role.name, outcome: 'created' }
  } catch (err) {
    if (err instanceof ArmError && err.status === 409 && err.code === 'RoleAssignmentExists') return { scope, principalId, role: role.name, outcome: 'existed' }
    if (err instanceof ArmError && err.status === 403) {
      throw new Error(
        `grant-connector-role: the sign-in identity may not assign roles on ${scope} (it needs Microsoft.Authorization/roleAssignments/write there, e.g. as User Access Administrator or Owner). ` +
          `Ask someone who may to run \`az role assignment create --assignee-object-id ${principalId} --assignee-principal-type ${principalType} --role "${role.name}" --scope ${scope}\`, or sign in with such an identity.\n${err.message}`
      )
    }
    throw err
  }
}

/** The command that deletes a role assignment. */
export function roleDeleteCommand(role: { id?: string; scope: string; principalId: string; role: string }): string {
  return role.id
    ? `az role assignment delete --ids ${role.id}`
    : `az role assignment delete --assignee ${role.principalId} --role "${role.role}" --scope ${role.scope}`
}

/** A role assignment grant-connector-role made, as a teardown finds it. */
export interface FoundGrant {
  id?: string
  scope: string
  principalId: string
  /** Contributor, or the custom role's id when it is not (its name is not in the assignment). */
  role: string
}

/**
 * The role assignments on the resource group that grant-connector-role made with this
 * description (the connector's, or a Virtual Nodes v2 extension's identity's). Listing them
 * is only a courtesy: a refusal gives none.
 */
export async function grantedRoles(arm: ArmClient, resourceGroup: string, description: string): Promise<FoundGrant[]> {
  return grantedRolesAt(arm, resourceGroupScope(arm, resourceGroup), description)
}

/** grantedRoles at any scope (a VNet's, say). */
export async function grantedRolesAt(arm: ArmClient, scope: string, description: string): Promise<FoundGrant[]> {
  try {
    const list = await arm.get<RoleAssignmentList>(
      `${scope}/providers/Microsoft.Authorization/roleAssignments?$filter=${encodeURIComponent('atScope()')}`,
      AUTHORIZATION_API_VERSION
    )
    return (list.value ?? [])
      .filter(a => a.properties?.description === description && scopeCovers(scope, a.properties.scope ?? ''))
      .map(a => {
        const definition = a.properties?.roleDefinitionId ?? ''
        const role = definition.toLowerCase().endsWith(CONTRIBUTOR_ROLE_ID) ? 'Contributor' : definition.slice(definition.lastIndexOf('/') + 1)
        return { id: a.id, scope, principalId: a.properties?.principalId ?? '', role }
      })
  } catch (err) {
    core.debug(`Could not list role assignments on ${scope}: ${errorText(err)}`)
    return []
  }
}
