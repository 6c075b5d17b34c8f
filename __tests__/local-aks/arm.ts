// Azure Resource Manager for one subscription: subscriptions and tenants (what `az login`
// lists), resource providers and their registration, resource groups, the AKS managed
// cluster with its credentials, Azure RBAC (azure-rbac.ts) on every request, and
// Microsoft.ContainerInstance (aci.ts). The same handler answers on 127.0.0.1 (the cloud
// az is registered with) and as management.azure.com (the connector, through the proxy):
// one ARM, one state.
//
// Paths, bodies and error codes follow the REST API reference of each resource provider
// (https://learn.microsoft.com/rest/api/resources, /aks/managed-clusters); a request needs
// the action its operation is documented with (https://learn.microsoft.com/azure/role-based-access-control/permissions/).
import { randomUUID } from 'node:crypto'
import { armError, type Caller, type Reply, type Req } from './azure-http.js'
import type { Aci } from './aci.js'
import type { Rbac } from './azure-rbac.js'
import { objectIdFor, type Entra } from './entra.js'

export type ProviderState = 'NotRegistered' | 'Registering' | 'Registered'

/** Resource ids (token audiences) ARM accepts, as the real one does. */
export const ARM_AUDIENCES = [
  'https://management.core.windows.net/',
  'https://management.core.windows.net',
  'https://management.azure.com/',
  'https://management.azure.com'
]

export interface ManagedClusterOptions {
  resourceGroup: string
  name: string
  /** Display ('East US') or normalized ('eastus'); served normalized like ARM does. */
  location: string
  /** host[:port] of the API server */
  fqdn: string
  nodeResourceGroup: string
  enableRBAC: boolean
  kubernetesVersion: string
  kubeletIdentity: { clientId: string; objectId: string }
  /** AKS-managed Microsoft Entra ID integration. */
  aad?: { enableAzureRBAC: boolean }
  disableLocalAccounts?: boolean
  /** YAML text, returned base64 by listClusterUserCredential */
  userKubeconfig: string
  /** YAML text, returned base64 by listClusterAdminCredential */
  adminKubeconfig: string
}

export interface ClusterNetworkOptions {
  networkPlugin: 'kubenet' | 'azure' | 'none'
  networkPluginMode?: 'overlay'
  networkPolicy?: 'calico' | 'azure' | 'cilium'
  vmSize: string
  authorizedIpRanges: string[]
  workloadIdentity: boolean
}

/**
 * What the extension manager does in the cluster once an extension's Helm release is
 * installed or uninstalled; the Virtual Nodes v2 stand-in (virtual-nodes-v2.ts) listens.
 */
export interface ExtensionEvents {
  installed(name: string, settings: Record<string, string>): void
  uninstalled(name: string): void
}

/**
 * What AKS does in the cluster when the virtual-node add-on (addonProfiles.aciConnectorLinux)
 * is enabled or disabled; the add-on stand-in (virtual-node-addon.ts) listens.
 */
export interface AddonEvents {
  enabled(addon: { subnetName: string; identityClientId: string; vnetName: string; vnetResourceGroup: string }): void
  disabled(): void
}

/** The identity AKS makes for the add-on: `aciconnectorlinux-<cluster>` in the node resource group. */
export interface AddonIdentity {
  clientId: string
  objectId: string
  resourceId: string
}

export interface ArmOptions {
  /** The v2 stand-in, told when an extension's release comes and goes. */
  extensionEvents?: ExtensionEvents
  /** The add-on stand-in, told when the virtual-node add-on is enabled or disabled. */
  addonEvents?: AddonEvents
  subscription: { id: string; name: string }
  tenantId: string
  cluster: ManagedClusterOptions
  entra: Entra
  rbac: Rbac
  aci: Aci
  providerInitiallyRegistered: boolean
  /** After POST register: 'Registering' until this much time has passed. */
  providerRegistrationDelayMs: number
}

export interface ArmKnobs {
  /** The next `count` ARM requests whose path starts with `pathPrefix` fail with `status`. */
  failNext(count: number, status: 403 | 429 | 503, retryAfterSeconds: number, pathPrefix?: string): void
  /** Failures asked for with failNext and not yet served are dropped. */
  clearFailures(): void
  setProviderState(s: ProviderState): void
  /** A resource group apart from the cluster's two (one a team made for ACI, say); its role assignments are the test's to make. */
  addResourceGroup(name: string): string
  /**
   * The cluster's network, node pool VM size, API server access and workload identity, as
   * `az aks create/update` would have set them (default: kubenet, no policy, Standard_DS2_v2).
   */
  setClusterNetwork(n: Partial<ClusterNetworkOptions>): void
  /** Microsoft.KubernetesConfiguration's registration state (default Registered). */
  setKubernetesConfigurationState(s: ProviderState): void
  /**
   * The cluster's VNet in a resource group of its own (`az aks create --vnet-subnet-id`): the
   * node pool's subnet is aks-subnet there. Undefined: AKS-managed, in the node resource group.
   */
  setOwnVnet(resourceGroup: string | undefined): void
  /** The virtual-node add-on, enabled as someone else (az, the portal) would have done it. */
  enableAddonAsOther(subnetName: string): void
  /** A subnet of the cluster's VNet, made as `az network vnet subnet create` makes one (`--delegations`: the services it is delegated to). */
  addSubnet(name: string, addressPrefix: string, delegations?: string[]): void
  /** Deletes a subnet of the cluster's VNet. */
  removeSubnet(name: string): void
  /** The Kubernetes version the cluster runs (default K8S_VERSION: what the local control plane runs). */
  setKubernetesVersion(version: string): void
  /** The region the managed cluster reports (default eastus): a test control for the checks that depend on it. */
  setLocation(location: string): void
  /** A microsoft.virtualnodes extension made by someone else (another team's, with the name they chose). */
  putExtensionAsOther(name: string, replicaCount: number): void
  /** The next extension PUT ends Failed with this message in its statuses (as an extension whose Helm install failed). */
  failNextExtension(message: string): void
  /** How long the extension manager takes per install, update or uninstall (default EXTENSION_OPERATION_MS): a test control. */
  setExtensionOperationMs(ms: number): void
  /**
   * The next `reads` GETs of a deleted extension still show the state from before its DELETE:
   * ARM's read of a resource can lag an accepted long-running operation, which is why clients
   * poll the operation's Azure-AsyncOperation URL for its outcome
   * (https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations). A test control.
   */
  lagReadsAfterDelete(reads: number): void
  /**
   * The cluster is deleted: ARM answers 404 for it, and its node resource group is gone with
   * it, container groups and all (https://learn.microsoft.com/azure/aks/concepts-clusters-workloads#node-resource-group).
   */
  deleteCluster(): void
}

export interface Arm {
  knobs: ArmKnobs
  state(): {
    providerState: ProviderState
    registerCalls: number
    extensions: Array<{ name: string; state: string; settings: Record<string, string> }>
    /** Each extension DELETE with the state the extension was in when it came. */
    extensionDeletes: Array<{ name: string; stateBefore: string }>
    subnets: StoredVnet['subnets']
    /** Where the cluster's VNet is (the node resource group, or its own). */
    vnet: { name: string; resourceGroup: string }
    /** The cluster's virtual-node add-on profile; PUTs of the managed cluster so far. */
    addon: { enabled: boolean; subnetName?: string; identity?: AddonIdentity; provisioningState: string }
    clusterPuts: number
  }
  /** The client IDs IMDS serves on the agent node: the kubelet identity and the add-on's while it is enabled. */
  vmIdentities(): string[]
  /** `base`: the origin the client used (for 401 challenges). */
  handle(req: Req, base: string): Reply
}

const KNOWN_PROVIDERS = [
  'Microsoft.ContainerInstance',
  'Microsoft.KubernetesConfiguration',
  'Microsoft.ContainerService',
  'Microsoft.Resources',
  'Microsoft.Network',
  'Microsoft.Compute',
  'Microsoft.Authorization',
  'Microsoft.ManagedIdentity'
]

export function normalizeLocation(location: string): string {
  return location.replace(/\s+/g, '').toLowerCase()
}

function displayLocation(location: string): string {
  if (/\s/.test(location)) return location
  const known: Record<string, string> = {
    eastus: 'East US',
    eastus2: 'East US 2',
    westus: 'West US',
    westus2: 'West US 2',
    westeurope: 'West Europe',
    northeurope: 'North Europe',
    centralus: 'Central US'
  }
  return known[normalizeLocation(location)] ?? location
}

/**
 * ARM's request throttling as Microsoft documents it since 2024 ("Regional throttling and
 * token bucket algorithm", https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling):
 * a token bucket per subscription, per service principal and per operation type (reads
 * 250 tokens refilled 25 a second; deletes and writes 200 refilled 10 a second), and a
 * global subscription bucket 15 times each one for all principals together. A request
 * with no token left is throttled: 429 with Retry-After.
 */
export const ARM_THROTTLE_BUCKETS = {
  read: { size: 250, refillPerSecond: 25 },
  delete: { size: 200, refillPerSecond: 10 },
  write: { size: 200, refillPerSecond: 10 }
} as const
const GLOBAL_SUBSCRIPTION_FACTOR = 15
type ArmOperationType = keyof typeof ARM_THROTTLE_BUCKETS

function operationType(method: string): ArmOperationType {
  return method === 'GET' || method === 'HEAD' ? 'read' : method === 'DELETE' ? 'delete' : 'write'
}

interface Bucket {
  tokens: number
  at: number
}

/** Takes a token for (principal, operation) and the subscription's global bucket; the seconds until one is back when there is none. */
export function createThrottle(now: () => number = Date.now): (principal: string, op: ArmOperationType) => number | undefined {
  const buckets = new Map<string, Bucket>()
  const take = (key: string, size: number, rate: number): number | undefined => {
    const t = now()
    const b = buckets.get(key) ?? { tokens: size, at: t }
    b.tokens = Math.min(size, b.tokens + ((t - b.at) / 1000) * rate)
    b.at = t
    buckets.set(key, b)
    if (b.tokens < 1) return Math.max(1, Math.ceil((1 - b.tokens) / rate))
    b.tokens -= 1
    return undefined
  }
  return (principal, op) => {
    const { size, refillPerSecond } = ARM_THROTTLE_BUCKETS[op]
    return (
      take(`global/${op}`, size * GLOBAL_SUBSCRIPTION_FACTOR, refillPerSecond * GLOBAL_SUBSCRIPTION_FACTOR) ?? take(`${principal}/${op}`, size, refillPerSecond)
    )
  }
}

/** How long the extension manager takes to install or uninstall an extension's release here. */
export const EXTENSION_OPERATION_MS = 1500
/** How long an update of the managed cluster (an add-on enabled or disabled) runs here. */
export const CLUSTER_OPERATION_MS = 1500

interface StoredExtension {
  name: string
  extensionType: string
  releaseNamespace: string
  settings: Record<string, string>
  state: 'Creating' | 'Updating' | 'Succeeded' | 'Failed' | 'Deleting'
  since: number
  principalId: string
  /** AKS has given the extension its identity (not yet while it is first created). */
  identityAssigned: boolean
  createdAt: string
  failure?: string
  /** GETs left that show `shownState` (lagReadsAfterDelete). */
  lagReads?: number
  shownState?: StoredExtension['state']
}

interface StoredVnet {
  name: string
  addressPrefixes: string[]
  subnets: Array<{ name: string; addressPrefix: string; delegations: Array<{ name: string; serviceName: string }> }>
}

/** Sizes as Azure lists them (https://learn.microsoft.com/azure/virtual-machines/sizes: DSv2 2 vCPU 7 GiB; Dsv5 2/8, 4/16, 8/32). */
const VM_SIZES = [
  { name: 'Standard_DS2_v2', numberOfCores: 2, memoryInMB: 7168, maxDataDiskCount: 8, osDiskSizeInMB: 1047552, resourceDiskSizeInMB: 14336 },
  { name: 'Standard_D2s_v5', numberOfCores: 2, memoryInMB: 8192, maxDataDiskCount: 4, osDiskSizeInMB: 1047552, resourceDiskSizeInMB: 0 },
  { name: 'Standard_D4s_v5', numberOfCores: 4, memoryInMB: 16384, maxDataDiskCount: 8, osDiskSizeInMB: 1047552, resourceDiskSizeInMB: 0 },
  { name: 'Standard_D8s_v5', numberOfCores: 8, memoryInMB: 32768, maxDataDiskCount: 16, osDiskSizeInMB: 1047552, resourceDiskSizeInMB: 0 }
]

function cidr(text: string): [number, number] {
  const [a, b] = text.split('/')
  const n = (a ?? '').split('.').reduce((x, p) => x * 256 + Number(p), 0)
  const size = 2 ** (32 - Number(b))
  return [n - (n % size), n - (n % size) + size - 1]
}
const cidrOverlap = (x: string, y: string): boolean => {
  const [a, b] = cidr(x)
  const [c, d] = cidr(y)
  return a <= d && c <= b
}
const cidrWithin = (inner: string, outer: string): boolean => {
  const [a, b] = cidr(inner)
  const [c, d] = cidr(outer)
  return a >= c && b <= d
}

interface Failure {
  remaining: number
  status: 403 | 429 | 503
  retryAfterSeconds: number
  pathPrefix?: string
}

export function createArm(opts: ArmOptions): Arm {
  const sub = opts.subscription
  const cluster = opts.cluster
  let location = normalizeLocation(cluster.location)
  let kubernetesVersion = cluster.kubernetesVersion
  const subscriptionScope = `/subscriptions/${sub.id}`
  const clusterId = `${subscriptionScope}/resourcegroups/${cluster.resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${cluster.name}`
  const failures: Failure[] = []
  const throttle = createThrottle()
  const provider = { state: (opts.providerInitiallyRegistered ? 'Registered' : 'NotRegistered') as ProviderState, since: 0, registerCalls: 0 }
  const extraGroups: string[] = []
  let clusterDeleted = false
  const network: ClusterNetworkOptions = { networkPlugin: 'kubenet', vmSize: 'Standard_DS2_v2', authorizedIpRanges: [], workloadIdentity: false }
  let kubernetesConfigurationState: ProviderState = 'Registered'
  const extensions = new Map<string, StoredExtension>()
  // The virtual-node add-on: az aks enable-addons --addons virtual-node PUTs the cluster with
  // addonProfiles.aciConnectorLinux = { enabled, config: { SubnetName } } (azure-cli acs
  // addonconfiguration.py update_addons); disabling sets enabled false and config null.
  const addon: { enabled: boolean; known: boolean; subnetName?: string; identity?: AddonIdentity; op?: { since: number; enable: boolean } } = {
    enabled: false,
    known: false
  }
  let clusterPuts = 0
  /** Where the cluster's VNet lives: its own resource group (BYO VNet), or undefined for the node resource group. */
  let vnetGroup: string | undefined
  let nextExtensionFailure: string | undefined
  let extensionOperationMs = EXTENSION_OPERATION_MS
  let lagAfterDelete = 0
  const extensionDeletes: Array<{ name: string; stateBefore: string }> = []
  // The VNet AKS makes in the node resource group for a cluster with AKS-managed networking
  // (named aks-vnet-<number>, address space 10.224.0.0/12, node subnet aks-subnet 10.224.0.0/16).
  const vnet: StoredVnet = {
    name: 'aks-vnet-12345678',
    addressPrefixes: ['10.224.0.0/12'],
    subnets: [{ name: 'aks-subnet', addressPrefix: '10.224.0.0/16', delegations: [] }]
  }
  const knobs: ArmKnobs = {
    setClusterNetwork: n => Object.assign(network, n),
    setKubernetesConfigurationState: s => {
      kubernetesConfigurationState = s
    },
    setOwnVnet: rg => {
      vnetGroup = rg
      if (rg && !extraGroups.includes(rg)) extraGroups.push(rg)
    },
    enableAddonAsOther: subnetName => startAddonOperation(true, subnetName),
    addSubnet: (name, addressPrefix, delegations = []) => {
      vnet.subnets = [
        ...vnet.subnets.filter(x => x.name !== name),
        { name, addressPrefix, delegations: delegations.map(serviceName => ({ name: serviceName.replace(/\//g, '.'), serviceName })) }
      ]
    },
    removeSubnet: name => {
      vnet.subnets = vnet.subnets.filter(x => x.name !== name)
    },
    setKubernetesVersion: version => {
      kubernetesVersion = version
    },
    setLocation: l => {
      location = normalizeLocation(l)
    },
    putExtensionAsOther: (name, replicaCount) => {
      extensions.set(name.toLowerCase(), {
        name,
        extensionType: 'microsoft.virtualnodes',
        releaseNamespace: 'vn-system',
        settings: { replicaCount: String(replicaCount), aciSubnetName: 'virtualnodes-aci-subnet' },
        state: 'Creating',
        since: Date.now(),
        principalId: randomUUID(),
        identityAssigned: false,
        createdAt: new Date().toISOString()
      })
    },
    failNextExtension: message => {
      nextExtensionFailure = message
    },
    setExtensionOperationMs: ms => {
      extensionOperationMs = ms
    },
    lagReadsAfterDelete: reads => {
      lagAfterDelete = reads
    },
    failNext: (remaining, status, retryAfterSeconds, pathPrefix) => failures.push({ remaining, status, retryAfterSeconds, pathPrefix }),
    clearFailures: () => void failures.splice(0),
    addResourceGroup: name => {
      if (!extraGroups.includes(name)) extraGroups.push(name)
      return `${subscriptionScope}/resourceGroups/${name}`
    },
    deleteCluster: () => {
      clusterDeleted = true
      opts.aci.deleteResourceGroup(cluster.nodeResourceGroup)
    },
    setProviderState: s => {
      provider.state = s
      provider.since = Date.now()
    }
  }
  // Registering turns into Registered lazily, when somebody looks.
  const providerState = (): ProviderState => {
    if (provider.state === 'Registering' && Date.now() - provider.since >= opts.providerRegistrationDelayMs) provider.state = 'Registered'
    return provider.state
  }

  const subscriptionBody = (): Record<string, unknown> => ({
    id: subscriptionScope,
    authorizationSource: 'RoleBased',
    managedByTenants: [],
    subscriptionId: sub.id,
    tenantId: opts.tenantId,
    displayName: sub.name,
    state: 'Enabled',
    subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' }
  })

  const tenantBody = (): Record<string, unknown> => ({
    id: `/tenants/${opts.tenantId}`,
    tenantId: opts.tenantId,
    countryCode: 'US',
    displayName: 'Local Azure Double',
    domains: ['localazure.onmicrosoft.com'],
    tenantCategory: 'Home',
    defaultDomain: 'localazure.onmicrosoft.com',
    tenantType: 'AAD'
  })

  const providerBody = (namespace: string): Record<string, unknown> => ({
    id: `${subscriptionScope}/providers/${namespace}`,
    namespace,
    authorizations: [],
    resourceTypes:
      namespace === 'Microsoft.ContainerInstance'
        ? [
            {
              resourceType: 'containerGroups',
              // As the ACI double serves them (azure.ts): the cluster's region and West US 2.
              locations: [...new Set([displayLocation(cluster.location), 'West US 2'])],
              apiVersions: ['2023-05-01', '2022-09-01', '2021-09-01'],
              capabilities: 'SupportsTags, SupportsLocation'
            },
            { resourceType: 'locations', locations: [], apiVersions: ['2023-05-01', '2022-09-01'] }
          ]
        : [
            {
              resourceType: 'managedClusters',
              locations: [displayLocation(cluster.location)],
              apiVersions: ['2024-05-01', '2023-01-01'],
              capabilities: 'SupportsTags, SupportsLocation'
            }
          ],
    registrationState:
      namespace === 'Microsoft.ContainerInstance'
        ? providerState()
        : namespace === 'Microsoft.KubernetesConfiguration'
          ? kubernetesConfigurationState
          : 'Registered',
    registrationPolicy: 'RegistrationRequired'
  })

  /** The VNet's id, wherever it lives. */
  const vnetId = (): string =>
    `${subscriptionScope}/resourceGroups/${vnetGroup ?? cluster.nodeResourceGroup}/providers/Microsoft.Network/virtualNetworks/${vnet.name}`

  /**
   * The add-on's profile as ARM shows it (ManagedClusterAddonProfile: enabled, config, and the
   * read-only identity AKS makes for it, `aciconnectorlinux-<cluster>` in the node resource
   * group, per azure-aci docs/UPGRADE-README.md). A disabled add-on stays listed, disabled.
   */
  function addonProfiles(): Record<string, unknown> {
    settleAddon()
    if (!addon.known) return {}
    if (!addon.enabled) return { aciConnectorLinux: { enabled: false, config: null } }
    return {
      aciConnectorLinux: {
        enabled: true,
        config: { SubnetName: addon.subnetName },
        ...(addon.identity ? { identity: addon.identity } : {})
      }
    }
  }

  /**
   * Enabling makes the add-on's identity, gives it Contributor on the node resource group (az
   * leaves that to AKS unless the VNet is the user's own: "the permission is already granted in
   * AKS RP", azure-cli acs custom.py; which role AKS gives is not published, Contributor here)
   * and, once the cluster's update has run, deploys the connector (addonEvents). Disabling
   * takes the connector away; the identity is not deleted here (what AKS does with it is not published).
   */
  function startAddonOperation(enable: boolean, subnetName?: string): void {
    settleAddon()
    addon.known = true
    if (enable && !addon.enabled) {
      const clientId = randomUUID()
      const principal = {
        clientId,
        objectId: objectIdFor(`aciconnectorlinux:${clientId}`),
        displayName: `aciconnectorlinux-${cluster.name}`,
        kind: 'ManagedIdentity' as const
      }
      opts.entra.addPrincipal(principal)
      opts.rbac.assign(principal.objectId, 'Contributor', `${subscriptionScope}/resourceGroups/${cluster.nodeResourceGroup}`)
      addon.identity = {
        clientId,
        objectId: principal.objectId,
        resourceId: `${subscriptionScope}/resourcegroups/${cluster.nodeResourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aciconnectorlinux-${cluster.name}`
      }
    }
    if (!enable) addon.identity = undefined
    addon.enabled = enable
    addon.subnetName = enable ? subnetName : undefined
    addon.op = { since: Date.now(), enable }
  }

  /** A cluster update ends CLUSTER_OPERATION_MS after it began; the add-on's connector comes or goes then. */
  function settleAddon(): void {
    if (!addon.op || Date.now() - addon.op.since < CLUSTER_OPERATION_MS) return
    const { enable } = addon.op
    addon.op = undefined
    if (enable && addon.identity)
      opts.addonEvents?.enabled({
        subnetName: addon.subnetName ?? '',
        identityClientId: addon.identity.clientId,
        vnetName: vnet.name,
        vnetResourceGroup: vnetGroup ?? cluster.nodeResourceGroup
      })
    if (!enable) opts.addonEvents?.disabled()
  }

  /**
   * PUT of the managed cluster, as `az aks enable-addons` / `disable-addons` send it (the whole
   * cluster, its add-on profile changed): needs managedClusters/write; answers 200 with the
   * cluster Updating and an Azure-AsyncOperation header (a long-running operation).
   */
  function putCluster(req: Req, caller: Caller, scope: string): Reply {
    const denied = authorize(caller, 'Microsoft.ContainerService/managedClusters/write', scope)
    if (denied) return denied
    let body: { properties?: { addonProfiles?: Record<string, { enabled?: boolean; config?: Record<string, string> | null }> } }
    try {
      body = JSON.parse(req.body) as typeof body
    } catch {
      return armError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.')
    }
    if (addon.op)
      return armError(
        409,
        'OperationNotAllowed',
        "Operation is not allowed because there's an in progress update managed cluster operation on the managed cluster."
      )
    clusterPuts++
    const profiles = body.properties?.addonProfiles ?? {}
    const key = Object.keys(profiles).find(k => k.toLowerCase() === 'aciconnectorlinux')
    const wanted = key ? profiles[key] : undefined
    if (wanted && wanted.enabled !== addon.enabled) startAddonOperation(wanted.enabled === true, wanted.config?.SubnetName)
    const operation = `https://management.azure.com${scope}/operations/${randomUUID()}?api-version=${req.url.searchParams.get('api-version') ?? ''}`
    return { status: 200, body: clusterBody(), headers: { 'Azure-AsyncOperation': operation } }
  }

  function clusterBody(): Record<string, unknown> {
    const dnsPrefix = `${cluster.name}-${cluster.resourceGroup}-${sub.id.slice(0, 6)}`.slice(0, 54)
    return {
      id: clusterId,
      location,
      name: cluster.name,
      type: 'Microsoft.ContainerService/ManagedClusters',
      sku: { name: 'Base', tier: 'Free' },
      identity: { type: 'SystemAssigned', principalId: randomUUID(), tenantId: opts.tenantId },
      properties: {
        provisioningState: addon.op ? 'Updating' : 'Succeeded',
        powerState: { code: 'Running' },
        kubernetesVersion,
        currentKubernetesVersion: kubernetesVersion,
        dnsPrefix,
        fqdn: cluster.fqdn,
        azurePortalFQDN: `${dnsPrefix}-portal.hcp.${location}.azmk8s.io`,
        agentPoolProfiles: [
          {
            name: 'nodepool1',
            count: 1,
            vmSize: network.vmSize,
            osDiskSizeGB: 128,
            osDiskType: 'Managed',
            kubeletDiskType: 'OS',
            maxPods: 110,
            type: 'VirtualMachineScaleSets',
            enableAutoScaling: false,
            provisioningState: 'Succeeded',
            powerState: { code: 'Running' },
            orchestratorVersion: kubernetesVersion,
            currentOrchestratorVersion: kubernetesVersion,
            enableNodePublicIP: false,
            mode: 'System',
            osType: 'Linux',
            osSKU: 'Ubuntu',
            nodeImageVersion: 'AKSUbuntu-2204gen2containerd-202401.09.0',
            enableFIPS: false,
            ...(vnetGroup ? { vnetSubnetID: `${vnetId()}/subnets/aks-subnet` } : {})
          }
        ],
        servicePrincipalProfile: { clientId: 'msi' },
        addonProfiles: addonProfiles(),
        nodeResourceGroup: cluster.nodeResourceGroup,
        enableRBAC: cluster.enableRBAC,
        networkProfile: {
          networkPlugin: network.networkPlugin,
          ...(network.networkPluginMode ? { networkPluginMode: network.networkPluginMode } : {}),
          ...(network.networkPolicy ? { networkPolicy: network.networkPolicy } : {}),
          loadBalancerSku: 'Standard',
          podCidr: '10.244.0.0/16',
          serviceCidr: '10.0.0.0/16',
          dnsServiceIP: '10.0.0.10',
          outboundType: 'loadBalancer',
          podCidrs: ['10.244.0.0/16'],
          serviceCidrs: ['10.0.0.0/16'],
          ipFamilies: ['IPv4']
        },
        ...(cluster.aad
          ? { aadProfile: { managed: true, enableAzureRBAC: cluster.aad.enableAzureRBAC, tenantID: opts.tenantId, adminGroupObjectIDs: null } }
          : {}),
        maxAgentPools: 100,
        identityProfile: {
          kubeletidentity: {
            resourceId: `${subscriptionScope}/resourcegroups/${cluster.nodeResourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${cluster.name}-agentpool`,
            clientId: cluster.kubeletIdentity.clientId,
            objectId: cluster.kubeletIdentity.objectId
          }
        },
        disableLocalAccounts: cluster.disableLocalAccounts ?? false,
        securityProfile: network.workloadIdentity ? { workloadIdentity: { enabled: true } } : {},
        ...(network.authorizedIpRanges.length
          ? { apiServerAccessProfile: { authorizedIPRanges: network.authorizedIpRanges, enablePrivateCluster: false } }
          : {}),
        storageProfile: { diskCSIDriver: { enabled: true }, fileCSIDriver: { enabled: true }, snapshotController: { enabled: true } },
        oidcIssuerProfile: network.workloadIdentity
          ? { enabled: true, issuerURL: `https://${location}.oic.prod-aks.azure.com/${opts.tenantId}/${randomUUID()}/` }
          : { enabled: false }
      }
    }
  }

  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')
  const notFound = (path: string): Reply => armError(404, 'NotFound', `The requested resource '${path}' does not exist.`)

  /** 403 when the caller's roles do not grant `action` at `scope`. */
  const authorize = (caller: Caller, action: string, scope: string): Reply | undefined => opts.rbac.authorize(caller, action, scope)

  /** Subscriptions the caller can see: those where it holds any role assignment (at or below the subscription). */
  const canSeeSubscription = (caller: Caller): boolean =>
    opts.rbac
      .assignments()
      .some(a => a.principalId.toLowerCase() === caller.objectId.toLowerCase() && a.scope.toLowerCase().startsWith(subscriptionScope.toLowerCase()))

  function handleResourceGroup(req: Req, caller: Caller, segs: string[]): Reply {
    const rg = segs[3] ?? ''
    const known = [cluster.resourceGroup, ...(clusterDeleted ? [] : [cluster.nodeResourceGroup]), ...extraGroups].find(
      g => g.toLowerCase() === rg.toLowerCase()
    )
    const rgScope = `${subscriptionScope}/resourceGroups/${known ?? rg}`
    const rest = segs.slice(4)
    const l = rest.map(s => s.toLowerCase())
    if (!known)
      return (
        authorize(caller, 'Microsoft.Resources/subscriptions/resourceGroups/read', rgScope) ??
        armError(404, 'ResourceGroupNotFound', `Resource group '${rg}' could not be found.`)
      )
    if (rest.length === 0 && req.method === 'GET') {
      return (
        authorize(caller, 'Microsoft.Resources/subscriptions/resourceGroups/read', rgScope) ?? {
          status: 200,
          body: {
            id: rgScope,
            name: known,
            type: 'Microsoft.Resources/resourceGroups',
            location,
            ...(known === cluster.nodeResourceGroup ? { managedBy: clusterId } : {}),
            properties: { provisioningState: 'Succeeded' }
          }
        }
      )
    }
    if (l[0] !== 'providers') return notFound(req.url.pathname)
    if (l[1] === 'microsoft.containerinstance') {
      const aciRest = rest.slice(2)
      const scope = `${rgScope}/providers/Microsoft.ContainerInstance/${aciRest.slice(0, 2).join('/')}`
      return (
        authorize(caller, opts.aci.actionFor(req.method, aciRest), scope) ??
        opts.aci.handle({ method: req.method, resourceGroup: known, rest: aciRest, query: req.url.searchParams, body: req.body })
      )
    }
    if (l[1] === 'microsoft.network' && l[2] === 'virtualnetworks') return handleNetwork(req, caller, known, rgScope, rest.slice(3))
    if (l[1] === 'microsoft.containerservice' && l[2] === 'managedclusters' && rest[3] !== undefined) {
      const name = rest[3]
      const found = !clusterDeleted && known === cluster.resourceGroup && name.toLowerCase() === cluster.name.toLowerCase()
      const scope = `${rgScope}/providers/Microsoft.ContainerService/managedClusters/${name}`
      const action = rest.length === 5 ? `Microsoft.ContainerService/managedClusters/${rest[4]}/action` : 'Microsoft.ContainerService/managedClusters/read'
      const denied = rest.length >= 7 || (rest.length === 4 && req.method === 'PUT') ? undefined : authorize(caller, action, scope)
      if (denied) return denied
      if (!found) {
        return armError(
          404,
          'ResourceNotFound',
          `The Resource 'Microsoft.ContainerService/managedClusters/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`
        )
      }
      if (rest.length === 4 && req.method === 'GET') return { status: 200, body: clusterBody() }
      if (rest.length === 4 && req.method === 'PUT') return putCluster(req, caller, scope)
      if (rest.length >= 7 && l[4] === 'providers' && l[5] === 'microsoft.kubernetesconfiguration' && l[6] === 'extensions')
        return handleExtensions(req, caller, `${scope}/providers/Microsoft.KubernetesConfiguration/extensions`, rest.slice(7))
      if (rest.length === 5 && req.method === 'POST' && l[4] === 'listclusterusercredential') {
        return { status: 200, body: { kubeconfigs: [{ name: 'clusterUser', value: b64(cluster.userKubeconfig) }] } }
      }
      if (rest.length === 5 && req.method === 'POST' && l[4] === 'listclusteradmincredential') {
        if (cluster.disableLocalAccounts) {
          return armError(400, 'BadRequest', 'Getting static credential is not allowed because this cluster is set to disable local accounts.')
        }
        return { status: 200, body: { kubeconfigs: [{ name: 'clusterAdmin', value: b64(cluster.adminKubeconfig) }] } }
      }
    }
    return armError(
      404,
      'ResourceNotFound',
      `The Resource '${rest.slice(1).join('/')}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`
    )
  }

  /**
   * Microsoft.KubernetesConfiguration extensions of the cluster, as the REST spec defines them
   * (azure-rest-api-specs specification/kubernetesconfiguration/resource-manager/Microsoft.KubernetesConfiguration/stable/2023-05-01/extensions.json):
   * PUT answers 201 (200 for an existing one) with provisioningState Creating/Updating and an
   * Azure-AsyncOperation header; GET shows Succeeded or Failed (with errorInfo) once the
   * extension manager is done; DELETE answers 202, the extension is Deleting, then 404.
   * Needs Microsoft.KubernetesConfiguration/extensions/read|write|delete on the cluster.
   */
  function handleExtensions(req: Req, caller: Caller, scope: string, rest: string[]): Reply {
    const action = `Microsoft.KubernetesConfiguration/extensions/${req.method === 'GET' ? 'read' : req.method === 'DELETE' ? 'delete' : 'write'}`
    const denied = authorize(caller, action, rest[0] ? `${scope}/${rest[0]}` : scope)
    if (denied) return denied
    if (kubernetesConfigurationState !== 'Registered')
      return armError(
        409,
        'MissingSubscriptionRegistration',
        "The subscription is not registered to use namespace 'Microsoft.KubernetesConfiguration'. See https://aka.ms/rps-not-found for how to register subscriptions."
      )
    for (const e of extensions.values()) settleExtension(e)
    // The shapes real ARM answers in (azure-cli-extensions src/k8s-extension/azext_k8s_extension/tests/latest/recordings/
    // test_k8s_extension.yaml at a1223623b88864ea782f47862a3b7d84afb30eab and test_k8s_extension_fleet.yaml at
    // 3f4b12dd12bf693b9e4ab823c17ffad70453080e): a failure's reason only in statuses[] (code InstallationFailed,
    // no errorInfo key), aksAssignedIdentity null until the identity is made, systemData, lists with nextLink null.
    const view = (e: StoredExtension): Record<string, unknown> => {
      const shown = e.lagReads && e.shownState ? e.shownState : e.state
      if (e.lagReads) e.lagReads--
      return {
        id: `${scope}/${e.name}`,
        name: e.name,
        type: 'Microsoft.KubernetesConfiguration/extensions',
        properties: {
          extensionType: e.extensionType,
          autoUpgradeMinorVersion: true,
          releaseTrain: 'Stable',
          scope: { cluster: { releaseNamespace: e.releaseNamespace } },
          configurationSettings: e.settings,
          configurationProtectedSettings: {},
          provisioningState: shown,
          statuses: shown === 'Failed' && e.failure ? [{ code: 'InstallationFailed', displayStatus: null, level: null, message: e.failure, time: null }] : [],
          aksAssignedIdentity: e.identityAssigned ? { principalId: e.principalId, tenantId: opts.tenantId, type: 'SystemAssigned' } : null,
          currentVersion: e.identityAssigned ? '1.3409.26080501' : null,
          isSystemExtension: false
        },
        systemData: { createdBy: null, createdByType: null, createdAt: e.createdAt, lastModifiedBy: null, lastModifiedByType: null, lastModifiedAt: null }
      }
    }
    const name = rest[0]
    if (!name && req.method === 'GET') return { status: 200, body: { value: [...extensions.values()].map(view), nextLink: null } }
    if (!name || rest.length !== 1) return notFound(req.url.pathname)
    const existing = extensions.get(name.toLowerCase())
    const operation = `https://management.azure.com${scope}/${name}/operations/${randomUUID()}?api-version=${req.url.searchParams.get('api-version') ?? ''}`
    if (req.method === 'GET')
      return existing
        ? { status: 200, body: view(existing) }
        : armError(404, 'ResourceNotFound', `The Resource 'Microsoft.KubernetesConfiguration/extensions/${name}' was not found.`)
    if (req.method === 'PUT') {
      let body: { properties?: { extensionType?: string; scope?: { cluster?: { releaseNamespace?: string } }; configurationSettings?: Record<string, string> } }
      try {
        body = JSON.parse(req.body) as typeof body
      } catch {
        return armError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.')
      }
      if (!body.properties?.extensionType) return armError(400, 'InvalidRequestContent', "The request content was invalid: 'extensionType' is required.")
      if (existing?.state === 'Deleting') return armError(409, 'Conflict', `Extension '${name}' is being deleted; try again when it is gone.`)
      const e: StoredExtension = {
        name,
        extensionType: body.properties.extensionType,
        releaseNamespace: body.properties.scope?.cluster?.releaseNamespace ?? name,
        settings: body.properties.configurationSettings ?? {},
        state: existing ? 'Updating' : 'Creating',
        since: Date.now(),
        principalId: existing?.principalId ?? randomUUID(),
        identityAssigned: existing?.identityAssigned ?? false,
        createdAt: existing?.createdAt ?? new Date().toISOString(),
        failure: nextExtensionFailure
      }
      nextExtensionFailure = undefined
      extensions.set(name.toLowerCase(), e)
      return { status: existing ? 200 : 201, body: view(e), headers: { 'Azure-AsyncOperation': operation } }
    }
    if (req.method === 'DELETE') {
      if (!existing) return { status: 204 }
      extensionDeletes.push({ name: existing.name, stateBefore: existing.state })
      if (lagAfterDelete > 0) Object.assign(existing, { lagReads: lagAfterDelete, shownState: existing.state })
      lagAfterDelete = 0
      existing.state = 'Deleting'
      existing.since = Date.now()
      return { status: 202, body: undefined, headers: { 'Azure-AsyncOperation': operation, Location: operation } }
    }
    return armError(405, 'MethodNotAllowed', `The requested method '${req.method}' is not allowed for this resource.`)
  }

  /** Provisioning ends (Succeeded, or Failed when a failure was asked for) and deletion finishes, EXTENSION_OPERATION_MS after they began. */
  function settleExtension(e: StoredExtension): void {
    if (Date.now() - e.since < extensionOperationMs) return
    if (e.state === 'Creating' || e.state === 'Updating') {
      e.state = e.failure ? 'Failed' : 'Succeeded'
      e.identityAssigned = true
      if (e.state === 'Succeeded') opts.extensionEvents?.installed(e.name, e.settings)
    } else if (e.state === 'Deleting') {
      extensions.delete(e.name.toLowerCase())
      opts.extensionEvents?.uninstalled(e.name)
    }
  }

  /**
   * The node resource group's VNet (Microsoft.Network, https://learn.microsoft.com/rest/api/virtual-network/):
   * list, get, and a subnet created or updated with its delegations.
   */
  function handleNetwork(req: Req, caller: Caller, rg: string, rgScope: string, rest: string[]): Reply {
    const inNodeGroup = rg.toLowerCase() === (vnetGroup ?? cluster.nodeResourceGroup).toLowerCase()
    const id = `${rgScope}/providers/Microsoft.Network/virtualNetworks/${vnet.name}`
    const view = (): Record<string, unknown> => ({
      id,
      name: vnet.name,
      type: 'Microsoft.Network/virtualNetworks',
      location,
      properties: {
        provisioningState: 'Succeeded',
        addressSpace: { addressPrefixes: vnet.addressPrefixes },
        subnets: vnet.subnets.map(s => ({
          id: `${id}/subnets/${s.name}`,
          name: s.name,
          properties: {
            provisioningState: 'Succeeded',
            addressPrefix: s.addressPrefix,
            delegations: s.delegations.map(d => ({ name: d.name, properties: { serviceName: d.serviceName } }))
          }
        }))
      }
    })
    if (rest.length === 0 && req.method === 'GET')
      return authorize(caller, 'Microsoft.Network/virtualNetworks/read', rgScope) ?? { status: 200, body: { value: inNodeGroup ? [view()] : [] } }
    if (!inNodeGroup || rest[0]?.toLowerCase() !== vnet.name.toLowerCase()) return notFound(req.url.pathname)
    if (rest.length === 1 && req.method === 'GET') return authorize(caller, 'Microsoft.Network/virtualNetworks/read', id) ?? { status: 200, body: view() }
    if (rest.length === 3 && rest[1]?.toLowerCase() === 'subnets' && req.method === 'GET') {
      const subnet = (view().properties as { subnets: Array<{ name: string }> }).subnets.find(s => s.name === rest[2])
      return authorize(caller, 'Microsoft.Network/virtualNetworks/subnets/read', id) ?? (subnet ? { status: 200, body: subnet } : notFound(req.url.pathname))
    }
    if (rest.length === 3 && rest[1]?.toLowerCase() === 'subnets' && req.method === 'PUT') {
      const denied = authorize(caller, 'Microsoft.Network/virtualNetworks/subnets/write', id)
      if (denied) return denied
      const body = JSON.parse(req.body || '{}') as {
        properties?: { addressPrefix?: string; delegations?: Array<{ name?: string; properties?: { serviceName?: string } }> }
      }
      const prefix = body.properties?.addressPrefix ?? ''
      const others = vnet.subnets.filter(s => s.name !== rest[2])
      if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(prefix)) return armError(400, 'InvalidAddressPrefixFormat', `Address prefix ${prefix} has an invalid format.`)
      if (others.some(s => cidrOverlap(s.addressPrefix, prefix)))
        return armError(
          400,
          'NetcfgSubnetRangesOverlap',
          `Subnet '${rest[2] ?? ''}' is not valid because its IP address range overlaps with that of an existing subnet in virtual network '${vnet.name}'.`
        )
      if (!vnet.addressPrefixes.some(space => cidrWithin(prefix, space)))
        return armError(
          400,
          'NetcfgSubnetRangeOutsideVnet',
          `Subnet '${rest[2] ?? ''}' is not valid because its IP address range is outside the IP address range of virtual network '${vnet.name}'.`
        )
      const subnet = {
        name: rest[2] ?? '',
        addressPrefix: prefix,
        delegations: (body.properties?.delegations ?? []).map(d => ({ name: d.name ?? '', serviceName: d.properties?.serviceName ?? '' }))
      }
      const existed = others.length !== vnet.subnets.length
      vnet.subnets = [...others, subnet]
      return { status: existed ? 200 : 201, body: (view().properties as { subnets: unknown[] }).subnets.at(-1) }
    }
    return armError(405, 'MethodNotAllowed', `The requested method '${req.method}' is not allowed for this resource.`)
  }

  function handleProviders(req: Req, caller: Caller, rest: string[]): Reply {
    if (rest.length === 0 && req.method === 'GET') return { status: 200, body: { value: KNOWN_PROVIDERS.map(providerBody) } }
    // Microsoft.Compute's VM sizes of a region (https://learn.microsoft.com/rest/api/compute/virtual-machine-sizes/list).
    if (
      rest[0]?.toLowerCase() === 'microsoft.compute' &&
      rest[1]?.toLowerCase() === 'locations' &&
      rest[3]?.toLowerCase() === 'vmsizes' &&
      req.method === 'GET'
    )
      return { status: 200, body: { value: VM_SIZES } }
    const ns = KNOWN_PROVIDERS.find(k => k.toLowerCase() === (rest[0] ?? '').toLowerCase())
    if (!ns) return armError(404, 'InvalidResourceNamespace', `The resource namespace '${rest[0] ?? ''}' is invalid.`)
    if (ns === 'Microsoft.ContainerInstance' && rest.length >= 2 && rest[1]?.toLowerCase() !== 'register') {
      const aciRest = rest.slice(1)
      return (
        authorize(caller, opts.aci.actionFor(req.method, aciRest), subscriptionScope) ??
        opts.aci.handleSubscription({ method: req.method, rest: aciRest, query: req.url.searchParams, body: req.body })
      )
    }
    if (rest.length === 1 && req.method === 'GET') return { status: 200, body: providerBody(ns) }
    if (rest.length === 2 && req.method === 'POST' && rest[1]?.toLowerCase() === 'register') {
      // Registering needs <namespace>/register/action on the subscription (Contributor has it).
      const denied = authorize(caller, `${ns}/register/action`, subscriptionScope)
      if (denied) return denied
      if (ns === 'Microsoft.ContainerInstance') {
        provider.registerCalls++
        if (providerState() === 'NotRegistered') knobs.setProviderState('Registering')
      }
      return { status: 200, body: providerBody(ns) }
    }
    return armError(405, 'MethodNotAllowed', `The requested method '${req.method}' is not allowed for this resource.`)
  }

  function route(req: Req, caller: Caller): Reply {
    const segs = req.url.pathname
      .split('/')
      .filter(Boolean)
      .map(s => decodeURIComponent(s))
    const l = segs.map(s => s.toLowerCase())
    // Microsoft.Authorization at any scope: /<scope>/providers/Microsoft.Authorization/<rest>
    const authz = l.findIndex((s, i) => s === 'microsoft.authorization' && l[i - 1] === 'providers')
    if (authz > 0) {
      const scope = `/${segs.slice(0, authz - 1).join('/')}`
      const rest = segs.slice(authz + 1)
      return (
        authorize(caller, opts.rbac.actionFor(req.method, rest), scope) ??
        opts.rbac.handle({ method: req.method, scope, rest, query: req.url.searchParams, body: req.body, caller })
      )
    }
    if (req.method === 'GET' && l.length === 1 && l[0] === 'tenants') return { status: 200, body: { value: [tenantBody()] } }
    if (l[0] !== 'subscriptions') return notFound(req.url.pathname)
    if (req.method === 'GET' && l.length === 1) {
      const visible = canSeeSubscription(caller) ? [subscriptionBody()] : []
      return { status: 200, body: { value: visible, count: { type: 'Total', value: visible.length } } }
    }
    if ((segs[1] ?? '').toLowerCase() !== sub.id.toLowerCase()) {
      return armError(404, 'SubscriptionNotFound', `The subscription '${segs[1] ?? ''}' could not be found.`)
    }
    // A caller without a role here is refused per request with 403 AuthorizationFailed (it
    // only does not see the subscription in the list above).
    if (req.method === 'GET' && l.length === 2)
      return authorize(caller, 'Microsoft.Resources/subscriptions/read', subscriptionScope) ?? { status: 200, body: subscriptionBody() }
    if (l[2] === 'providers') return handleProviders(req, caller, segs.slice(3))
    if (l[2] === 'resourcegroups' && l.length >= 4) return handleResourceGroup(req, caller, segs)
    return notFound(req.url.pathname)
  }

  function injectedFailure(path: string): Reply | undefined {
    const f = failures.find(x => x.remaining > 0 && (x.pathPrefix === undefined || path.startsWith(x.pathPrefix)))
    if (!f) return undefined
    f.remaining--
    const headers = { 'Retry-After': String(f.retryAfterSeconds), 'x-ms-failure-cause': 'gateway' }
    // A refusal as ARM words it (the caller lacks the action at that scope), e.g. a Reader role taken away.
    if (f.status === 403)
      return armError(
        403,
        'AuthorizationFailed',
        `The client does not have authorization to perform action over scope '${path}' or the scope is invalid. If access was recently granted, please refresh your credentials.`
      )
    return f.status === 429
      ? armError(
          429,
          'SubscriptionRequestsThrottled',
          `Number of 'read' requests for subscription '${sub.id}' actor '${randomUUID()}' exceeded. Please try again after '${f.retryAfterSeconds}' seconds after additional '${f.retryAfterSeconds}' seconds. For more information, refer to - https://aka.ms/srpthrottlinglimits`,
          headers
        )
      : armError(503, 'ServiceUnavailable', 'The service is temporarily unavailable. Please retry the request later.', headers)
  }

  return {
    knobs,
    state: () => {
      for (const e of extensions.values()) settleExtension(e)
      settleAddon()
      return {
        providerState: providerState(),
        registerCalls: provider.registerCalls,
        extensions: [...extensions.values()].map(e => ({ name: e.name, state: e.state, settings: e.settings })),
        extensionDeletes: [...extensionDeletes],
        subnets: vnet.subnets,
        vnet: { name: vnet.name, resourceGroup: vnetGroup ?? cluster.nodeResourceGroup },
        addon: { enabled: addon.enabled, subnetName: addon.subnetName, identity: addon.identity, provisioningState: addon.op ? 'Updating' : 'Succeeded' },
        clusterPuts
      }
    },
    vmIdentities: () => [cluster.kubeletIdentity.clientId, ...(addon.enabled && addon.identity ? [addon.identity.clientId] : [])],
    handle(req: Req, base: string): Reply {
      if (req.url.pathname.toLowerCase() === '/metadata/endpoints') {
        // ARM's discovery document (`az cloud register` reads it when endpoints are left out).
        return {
          status: 200,
          body: {
            galleryEndpoint: '',
            graphEndpoint: 'https://graph.windows.net/',
            portalEndpoint: '',
            authentication: { loginEndpoint: `${base}/adfs`, audiences: ['https://management.core.windows.net/', 'https://management.azure.com/'] }
          }
        }
      }
      const failed = injectedFailure(req.url.pathname + req.url.search)
      if (failed) return failed
      const caller = opts.entra.verifyBearer(
        req.headers.authorization,
        ARM_AUDIENCES,
        base.includes('management.azure.com') ? 'https://login.microsoftonline.com/common' : `${base}/adfs`
      )
      if ('status' in caller) return caller
      const path = req.url.pathname.toLowerCase()
      if (path === subscriptionScope.toLowerCase() || path.startsWith(`${subscriptionScope.toLowerCase()}/`)) {
        const op = operationType(req.method)
        const retryAfter = throttle(caller.objectId, op)
        if (retryAfter !== undefined)
          return armError(
            429,
            'SubscriptionRequestsThrottled',
            `Number of '${op}' requests for subscription '${sub.id}' actor '${caller.objectId}' exceeded. Please try again after '${retryAfter}' seconds after additional '${retryAfter}' seconds. For more information, refer to - https://aka.ms/srpthrottlinglimits`,
            { 'Retry-After': String(retryAfter) }
          )
      }
      if (!req.url.searchParams.get('api-version'))
        return armError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.')
      return route(req, caller)
    }
  }
}
