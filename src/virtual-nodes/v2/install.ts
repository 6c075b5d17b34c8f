// Installing Virtual Nodes v2 as the AKS cluster extension: prerequisites first (nothing
// changes before every one has passed), then the ACI subnet, the extension (created, or
// converged when it is there), its provisioning, and its identity's role on the node
// resource group, where v2 puts container groups.
import * as core from '@actions/core'
import type { ArmClient } from '../../azure/arm.js'
import { grantContributor, principalMayCreateGroups, resourceGroupScope, type GrantedRole } from '../../azure/role-assignments.js'
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
  nodeCount: number
  grantRole: boolean
  clusterLabel: string
  deadline: number
}

export interface V2InstallResult {
  extension: Extension
  /** Whether this run created the extension (cleanup removes only that). */
  created: boolean
  role?: GrantedRole
}

/** Checks what v2 needs; throws with every problem before anything changes. */
export async function checkV2(arm: ArmClient, cluster: ClusterInfo): Promise<() => Promise<void>> {
  // First: an unregistered Microsoft.KubernetesConfiguration is one of them, and the extensions cannot be listed without it.
  const subnet = await checkV2Prerequisites(arm, cluster)
  // Microsoft Learn articles/aks/virtual-nodes-v2.md limitations: one v2 extension per cluster.
  const other = (await listV2Extensions(arm, cluster)).find(e => e.name !== V2_EXTENSION_NAME)
  if (other)
    throw new Error(
      `Cluster ${cluster.name} already has a Virtual Nodes v2 extension, ${other.name} (${other.provisioningState}), and v2 supports one per cluster; nothing was changed. ` +
        `Use its nodes as they are (select virtualization: virtualnode2), or remove it first: \`az k8s-extension delete -g ${cluster.resourceGroup} -c ${cluster.name} -t managedClusters -n ${other.name}\`.`
    )
  return () => ensureAciSubnet(arm, subnet)
}

/**
 * Creates (or converges) the extension and waits for its provisioning and for its identity
 * to hold a role that may create container groups in the node resource group. A re-run with
 * the same node count finds it Succeeded and changes nothing.
 */
export async function installV2(
  ctx: V2InstallContext,
  makeSubnet: () => Promise<void>,
  record: (created: boolean) => void = () => undefined
): Promise<V2InstallResult> {
  const { arm, cluster } = ctx
  const name = V2_EXTENSION_NAME
  let existing = await getExtension(arm, cluster, name)
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
  const upToDate = existing?.provisioningState === 'Succeeded' && existing.replicaCount === ctx.nodeCount
  record(existing === undefined)
  await makeSubnet()
  if (upToDate) core.info(`Extension ${name} is Succeeded with ${ctx.nodeCount} node(s): no change.`)
  else {
    core.info(
      existing
        ? `Extension ${name} is ${existing.provisioningState}${existing.replicaCount ? ` with ${existing.replicaCount} node(s)` : ''}; updating it to ${ctx.nodeCount} node(s).`
        : `Creating extension ${name} (microsoft.virtualnodes) with ${ctx.nodeCount} node(s) in ${V2_NAMESPACE}.`
    )
    await putExtension(arm, cluster, name, ctx.nodeCount)
  }
  const extension = await waitForProvisioning(arm, cluster, name, ctx.deadline, e => {
    const said = extensionMessages(e)
    core.info(`Extension ${name}: ${e.provisioningState}${said ? `\n${said}` : ''}`)
  })
  const role = await ensureExtensionAccess(ctx, extension)
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
    const role = await grantContributor(ctx.arm, rg, e.principalId, 'ServicePrincipal', v2GrantDescription(ctx.clusterLabel))
    core.info(`${role.outcome === 'created' ? 'Assigned' : 'Found'} Contributor on ${scope} for extension ${e.name}'s identity (grant-connector-role).`)
    return role
  }
  throw new Error(
    `Extension ${e.name} is installed, but its identity ${e.principalId} may not create container groups in ${rg}: pods on its nodes would stay Pending. ` +
      `Assign it Contributor there: \`az role assignment create --assignee-object-id ${e.principalId} --assignee-principal-type ServicePrincipal --role Contributor --scope ${scope}\`, ` +
      'or set grant-connector-role: true; then re-run this step (it converges). To take the extension away instead, run the action with command: remove.'
  )
}

/** The description of a role grant-connector-role gives an extension's identity; a removal deletes it with the extension (whose identity goes too). */
export function v2GrantDescription(cluster: string): string {
  return `Granted by aks-aci-connector-action (grant-connector-role) to Virtual Nodes v2 of AKS cluster ${cluster}`
}
