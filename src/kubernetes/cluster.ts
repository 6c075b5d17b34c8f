// Cluster access: what the AKS cluster is (location, node resource group, API server,
// RBAC, identity) and a kubeconfig for it, both straight from ARM.
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { ArmError, type ArmClient } from '../azure/arm.js'
import { pollUntil } from '../util/async.js'
import { normalizeLocation } from '../azure/clouds.js'

/** An API version of Microsoft.ContainerService that ARM serves in every public cloud. */
export const AKS_API = '2024-05-01'

export interface ManagedCluster {
  id: string
  name: string
  location: string
  tags?: Record<string, string>
  sku?: unknown
  identity?: unknown
  properties: {
    servicePrincipalProfile?: unknown
    provisioningState?: string
    kubernetesVersion?: string
    fqdn?: string
    privateFQDN?: string
    nodeResourceGroup?: string
    enableRBAC?: boolean
    aadProfile?: { managed?: boolean; enableAzureRBAC?: boolean } | null
    disableLocalAccounts?: boolean
    identityProfile?: { kubeletidentity?: { clientId?: string; objectId?: string; resourceId?: string } }
    addonProfiles?: Record<string, { enabled?: boolean; config?: Record<string, string> | null; identity?: { clientId?: string; objectId?: string } }>
    networkProfile?: { networkPlugin?: string; networkPluginMode?: string; networkPolicy?: string }
    agentPoolProfiles?: Array<{ name?: string; vmSize?: string; osType?: string; count?: number; vnetSubnetID?: string; mode?: string }>
    apiServerAccessProfile?: { authorizedIPRanges?: string[]; enablePrivateCluster?: boolean } | null
    securityProfile?: { workloadIdentity?: { enabled?: boolean } }
    oidcIssuerProfile?: { enabled?: boolean }
  }
}

/** The virtual-node add-on's profile: enabled, the subnet it was given, the identity AKS made for it. */
export interface VirtualNodeAddon {
  enabled: boolean
  subnetName?: string
  identity?: { clientId?: string; objectId?: string }
}

/** The add-on's key in addonProfiles: azure-cli acs _consts.py CONST_VIRTUAL_NODE_ADDON_NAME "aciConnector" + the OS type "Linux". */
export const VIRTUAL_NODE_ADDON_KEY = 'aciConnectorLinux'

/** The add-on's profile from addonProfiles (keys compared without case, as az does). */
export function virtualNodeAddonOf(addons: NonNullable<ManagedCluster['properties']['addonProfiles']>): VirtualNodeAddon | undefined {
  const key = Object.keys(addons).find(k => k.toLowerCase() === VIRTUAL_NODE_ADDON_KEY.toLowerCase())
  const p = key ? addons[key] : undefined
  if (!p) return undefined
  return {
    enabled: p.enabled === true,
    subnetName: p.config?.SubnetName ?? undefined,
    identity: p.identity ? { clientId: p.identity.clientId, objectId: p.identity.objectId } : undefined
  }
}

/** The cluster's network, node pools and API server access, as Virtual Nodes v2's prerequisites need them. */
export interface ClusterNetwork {
  networkPlugin?: string
  networkPluginMode?: string
  networkPolicy?: string
  authorizedIpRanges: string[]
  /** Workload identity and the OIDC issuer both on. */
  workloadIdentity: boolean
  agentPools: Array<{ name: string; vmSize: string; osType: string; vnetSubnetId?: string }>
}

export interface ClusterInfo {
  id: string
  name: string
  resourceGroup: string
  location: string
  kubernetesVersion: string
  /** The API server's host name; the connector reaches the API server there. */
  fqdn: string
  nodeResourceGroup: string
  enableRBAC: boolean
  /** Microsoft Entra ID integration: the API server takes Entra tokens; azureRbac = Azure RBAC for Kubernetes authorization. */
  entra?: { azureRbac: boolean }
  /** No admin (static) credential can be fetched. */
  localAccountsDisabled: boolean
  kubeletIdentityClientId?: string
  kubeletIdentityObjectId?: string
  /** AKS's virtual-node add-on (addonProfiles.aciConnectorLinux), when the cluster has its profile. */
  virtualNodeAddon?: VirtualNodeAddon
  network: ClusterNetwork
}

export function clusterPath(arm: ArmClient, resourceGroup: string, name: string): string {
  return arm.subscriptionPath(
    `/resourceGroups/${encodeURIComponent(resourceGroup)}/providers/Microsoft.ContainerService/managedClusters/${encodeURIComponent(name)}`
  )
}

export function toClusterInfo(raw: ManagedCluster, resourceGroup: string): ClusterInfo {
  const p = raw.properties ?? {}
  const fqdn = p.fqdn || p.privateFQDN
  if (!fqdn || !p.nodeResourceGroup) {
    throw new Error(
      `Cluster ${raw.name} has no API server address or node resource group yet (provisioningState ${p.provisioningState ?? 'unknown'}); wait until it is Succeeded.`
    )
  }
  const addons = p.addonProfiles ?? {}
  return {
    id: raw.id,
    name: raw.name,
    resourceGroup,
    location: normalizeLocation(raw.location),
    kubernetesVersion: p.kubernetesVersion ?? 'unknown',
    fqdn,
    nodeResourceGroup: p.nodeResourceGroup,
    enableRBAC: p.enableRBAC !== false,
    entra: p.aadProfile ? { azureRbac: p.aadProfile.enableAzureRBAC === true } : undefined,
    localAccountsDisabled: p.disableLocalAccounts === true,
    kubeletIdentityClientId: p.identityProfile?.kubeletidentity?.clientId,
    kubeletIdentityObjectId: p.identityProfile?.kubeletidentity?.objectId,
    virtualNodeAddon: virtualNodeAddonOf(addons),
    network: {
      networkPlugin: p.networkProfile?.networkPlugin ?? undefined,
      networkPluginMode: p.networkProfile?.networkPluginMode ?? undefined,
      networkPolicy: p.networkProfile?.networkPolicy ?? undefined,
      authorizedIpRanges: p.apiServerAccessProfile?.authorizedIPRanges ?? [],
      workloadIdentity: p.securityProfile?.workloadIdentity?.enabled === true && p.oidcIssuerProfile?.enabled === true,
      agentPools: (p.agentPoolProfiles ?? []).map(a => ({
        name: a.name ?? '',
        vmSize: a.vmSize ?? '',
        osType: a.osType ?? 'Linux',
        vnetSubnetId: a.vnetSubnetID || undefined
      }))
    }
  }
}

/** ARM has no such cluster (deleted, or a wrong name): AKS deletes the node resource group, and its container groups, with it. */
export class ClusterNotFoundError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ClusterNotFoundError'
  }
}

export async function getCluster(arm: ArmClient, resourceGroup: string, name: string): Promise<ClusterInfo> {
  try {
    return toClusterInfo(await arm.get<ManagedCluster>(clusterPath(arm, resourceGroup, name), AKS_API), resourceGroup)
  } catch (err) {
    if (err instanceof ArmError && (err.code === 'ResourceNotFound' || err.code === 'ResourceGroupNotFound' || err.status === 404)) {
      throw new ClusterNotFoundError(
        `AKS cluster "${name}" was not found in resource group "${resourceGroup}" of subscription ${arm.access.subscriptionId}: ` +
          'check cluster-name, resource-group and subscription-id.'
      )
    }
    if (err instanceof ArmError && (err.code === 'AuthorizationFailed' || err.status === 403)) {
      throw new Error(
        `The signed-in identity may not read cluster "${name}": give it at least "Azure Kubernetes Service Cluster User Role" and Reader on the cluster. (${err.message})`
      )
    }
    throw err
  }
}

/** The managed cluster as ARM has it, every property (what a PUT of the whole cluster starts from). */
export async function getManagedCluster(arm: ArmClient, resourceGroup: string, name: string): Promise<ManagedCluster & Record<string, unknown>> {
  return arm.get(clusterPath(arm, resourceGroup, name), AKS_API)
}

/**
 * Writes the whole managed cluster back with `change` applied, as `az aks enable-addons` and
 * `disable-addons` do (a GET, the model changed, a PUT: azure-cli acs custom.py
 * aks_enable_addons / aks_disable_addons). The service principal profile is left out, as az
 * leaves it out ("null out the SP profile because otherwise validation complains",
 * addonconfiguration.py update_addons). The PUT is long-running: see waitClusterSucceeded.
 */
export async function updateManagedCluster(
  arm: ArmClient,
  resourceGroup: string,
  name: string,
  change: (properties: ManagedCluster['properties']) => void
): Promise<void> {
  const raw = await getManagedCluster(arm, resourceGroup, name)
  const properties = { ...raw.properties }
  delete properties.servicePrincipalProfile
  change(properties)
  await arm.put(clusterPath(arm, resourceGroup, name), AKS_API, { location: raw.location, tags: raw.tags, sku: raw.sku, identity: raw.identity, properties })
}

/** How often a cluster update's progress is looked at. */
const CLUSTER_POLL_MS = 2_000

/** Waits until the cluster's provisioningState is Succeeded again (after an update); Failed or Canceled throws. */
export async function waitClusterSucceeded(arm: ArmClient, resourceGroup: string, name: string, deadline: number): Promise<void> {
  let state = 'unknown'
  const done = await pollUntil(
    async () => {
      state = (await getManagedCluster(arm, resourceGroup, name)).properties?.provisioningState ?? 'unknown'
      if (state === 'Failed' || state === 'Canceled')
        throw new Error(
          `Cluster ${name} ended its update ${state}; see the cluster's activity log in the portal (or \`az aks show -g ${resourceGroup} -n ${name}\`).`
        )
      return state === 'Succeeded' ? true : undefined
    },
    deadline,
    CLUSTER_POLL_MS
  )
  if (!done) throw new Error(`Cluster ${name} was still ${state} at wait-timeout; re-run the step to keep waiting (it converges), or raise wait-timeout.`)
}

interface CredentialResults {
  kubeconfigs?: Array<{ name: string; value: string }>
}

/** Why `admin: true` cannot work on this cluster, or undefined. Checked before anything changes. */
export function adminCredentialProblem(cluster: ClusterInfo, admin: boolean): string | undefined {
  if (!admin || !cluster.localAccountsDisabled) return undefined
  return (
    `admin: true cannot be used with cluster "${cluster.name}": it has local accounts disabled (disableLocalAccounts), so ARM hands out no admin credential. ` +
    'Remove admin: true: the action then signs in to the cluster with Microsoft Entra ID as the identity it signed in to Azure with; ' +
    'give that identity a Kubernetes role on the cluster (e.g. "Azure Kubernetes Service RBAC Cluster Admin", or a ClusterRoleBinding to its object ID).'
  )
}

/**
 * The cluster's user (or admin) kubeconfig as YAML text. It holds credentials (on an
 * Entra ID cluster the user kubeconfig holds none: it runs kubelogin): never log it.
 */
export async function fetchKubeconfig(arm: ArmClient, cluster: ClusterInfo, admin: boolean): Promise<string> {
  const action = admin ? 'listClusterAdminCredential' : 'listClusterUserCredential'
  let result: CredentialResults
  try {
    result = await arm.post<CredentialResults>(`${clusterPath(arm, cluster.resourceGroup, cluster.name)}/${action}`, AKS_API)
  } catch (err) {
    if (err instanceof ArmError && (err.code === 'AuthorizationFailed' || err.status === 403)) {
      throw new Error(
        `The signed-in identity may not fetch ${admin ? 'admin' : 'user'} credentials of "${cluster.name}": give it ` +
          `"Azure Kubernetes Service Cluster ${admin ? 'Admin' : 'User'} Role" on the cluster. (${err.message})`
      )
    }
    throw err
  }
  const value = result.kubeconfigs?.[0]?.value
  if (!value) throw new Error(`${action} for "${cluster.name}" returned no kubeconfig.`)
  return Buffer.from(value, 'base64').toString('utf8')
}

/** Writes the kubeconfig 0600 under RUNNER_TEMP; the post step deletes it. */
export async function writeKubeconfig(text: string, runnerTemp: string, clusterName: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(runnerTemp, 'kubeconfig-'))
  await fs.chmod(dir, 0o700)
  const file = path.join(dir, `${clusterName}.yaml`)
  await fs.writeFile(file, text, { mode: 0o600 })
  return file
}

/** The name of the user entry in the kubeconfig the action itself uses on an Entra ID cluster. */
export const ENTRA_TOKEN_USER = 'entra-token'

/**
 * The kubeconfig the action's own helm calls use on an Entra ID cluster: the cluster from
 * the user kubeconfig, and a user that reads its bearer token from `tokenFile` (client-go
 * re-reads that file, so a refreshed token reaches a running helm). JSON is valid YAML.
 */
export function tokenFileKubeconfig(userKubeconfig: string, tokenFile: string): string {
  const kc = new KubeConfig()
  kc.loadFromString(userKubeconfig)
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error("The cluster's user kubeconfig has no current cluster.")
  const context = 'entra'
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: cluster.name,
          cluster: {
            server: cluster.server,
            ...(cluster.caData ? { 'certificate-authority-data': cluster.caData } : {}),
            ...(cluster.caFile ? { 'certificate-authority': cluster.caFile } : {}),
            ...(cluster.tlsServerName ? { 'tls-server-name': cluster.tlsServerName } : {}),
            // A proxy the cluster's own kubeconfig names stays for kubectl and helm.
            ...(cluster.proxyUrl ? { 'proxy-url': cluster.proxyUrl } : {})
          }
        }
      ],
      users: [{ name: ENTRA_TOKEN_USER, user: { tokenFile } }],
      contexts: [{ name: context, context: { cluster: cluster.name, user: ENTRA_TOKEN_USER } }],
      'current-context': context
    },
    null,
    2
  )
}
