// Azure role-based access control for the imitated subscription: a few built-in roles with
// their real ids and permission sets, role assignments per principal and scope, the check
// ARM makes on every request (403 AuthorizationFailed when no assignment at or above the
// scope grants the action), and the Microsoft.Authorization REST surface a client uses to
// read and change all that (roleDefinitions, roleAssignments, permissions).
//
// Role definitions: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
// (Owner, Contributor, Reader, User Access Administrator, with their JSON `permissions`).
// How actions and wildcards match, notActions subtracted from actions:
// https://learn.microsoft.com/azure/role-based-access-control/role-definitions#actions
// The 403 body: https://learn.microsoft.com/azure/role-based-access-control/troubleshooting
// ("The client '...' with object id '...' does not have authorization to perform action ...").
// REST: https://learn.microsoft.com/rest/api/authorization/role-assignments,
// /permissions/list-for-resource-group.
import { randomUUID } from 'node:crypto'
import { armError, type Caller, type Reply } from './azure-http.js'

export interface RoleDefinition {
  id: string
  roleName: string
  actions: string[]
  notActions: string[]
  /** A custom role's (https://learn.microsoft.com/azure/role-based-access-control/custom-roles): where it may be assigned. */
  assignableScopes?: string[]
  description?: string
}

/** Built-in roles as the documentation lists them (ids are the same in every tenant). */
export const BUILT_IN_ROLES: RoleDefinition[] = [
  { id: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635', roleName: 'Owner', actions: ['*'], notActions: [] },
  {
    id: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
    roleName: 'Contributor',
    actions: ['*'],
    notActions: [
      'Microsoft.Authorization/*/Delete',
      'Microsoft.Authorization/*/Write',
      'Microsoft.Authorization/elevateAccess/Action',
      'Microsoft.Blueprint/blueprintAssignments/write',
      'Microsoft.Blueprint/blueprintAssignments/delete',
      'Microsoft.Compute/galleries/share/action',
      'Microsoft.Purview/consents/write',
      'Microsoft.Purview/consents/delete',
      'Microsoft.Resources/deploymentStacks/manageDenySetting/action',
      'Microsoft.Subscription/cancel/action',
      'Microsoft.Subscription/enable/action'
    ]
  },
  { id: 'acdd72a7-3385-48ef-bd42-f606fba81ae7', roleName: 'Reader', actions: ['*/read'], notActions: [] },
  {
    id: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
    roleName: 'User Access Administrator',
    actions: ['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*'],
    notActions: []
  }
]

export interface RoleAssignment {
  /** Full resource id: `<scope>/providers/Microsoft.Authorization/roleAssignments/<name>` */
  id: string
  name: string
  principalId: string
  roleName: string
  roleDefinitionId: string
  scope: string
  /** RoleAssignmentProperties.description, as the PUT gave it (https://learn.microsoft.com/rest/api/authorization/role-assignments/create). */
  description?: string
}

export interface Rbac {
  assign(principalId: string, roleName: string, scope: string): RoleAssignment
  /** Makes `memberId` a member of the Entra group `groupId` (an assignment to the group applies to its members). */
  addGroupMember(groupId: string, memberId: string): void
  /** A management group holding these subscriptions: an assignment at it applies to them and all below. */
  addManagementGroup(name: string, subscriptionIds: string[]): string
  unassign(principalId: string, roleName: string, scope: string): void
  assignments(): RoleAssignment[]
  /** undefined when allowed, else ARM's 403 reply. */
  authorize(caller: Caller, action: string, scope: string): Reply | undefined
  /** The action a Microsoft.Authorization request needs (`rest` follows `providers/Microsoft.Authorization/`). */
  actionFor(method: string, rest: string[]): string
  handle(req: { method: string; scope: string; rest: string[]; query: URLSearchParams; body: string; caller: Caller }): Reply
}

// An action pattern (`*`, `*/read`, `Microsoft.Authorization/*/Write`) as a case-insensitive matcher.
export function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map(p => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
      .join('.*')}$`,
    'i'
  )
  return re.test(action)
}

/** A scope covers itself and everything below it (`/subscriptions/s` covers `/subscriptions/s/resourceGroups/g/...`). */
export function scopeCovers(assigned: string, requested: string): boolean {
  const a = assigned.replace(/\/+$/, '').toLowerCase()
  const r = requested.replace(/\/+$/, '').toLowerCase()
  return r === a || r.startsWith(`${a}/`)
}

/** The scope of a management group, as ARM writes it. */
export function managementGroupScope(name: string): string {
  return `/providers/Microsoft.Management/managementGroups/${name}`
}

export function roleGrants(role: RoleDefinition, action: string): boolean {
  return role.actions.some(p => actionMatches(p, action)) && !role.notActions.some(p => actionMatches(p, action))
}

export function createRbac(opts: { subscriptionId: string }): Rbac {
  const list: RoleAssignment[] = []
  const subscriptionScope = `/subscriptions/${opts.subscriptionId}`
  const members = new Map<string, Set<string>>()
  const managementGroups = new Map<string, Set<string>>()
  /** The principal and every group it is in, transitively (group nesting, as Entra ID resolves it). */
  const principalsOf = (principalId: string): Set<string> => {
    const found = new Set([principalId.toLowerCase()])
    for (let grew = true; grew;) {
      grew = false
      for (const [group, m] of members) {
        if (found.has(group) || ![...m].some(x => found.has(x))) continue
        found.add(group)
        grew = true
      }
    }
    return found
  }
  /** An assignment at `assigned` applies at `requested`: the same scope or one above it, a management group holding its subscription, or the root. */
  const appliesAt = (assigned: string, requested: string): boolean => {
    if (scopeCovers(assigned, requested) || assigned === '/') return true
    const mg = /^\/providers\/Microsoft\.Management\/managementGroups\/([^/]+)$/i.exec(assigned)?.[1]
    const sub = /^\/subscriptions\/([^/]+)/i.exec(requested)?.[1]?.toLowerCase()
    return Boolean(mg && sub && managementGroups.get(mg.toLowerCase())?.has(sub))
  }
  /** Custom roles made with PUT roleDefinitions (Role Definitions - Create Or Update, https://learn.microsoft.com/rest/api/authorization/role-definitions/create-or-update). */
  const custom: RoleDefinition[] = []
  const allRoles = (): RoleDefinition[] => [...BUILT_IN_ROLES, ...custom]
  const roleByName = (name: string): RoleDefinition | undefined => allRoles().find(r => r.roleName.toLowerCase() === name.toLowerCase())
  const roleById = (id: string): RoleDefinition | undefined => allRoles().find(r => id.toLowerCase().endsWith(r.id.toLowerCase()))
  const definitionId = (role: RoleDefinition): string => `${subscriptionScope}/providers/Microsoft.Authorization/roleDefinitions/${role.id}`

  function assign(principalId: string, roleName: string, scope: string, name: string = randomUUID(), description?: string): RoleAssignment {
    const role = roleByName(roleName)
    if (!role) throw new Error(`azure-rbac: no role named ${roleName}`)
    const existing = list.find(a => a.principalId === principalId && a.roleDefinitionId.endsWith(role.id) && a.scope.toLowerCase() === scope.toLowerCase())
    if (existing) return existing
    const a: RoleAssignment = {
      id: `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`,
      name,
      principalId,
      roleName: role.roleName,
      roleDefinitionId: definitionId(role),
      scope,
      description
    }
    list.push(a)
    return a
  }

  const rolesOf = (principalId: string, scope: string): RoleDefinition[] => {
    const principals = principalsOf(principalId)
    return list.filter(a => principals.has(a.principalId.toLowerCase()) && appliesAt(a.scope, scope)).flatMap(a => roleByName(a.roleName) ?? [])
  }

  function authorize(caller: Caller, action: string, scope: string): Reply | undefined {
    if (rolesOf(caller.objectId, scope).some(r => roleGrants(r, action))) return undefined
    return armError(
      403,
      'AuthorizationFailed',
      `The client '${caller.appId}' with object id '${caller.objectId}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`
    )
  }

  const assignmentBody = (a: RoleAssignment): Record<string, unknown> => ({
    id: a.id,
    name: a.name,
    type: 'Microsoft.Authorization/roleAssignments',
    properties: {
      roleDefinitionId: a.roleDefinitionId,
      principalId: a.principalId,
      principalType: 'ServicePrincipal',
      scope: a.scope,
      condition: null,
      conditionVersion: null,
      createdOn: new Date().toISOString(),
      updatedOn: new Date().toISOString(),
      createdBy: null,
      updatedBy: null,
      delegatedManagedIdentityResourceId: null,
      description: a.description ?? null
    }
  })
  const definitionBody = (r: RoleDefinition): Record<string, unknown> => ({
    id: definitionId(r),
    name: r.id,
    type: 'Microsoft.Authorization/roleDefinitions',
    properties: {
      roleName: r.roleName,
      type: r.assignableScopes ? 'CustomRole' : 'BuiltInRole',
      description: r.description ?? r.roleName,
      assignableScopes: r.assignableScopes ?? ['/'],
      permissions: [{ actions: r.actions, notActions: r.notActions, dataActions: [], notDataActions: [] }]
    }
  })

  /**
   * `$filter=principalId eq '<id>'` (that principal's own assignments), `assignedTo('<id>')`
   * (also those of the groups it is in, transitively) and `atScope()`
   * (https://learn.microsoft.com/azure/role-based-access-control/role-assignments-list-rest).
   */
  function filtered(scope: string, query: URLSearchParams): RoleAssignment[] {
    const filter = query.get('$filter') ?? ''
    const principal = /principalId\s+eq\s+'([^']+)'/i.exec(filter)?.[1]
    const assignedTo = /assignedTo\('([^']+)'\)/i.exec(filter)?.[1]
    const principals = assignedTo ? principalsOf(assignedTo) : principal ? new Set([principal.toLowerCase()]) : undefined
    const atScope = /atScope\(\)/i.test(filter)
    return list.filter(a => {
      if (principals && !principals.has(a.principalId.toLowerCase())) return false
      // Assignments that apply at the scope: at it or above (management groups included); without atScope() also below it.
      return appliesAt(a.scope, scope) || (!atScope && scopeCovers(scope, a.scope))
    })
  }

  /** Creates or updates a custom role; a role name is unique in the tenant (409 RoleDefinitionWithSameNameExists). */
  function putRoleDefinition(id: string, body: string): Reply {
    let props: { roleName?: string; description?: string; permissions?: Array<{ actions?: string[]; notActions?: string[] }>; assignableScopes?: string[] } = {}
    try {
      props = (JSON.parse(body) as { properties?: typeof props }).properties ?? {}
    } catch {
      return armError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.')
    }
    if (!props.roleName || !props.assignableScopes?.length) return armError(400, 'InvalidRoleDefinition', 'roleName and assignableScopes are required.')
    if (allRoles().some(r => r.roleName.toLowerCase() === props.roleName!.toLowerCase() && r.id.toLowerCase() !== id.toLowerCase()))
      return armError(409, 'RoleDefinitionWithSameNameExists', `A custom role with the same name '${props.roleName}' already exists in this directory.`)
    const role: RoleDefinition = {
      id,
      roleName: props.roleName,
      actions: (props.permissions ?? []).flatMap(p => p.actions ?? []),
      notActions: (props.permissions ?? []).flatMap(p => p.notActions ?? []),
      assignableScopes: props.assignableScopes,
      description: props.description
    }
    const i = custom.findIndex(r => r.id.toLowerCase() === id.toLowerCase())
    if (i >= 0) custom[i] = role
    else custom.push(role)
    return { status: 201, body: definitionBody(role) }
  }

  return {
    assign: (p, r, s) => assign(p, r, s),
    addGroupMember(groupId, memberId) {
      const m = members.get(groupId.toLowerCase()) ?? new Set<string>()
      m.add(memberId.toLowerCase())
      members.set(groupId.toLowerCase(), m)
    },
    addManagementGroup(name, subscriptionIds) {
      managementGroups.set(name.toLowerCase(), new Set(subscriptionIds.map(s => s.toLowerCase())))
      return managementGroupScope(name)
    },
    unassign(principalId, roleName, scope) {
      const i = list.findIndex(
        a => a.principalId === principalId && a.roleName.toLowerCase() === roleName.toLowerCase() && a.scope.toLowerCase() === scope.toLowerCase()
      )
      if (i >= 0) list.splice(i, 1)
    },
    assignments: () => [...list],
    authorize,
    actionFor(method, rest) {
      const type = (rest[0] ?? '').toLowerCase()
      if (type === 'permissions') return 'Microsoft.Authorization/permissions/read'
      const kind = type === 'roledefinitions' ? 'roleDefinitions' : 'roleAssignments'
      return `Microsoft.Authorization/${kind}/${method === 'PUT' ? 'write' : method === 'DELETE' ? 'delete' : 'read'}`
    },
    handle({ method, scope, rest, query, body, caller }) {
      const type = (rest[0] ?? '').toLowerCase()
      if (type === 'permissions' && method === 'GET') {
        // What the caller may do here: the permissions of each of its roles that apply.
        const roles = rolesOf(caller.objectId, scope)
        return { status: 200, body: { value: roles.map(r => ({ actions: r.actions, notActions: r.notActions, dataActions: [], notDataActions: [] })) } }
      }
      if (type === 'roledefinitions' && method === 'GET') {
        if (rest[1]) {
          const r = roleById(rest[1])
          return r
            ? { status: 200, body: definitionBody(r) }
            : armError(404, 'RoleDefinitionDoesNotExist', "The specified role definition with ID '" + rest[1] + "' does not exist.")
        }
        const name = /roleName\s+eq\s+'([^']+)'/i.exec(query.get('$filter') ?? '')?.[1]
        return {
          status: 200,
          body: {
            value: allRoles()
              .filter(r => !name || r.roleName.toLowerCase() === name.toLowerCase())
              .map(definitionBody)
          }
        }
      }
      if (type === 'roledefinitions' && method === 'PUT' && rest[1]) return putRoleDefinition(rest[1], body)
      if (type === 'roleassignments') {
        const name = rest[1]
        if (method === 'GET' && !name) return { status: 200, body: { value: filtered(scope, query).map(assignmentBody) } }
        if (method === 'PUT' && name) {
          let props: { roleDefinitionId?: string; principalId?: string; description?: string } = {}
          try {
            props = (JSON.parse(body) as { properties?: typeof props }).properties ?? {}
          } catch {
            return armError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.')
          }
          const role = roleById(props.roleDefinitionId ?? '')
          if (!role || !props.principalId)
            return armError(400, 'InvalidRoleDefinitionId', `The role definition ID '${props.roleDefinitionId ?? ''}' is not valid.`)
          // A custom role is assignable only within its assignableScopes.
          if (role.assignableScopes && !role.assignableScopes.some(a => scopeCovers(a, scope)))
            return armError(403, 'AuthorizationFailed', `The role definition '${role.id}' is not assignable at scope '${scope}'.`)
          const dup = list.find(
            a =>
              a.principalId.toLowerCase() === props.principalId!.toLowerCase() && a.roleName === role.roleName && a.scope.toLowerCase() === scope.toLowerCase()
          )
          if (dup) return armError(409, 'RoleAssignmentExists', 'The role assignment already exists.')
          return { status: 201, body: assignmentBody(assign(props.principalId, role.roleName, scope, name, props.description)) }
        }
        const found = list.find(a => a.name === name && a.scope.toLowerCase() === scope.toLowerCase())
        if (method === 'GET' && name)
          return found
            ? { status: 200, body: assignmentBody(found) }
            : armError(404, 'RoleAssignmentNotFound', "The role assignment '" + name + "' is not found.")
        if (method === 'DELETE' && name) {
          if (!found) return { status: 204 }
          list.splice(list.indexOf(found), 1)
          return { status: 200, body: assignmentBody(found) }
        }
      }
      return armError(404, 'NotFound', `The requested resource '${rest.join('/')}' does not exist.`)
    }
  }
}
