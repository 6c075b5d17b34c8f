// The whole local AKS in one call: a real control plane with an AKS-like agent node
// that plays ACI, Azure imitated at the HTTP level (the real az signs in to it), a
// tool mirror laid out like dl.k8s.io / get.helm.sh serving real kubectl and helm, and
// the chart double. Used by the end-to-end tests and by `npm run demo`.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node'
import { ensureBinaries, HELM3_VERSION, HELM4_VERSION, K8S_VERSION, type Binaries } from './binaries.js'
import { startCluster, type LocalCluster } from './cluster.js'
import { startAgentNode, type AgentNode } from './agent-node.js'
import { startAzureDouble, type AzureDouble } from './azure.js'
import { ensureAzCli, prepareRunnerAzConfig } from './az-cli.js'
import { startMirror, type Mirror } from './mirror.js'
import { packageChart } from './chart.js'
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

export interface LocalAks {
  bins: Binaries
  cluster: LocalCluster
  /** the action's way to the API server (kubeconfigs from the Azure double point here) */
  front: ApiFront
  agent: AgentNode
  azure: AzureDouble
  mirror: Mirror
  chartUrl: string
  /** Env a step needs on this machine: the runner-level az config (local cloud registered), CA trust, PATH with the recording az. */
  actionEnv: Record<string, string>
  /** Shared by every job here, so later jobs can reuse cached tools. */
  toolCache: string
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

export async function startLocalAks(opts: { log?: (m: string) => void; providerInitiallyRegistered?: boolean } = {}): Promise<LocalAks> {
  const log = opts.log ?? (() => undefined)
  const dir = await mkdtemp(join(tmpdir(), 'local-aks-'))
  const stops: Array<() => Promise<void>> = []
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(err => log(`stop: ${String(err)}`))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const [bins, az] = await Promise.all([ensureBinaries(log), ensureAzCli()])
    const cluster = await startCluster({ log, bins })
    stops.push(() => cluster.stop())
    const agent = await startAgentNode(cluster, bins, { log, region: 'eastus', nodeResourceGroup: IDS.nodeResourceGroup })
    stops.push(() => agent.stop())

    const shims = join(dir, 'shims')
    const bin = join(dir, 'bin')
    await mkdir(shims, { recursive: true })
    await mkdir(bin, { recursive: true })
    const chart = await packageChart(bins.helm4, join(dir, 'charts'))
    const mirror = await startMirror({
      kubectl: { [K8S_VERSION]: await writeShim(shims, 'kubectl', 'kubectl', bins.kubectl) },
      helm: {
        [HELM4_VERSION]: await writeShim(shims, 'helm4', 'helm', bins.helm4),
        [HELM3_VERSION]: await writeShim(shims, 'helm3', 'helm', bins.helm3)
      },
      charts: [chart.path],
      latest: { kubectl: K8S_VERSION, helm: HELM4_VERSION }
    })
    stops.push(() => mirror.stop())

    // The action reaches the API server through a front that tests can make drop connections.
    const front = await startApiFront(new URL(cluster.server))
    stops.push(() => front.stop())
    const throughFront = (kubeconfig: string): string => kubeconfig.split(`server: ${cluster.server}\n`).join(`server: ${front.server}\n`)
    const azure = await startAzureDouble({
      tenantId: IDS.tenantId,
      subscription: { id: IDS.subscriptionId, name: IDS.subscriptionName },
      principals: [
        { clientId: IDS.clientId, secret: IDS.clientSecret },
        { clientId: IDS.connectorClientId, secret: IDS.connectorClientSecret },
        { clientId: IDS.oidcClientId, federatedSubject: 'repo:octo/repo:ref:refs/heads/main' }
      ],
      cluster: {
        resourceGroup: IDS.resourceGroup,
        name: IDS.clusterName,
        location: IDS.location,
        fqdn: front.host,
        nodeResourceGroup: IDS.nodeResourceGroup,
        enableRBAC: true,
        kubernetesVersion: K8S_VERSION.slice(1),
        kubeletIdentityClientId: IDS.kubeletIdentityClientId,
        userKubeconfig: throughFront(cluster.userKubeconfig),
        adminKubeconfig: throughFront(cluster.adminKubeconfig)
      },
      providerInitiallyRegistered: opts.providerInitiallyRegistered ?? false,
      providerRegistrationDelayMs: 3000
    })
    stops.push(() => azure.stop())
    const { env: azEnv } = await prepareRunnerAzConfig(az, azure, join(dir, 'runner-azure'))
    await writeShim(bin, 'az', 'az', az)

    const argvLog = join(dir, 'argv.log')
    await writeFile(argvLog, '')
    const toolCache = join(dir, 'tool-cache')
    await mkdir(toolCache)
    return {
      bins,
      cluster,
      front,
      agent,
      azure,
      mirror,
      chartUrl: mirror.chartUrl(chart.path.split('/').pop() ?? ''),
      actionEnv: {
        ...azEnv,
        PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        ACTION_ARGV_LOG: argvLog,
        ACTIONS_ID_TOKEN_REQUEST_URL: azure.oidc.requestUrl,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: azure.oidc.requestToken
      },
      toolCache,
      baseInputs: () => ({
        'resource-group': IDS.resourceGroup,
        'cluster-name': IDS.clusterName,
        environment: azure.cloudName,
        'chart-url': mirror.chartUrl(chart.path.split('/').pop() ?? ''),
        'kubectl-download-base-url': mirror.kubectlBaseUrl,
        'helm-download-base-url': mirror.helmBaseUrl,
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
