// The least-privilege role grant-connector-role assigns to a virtual node's identity instead
// of Contributor: Contributor on a node resource group lets any pod that reaches the node's
// identity (the kubelet identity is served to every pod through IMDS) change everything in
// it. Virtual Nodes v2 documents the custom role that suffices
// (github.com/microsoft/virtualnodesOnAzureContainerInstances Docs/SecurityCustomizations.md,
// "virtualnodeCustomRole": containerGroups read/write/delete, containers/exec/action and
// virtualNetworks/subnets/join/action, assignable at the ACI resource group and the VNet's);
// the ACI connector calls the same container group operations plus a container's logs
// (azure-aci v1.6.4 pkg/client/client_apis.go: Get/Create/Delete/ListContainerGroup,
// ListLogs, ExecuteContainerCommand). One custom role per resource group, made idempotently.
import { createHash } from 'node:crypto'
import { ArmError, type ArmClient } from './arm.js'
import { SUBNET_JOIN } from './network.js'
import {
  AUTHORIZATION_API_VERSION,
  GRANT_ACTIONS,
  grantRoleAt,
  resourceGroupScope,
  signedInLacks,
  type GrantedRole,
  type Permission,
  type RoleRef
} from './role-assignments.js'

/** The actions a virtual node's identity needs where its container groups go (sources above). */
export const VIRTUAL_NODE_ACTIONS = [
  'Microsoft.ContainerInstance/containerGroups/read',
  'Microsoft.ContainerInstance/containerGroups/write',
  'Microsoft.ContainerInstance/containerGroups/delete',
  'Microsoft.ContainerInstance/containerGroups/containers/exec/action',
  'Microsoft.ContainerInstance/containerGroups/containers/logs/read',
  SUBNET_JOIN
]

/** A GUID that is the same for the same scope on every run, so a re-run finds the role it made (UUID layout, version 5 bits). */
export function stableGuid(text: string): string {
  const h = createHash('sha1').update(text).digest('hex')
  const variant = ((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(18, 20)}-${h.slice(20, 32)}`
}

/** The role's name: role names are unique in a tenant, so it names the subscription and resource group it serves. */
export function virtualNodeRoleName(subscriptionId: string, resourceGroup: string): string {
  return `Virtual nodes on ACI (aks-aci-connector-action) ${subscriptionId}/${resourceGroup}`
}

export function virtualNodeRoleId(arm: ArmClient, resourceGroup: string): string {
  const guid = stableGuid(`aks-aci-connector-action/virtual-node-role/${resourceGroupScope(arm, resourceGroup).toLowerCase()}`)
  return arm.subscriptionPath(`/providers/Microsoft.Authorization/roleDefinitions/${guid}`)
}

interface RoleDefinitionResource {
  properties?: { roleName?: string; permissions?: Permission[]; assignableScopes?: string[] }
}

/**
 * The custom role for `resourceGroup`, made (PUT at the resource group, assignable there) when
 * it is not there with these actions. Needs Microsoft.Authorization/roleDefinitions/write
 * there (Owner, User Access Administrator); a refusal says what to do instead.
 */
export async function ensureVirtualNodeRole(arm: ArmClient, resourceGroup: string): Promise<RoleRef> {
  const scope = resourceGroupScope(arm, resourceGroup)
  const id = virtualNodeRoleId(arm, resourceGroup)
  const name = virtualNodeRoleName(arm.access.subscriptionId, resourceGroup)
  const guid = id.slice(id.lastIndexOf('/') + 1)
  const existing = await arm
    .get<RoleDefinitionResource>(`${scope}/providers/Microsoft.Authorization/roleDefinitions/${guid}`, AUTHORIZATION_API_VERSION)
    .catch((err: unknown) => {
      if (err instanceof ArmError && err.status === 404) return undefined
      throw err
    })
  const actions = existing?.properties?.permissions?.flatMap(p => p.actions ?? []) ?? []
  if (existing && VIRTUAL_NODE_ACTIONS.every(a => actions.includes(a))) return { id, name }
  try {
    await arm.put(`${scope}/providers/Microsoft.Authorization/roleDefinitions/${guid}`, AUTHORIZATION_API_VERSION, {
      properties: {
        roleName: name,
        description: 'What a virtual node needs to run pods as ACI container groups here (made by aks-aci-connector-action, grant-connector-role).',
        type: 'CustomRole',
        permissions: [{ actions: VIRTUAL_NODE_ACTIONS, notActions: [], dataActions: [], notDataActions: [] }],
        assignableScopes: [scope]
      }
    })
  } catch (err) {
    if (err instanceof ArmError && err.status === 403)
      throw new Error(
        `grant-connector-role: the sign-in identity may not create the custom role that allows only what a virtual node needs on ${scope} ` +
          '(it needs Microsoft.Authorization/roleDefinitions/write there, e.g. as Owner or User Access Administrator). ' +
          `Sign in with such an identity, or assign the role yourself and leave grant-connector-role off (the actions it needs: ${VIRTUAL_NODE_ACTIONS.join(', ')}).\n${err.message}`
      )
    throw err
  }
  return { id, name }
}

/** A found assignment's role as a message names it: Contributor, this action's virtual-node role, or another role's id. */
export function roleLabel(arm: ArmClient, resourceGroup: string, role: string): string {
  const ours = virtualNodeRoleId(arm, resourceGroup)
  return ours.toLowerCase().endsWith(`/${role.toLowerCase()}`) ? `"${virtualNodeRoleName(arm.access.subscriptionId, resourceGroup)}"` : role
}

/**
 * Whether the sign-in identity may make the grant, asked before anything changes: one that
 * may not is refused here, with what it lacks. A check that cannot be made is left to the
 * grant itself, whose refusal says the same.
 */
export async function checkMayGrant(arm: ArmClient, scope: string, actions: readonly string[] = GRANT_ACTIONS): Promise<void> {
  const lacks = await signedInLacks(arm, scope, [...actions]).catch(() => [])
  if (lacks.length === 0) return
  const builtIn = actions === BUILT_IN_GRANT
  throw new Error(
    `grant-connector-role: the sign-in identity may not assign roles on ${scope} (it needs Microsoft.Authorization/roleAssignments/write there` +
      `${builtIn ? '' : ', and roleDefinitions/write for the least-privilege role it assigns'}: e.g. Owner or User Access Administrator; it lacks ${lacks.join(', ')}). Nothing was installed. ` +
      `Sign in with such an identity, or have someone who may assign the role (${builtIn ? 'Contributor' : `${VIRTUAL_NODE_ACTIONS.join(', ')}, or Contributor`}) and leave grant-connector-role off.`
  )
}

/** What assigning a built-in role (Contributor) takes: no role definition is made. */
export const BUILT_IN_GRANT: readonly string[] = [GRANT_ACTIONS[0]!]

/**
 * grant-connector-role's grant: the least-privilege role of `resourceGroup` (made when
 * missing) assigned to a service principal at `scope` (the group, or a VNet in it), with the
 * description by which a teardown finds it again.
 */
export async function grantVirtualNodeRole(
  arm: ArmClient,
  grant: { resourceGroup: string; scope?: string; principalId: string; description: string }
): Promise<GrantedRole> {
  const role = await ensureVirtualNodeRole(arm, grant.resourceGroup)
  return grantRoleAt(arm, grant.scope ?? resourceGroupScope(arm, grant.resourceGroup), role, grant.principalId, 'ServicePrincipal', grant.description)
}
