// The whole local AKS in one call: a real control plane (cluster.ts) with an AKS agent node
// whose kubelet runs pods in their own network namespaces (kubelet.ts, pod-network.ts,
// container-runtime.ts), the real azure-aci connector and init-validation programs as its
// images, the real connector chart served at its published path, Azure imitated at the
// HTTP level (azure.ts: the real az signs in to it, the connector reaches it as public
// Azure through the cluster's outbound proxy), and a tool mirror laid out like dl.k8s.io /
// get.helm.sh serving real kubectl and helm. Used by the end-to-end tests, the demo and
// the bench.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { AZURE_ACI_VERSION, ensureBinaries, HELM3_VERSION, HELM4_VERSION, K8S_VERSION, KUBELOGIN_VERSION, type Binaries } from './binaries.js'
import { startCluster, type LocalCluster } from './cluster.js'
import { startV2Agent, type V2Agent } from './virtual-nodes-v2.js'
import { startAddonManager, type AddonManager } from './virtual-node-addon.js'
import { startAgentNode, type AgentNode } from './kubelet.js'
import { DISTROLESS_ENV, type ContainerImage } from './container-runtime.js'
import { startPodNetwork, type PodNetwork } from './pod-network.js'
import { startAzureDouble, type AzureDouble } from './azure.js'
import { ensureAzCli, prepareRunnerAzConfig } from './az-cli.js'
import { startMirror, type Mirror } from './mirror.js'
import { chartFileName, packageChart, PUBLISHED_CHARTS_PATH } from './chart.js'
import { startApiFront, type ApiFront } from './api-front.js'

/** Identities and names of the imitated subscription; the secrets are test values. */
export const IDS = {
  tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  subscriptionId: '3f2e1d0c-5b4a-4c3d-9e8f-7a6b5c4d3e2f',
  subscriptionName: 'Local AKS subscription',
  clientId: '6d8e7a1c-2222-4333-8444-555566667777',
  clientSecret: 'Lq8~local.Test_Secret-Value_0123456789',
  connectorClientId: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
  connectorClientSecret: 'Cn7~connector.Secret_Value-9876543210',
  oidcClientId: 'c0ffee00-1111-4222-8333-444455556666',
  kubeletIdentityClientId: 'b1d2e3f4-5a6b-4c7d-8e9f-0a1b2c3d4e5f',
  resourceGroup: 'rg-aks-local',
  clusterName: 'aks-local',
  location: 'East US',
  nodeResourceGroup: 'MC_rg-aks-local_aks-local_eastus'
}

/** The CI service principal's sign-in inputs (client secret). */
export const SECRET_SIGN_IN = { 'client-id': IDS.clientId, 'tenant-id': IDS.tenantId, 'client-secret': IDS.clientSecret }

export const SUBSCRIPTION_SCOPE = `/subscriptions/${IDS.subscriptionId}`
export const NODE_RESOURCE_GROUP_SCOPE = `${SUBSCRIPTION_SCOPE}/resourceGroups/${IDS.nodeResourceGroup}`
export const CLUSTER_RESOURCE_GROUP_SCOPE = `${SUBSCRIPTION_SCOPE}/resourceGroups/${IDS.resourceGroup}`

/**
 * Who may do what, as a team would have set it up: the CI service principal is Contributor
 * on the subscription; the separate connector principal holds Contributor on the node
 * resource group where the container groups go; the OIDC principal is Contributor on the
 * subscription and may assign roles on the node resource group. The kubelet identity has no
 * role at all: AKS grants it none (azure-aci's own AKS end-to-end script assigns it one,
 * hack/e2e/aks.sh).
 */
const ROLE_ASSIGNMENTS = [
  { clientId: IDS.clientId, role: 'Contributor', scope: SUBSCRIPTION_SCOPE },
  { clientId: IDS.connectorClientId, role: 'Contributor', scope: NODE_RESOURCE_GROUP_SCOPE },
  { clientId: IDS.oidcClientId, role: 'Contributor', scope: SUBSCRIPTION_SCOPE },
  { clientId: IDS.oidcClientId, role: 'User Access Administrator', scope: NODE_RESOURCE_GROUP_SCOPE }
]

const REGION = 'eastus'
/**
 * The API server's public name, of the form AKS gives (`<dnsPrefix>-<8 hex>.hcp.<region>.azmk8s.io`).
 * This machine's DNS does not resolve it; only the Azure double's proxy reaches it (see
 * `LocalAks.apiServerBehindProxy`). Its certificate holds this name as well as 127.0.0.1.
 */
export const API_SERVER_FQDN = `aks-local-dns-5c3e9a1f.hcp.${REGION}.azmk8s.io`
const VNET_SUFFIX = '12345678'

/**
 * /etc/kubernetes/azure.json as AKS writes it on a kubenet node pool with a kubelet managed
 * identity (the cloud provider config: https://cloud-provider-azure.sigs.k8s.io/install/configs/).
 * The connector reads cloud, tenant, subscription, resource group, location, VNet and the
 * identity from here (azure-aci v1.6.4 pkg/auth/authentication.go aksCredential).
 */
export function aksAzureJson(cloud = 'AzurePublicCloud'): string {
  return `${JSON.stringify(
    {
      cloud,
      tenantId: IDS.tenantId,
      subscriptionId: IDS.subscriptionId,
      aadClientId: 'msi',
      aadClientSecret: 'msi',
      resourceGroup: IDS.nodeResourceGroup,
      location: REGION,
      vmType: 'vmss',
      subnetName: 'aks-subnet',
      securityGroupName: `aks-agentpool-${VNET_SUFFIX}-nsg`,
      vnetName: `aks-vnet-${VNET_SUFFIX}`,
      vnetResourceGroup: '',
      routeTableName: `aks-agentpool-${VNET_SUFFIX}-routetable`,
      primaryAvailabilitySetName: '',
      primaryScaleSetName: `aks-nodepool1-${VNET_SUFFIX}-vmss`,
      cloudProviderBackoffMode: 'v2',
      cloudProviderBackoff: true,
      cloudProviderBackoffRetries: 6,
      cloudProviderBackoffDuration: 5,
      cloudProviderRateLimit: true,
      cloudProviderRateLimitQPS: 10,
      cloudProviderRateLimitBucket: 100,
      useManagedIdentityExtension: true,
      userAssignedIdentityID: IDS.kubeletIdentityClientId,
      useInstanceMetadata: true,
      loadBalancerSku: 'Standard',
      excludeMasterFromStandardLB: true,
      maximumLoadBalancerRuleCount: 250
    },
    null,
    4
  )}\n`
}

export interface LocalAks {
  bins: Binaries
  cluster: LocalCluster
  /** The action's way to the API server (kubeconfigs from the Azure double point here). */
  front: ApiFront
  agent: AgentNode
  /** The Virtual Nodes v2 stand-in: registers the nodes of a microsoft.virtualnodes extension and runs their pods as container groups. */
  v2: V2Agent
  /** AKS's virtual-node add-on in the cluster: deploys the real connector when ARM enables the add-on. */
  addon: AddonManager
  azure: AzureDouble
  mirror: Mirror
  chartUrl: string
  /** Virtual Nodes v2's chart (charts/virtualnode, packaged here) on the mirror at its release asset's path, and that file's SHA-256 (v2-chart-url, v2-chart-sha256). */
  v2Chart: { url: string; sha256: string; /** The packaged chart on this machine. */ file: string }
  /** Env a step needs on this machine: the runner-level az config (local cloud registered), CA trust, PATH with the recording az. */
  actionEnv: Record<string, string>
  /**
   * How this runner reaches public Azure's host names (login.microsoftonline.com): through
   * the double's proxy, trusting its CA, as a self-hosted runner behind a proxy would. Go
   * programs (kubelogin) take SSL_CERT_FILE as their trust store.
   */
  publicAzureEnv: Record<string, string>
  /** Shared by every job here, so later jobs can reuse cached tools. */
  toolCache: string
  /**
   * With `true`, ARM hands out kubeconfigs naming the API server as `https://API_SERVER_FQDN:443`,
   * reachable only through the proxy, and this returns the env of a runner behind that
   * proxy (HTTPS_PROXY, NO_PROXY); `false` goes back to 127.0.0.1.
   */
  apiServerBehindProxy(on: boolean): Record<string, string>
  /** Inputs every step passes (cluster, cloud, mirror, chart). */
  baseInputs(): Record<string, string>
  /** Every az/helm/kubectl command line the action started, one per line. */
  argvLog(): Promise<string>
  core: CoreV1Api
  apps: AppsV1Api
  stop(): Promise<void>
}

/**
 * A stand-in for a tool that logs its command line and execs the real binary, so tests
 * can prove no secret is ever a process argument. The real tool still does the work.
 */
function recordingShim(tool: string, real: string): string {
  return [
    '#!/bin/sh',
    `{ printf '%s' '${tool}'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n'; } >> "\${ACTION_ARGV_LOG:-/dev/null}"`,
    `exec '${real}' "$@"`,
    ''
  ].join('\n')
}

async function writeShim(dir: string, name: string, tool: string, real: string): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, recordingShim(tool, real))
  await chmod(file, 0o755)
  return file
}

/**
 * The images the agent node can run, laid out as azure-aci's Dockerfiles build them
 * (docker/virtual-kubelet/Dockerfile: /usr/bin/virtual-kubelet on distroless/static with
 * the CA bundle; docker/init-container/Dockerfile: /initcontainer), at the tags chart 1.6.4
 * names (values.yaml image.tag 1.6.4, initImage.initTag 0.3.2; init-validation is built
 * from the same module version). The outbound proxy's CA is added as AKS adds a proxy's
 * trusted CA.
 */
function images(bins: Binaries, proxyCa: string): ContainerImage[] {
  const trust = { '/etc/ssl/certs/ca-certificates.crt': '/etc/ssl/certs/ca-certificates.crt', [PROXY_CA_PATH]: proxyCa }
  return [
    {
      repository: 'mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet',
      tags: [AZURE_ACI_VERSION.replace(/^v/, '')],
      files: { '/usr/bin/virtual-kubelet': bins.aciConnector, ...trust },
      entrypoint: ['/usr/bin/virtual-kubelet'],
      cmd: ['--help'],
      env: DISTROLESS_ENV
    },
    {
      repository: 'mcr.microsoft.com/oss/virtual-kubelet/init-validation',
      tags: ['0.3.2'],
      files: { '/initcontainer': bins.aciInitValidation, ...trust },
      entrypoint: ['/initcontainer'],
      cmd: [],
      env: DISTROLESS_ENV
    }
  ]
}

/** Virtual Nodes v2's chart as its repository publishes it (charts/README.md), its version, and where its releases are served. */
const V2_CHART_DIR = fileURLToPath(new URL('./charts/virtualnode', import.meta.url))
const V2_CHART_VERSION = '1.3409.26080501'
const V2_RELEASES_PATH = '/microsoft/virtualnodesOnAzureContainerInstances/releases/download'

/**
 * Virtual Nodes v2's closed images (Helm/virtualnode/values.yaml `images.*` at the chart's
 * tags), each standing in as stand-ins/pause: the containers run, and the v2 stand-in
 * (virtual-nodes-v2.ts) does their node's work. The init container's args run
 * /initcontainer/init.sh (templates/deployment.yaml), which ends at once; virtual-csi runs as
 * its command /go/bin/virtual-csi says. The images' own entrypoints are not published.
 */
function v2Images(pause: string): ContainerImage[] {
  const image = (name: string, tag = 'main_20260805.1'): ContainerImage => ({
    repository: `mcr.microsoft.com/aci/virtual-node-2-${name}`,
    tags: [tag],
    files: { '/standin': pause, '/initcontainer/init.sh': pause, '/go/bin/virtual-csi': pause },
    entrypoint: name === 'init-config' ? [] : ['/standin'],
    cmd: [],
    env: DISTROLESS_ENV
  })
  return [
    ...[
      'cri-socket-adapter',
      'spdy-compat',
      'proxy-cri',
      'init-config',
      'kubelet',
      'virtual-csi',
      'admission-controller',
      'aci',
      'virtual-daemonsets-controller'
    ].map(n => image(n)),
    image('mount-host'),
    image('mount-host', 'main_20250801.1')
  ]
}

/** azure.json with the VNet the cluster has (its own resource group when it is a VNet of the user's own). */
function withVnet(azureJson: string, vnet: { name: string; resourceGroup: string }): string {
  return JSON.stringify({ ...(JSON.parse(azureJson) as Record<string, unknown>), vnetName: vnet.name, vnetResourceGroup: vnet.resourceGroup }, null, 2)
}

const PROXY_CA_PATH = '/etc/ssl/certs/aks-proxy-trusted-ca.crt'

/**
 * What the cluster puts into every container: the `kubernetes` service's variables as
 * AKS's admissions enforcer rewrites them to the API server's address, and AKS's HTTP
 * proxy variables (https://learn.microsoft.com/azure/aks/http-proxy). Both addresses are
 * the pod's own 127.0.0.1, where the pod network relays to the host.
 */
function podEnv(apiPort: number, proxyPort: number, fqdn: string): Record<string, string> {
  const proxy = `http://127.0.0.1:${proxyPort}`
  const noProxy = ['localhost', '127.0.0.1', fqdn.split(':')[0], '10.0.0.0/16', '10.244.0.0/16', '.svc', '.cluster.local'].join(',')
  return {
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: String(apiPort),
    KUBERNETES_SERVICE_PORT_HTTPS: String(apiPort),
    KUBERNETES_PORT: `tcp://127.0.0.1:${apiPort}`,
    KUBERNETES_PORT_443_TCP: `tcp://127.0.0.1:${apiPort}`,
    KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
    KUBERNETES_PORT_443_TCP_ADDR: '127.0.0.1',
    KUBERNETES_PORT_443_TCP_PORT: String(apiPort),
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    SSL_CERT_FILE: PROXY_CA_PATH
  }
}

export interface LocalAksOptions {
  log?: (m: string) => void
  providerInitiallyRegistered?: boolean
  /**
   * AKS-managed Microsoft Entra ID integration with local accounts disabled and Kubernetes
   * RBAC: the API server takes Entra tokens for the AKS server application, ARM's user
   * credential is the kubelogin kubeconfig, the admin credential is refused.
   */
  entra?: boolean
}

/** The AKS server application: the audience of the tokens an Entra ID cluster's API server accepts. */
export const AKS_SERVER_APP_ID = '6dae42f8-4368-4678-94ff-3960e28e3630'
/** The "Azure Kubernetes Service AAD Client" application, which AKS's user kubeconfig names for device-code login. */
const AKS_AAD_CLIENT_ID = '80faf920-1908-4b52-b5ef-a8e7bedfc67a'

/**
 * The user kubeconfig ARM's listClusterUserCredential returns for an Entra ID cluster: no
 * credential, an exec plugin running `kubelogin get-token` in device-code mode for the AKS
 * server application (https://learn.microsoft.com/azure/aks/kubelogin-authentication).
 */
export function entraUserKubeconfig(server: string, caPem: string): string {
  const user = `clusterUser_${IDS.resourceGroup}_${IDS.clusterName}`
  return `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}
    server: ${server}
  name: ${IDS.clusterName}
contexts:
- context:
    cluster: ${IDS.clusterName}
    user: ${user}
  name: ${IDS.clusterName}
current-context: ${IDS.clusterName}
kind: Config
preferences: {}
users:
- name: ${user}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - get-token
      - --environment
      - AzurePublicCloud
      - --server-id
      - ${AKS_SERVER_APP_ID}
      - --client-id
      - ${AKS_AAD_CLIENT_ID}
      - --tenant-id
      - ${IDS.tenantId}
      - --login
      - devicecode
      command: kubelogin
      env: null
      installHint: |2

        kubelogin is not installed which is required to connect to AAD enabled cluster.

        To learn more, please go to https://aka.ms/aks/kubelogin
      provideClusterInfo: false
`
}

/**
 * Kubernetes RBAC for an Entra ID cluster without Azure RBAC: a ClusterRoleBinding to each
 * deploying identity's object ID, the user name the API server gives its tokens
 * (https://learn.microsoft.com/azure/aks/azure-ad-rbac).
 */
async function bindEntraIdentities(cluster: LocalCluster, objectIds: string[]): Promise<void> {
  const rbac = cluster.kc.makeApiClient(RbacAuthorizationV1Api)
  for (const oid of objectIds) {
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `entra-cluster-admin-${oid}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: oid }]
      }
    })
  }
}

/** kubelogin's release zip (bin/linux_amd64/kubelogin) holding `binary`. */
async function kubeloginZip(dir: string, binary: string): Promise<string> {
  const stage = join(dir, 'kubelogin-release')
  await mkdir(join(stage, 'bin', 'linux_amd64'), { recursive: true })
  await copyFile(binary, join(stage, 'bin', 'linux_amd64', 'kubelogin'))
  await chmod(join(stage, 'bin', 'linux_amd64', 'kubelogin'), 0o755)
  const zip = join(dir, 'kubelogin-linux-amd64.zip')
  await promisify(execFile)('zip', ['-qq', zip, 'bin/linux_amd64/kubelogin'], { cwd: stage, timeout: 60_000 })
  return zip
}

export async function startLocalAks(opts: LocalAksOptions = {}): Promise<LocalAks> {
  const log = opts.log ?? (() => undefined)
  const dir = await mkdtemp(join(tmpdir(), 'local-aks-'))
  const stops: Array<() => Promise<void>> = []
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(err => log(`stop: ${String(err)}`))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const [bins, az] = await Promise.all([ensureBinaries(log), ensureAzCli()])
    // Azure first: an Entra ID cluster's API server reads Entra's keys when it starts.
    const azure = await startAzureDouble({
      tenantId: IDS.tenantId,
      subscription: { id: IDS.subscriptionId, name: IDS.subscriptionName },
      principals: [
        { clientId: IDS.clientId, secret: IDS.clientSecret, displayName: 'ci-deployer' },
        { clientId: IDS.connectorClientId, secret: IDS.connectorClientSecret, displayName: 'aci-connector' },
        { clientId: IDS.oidcClientId, federatedSubject: 'repo:octo/repo:ref:refs/heads/main', displayName: 'github-oidc' }
      ],
      cluster: {
        resourceGroup: IDS.resourceGroup,
        name: IDS.clusterName,
        location: IDS.location,
        // Set by setClusterAccess once the API server runs.
        fqdn: '',
        nodeResourceGroup: IDS.nodeResourceGroup,
        enableRBAC: true,
        kubernetesVersion: K8S_VERSION.slice(1),
        kubeletIdentityClientId: IDS.kubeletIdentityClientId,
        ...(opts.entra ? { aad: { enableAzureRBAC: false }, disableLocalAccounts: true } : {}),
        userKubeconfig: '',
        adminKubeconfig: ''
      },
      roleAssignments: ROLE_ASSIGNMENTS,
      providerInitiallyRegistered: opts.providerInitiallyRegistered ?? false,
      providerRegistrationDelayMs: 3000
    })
    stops.push(() => azure.stop())

    const cluster = await startCluster({
      log,
      bins,
      serverNames: [API_SERVER_FQDN],
      ...(opts.entra
        ? {
            jwt: {
              issuer: azure.entra.v1Issuer,
              discoveryUrl: `${azure.url}/entra/${IDS.tenantId}/.well-known/openid-configuration`,
              certificateAuthority: await readFile(azure.caPath, 'utf8'),
              audiences: [AKS_SERVER_APP_ID],
              // AKS names an Entra identity by its object ID in Kubernetes RBAC.
              usernameClaim: 'oid',
              groupsClaim: 'groups'
            }
          }
        : {})
    })
    stops.push(() => cluster.stop())

    // The action reaches the API server through a front that tests can make drop connections.
    const front = await startApiFront(new URL(cluster.server))
    stops.push(() => front.stop())
    const withServer = (kubeconfig: string, server: string): string => kubeconfig.split(`server: ${cluster.server}\n`).join(`server: ${server}\n`)
    const handOut = (server: string, fqdn: string): void =>
      azure.setClusterAccess({
        fqdn,
        userKubeconfig: opts.entra ? entraUserKubeconfig(server, cluster.caPem) : withServer(cluster.userKubeconfig, server),
        adminKubeconfig: withServer(cluster.adminKubeconfig, server)
      })
    handOut(front.server, front.host)
    azure.relayThroughProxy(API_SERVER_FQDN, Number(new URL(front.server).port))
    if (opts.entra) await bindEntraIdentities(cluster, [azure.objectId(IDS.clientId), azure.objectId(IDS.oidcClientId)])

    const apiPort = Number(new URL(front.server).port)
    const network: PodNetwork = await startPodNetwork({
      dir: join(dir, 'pod-network'),
      routes: [
        { port: apiPort, target: { host: '127.0.0.1', port: apiPort } },
        { port: azure.proxyPort, target: { host: '127.0.0.1', port: azure.proxyPort } }
      ],
      log
    })
    stops.push(() => network.stop())
    const agent = await startAgentNode({
      cluster,
      network,
      images: [...images(bins, azure.caPath), ...v2Images(bins.v2Pause)],
      // What an AKS node has on its disk that the charts mount (hostPath type File).
      nodeFiles: {
        '/etc/kubernetes/azure.json': aksAzureJson(),
        '/etc/kubernetes/certs/ca.crt': cluster.caPem,
        '/etc/ssl/certs/ca-certificates.crt': readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8')
      },
      podEnv: podEnv(apiPort, azure.proxyPort, front.host),
      region: REGION,
      nodeResourceGroup: IDS.nodeResourceGroup,
      subscriptionId: IDS.subscriptionId,
      log
    })
    // Before the network: a pod's containers run in its namespaces.
    stops.push(() => agent.stop())
    const v2 = startV2Agent({
      kc: cluster.kc,
      aci: azure.aci,
      nodeResourceGroup: IDS.nodeResourceGroup,
      location: REGION,
      // The node's azure.json names the VNet; a cluster with a VNet of its own names that one's resource group.
      azureJson: () => withVnet(aksAzureJson(), azure.state().vnet),
      log
    })
    azure.setExtensionEvents(v2)
    stops.push(async () => v2.stop())
    const addon = startAddonManager({ kc: cluster.kc, helm: bins.helm4, chartDir: bins.aciChartDir, masterUri: `https://${front.host}`, log })
    azure.setAddonEvents(addon)
    stops.push(() => addon.stop())

    const shims = join(dir, 'shims')
    const bin = join(dir, 'bin')
    await mkdir(shims, { recursive: true })
    await mkdir(bin, { recursive: true })
    const chart = await packageChart(bins.helm4, bins.aciChartDir, join(dir, 'charts'))
    const chartPath = `${PUBLISHED_CHARTS_PATH}/${chartFileName(AZURE_ACI_VERSION)}`
    const v2ChartFile = await packageChart(bins.helm4, V2_CHART_DIR, join(dir, 'charts'))
    const v2ChartPath = `${V2_RELEASES_PATH}/virtualnode-${V2_CHART_VERSION}/virtualnode-${V2_CHART_VERSION}.tgz`
    const mirror = await startMirror({
      kubectl: { [K8S_VERSION]: await writeShim(shims, 'kubectl', 'kubectl', bins.kubectl) },
      helm: {
        [HELM4_VERSION]: await writeShim(shims, 'helm4', 'helm', bins.helm4),
        [HELM3_VERSION]: await writeShim(shims, 'helm3', 'helm', bins.helm3)
      },
      kubelogin: { [KUBELOGIN_VERSION]: await kubeloginZip(dir, await writeShim(shims, 'kubelogin', 'kubelogin', bins.kubelogin)) },
      files: { [chartPath]: chart, [v2ChartPath]: v2ChartFile },
      latest: { kubectl: K8S_VERSION, helm: HELM4_VERSION }
    })
    stops.push(() => mirror.stop())

    const { env: azEnv } = await prepareRunnerAzConfig(az, azure, join(dir, 'runner-azure'))
    await writeShim(bin, 'az', 'az', az)

    const argvLog = join(dir, 'argv.log')
    await writeFile(argvLog, '')
    const toolCache = join(dir, 'tool-cache')
    await mkdir(toolCache)
    const chartUrl = mirror.url(chartPath)
    return {
      bins,
      cluster,
      front,
      agent,
      v2,
      addon,
      azure,
      mirror,
      chartUrl,
      v2Chart: { url: mirror.url(v2ChartPath), sha256: createHash('sha256').update(readFileSync(v2ChartFile)).digest('hex'), file: v2ChartFile },
      actionEnv: {
        ...azEnv,
        PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        ACTION_ARGV_LOG: argvLog,
        ACTIONS_ID_TOKEN_REQUEST_URL: azure.oidc.requestUrl,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: azure.oidc.requestToken
      },
      publicAzureEnv: {
        HTTPS_PROXY: `http://127.0.0.1:${azure.proxyPort}`,
        NO_PROXY: '127.0.0.1,localhost',
        SSL_CERT_FILE: azure.caPath
      },
      toolCache,
      apiServerBehindProxy: (on): Record<string, string> => {
        if (!on) {
          handOut(front.server, front.host)
          return {}
        }
        handOut(`https://${API_SERVER_FQDN}:443`, API_SERVER_FQDN)
        // Go programs never proxy loopback addresses; ARM (the local cloud) and the tool mirror stay direct.
        return { HTTPS_PROXY: `http://127.0.0.1:${azure.proxyPort}`, NO_PROXY: '127.0.0.1,localhost' }
      },
      baseInputs: () => ({
        'resource-group': IDS.resourceGroup,
        'cluster-name': IDS.clusterName,
        environment: azure.cloudName,
        'chart-url': chartUrl,
        'kubectl-download-base-url': mirror.kubectlBaseUrl,
        'helm-download-base-url': mirror.helmBaseUrl,
        'kubelogin-download-base-url': mirror.kubeloginBaseUrl,
        'wait-timeout': '120s'
      }),
      argvLog: () => readFile(argvLog, 'utf8'),
      core: cluster.kc.makeApiClient(CoreV1Api),
      apps: cluster.kc.makeApiClient(AppsV1Api),
      stop
    }
  } catch (err) {
    await stop()
    throw err
  }
}
