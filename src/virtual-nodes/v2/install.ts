// Installing Virtual Nodes v2 as the AKS cluster extension: prerequisites first (nothing
// changes before every one has passed), then the ACI subnet, the extension (created, or
// converged when it is there), its provisioning, and its identity's role on the node
// resource group, where v2 puts container groups.
import * as core from '@actions/core'
import type { ArmClient } from '../../azure/arm.js'
import { principalMayCreateGroups, resourceGroupScope, type GrantedRole } from '../../azure/role-assignments.js'
import { grantVirtualNodeRole, VIRTUAL_NODE_ACTIONS } from '../../azure/role-definitions.js'
import type { ClusterInfo } from '../../kubernetes/cluster.js'
import { errorText } from '../../util/async.js'
import {
  deleteExtension,
  extensionMessages,
  getExtension,
  listV2Extensions,
  putExtension,
  V2_EXTENSION_NAME,
  V2_NAMESPACE,
  waitForProvisioning,
  type Extension
} from './extension.js'
import { checkV2Prerequisites, ensureAciSubnet } from './prerequisites.js'

export interface V2InstallContext {
  arm: ArmClient
  cluster: ClusterInfo
  /** The node count asked for; undefined keeps the extension's own (1 for a new one). */
  nodeCount?: number
  grantRole: boolean
  clusterLabel: string
  deadline: number
}

export interface V2InstallResult {
  extension: Extension
  /** Whether this run created the extension. */
  created: boolean
  role?: GrantedRole
}

/** What the prerequisites found: how to make the subnet, and the extension of this action's name if there is one (and whether it is provably this action's). */
export interface V2Plan {
  /** Makes the ACI subnet (when it is not there), waiting no later than `deadline`. */
  makeSubnet: (deadline: number) => Promise<void>
  existing?: Extension
  /** The existing extension is this action's (its record, or a role this action granted its identity). */
  ours: boolean
  /** The node count an install ends with. */
  nodeCount: number
}

/** Checks what v2 needs; throws with every problem before anything changes. */
export async function checkV2(
  arm: ArmClient,
  cluster: ClusterInfo,
  nodeCount: number | undefined,
  isOurs: (e: Extension) => Promise<boolean>
): Promise<V2Plan> {
  // First: an unregistered Microsoft.KubernetesConfiguration is one of them, and the extensions cannot be listed without it.
  const subnet = await checkV2Prerequisites(arm, cluster)
  const extensions = await listV2Extensions(arm, cluster)
  // Microsoft Learn articles/aks/virtual-nodes-v2.md limitations: one v2 extension per cluster.
  const other = extensions.find(e => e.name !== V2_EXTENSION_NAME)
  if (other)
    throw new Error(
      `Cluster ${cluster.name} already has a Virtual Nodes v2 extension, ${other.name} (${other.provisioningState}), and v2 supports one per cluster; nothing was changed. ` +
        `Use its nodes as they are (select virtualization: virtualnode2), or remove it first: \`az k8s-extension delete -g ${cluster.resourceGroup} -c ${cluster.name} -t managedClusters -n ${other.name}\`.`
    )
  const existing = extensions.find(e => e.name === V2_EXTENSION_NAME)
  const ours = existing ? await isOurs(existing) : false
  if (existing && !ours && nodeCount !== undefined && existing.replicaCount !== nodeCount)
    throw new Error(
      `Cluster ${cluster.name} has a Virtual Nodes v2 extension ${existing.name} that this action did not create (${existing.replicaCount ?? '?'} node(s)); virtual-nodes asks for ${nodeCount}, and this action changes only what it installed. ` +
        'Leave virtual-nodes empty to use its nodes as they are, or ask its owner to scale it. Nothing was changed.'
    )
  return { makeSubnet: deadline => ensureAciSubnet(arm, subnet, deadline), existing, ours, nodeCount: nodeCount ?? existing?.replicaCount ?? 1 }
}

/**
 * Creates (or converges) the extension and waits for its provisioning and for its identity
 * to hold a role that may create container groups in the node resource group. A re-run with
 * the same node count (or none asked) finds it Succeeded and changes nothing; an update keeps
 * every other setting the extension has. An extension this action did not create is used as
 * it is, never changed.
 */
export async function installV2(ctx: V2InstallContext, plan: V2Plan, record: (created: boolean) => Promise<void>): Promise<V2InstallResult> {
  const { arm, cluster } = ctx
  const name = V2_EXTENSION_NAME
  let existing = plan.existing
  if (existing?.provisioningState === 'Deleting') {
    // A remove (another job's, or an interrupted one) is taking it away: ARM refuses a PUT until it is gone.
    core.info(`Extension ${name} is being deleted; waiting until it is gone before creating it again.`)
    await deleteExtension(arm, cluster, name, ctx.deadline)
    existing = undefined
  }
  if (existing && !['Succeeded', 'Failed', 'Canceled'].includes(existing.provisioningState)) {
    // Still provisioning (a concurrent or cancelled run): its outcome decides whether a PUT is needed.
    core.info(`Extension ${name} is ${existing.provisioningState}; waiting for it before deciding what to change.`)
    existing = await waitForProvisioning(arm, cluster, name, ctx.deadline).catch(() => getExtension(arm, cluster, name))
  }
  const count = plan.nodeCount
  const upToDate = existing?.provisioningState === 'Succeeded' && existing.replicaCount === count
  const foreign = existing !== undefined && !plan.ours
  // Recorded before the PUT: a teardown proves the extension this action's by this record.
  if (!foreign) await record(existing === undefined)
  if (!existing) await plan.makeSubnet(ctx.deadline)
  if (foreign) core.info(`Extension ${name} is there, and this action did not create it: its nodes are used as they are; this action's teardown leaves it.`)
  else if (upToDate) core.info(`Extension ${name} is Succeeded with ${count} node(s): no change.`)
  else {
    core.info(
      existing
        ? `Extension ${name} is ${existing.provisioningState}${existing.replicaCount ? ` with ${existing.replicaCount} node(s)` : ''}; updating it to ${count} node(s), keeping its other settings.`
        : `Creating extension ${name} (microsoft.virtualnodes) with ${count} node(s) in ${V2_NAMESPACE}.`
    )
    await putExtension(arm, cluster, name, count, existing?.settings)
  }
  const extension = await waitForProvisioning(arm, cluster, name, ctx.deadline, e => {
    const said = extensionMessages(e)
    core.info(`Extension ${name}: ${e.provisioningState}${said ? `\n${said}` : ''}`)
  })
  const role = await ensureExtensionAccess({ ...ctx, grantRole: ctx.grantRole && !foreign }, extension)
  return { extension, created: existing === undefined, role }
}

/**
 * The extension's identity (aksAssignedIdentity) must be allowed to create container groups
 * in the node resource group, where v2 puts them (README.md of the v2 repository, "Update
 * AKS' Managed Identity": Contributor on the MC_ group). grant-connector-role assigns it.
 */
async function ensureExtensionAccess(ctx: V2InstallContext, e: Extension): Promise<GrantedRole | undefined> {
  const rg = ctx.cluster.nodeResourceGroup
  if (!e.principalId) {
    core.info(`Extension ${e.name} reports no identity (aksAssignedIdentity); its access to ${rg} is not checked.`)
    return undefined
  }
  let allowed: boolean
  try {
    allowed = await principalMayCreateGroups(ctx.arm, rg, e.principalId)
  } catch (err) {
    core.warning(`Could not check the role of extension ${e.name}'s identity ${e.principalId} on ${rg} (${errorText(err)}).`)
    return undefined
  }
  if (allowed) {
    core.info(`Extension ${e.name}'s identity ${e.principalId} may create container groups in ${rg}.`)
    return undefined
  }
  const scope = resourceGroupScope(ctx.arm, rg)
  if (ctx.grantRole) {
    // The least that works: v2's documented custom role (Docs/SecurityCustomizations.md), not Contributor on the whole group.
    const role = await grantVirtualNodeRole(ctx.arm, { resourceGroup: rg, principalId: e.principalId, description: v2GrantDescription(ctx.clusterLabel) })
    core.info(
      `${role.outcome === 'created' ? 'Assigned' : 'Found'} role "${role.role}" on ${scope} for extension ${e.name}'s identity (grant-connector-role): only ${VIRTUAL_NODE_ACTIONS.join(', ')}.`
    )
    return role
  }
  throw new Error(
    `Extension ${e.name} is installed, but its identity ${e.principalId} may not create container groups in ${rg}: pods on its nodes would stay Pending. ` +
      `Assign it a role there that allows ${VIRTUAL_NODE_ACTIONS.join(', ')} (v2's virtualnodeCustomRole, or Contributor): \`az role assignment create --assignee-object-id ${e.principalId} --assignee-principal-type ServicePrincipal --role Contributor --scope ${scope}\`, ` +
      'or set grant-connector-role: true; then re-run this step (it converges). To take the extension away instead, run the action with command: remove.'
  )
}

/** The description of a role grant-connector-role gives an extension's identity; a removal deletes it with the extension (whose identity goes too). */
export function v2GrantDescription(cluster: string): string {
  return `Granted by aks-aci-connector-action (grant-connector-role) to Virtual Nodes v2 of AKS cluster ${cluster}`
}
