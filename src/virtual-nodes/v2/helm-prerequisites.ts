// What Virtual Nodes v2 through its Helm chart needs of a cluster, read over ARM and from the
// cluster before anything changes, each failure naming its fix. From the chart's repository
// (github.com/microsoft/virtualnodesOnAzureContainerInstances at 089513172f2f8503b5a4ac9f0a309c1a487ac403):
// README.md ("Virtual nodes require AKS clusters with Azure CNI networking"; not supported:
// "Using API server authorized IP ranges"; the "cg" subnet "must ... have a Subnet Delegation for
// Microsoft.ContainerInstance/containerGroups"; "Each virtual node requires 3 cores and 12 GB";
// the AKS managed identity "(AKS name)-agentpool" needs Contributor on the node resource group
// and, when the VNet is elsewhere, on the VNet's resource group), Docs/SecurityCustomizations.md
// (the custom role that suffices) and Docs/VersionCompatibility.md (helm-chart.ts). Unlike the
// extension, the chart serves a VNet of the user's own.
import { ArmError, type ArmClient } from '../../azure/arm.js'
import { firstFreeCidr, resourceGroupOf, type Subnet, type VirtualNetwork, ACI_DELEGATION_SERVICE, SUBNET_JOIN } from '../../azure/network.js'
import { CONTAINER_GROUP_WRITE, principalMay, resourceGroupScope } from '../../azure/role-assignments.js'
import { VIRTUAL_NODE_ACTIONS } from '../../azure/role-definitions.js'
import type { ClusterInfo } from '../../kubernetes/cluster.js'
import type { Kube } from '../../kubernetes/kube.js'
import { settleAll } from '../../util/async.js'
import { readClusterVnet, type ClusterVnet } from '../cluster-vnet.js'
import { listV2Extensions, type Extension } from './extension.js'
import { chartForCluster, kubernetesMinor, minorsOfChartVersion, type V2Chart } from './helm-chart.js'
import { findV2HelmReleases, V2_HELM_KIND, V2_HELM_NAMESPACE, V2_HELM_RELEASE, type V2HelmRelease } from './helm-release.js'
import { installKey, readInstalls } from '../installs.js'
import { linuxPoolProblem, readVmSizes, type VmSize } from './prerequisites.js'

/** Where the kubelet identity must be allowed what, and whether it is. */
export interface AccessNeed {
  scope: string
  action: string
  /** undefined: could not be read. */
  allowed?: boolean
}

export interface V2HelmFacts {
  cluster: ClusterInfo
  net: ClusterVnet
  vmSizes: VmSize[]
  extensions: Extension[]
  releases: V2HelmRelease[]
  /** This action made the release vn2/aci-vn2 (its use record says so, installs.ts). */
  releaseIsOurs: boolean
  /** The kubelet identity's access to the node resource group and the subnet. */
  access: AccessNeed[]
  /** The chart the user gave (v2-chart-url), by the version its file name says; undefined: the published one for the cluster. */
  userChartVersion?: string
  userChart: boolean
}

export interface V2HelmVerdict {
  problems: string[]
  /** The published chart (undefined when the user gave one). */
  chart?: V2Chart
  vnet?: VirtualNetwork
  subnet?: Subnet
  /** What the kubelet identity lacks (granted with grant-connector-role). */
  missing: AccessNeed[]
}

/** Reads what judgeV2HelmPrerequisites needs. Reads only. */
export async function readV2HelmFacts(
  arm: ArmClient,
  kube: Kube,
  cluster: ClusterInfo,
  subnetName: string,
  userChart: { url?: string; version?: string }
): Promise<V2HelmFacts> {
  const [net, vmSizes, extensions, releases, installs] = await settleAll([
    readClusterVnet(arm, cluster),
    readVmSizes(arm, cluster.location),
    listV2Extensions(arm, cluster).catch((err: unknown) => {
      // Never registered: the cluster can have no extension.
      if (err instanceof ArmError && err.code === 'MissingSubscriptionRegistration') return []
      throw err
    }),
    findV2HelmReleases(kube),
    readInstalls(kube)
  ])
  const subnetId = net.vnet ? `${net.vnet.id}/subnets/${subnetName}` : undefined
  const principal = cluster.kubeletIdentityObjectId
  const needs: AccessNeed[] = [
    { scope: resourceGroupScope(arm, cluster.nodeResourceGroup), action: CONTAINER_GROUP_WRITE },
    ...(subnetId ? [{ scope: subnetId, action: SUBNET_JOIN }] : [])
  ]
  const access = await Promise.all(
    needs.map(async n => ({ ...n, allowed: principal ? await principalMay(arm, n.scope, principal, n.action).catch(() => undefined) : undefined }))
  )
  const releaseIsOurs = installs.get(installKey(V2_HELM_KIND, `${V2_HELM_NAMESPACE}/${V2_HELM_RELEASE}`))?.created === true
  return { cluster, net, vmSizes, extensions, releases, releaseIsOurs, access, userChart: Boolean(userChart.url), userChartVersion: userChart.version }
}

/** The cluster's network as the chart needs it: Azure CNI Node Subnet, no authorized IP ranges. */
function networkProblems(c: ClusterInfo): string[] {
  const rgc = `-g ${c.resourceGroup} -n ${c.name}`
  const problems: string[] = []
  const plugin = (c.network.networkPlugin ?? '').toLowerCase()
  const mode = (c.network.networkPluginMode ?? '').toLowerCase()
  if (plugin !== 'azure' || (mode !== '' && mode !== 'none'))
    problems.push(
      `networkProfile.networkPlugin is ${c.network.networkPlugin ?? '(none)'}${mode && mode !== 'none' ? ` in ${mode} mode` : ''}: Virtual Nodes v2 needs Azure CNI Node Subnet (the chart's README). ` +
        `A cluster's network plugin cannot be changed to it in place; create one with \`az aks create ${rgc} --network-plugin azure --vnet-subnet-id <subnet>\`, or use virtual-node-kind: connector, which needs no VNet.`
    )
  if (c.network.authorizedIpRanges.length > 0)
    problems.push(
      `apiServerAccessProfile.authorizedIPRanges is set (${c.network.authorizedIpRanges.join(', ')}): Virtual Nodes v2 does not support API server authorized IP ranges. ` +
        `Fix: \`az aks update ${rgc} --api-server-authorized-ip-ranges ""\`.`
    )
  return problems
}

/** The chart for the cluster's Kubernetes version: the published one, or the user's when its version says it supports it. */
function chartProblems(f: V2HelmFacts, verdict: V2HelmVerdict): string[] {
  const version = f.cluster.kubernetesVersion
  if (f.userChart) {
    const minor = kubernetesMinor(version)
    const minors = f.userChartVersion ? minorsOfChartVersion(f.userChartVersion) : []
    if (f.userChartVersion && minor !== undefined && minors.length > 0 && !minors.includes(minor))
      return [
        `v2-chart-url is chart version ${f.userChartVersion}, which Docs/VersionCompatibility.md verifies with AKS 1.${minors.join(', 1.')}, and the cluster runs Kubernetes ${version}: ` +
          'give a chart of a series that supports it, or leave v2-chart-url empty for the published one'
      ]
    return []
  }
  const found = chartForCluster(version)
  if ('problem' in found) return [`${found.problem[0]!.toUpperCase()}${found.problem.slice(1)}.`]
  verdict.chart = found.chart
  return []
}

/** One Virtual Nodes v2 per cluster: another's extension or release would own the same cluster-wide admission webhook. */
function otherV2Problems(f: V2HelmFacts): string[] {
  const c = f.cluster
  const problems = f.extensions.map(
    e =>
      `Cluster ${c.name} has the Virtual Nodes v2 extension ${e.name}: its chart owns the same cluster-wide admission webhook (virtual-node-admission-controller) a Helm release would. ` +
      `Use it (virtual-node-kind: v2), or remove it first: \`az k8s-extension delete -g ${c.resourceGroup} -c ${c.name} -t managedClusters -n ${e.name}\`.`
  )
  for (const r of f.releases)
    if (r.name !== V2_HELM_RELEASE || r.namespace !== V2_HELM_NAMESPACE || !f.releaseIsOurs)
      problems.push(
        `Cluster ${c.name} already has a Virtual Nodes v2 Helm release this action did not install, ${r.namespace}/${r.name}: its chart owns the cluster-wide admission webhook, and Docs/NodeCustomizations.md allows one release with it. ` +
          `Use its nodes as they are (select virtualization: virtualnode2), or \`helm uninstall ${r.name} -n ${r.namespace}\` first.`
      )
  return problems
}

/** The ACI subnet in the cluster's VNet: there, delegated to ACI alone, not a node pool's. */
function subnetProblems(f: V2HelmFacts, name: string, verdict: V2HelmVerdict): string[] {
  const c = f.cluster
  if (!f.net.vnet) return [`The cluster's VNet: ${f.net.vnetProblem ?? 'not found'}.`]
  const vnet = f.net.vnet
  verdict.vnet = vnet
  const where = `-g ${vnet.resourceGroup} --vnet-name ${vnet.name} -n ${name}`
  const subnet = vnet.subnets.find(s => s.name === name)
  if (!subnet) {
    const free = firstFreeCidr(vnet, 16)
    return [
      `VNet ${vnet.name} has no subnet ${name} for the container groups (the chart's aciSubnetName). ` +
        (free
          ? `Fix: \`az network vnet subnet create ${where} --address-prefixes ${free} --delegations ${ACI_DELEGATION_SERVICE}\` (the chart's README recommends a /16), or set subnet-name to a delegated subnet of the VNet.`
          : `The VNet has no free /16 left (address space ${vnet.addressPrefixes.join(', ')}): add address space, then create the subnet delegated to ${ACI_DELEGATION_SERVICE}.`)
    ]
  }
  verdict.subnet = subnet
  const problems: string[] = []
  if (c.network.agentPools.some(p => p.vnetSubnetId && subnet.id && p.vnetSubnetId.toLowerCase() === subnet.id.toLowerCase()))
    problems.push(
      `Subnet ${name} is a node pool's subnet; the container groups need a subnet of their own. Set subnet-name to another subnet of VNet ${vnet.name}.`
    )
  const delegated = subnet.delegations.map(d => d.toLowerCase())
  if (!(delegated.length === 1 && delegated[0] === ACI_DELEGATION_SERVICE.toLowerCase()))
    problems.push(
      `Subnet ${name} is ${delegated.length ? `delegated to ${subnet.delegations.join(', ')}` : 'not delegated'}; the chart needs it delegated to ${ACI_DELEGATION_SERVICE} alone. ` +
        `Fix: \`az network vnet subnet update ${where} --delegations ${ACI_DELEGATION_SERVICE}\`.`
    )
  return problems
}

/** The kubelet identity's roles (README "Update AKS' Managed Identity"): what it lacks, refused unless grant-connector-role may grant it. */
function accessProblems(f: V2HelmFacts, grant: boolean, verdict: V2HelmVerdict): string[] {
  const c = f.cluster
  if (!c.kubeletIdentityObjectId)
    return [
      `Cluster ${c.name} has no kubelet managed identity (identityProfile.kubeletidentity): v2's nodes act in Azure as that identity. ` +
        `Use a cluster with a managed identity (\`az aks update -g ${c.resourceGroup} -n ${c.name} --enable-managed-identity\`).`
    ]
  verdict.missing = f.access.filter(a => a.allowed === false)
  if (verdict.missing.length === 0 || grant) return []
  return verdict.missing.map(
    a =>
      `The cluster's kubelet identity ${c.kubeletIdentityClientId ?? c.kubeletIdentityObjectId} may not ${a.action.endsWith('join/action') ? 'put container groups into the subnet' : 'create container groups'} at ${a.scope} (it needs ${a.action}): ` +
      `v2's pods would stay Pending. Assign it a role allowing ${VIRTUAL_NODE_ACTIONS.join(', ')} (Docs/SecurityCustomizations.md's virtualnodeCustomRole) or Contributor on resource group ${resourceGroupOf(a.scope) ?? a.scope}: ` +
      `\`az role assignment create --assignee ${c.kubeletIdentityClientId ?? c.kubeletIdentityObjectId} --role Contributor --scope ${a.scope.replace(/(\/resourceGroups\/[^/]+).*/i, '$1')}\`, or set grant-connector-role: true.`
  )
}

/** Every problem the facts show, each with its fix; the chart, VNet and subnet to use; what to grant. Pure. */
export function judgeV2HelmPrerequisites(f: V2HelmFacts, subnetName: string, grant: boolean): V2HelmVerdict {
  const verdict: V2HelmVerdict = { problems: [], missing: [] }
  const pool = linuxPoolProblem(f.cluster, f.vmSizes)
  const azureCni = (f.cluster.network.networkPlugin ?? '').toLowerCase() === 'azure'
  verdict.problems = [
    ...networkProblems(f.cluster),
    ...chartProblems(f, verdict),
    ...(pool ? [pool] : []),
    ...otherV2Problems(f),
    ...(azureCni ? subnetProblems(f, subnetName, verdict) : []),
    ...accessProblems(f, grant, verdict)
  ]
  return verdict
}
