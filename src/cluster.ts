// Cluster access: what the AKS cluster is (location, node resource group, API server,
// RBAC, identity) and a kubeconfig for it, both straight from ARM.
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { ArmError, type ArmClient } from './arm.js'
import { normalizeLocation } from './naming.js'

const AKS_API = '2024-05-01'

interface ManagedCluster {
  id: string
  name: string
  location: string
  properties: {
    provisioningState?: string
    kubernetesVersion?: string
    fqdn?: string
    privateFQDN?: string
    nodeResourceGroup?: string
    enableRBAC?: boolean
    aadProfile?: unknown
    identityProfile?: { kubeletidentity?: { clientId?: string; objectId?: string; resourceId?: string } }
    addonProfiles?: Record<string, { enabled?: boolean }>
  }
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
  aad: boolean
  kubeletIdentityClientId?: string
  kubeletIdentityObjectId?: string
  /** The managed virtual-node add-on is on (its Linux node is separate from ours). */
  virtualNodeAddon: boolean
}

export function clusterPath(arm: ArmClient, resourceGroup: string, name: string): string {
  return arm.subscriptionPath(`/resourceGroups/${encodeURIComponent(resourceGroup)}/providers/Microsoft.ContainerService/managedClusters/${encodeURIComponent(name)}`)
}

export function toClusterInfo(raw: ManagedCluster, resourceGroup: string): ClusterInfo {
  const p = raw.properties ?? {}
  const fqdn = p.fqdn || p.privateFQDN
  if (!fqdn || !p.nodeResourceGroup) {
    throw new Error(`Cluster ${raw.name} has no API server address or node resource group yet (provisioningState ${p.provisioningState ?? 'unknown'}); wait until it is Succeeded.`)
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
    aad: Boolean(p.aadProfile),
    kubeletIdentityClientId: p.identityProfile?.kubeletidentity?.clientId,
    kubeletIdentityObjectId: p.identityProfile?.kubeletidentity?.objectId,
    virtualNodeAddon: Object.entries(addons).some(([k, v]) => k.toLowerCase().startsWith('aciconnector') && v?.enabled === true)
  }
}

export async function getCluster(arm: ArmClient, resourceGroup: string, name: string): Promise<ClusterInfo> {
  try {
    return toClusterInfo(await arm.get<ManagedCluster>(clusterPath(arm, resourceGroup, name), AKS_API), resourceGroup)
  } catch (err) {
    if (err instanceof ArmError && (err.code === 'ResourceNotFound' || err.code === 'ResourceGroupNotFound' || err.status === 404)) {
      throw new Error(
        `AKS cluster "${name}" was not found in resource group "${resourceGroup}" of subscription ${arm.access.subscriptionId}: ` +
          'check cluster-name, resource-group and subscription-id.'
      )
    }
    if (err instanceof ArmError && (err.code === 'AuthorizationFailed' || err.status === 403)) {
      throw new Error(`The signed-in identity may not read cluster "${name}": give it at least "Azure Kubernetes Service Cluster User Role" and Reader on the cluster. (${err.message})`)
    }
    throw err
  }
}

interface CredentialResults {
  kubeconfigs?: Array<{ name: string; value: string }>
}

/** The cluster's user (or admin) kubeconfig as YAML text. It holds credentials: never log it. */
export async function fetchKubeconfig(arm: ArmClient, cluster: ClusterInfo, admin: boolean): Promise<string> {
  if (cluster.aad && !admin) {
    throw new Error(
      `Cluster "${cluster.name}" uses Microsoft Entra ID integration, whose user kubeconfig needs kubelogin and an interactive or az login. ` +
        'Set admin: true to use the cluster admin credentials (the cluster must allow local accounts).'
    )
  }
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
