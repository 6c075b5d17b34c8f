// What Virtual Nodes v2 needs of a cluster before its extension may be created, checked over
// ARM before anything changes, each failure naming the setting and the command that fixes it.
// The checks are those `az k8s-extension create --extension-type microsoft.virtualnodes` makes
// (Azure/azure-cli-extensions src/k8s-extension/azext_k8s_extension/partner_extensions/VirtualNodes.py:
// validate_node_pools, check_aks_cluster_network_config, add_and_delegate_aci_subnet), plus what
// the v2 docs add (github.com/microsoft/virtualnodesOnAzureContainerInstances README.md: no API
// server authorized IP ranges, a NAT gateway for the ACI subnet's outbound traffic) and the
// resource providers its resources live in.
import * as core from '@actions/core'
import type { ArmClient } from '../../azure/arm.js'
import type { ClusterInfo } from '../../kubernetes/cluster.js'
import {
  firstFreeCidr,
  listVirtualNetworks,
  NETWORK_API_VERSION,
  resourceGroupOf,
  type Subnet,
  type VirtualNetwork,
  ACI_DELEGATION_SERVICE
} from '../../azure/network.js'
import { pollUntil, settleAll } from '../../util/async.js'

/** VirtualNodes.py MIN_CPU_CORES / MIN_MEM_GB: some node pool's VM size must have at least these. */
export const MIN_POOL_CORES = 4
export const MIN_POOL_MEMORY_GB = 16
/** VirtualNodes.py ACI_SUBNET_NAME, ACI_SUBNET_PREFIX, ACI_DELEGATION_SERVICE_NAME and the delegation's name. */
export const ACI_SUBNET_NAME = 'virtualnodes-aci-subnet'
export const ACI_SUBNET_PREFIX = 16
export const ACI_DELEGATION_NAME = 'aci-delegation'
export const KUBERNETES_CONFIGURATION_PROVIDER = 'Microsoft.KubernetesConfiguration'
const COMPUTE_API_VERSION = '2024-07-01'
const PROVIDERS_API_VERSION = '2021-04-01'
/** How long a subnet PUT may take to finish. */
const SUBNET_WAIT_MS = 120_000

export interface VmSize {
  name: string
  numberOfCores: number
  memoryInMB: number
}

/** What the checks read from ARM. */
export interface V2Facts {
  cluster: ClusterInfo
  vmSizes: VmSize[]
  /** registrationState per provider namespace. */
  providers: Record<string, string | undefined>
  /** The virtual networks in the cluster's node resource group. */
  vnets: VirtualNetwork[]
  /** An error from reading the node resource group's VNets. */
  vnetError?: string
}

/** The ACI subnet v2 puts container groups in: reused as it is, or made with this prefix. */
export type SubnetPlan = { vnet: VirtualNetwork; action: 'reuse'; subnet: Subnet } | { vnet: VirtualNetwork; action: 'create'; prefix: string }

export interface V2Verdict {
  problems: string[]
  warnings: string[]
  subnet?: SubnetPlan
}

/**
 * Every v2 prerequisite the facts break, each with the command that fixes it, and the ACI
 * subnet to use. Pure: the same facts always give the same verdict.
 */
export function judgeV2Prerequisites(f: V2Facts): V2Verdict {
  const problems = [...providerProblems(f), ...networkProblems(f.cluster), ...poolProblems(f)]
  const warnings: string[] = []
  const azureCni = (f.cluster.network.networkPlugin ?? '').toLowerCase() === 'azure'
  const subnet = azureCni ? subnetPlan(f, problems, warnings) : undefined
  return { problems, warnings, subnet }
}

function providerProblems(f: V2Facts): string[] {
  const ns = KUBERNETES_CONFIGURATION_PROVIDER
  const state = f.providers[ns]
  if (state === 'Registered') return []
  return [
    `Resource provider ${ns} is ${state ?? 'NotRegistered'} in the subscription: AKS cluster extensions live in it. ` +
      `Fix: \`az provider register --namespace ${ns} --wait\` (once per subscription; needs Contributor on the subscription).`
  ]
}

/** Network plugin and mode, network policy, workload identity, authorized IP ranges. */
function networkProblems(c: ClusterInfo): string[] {
  const rgc = `-g ${c.resourceGroup} -n ${c.name}`
  const problems: string[] = []
  const net = c.network
  const plugin = (net.networkPlugin ?? '').toLowerCase()
  const mode = (net.networkPluginMode ?? '').toLowerCase()
  const policy = (net.networkPolicy ?? '').toLowerCase()
  // VirtualNodes.py check_aks_cluster_network_config: "VirtualNode requires Azure CNI Node Subnet".
  if (plugin !== 'azure') {
    problems.push(
      `networkProfile.networkPlugin is ${net.networkPlugin ?? '(none)'}: Virtual Nodes v2 needs Azure CNI with a node subnet (network plugin azure, no plugin mode). ` +
        `The network plugin of a cluster cannot be changed to that in place; create the cluster with \`az aks create ${rgc} --network-plugin azure --network-policy calico\`.`
    )
  } else if (mode !== '' && mode !== 'none') {
    problems.push(
      `networkProfile.networkPluginMode is ${net.networkPluginMode}: Virtual Nodes v2 needs Azure CNI Node Subnet, not Azure CNI Overlay. ` +
        `Create the cluster with \`az aks create ${rgc} --network-plugin azure --network-policy calico\` (without --network-plugin-mode overlay).`
    )
  }
  if (policy !== 'calico') {
    problems.push(
      `networkProfile.networkPolicy is ${net.networkPolicy ?? 'none'}: Virtual Nodes v2 needs the Calico network policy. ` +
        `Fix: \`az aks update ${rgc} --network-policy calico\`.`
    )
  }
  // Microsoft Learn articles/aks/virtual-nodes-v2.md prerequisites: workload identity enabled.
  if (!net.workloadIdentity) {
    problems.push(
      `securityProfile.workloadIdentity is off (or the OIDC issuer is): Virtual Nodes v2 needs workload identity. Fix: \`az aks update ${rgc} --enable-oidc-issuer --enable-workload-identity\`.`
    )
  }
  if (net.authorizedIpRanges.length > 0) {
    problems.push(
      `apiServerAccessProfile.authorizedIPRanges is set (${net.authorizedIpRanges.join(', ')}): Virtual Nodes v2 does not support API server authorized IP ranges ` +
        `(its nodes reach the API server from ACI addresses). Fix: \`az aks update ${rgc} --api-server-authorized-ip-ranges ""\`.`
    )
  }
  return problems
}

/**
 * A Linux pool big enough for the v2 nodes (VirtualNodes.py validate_node_pools: some pool's
 * VM size has >= 4 cores and >= 16 GB; the chart's README: "Nodes selected for AKS must be at
 * least 4 CPU and 16 GB RAM"), or the problem. The v2 nodes' pods run on Linux nodes only (the
 * chart's StatefulSet, Helm/virtualnode/templates/_helpers.tpl virtualnode2.aksRequiredAffinity).
 */
export function linuxPoolProblem(c: ClusterInfo, vmSizes: VmSize[]): string | undefined {
  const sizes = new Map(vmSizes.map(v => [v.name.toLowerCase(), v]))
  const pools = c.network.agentPools.filter(p => p.osType.toLowerCase() !== 'windows')
  const bigEnough = pools.some(p => {
    const v = sizes.get(p.vmSize.toLowerCase())
    return v !== undefined && v.numberOfCores >= MIN_POOL_CORES && v.memoryInMB / 1024 >= MIN_POOL_MEMORY_GB
  })
  if (bigEnough) return undefined
  const described = pools.map(p => {
    const v = sizes.get(p.vmSize.toLowerCase())
    return `${p.name} (${p.vmSize}${v ? `: ${v.numberOfCores} cores, ${Math.round(v.memoryInMB / 1024)} GB` : ''})`
  })
  return (
    `No Linux node pool has ${MIN_POOL_CORES} cores and ${MIN_POOL_MEMORY_GB} GB (${described.join(', ') || 'no Linux pools'}): each v2 virtual node runs as a pod taking 3 cores and 12 GB of an AKS VM. ` +
    `Fix: \`az aks nodepool add -g ${c.resourceGroup} --cluster-name ${c.name} -n vnpool --node-vm-size Standard_D4s_v5 --node-count 1\`.`
  )
}

/** A pool big enough for the v2 nodes, and every pool's subnet in the node resource group. */
function poolProblems(f: V2Facts): string[] {
  const c = f.cluster
  const pool = linuxPoolProblem(c, f.vmSizes)
  const problems: string[] = pool ? [pool] : []
  const pools = c.network.agentPools.filter(p => p.osType.toLowerCase() !== 'windows')
  // VirtualNodes.py: every pool's subnet in the node resource group (BYO VNets elsewhere are not supported).
  for (const p of pools) {
    const rg = p.vnetSubnetId ? resourceGroupOf(p.vnetSubnetId) : undefined
    if (rg && rg.toLowerCase() !== c.nodeResourceGroup.toLowerCase())
      problems.push(
        `Node pool ${p.name} uses a subnet in resource group ${rg}: Virtual Nodes v2 (as an AKS extension) needs the cluster's VNet in the node resource group ${c.nodeResourceGroup}. ` +
          'A BYO VNet elsewhere is not supported by the extension; install v2 with its Helm chart instead (virtual-node-kind: v2-helm), or create the cluster with AKS-managed networking (no --vnet-subnet-id).'
      )
  }
  return problems
}

/** The ACI subnet: reused when delegated, made in the first free /16 otherwise; problems and warnings go to the lists given. */
function subnetPlan(f: V2Facts, problems: string[], warnings: string[]): SubnetPlan | undefined {
  const c = f.cluster
  if (f.vnetError) {
    problems.push(`Could not list the virtual networks in ${c.nodeResourceGroup}: ${f.vnetError}. The sign-in identity needs Reader there.`)
    return undefined
  }
  if (f.vnets.length !== 1) {
    problems.push(
      `Expected exactly one VNet in the node resource group ${c.nodeResourceGroup}, found ${f.vnets.length}${f.vnets.length ? ` (${f.vnets.map(v => v.name).join(', ')})` : ''}: ` +
        'Virtual Nodes v2 puts its ACI subnet in the cluster VNet there.'
    )
    return undefined
  }
  const vnet = f.vnets[0]!
  let subnet: SubnetPlan | undefined
  const existing = vnet.subnets.find(s => s.name === ACI_SUBNET_NAME)
  if (existing) {
    if (!existing.delegations.some(d => d.toLowerCase() === ACI_DELEGATION_SERVICE.toLowerCase()))
      problems.push(
        `Subnet ${ACI_SUBNET_NAME} exists in VNet ${vnet.name} but is not delegated to ${ACI_DELEGATION_SERVICE}. ` +
          `Fix: \`az network vnet subnet update -g ${vnet.resourceGroup} --vnet-name ${vnet.name} -n ${ACI_SUBNET_NAME} --delegations ${ACI_DELEGATION_SERVICE}\`.`
      )
    else subnet = { vnet, action: 'reuse', subnet: existing }
  } else {
    const prefix = firstFreeCidr(vnet, ACI_SUBNET_PREFIX)
    if (!prefix)
      problems.push(
        `VNet ${vnet.name} has no free /${ACI_SUBNET_PREFIX} for subnet ${ACI_SUBNET_NAME} (address space ${vnet.addressPrefixes.join(', ')}). ` +
          `Fix: add address space, e.g. \`az network vnet update -g ${vnet.resourceGroup} -n ${vnet.name} --address-prefixes ${[...vnet.addressPrefixes, '10.240.0.0/16'].join(' ')}\`.`
      )
    else subnet = { vnet, action: 'create', prefix }
  }
  if (subnet && !(subnet.action === 'reuse' && subnet.subnet.natGateway))
    warnings.push(
      `Subnet ${ACI_SUBNET_NAME} in VNet ${vnet.name} has no NAT gateway: pods on v2 nodes get no outbound internet path through it (image pulls from public registries fail). ` +
        `Attach one: \`az network vnet subnet update -g ${vnet.resourceGroup} --vnet-name ${vnet.name} -n ${ACI_SUBNET_NAME} --nat-gateway <nat-gateway>\`.`
    )
  return subnet
}

/** The VM sizes of a region (cores and memory), as the pool check needs them. */
export async function readVmSizes(arm: ArmClient, location: string): Promise<VmSize[]> {
  const r = await arm.get<{ value?: VmSize[] }>(arm.subscriptionPath(`/providers/Microsoft.Compute/locations/${location}/vmSizes`), COMPUTE_API_VERSION)
  return r.value ?? []
}

/** Reads what judgeV2Prerequisites needs: VM sizes of the region, provider states, the node resource group's VNets. */
export async function readV2Facts(arm: ArmClient, cluster: ClusterInfo): Promise<V2Facts> {
  const [vmSizes, providers, vnets] = await settleAll([
    readVmSizes(arm, cluster.location),
    arm
      .get<{ registrationState?: string }>(arm.subscriptionPath(`/providers/${KUBERNETES_CONFIGURATION_PROVIDER}`), PROVIDERS_API_VERSION)
      .then(r => ({ [KUBERNETES_CONFIGURATION_PROVIDER]: r.registrationState })),
    listVirtualNetworks(arm, cluster.nodeResourceGroup)
      .then(vnets => ({ vnets }))
      .catch((err: unknown) => ({ vnets: [] as VirtualNetwork[], error: err instanceof Error ? err.message : String(err) }))
  ])
  return { cluster, vmSizes, providers, vnets: vnets.vnets, vnetError: 'error' in vnets ? vnets.error : undefined }
}

/** Checks every prerequisite; throws one error listing each problem (nothing has changed yet). */
export async function checkV2Prerequisites(arm: ArmClient, cluster: ClusterInfo): Promise<SubnetPlan> {
  const verdict = judgeV2Prerequisites(await readV2Facts(arm, cluster))
  if (verdict.problems.length > 0 || !verdict.subnet)
    throw new Error(
      `Cluster ${cluster.name} does not meet Virtual Nodes v2's prerequisites; nothing was changed:\n${verdict.problems.map(p => `- ${p}`).join('\n')}`
    )
  for (const w of verdict.warnings) core.warning(w)
  const s = verdict.subnet
  core.info(
    s.action === 'reuse'
      ? `Virtual Nodes v2 prerequisites met; reusing subnet ${ACI_SUBNET_NAME} (${s.subnet.addressPrefixes.join(', ')}) of VNet ${s.vnet.name}, delegated to ACI.`
      : `Virtual Nodes v2 prerequisites met; subnet ${ACI_SUBNET_NAME} (${s.prefix}) will be made in VNet ${s.vnet.name}, delegated to ACI.`
  )
  return s
}

/** Makes the ACI subnet as VirtualNodes.py add_and_delegate_aci_subnet does; its wait counts against the step's wait-timeout (`deadline`). */
export async function ensureAciSubnet(arm: ArmClient, plan: SubnetPlan, deadline: number): Promise<void> {
  if (plan.action === 'reuse') return
  const path = `${plan.vnet.id}/subnets/${ACI_SUBNET_NAME}`
  await arm.put(path, NETWORK_API_VERSION, {
    properties: { addressPrefix: plan.prefix, delegations: [{ name: ACI_DELEGATION_NAME, properties: { serviceName: ACI_DELEGATION_SERVICE } }] }
  })
  // A subnet PUT is long-running; VirtualNodes.py waits for it (begin_create_or_update(...).result()) before the extension.
  const state = await pollUntil(
    async () => {
      const s = await arm.get<{ properties?: { provisioningState?: string } }>(path, NETWORK_API_VERSION)
      const p = s.properties?.provisioningState
      if (p === 'Failed') throw new Error(`Creating subnet ${ACI_SUBNET_NAME} in VNet ${plan.vnet.name} failed; see the VNet's activity log, then re-run.`)
      return p === 'Succeeded' ? p : undefined
    },
    Math.min(deadline, Date.now() + SUBNET_WAIT_MS),
    2_000
  )
  if (!state)
    throw new Error(
      `Subnet ${ACI_SUBNET_NAME} in VNet ${plan.vnet.name} was not Succeeded in time (wait-timeout, at most ${SUBNET_WAIT_MS / 1000} s); re-run the step (it reuses the subnet once it is there).`
    )
  core.info(
    `Created subnet ${ACI_SUBNET_NAME} (${plan.prefix}) in VNet ${plan.vnet.name}, delegated to ${ACI_DELEGATION_SERVICE}; a remove leaves it (other v2 installs may use it).`
  )
}
