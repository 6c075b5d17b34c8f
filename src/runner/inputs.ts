// Reads and validates every input before anything touches the network, so a typo
// fails the step at once with the input's name, the bad value and the accepted form.
import { promises as fs } from 'node:fs'
import * as core from '@actions/core'
import * as os from 'node:os'
import * as path from 'node:path'
import type { OsType } from '../virtual-nodes/naming.js'
import { connectorNameProblem } from '../virtual-nodes/connector/names.js'
import { KIND_NAMES, osSplit, type KindInputs, type KindName } from '../virtual-nodes/kinds.js'
import type { Command } from '../virtual-nodes/kind.js'
import { DEFAULT_CHART_SHA256, DEFAULT_CHART_URL, type ConnectorIdentity } from '../virtual-nodes/connector/inputs.js'
import { azConfigDir, cloudIsKnown, normalizeLocation } from '../azure/clouds.js'
import { regionProblem } from '../virtual-nodes/aci-regions.js'
import { compareVersions, DEFAULT_KUBELOGIN_BASE_URL, DEFAULT_KUBELOGIN_VERSION, MIN_AZURE_CLI_VERSION } from '../tools/versions.js'
import type { SignIn } from '../azure/azure-login.js'

/** Most v2 nodes one step asks for: each takes 3 cores and 12 GB of an AKS VM (Helm/virtualnode README), so more wants a dedicated pool. */
export const MAX_V2_NODES = 100

export interface Inputs extends KindInputs {
  /** Inputs given that this step does not use (the main step warns about each). */
  unused: string[]
  command: Command
  resourceGroup: string
  clusterName: string
  subscriptionId?: string
  connectorName: string
  osTypes: OsType[]
  /** Which kind of virtual node serves Linux: the ACI connector (default), Virtual Nodes v2 (extension or Helm), the AKS add-on, or auto (chosen from the cluster; Windows always comes from the connector). */
  virtualNodeKind: KindName | 'auto'
  /** virtual-node-kind was given: a teardown looks only for that kind (and the connector's other OS); without it, for every kind. */
  virtualNodeKindGiven: boolean
  /** os-type was given: a removal takes only those OS; without it, every OS installed. */
  osTypesGiven: boolean
  aciResourceGroup?: string
  location?: string
  chartUrl: string
  /** The chart's SHA-256, checked before helm sees it. */
  chartSha256?: string
  imageTag?: string
  signIn: SignIn
  connectorIdentity: ConnectorIdentity
  connectorClientId?: string
  connectorClientSecret?: string
  deploySamples: boolean
  samplesNamespace: string
  waitTimeoutMs: number
  cleanup: boolean
  kubectlVersion: string
  helmVersion: string
  azureCliVersion: string
  kubectlBaseUrl: string
  helmBaseUrl: string
  /** kubelogin for Entra ID clusters (an explicit version: its releases publish no "latest" file). */
  kubeloginVersion: string
  kubeloginBaseUrl: string
  admin: boolean
  environment: string
  /** sweep: only releases first deployed at least this long ago; undefined = any age. */
  olderThanMs?: number
  /** remove, sweep: report what would go, change nothing. */
  dryRun: boolean
  /** remove, sweep, cleanup: fail when ACI could not be checked for container groups left behind. */
  verifyAci: boolean
  /** install: assign the connector identity (or the v2 extension's, the add-on's) the role it lacks: a custom role with only what a virtual node does in ACI (the add-on: Contributor on its VNet, as az does). */
  grantConnectorRole: boolean
}

/** The pinned chart: the current `virtual-kubelet-azure-aci` release, published on azure-aci's gh-pages branch. */
export { DEFAULT_CHART_URL } from '../virtual-nodes/connector/inputs.js'
export const DEFAULT_WAIT_TIMEOUT = '10m'
/**
 * The oldest kubectl for this chart: its Deployment is apps/v1 and its ClusterRoleBinding
 * rbac.authorization.k8s.io/v1, both GA in Kubernetes 1.9 (apps/v1 went GA in 1.9; rbac v1 in 1.8).
 */
export const MIN_KUBECTL_VERSION = 'v1.9.0'
export const DEFAULT_OIDC_AUDIENCE = 'api://AzureADTokenExchange'
/** Names Azure/login accepts for `environment`, mapped to the az cloud names. */
const KNOWN_CLOUDS: Record<string, string> = {
  azurecloud: 'AzureCloud',
  public: 'AzureCloud',
  azureusgovernment: 'AzureUSGovernment',
  usgovernment: 'AzureUSGovernment',
  azurechinacloud: 'AzureChinaCloud',
  china: 'AzureChinaCloud'
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** Azure resource group names: letters, digits, `._-()`, up to 90, not ending in a period. */
const RESOURCE_GROUP = /^[-\w.()]{0,89}[-\w()]$/
/** AKS cluster names. */
const CLUSTER_NAME = /^[a-zA-Z0-9][-_a-zA-Z0-9]{0,62}$/
const TENANT = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9][a-z0-9.-]*\.[a-z]{2,})$/i
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const IMAGE_TAG = /^[\w][\w.-]{0,127}$/
const SEMVER = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/
const CLOUD_NAME = /^[A-Za-z0-9_-]{1,64}$/
/** Azure subnet names: 1-80 letters, digits, underscores, periods and hyphens, starting with a letter or digit, ending with a letter, digit or underscore. */
const SUBNET_NAME = /^[A-Za-z0-9]([-\w.]{0,78}\w)?$/
/** C0 controls (newline, tab, ...) and DEL: matching them is the point. */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/
/** Inputs whose value may span lines: the creds JSON may be pretty-printed. */
const MULTI_LINE_INPUTS = new Set(['creds'])
const TRUE_VALUES = ['true', 'True', 'TRUE']
const FALSE_VALUES = ['false', 'False', 'FALSE']

/** One problem with one input: what was wrong and what would be right. */
export class InputError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? `Invalid input: ${problems[0]}` : `Invalid inputs:\n${problems.map(p => `  - ${p}`).join('\n')}`)
    this.name = 'InputError'
  }
}

type Read = (name: string) => string
type Bad = (name: string, value: string, expected: string) => void

/** What each part of the parse works with: the reader and where problems go. */
interface Parse {
  read: Read
  bad: Bad
  problems: string[]
}

/**
 * Parses all inputs; `read` returns the trimmed value or '' (as core.getInput does).
 * Every problem found is reported together so one run shows them all.
 */
export function parseInputs(readRaw: Read): Inputs {
  const problems: string[] = []
  const bad: Bad = (name, value, expected) => {
    problems.push(`${name}: "${value}" is not valid; ${expected}.`)
  }
  // A line break or control character in a one-line value would end up in a release name,
  // a URL or a command line; say so instead of passing it on (the value is not echoed: it
  // may be a secret pasted with its newline).
  const read: Read = name => {
    const value = readRaw(name)
    if (!MULTI_LINE_INPUTS.has(name) && CONTROL_CHARACTER.test(value)) {
      problems.push(`${name} contains a line break or control character; give it as a single line (in YAML, quote it or use a plain scalar, not | or >).`)
      return ''
    }
    return value
  }
  const p: Parse = { read, bad, problems }
  const target = parseTarget(p)
  const kinds = parseKindInputs(p, target.command)
  const connector = parseConnectorInputs(p, target.command, target.location)
  const teardown = parseTeardownInputs(p, target.command)
  const signIn = parseSignIn(read, problems, bad)
  const identity = parseConnectorIdentity(read, signIn, problems, bad)
  const step = parseStepInputs(p)
  const tools = parseToolInputs(p)
  const unused = checkConnectorInputsApply(p, target.command, kinds)
  if (problems.length > 0) throw new InputError(problems)
  return {
    unused,
    ...target,
    // The input wins over the creds JSON, as with Azure/login.
    subscriptionId: (target.subscriptionId ?? (signIn.kind === 'secret' ? signIn.subscriptionId : undefined))?.toLowerCase(),
    ...kinds,
    ...connector,
    ...teardown,
    signIn,
    ...identity,
    ...step,
    ...tools
  }
}

/** What to do and to which cluster: command, resource group, cluster, subscription, location. */
function parseTarget({ read, bad, problems }: Parse): Pick<Inputs, 'command' | 'resourceGroup' | 'clusterName' | 'subscriptionId' | 'location'> {
  const command = oneOf(read, 'command', ['install', 'remove', 'sweep'], 'install', bad) as Command
  const resourceGroup = required(read, 'resource-group', problems)
  if (resourceGroup && !RESOURCE_GROUP.test(resourceGroup)) {
    bad('resource-group', resourceGroup, 'use an Azure resource group name (letters, digits, ._-() up to 90 characters)')
  }
  const clusterName = required(read, 'cluster-name', problems)
  if (clusterName && !CLUSTER_NAME.test(clusterName)) {
    bad('cluster-name', clusterName, 'use an AKS cluster name (letters, digits, - and _, at most 63 characters)')
  }
  const subscriptionId = optional(read, 'subscription-id')
  if (subscriptionId && !GUID.test(subscriptionId)) {
    bad('subscription-id', subscriptionId, 'use the subscription ID, a GUID like 00000000-0000-0000-0000-000000000000')
  }
  const location = optional(read, 'location')
  const normalizedLocation = location === undefined ? undefined : normalizeLocation(location)
  if (normalizedLocation !== undefined && !/^[a-z0-9]+$/.test(normalizedLocation)) {
    bad('location', location ?? '', 'use an Azure region such as eastus or "West Europe"')
  }
  return { command, resourceGroup, clusterName, subscriptionId, location: normalizedLocation }
}

/** The kinds whose input this is (and auto, which may choose one of them). */
const V2_COUNT_KINDS: ReadonlyArray<KindName | 'auto'> = ['v2', 'v2-helm', 'auto']
const SUBNET_KINDS: ReadonlyArray<KindName | 'auto'> = ['addon', 'v2-helm', 'auto']
const V2_CHART_KINDS: ReadonlyArray<KindName | 'auto'> = ['v2-helm', 'auto']

/** Which OS, and which kind of virtual node serves them (with v2's node count, the subnet, v2's chart). */
function parseKindInputs(
  { read, bad }: Parse,
  command: Command
): Pick<Inputs, 'osTypes' | 'osTypesGiven' | 'virtualNodeKind' | 'virtualNodeKindGiven' | 'v2NodeCount' | 'subnetName' | 'v2ChartUrl' | 'v2ChartSha256'> {
  // Empty: an install takes Linux (as az aks install-connector did); a removal every OS it finds.
  const osTypeText = read('os-type')
  const osTypes = parseOsType(osTypeText || 'Linux', bad)
  const kindText = read('virtual-node-kind')
  // Empty: an install uses the connector; a teardown looks for every kind (so does auto).
  const virtualNodeKind = oneOf(read, 'virtual-node-kind', [...KIND_NAMES, 'auto'], 'connector', bad) as KindName | 'auto'
  const countText = read('virtual-nodes')
  const v2NodeCount = countText ? Number(countText) : undefined
  if (countText && (!/^\d+$/.test(countText) || v2NodeCount! < 1 || v2NodeCount! > MAX_V2_NODES))
    bad('virtual-nodes', countText, `use a whole number of Virtual Nodes v2 nodes from 1 to ${MAX_V2_NODES}`)
  else if (countText && !V2_COUNT_KINDS.includes(virtualNodeKind))
    bad('virtual-nodes', countText, 'it applies to virtual-node-kind: v2, v2-helm or auto only (a connector makes one node per OS)')
  else if (countText && command !== 'install') bad('virtual-nodes', countText, 'it applies to command: install only (a remove takes every v2 node it finds)')
  if (virtualNodeKind !== 'connector' && osTypeText && osTypes.length === 1 && osTypes[0] === 'Windows' && countText)
    bad('virtual-nodes', countText, 'os-type: Windows takes no v2 nodes (v2 is Linux only; Windows comes from the connector): use os-type Linux or Both')
  const subnetName = optional(read, 'subnet-name')
  if (subnetName && !SUBNET_NAME.test(subnetName))
    bad('subnet-name', subnetName, 'use an Azure subnet name (letters, digits, _ . -, up to 80, starting with a letter or digit)')
  else if (subnetName && !SUBNET_KINDS.includes(virtualNodeKind)) bad('subnet-name', subnetName, 'it applies to virtual-node-kind: addon, v2-helm or auto only')
  const v2Chart = parseV2Chart(read, bad, virtualNodeKind)
  return { osTypes, osTypesGiven: osTypeText !== '', virtualNodeKind, virtualNodeKindGiven: kindText !== '', v2NodeCount, subnetName, ...v2Chart }
}

/** v2-chart-url and v2-chart-sha256: a Virtual Nodes v2 chart of the user's own (a private mirror), as chart-url and chart-sha256 are for the connector. */
function parseV2Chart(read: Read, bad: Bad, kind: KindName | 'auto'): Pick<Inputs, 'v2ChartUrl' | 'v2ChartSha256'> {
  const text = optional(read, 'v2-chart-url')
  const v2ChartUrl = text && /^~([/\\]|$)/.test(text) ? path.join(os.homedir(), text.slice(1)) : text
  const v2ChartSha256 = optional(read, 'v2-chart-sha256')
  if (v2ChartUrl && !/^https?:\/\/\S+$/.test(v2ChartUrl) && !/^[./]|^[A-Za-z]:[\\/]/.test(v2ChartUrl))
    bad('v2-chart-url', v2ChartUrl, 'use an https:// or http:// URL of a packaged chart (.tgz), or a local chart path')
  if (v2ChartSha256 && !/^[0-9a-f]{64}$/i.test(v2ChartSha256)) bad('v2-chart-sha256', v2ChartSha256, 'use the 64 hex digits `sha256sum <chart>.tgz` prints')
  else if (v2ChartSha256 && !v2ChartUrl) bad('v2-chart-sha256', v2ChartSha256, 'it pins v2-chart-url; the published charts are pinned already')
  if (v2ChartUrl && !V2_CHART_KINDS.includes(kind)) bad('v2-chart-url', v2ChartUrl, 'it applies to virtual-node-kind: v2-helm or auto only')
  return { v2ChartUrl, v2ChartSha256 }
}

/**
 * The connector's inputs where an install uses a connector: its region must have ACI's
 * connector support. An install that uses none (v2 or the add-on for Linux only) would
 * silently ignore them: those that say where the virtual nodes run or as whom are refused,
 * with the way to use them; the chart and image only draw a warning (returned), since a
 * workflow that passes them to every install loses nothing.
 */
function checkConnectorInputsApply({ read, bad }: Parse, command: Command, kinds: Pick<Inputs, 'virtualNodeKind' | 'osTypes'>): string[] {
  if (command !== 'install') return []
  const location = optional(read, 'location')
  if (kinds.virtualNodeKind === 'auto' || osSplit(kinds.virtualNodeKind, kinds.osTypes).some(u => u.name === 'connector')) {
    const problem = location !== undefined && /^[a-z0-9]+$/.test(normalizeLocation(location)) ? regionProblem(location) : undefined
    if (problem) bad('location', location ?? '', problem)
    return []
  }
  const why = `virtual-node-kind: ${kinds.virtualNodeKind} with os-type: Linux installs no ACI connector`
  const chartUrl = optional(read, 'chart-url')
  const unused = [
    ['chart-url', chartUrl === DEFAULT_CHART_URL ? undefined : chartUrl],
    ['chart-sha256', optional(read, 'chart-sha256')],
    ['image-tag', optional(read, 'image-tag')]
  ].flatMap(([name, value]) => (value ? [`${name} is not used: ${why}, whose chart and image it sets.`] : []))
  const identity = optional(read, 'connector-identity')
  const given: Array<[string, string | undefined]> = [
    ['location', location],
    ['aci-resource-group', optional(read, 'aci-resource-group')],
    ['connector-identity', identity === 'auto' ? undefined : identity],
    ['connector-client-id', optional(read, 'connector-client-id')],
    // A secret is never echoed.
    ['connector-client-secret', optional(read, 'connector-client-secret') ? '(set)' : undefined]
  ]
  for (const [name, value] of given)
    if (value !== undefined)
      bad(
        name,
        value,
        `it applies to the ACI connector, and virtual-node-kind: ${kinds.virtualNodeKind} with os-type: Linux installs none (its nodes run in the cluster's region, as its identity); ` +
          'leave it empty, or use os-type: Both to also get Windows nodes from the connector'
      )
  return unused
}

/** The connector's name, ACI resource group, chart and image. */
function parseConnectorInputs(
  { read, bad }: Parse,
  command: Command,
  location: string | undefined
): Pick<Inputs, 'connectorName' | 'aciResourceGroup' | 'chartUrl' | 'chartSha256' | 'imageTag' | 'grantConnectorRole'> {
  const connectorName = read('connector-name') || 'aci-connector'
  if (command === 'sweep') {
    // A sweep matches connector names: a glob of the name's own characters plus * and ?.
    if (!/^[a-z0-9*?-]+$/.test(connectorName))
      bad('connector-name', connectorName, 'for command: sweep use a glob over connector names, such as pr-* (or * for every connector)')
  } else {
    // Without a location the longest common region name stands in; the exact check is
    // repeated with the cluster's location before anything is installed.
    const nameProblem = connectorNameProblem(connectorName, location ?? 'eastus')
    if (nameProblem) bad('connector-name', connectorName, nameProblem)
  }
  const aciResourceGroup = optional(read, 'aci-resource-group')
  if (aciResourceGroup && !RESOURCE_GROUP.test(aciResourceGroup)) {
    bad('aci-resource-group', aciResourceGroup, "use an Azure resource group name, or leave it empty for the cluster's node resource group")
  }
  const chartText = read('chart-url') || DEFAULT_CHART_URL
  // helm gets the path as it is and no shell expands `~` on the way: the action does.
  const chartUrl = /^~([/\\]|$)/.test(chartText) ? path.join(os.homedir(), chartText.slice(1)) : chartText
  if (/^~[^/\\]/.test(chartText)) {
    bad('chart-url', chartText, "use ~/ (the runner user's home) or an absolute path; another user's ~name is not expanded")
  } else if (!/^(https?|oci):\/\/\S+$/.test(chartUrl) && !/^[./]|^[A-Za-z]:[\\/]/.test(chartUrl)) {
    bad('chart-url', chartUrl, 'use an https://, http:// or oci:// chart URL, or a local chart path')
  }
  const givenSha256 = optional(read, 'chart-sha256')
  if (givenSha256 && !/^[0-9a-f]{64}$/i.test(givenSha256)) bad('chart-sha256', givenSha256, 'use the 64 hex digits `sha256sum <chart>.tgz` prints')
  else if (givenSha256 && /^oci:\/\//.test(chartUrl))
    bad('chart-sha256', givenSha256, 'it applies to an https:// or local .tgz chart; an oci:// chart is pinned by its registry reference')
  else if (givenSha256 && chartUrl === DEFAULT_CHART_URL && givenSha256.toLowerCase() !== DEFAULT_CHART_SHA256)
    bad(
      'chart-sha256',
      givenSha256,
      `chart-url is the default chart, whose published file is pinned to ${DEFAULT_CHART_SHA256}; leave chart-sha256 empty, or set chart-url to the chart this digest is of`
    )
  // The default chart is always checked against its published digest; a chart of the user's own keeps theirs.
  const chartSha256 = givenSha256 ?? (chartUrl === DEFAULT_CHART_URL ? DEFAULT_CHART_SHA256 : undefined)
  const imageTag = optional(read, 'image-tag')
  if (imageTag && !IMAGE_TAG.test(imageTag)) bad('image-tag', imageTag, 'use a container image tag such as 1.6.4')
  const grantConnectorRole = bool(read, 'grant-connector-role', false, bad)
  return { connectorName, aciResourceGroup, chartUrl, chartSha256, imageTag, grantConnectorRole }
}

/** remove and sweep: older-than, dry-run, verify-aci. */
function parseTeardownInputs({ read, bad }: Parse, command: Command): Pick<Inputs, 'olderThanMs' | 'dryRun' | 'verifyAci'> {
  const olderThanText = read('older-than')
  const olderThanMs = olderThanText ? parseDuration(olderThanText) : undefined
  // A bare number would be seconds (as wait-timeout reads one): in a command that deletes, `7` is more likely meant as days.
  if (/^\d+(\.\d+)?$/.test(olderThanText))
    bad(
      'older-than',
      olderThanText,
      `give it a unit, such as ${olderThanText}d, ${olderThanText}h or ${olderThanText}m (a bare number would be read as seconds)`
    )
  else if (olderThanText && olderThanMs === undefined) bad('older-than', olderThanText, 'use a duration such as 36h, 7d or 90m')
  if (olderThanText && command !== 'sweep') bad('older-than', olderThanText, 'it applies to command: sweep only')
  const dryRun = bool(read, 'dry-run', false, bad)
  // An install cannot be tried without changing the cluster; saying so beats a real install.
  if (dryRun && command === 'install')
    bad('dry-run', 'true', 'it applies to command: remove and command: sweep only (an install changes the cluster by its nature)')
  const verifyAci = bool(read, 'verify-aci', true, bad)
  return { olderThanMs, dryRun, verifyAci }
}

/** Samples, waiting, cleanup, admin credentials. */
function parseStepInputs({ read, bad }: Parse): Pick<Inputs, 'deploySamples' | 'samplesNamespace' | 'waitTimeoutMs' | 'cleanup' | 'admin'> {
  const deploySamples = bool(read, 'deploy-samples', false, bad)
  const samplesNamespace = read('samples-namespace') || 'default'
  if (!DNS_LABEL.test(samplesNamespace)) {
    bad('samples-namespace', samplesNamespace, 'use a Kubernetes namespace name (lower-case letters, digits, -)')
  }
  const waitTimeout = read('wait-timeout') || DEFAULT_WAIT_TIMEOUT
  const waitTimeoutMs = parseDuration(waitTimeout)
  if (waitTimeoutMs === undefined || waitTimeoutMs <= 0) {
    bad('wait-timeout', waitTimeout, 'use a duration such as 300s, 10m or 1m30s')
  } else if (waitTimeoutMs > MAX_WAIT_TIMEOUT_MS) {
    // A GitHub-hosted job ends after 6 h; Node timers also cannot count past ~24.8 days.
    bad('wait-timeout', waitTimeout, 'use at most 6h (a GitHub-hosted job runs 6 h at most)')
  }
  const cleanup = bool(read, 'cleanup', false, bad)
  const admin = bool(read, 'admin', false, bad)
  return { deploySamples, samplesNamespace, waitTimeoutMs: waitTimeoutMs ?? 0, cleanup, admin }
}

/** Tool versions and download mirrors, and the Azure cloud. */
function parseToolInputs({
  read,
  bad
}: Parse): Pick<
  Inputs,
  'kubectlVersion' | 'helmVersion' | 'azureCliVersion' | 'kubectlBaseUrl' | 'helmBaseUrl' | 'kubeloginVersion' | 'kubeloginBaseUrl' | 'environment'
> {
  const kubectlVersion = toolVersion(read, 'kubectl-version', bad)
  if (SEMVER.test(kubectlVersion) && compareVersions(kubectlVersion, MIN_KUBECTL_VERSION) < 0) {
    bad(
      'kubectl-version',
      kubectlVersion,
      `use ${MIN_KUBECTL_VERSION} or newer: the chart's objects are apps/v1 and rbac.authorization.k8s.io/v1, which kubectl knows from Kubernetes 1.9 on (and kubectl is supported within one minor of the cluster's version)`
    )
  }
  const helmVersion = toolVersion(read, 'helm-version', bad)
  if (/^v\d/.test(helmVersion) && !/^v[34]\./.test(helmVersion)) {
    bad('helm-version', helmVersion, 'use Helm 3 or 4 (for example v4.3.1 or v3.19.0), or latest')
  }
  const azureCliVersion = read('azure-cli-version')
  if (azureCliVersion && azureCliVersion !== 'latest' && !/^\d+\.\d+\.\d+$/.test(azureCliVersion)) {
    bad('azure-cli-version', azureCliVersion, 'use a version such as 2.67.0, latest, or leave it empty for the az on PATH')
  }
  const kubeloginVersion = read('kubelogin-version') || DEFAULT_KUBELOGIN_VERSION
  if (!SEMVER.test(kubeloginVersion)) bad('kubelogin-version', kubeloginVersion, `use a release version such as ${DEFAULT_KUBELOGIN_VERSION}`)
  return {
    kubectlVersion,
    helmVersion,
    azureCliVersion,
    kubectlBaseUrl: baseUrl(read, 'kubectl-download-base-url', 'https://dl.k8s.io/release', bad),
    helmBaseUrl: baseUrl(read, 'helm-download-base-url', 'https://get.helm.sh', bad),
    kubeloginVersion: kubeloginVersion.startsWith('v') ? kubeloginVersion : `v${kubeloginVersion}`,
    kubeloginBaseUrl: baseUrl(read, 'kubelogin-download-base-url', DEFAULT_KUBELOGIN_BASE_URL, bad),
    environment: parseEnvironment(read('environment') || 'AzureCloud', bad)
  }
}

function required(read: Read, name: string, problems: string[]): string {
  const value = read(name)
  if (!value) problems.push(`${name} is required; set it in the step's \`with:\`.`)
  return value
}

function optional(read: Read, name: string): string | undefined {
  return read(name) || undefined
}

function oneOf(read: Read, name: string, allowed: readonly string[], fallback: string, bad: Bad): string {
  const value = read(name) || fallback
  const match = allowed.find(a => a.toLowerCase() === value.toLowerCase())
  if (!match) bad(name, value, `use one of ${allowed.join(', ')}`)
  return match ?? fallback
}

function bool(read: Read, name: string, fallback: boolean, bad: Bad): boolean {
  const value = read(name)
  if (!value) return fallback
  if (TRUE_VALUES.includes(value)) return true
  if (FALSE_VALUES.includes(value)) return false
  bad(name, value, 'use true or false')
  return fallback
}

export function parseOsType(value: string, bad: Bad): OsType[] {
  switch (value.toLowerCase()) {
    case 'linux':
      return ['Linux']
    case 'windows':
      return ['Windows']
    case 'both':
      return ['Linux', 'Windows']
    default:
      bad('os-type', value, 'use Linux, Windows or Both')
      return ['Linux']
  }
}

const MAX_WAIT_TIMEOUT_MS = 6 * 3_600_000

/** `300`, `300s`, `5m`, `1m30s`, `1h`, `1500ms` -> milliseconds; undefined when unparsable. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)]
  if (parts.length === 0 || parts.map(p => p[0]).join('') !== trimmed) return undefined
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]], 0))
}

function toolVersion(read: Read, name: string, bad: Bad): string {
  const value = read(name)
  if (!value || value === 'latest') return value || 'latest'
  if (!SEMVER.test(value)) {
    bad(name, value, 'use a version such as v1.34.4 or latest')
    return value
  }
  return value.startsWith('v') ? value : `v${value}`
}

function baseUrl(read: Read, name: string, fallback: string, bad: Bad): string {
  const value = read(name) || fallback
  if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(value)) {
    bad(name, value, 'use an http(s) URL laid out like the official download host')
  }
  return value.replace(/\/+$/, '')
}

function parseEnvironment(value: string, bad: Bad): string {
  const known = KNOWN_CLOUDS[value.toLowerCase()]
  if (known) return known
  if (!CLOUD_NAME.test(value)) {
    bad('environment', value, 'use AzureCloud, AzureUSGovernment, AzureChinaCloud or the name of a cloud registered with `az cloud register` on the runner')
  }
  // Any other name must be a cloud registered on the runner (checkInputsOnRunner looks).
  return value
}

interface CredsJson {
  clientId?: unknown
  clientSecret?: unknown
  tenantId?: unknown
  subscriptionId?: unknown
}

function parseSignIn(read: Read, problems: string[], bad: Bad): SignIn {
  const creds = read('creds')
  const clientId = read('client-id')
  const tenantId = read('tenant-id')
  const clientSecret = read('client-secret')
  const audience = read('audience') || DEFAULT_OIDC_AUDIENCE

  if (creds) {
    if (clientId || tenantId || clientSecret) {
      problems.push('creds and client-id/tenant-id/client-secret are both set; use one way of signing in.')
    }
    let parsed: CredsJson
    try {
      parsed = JSON.parse(creds) as CredsJson
    } catch {
      // The value is a secret: never echo it.
      problems.push(
        'creds: the value is not valid JSON; use the Azure/login form {"clientId": "...", "clientSecret": "...", "tenantId": "...", "subscriptionId": "..."}.'
      )
      return { kind: 'ambient' }
    }
    const field = (k: keyof CredsJson): string => (typeof parsed[k] === 'string' ? (parsed[k] as string).trim() : '')
    const missing = (['clientId', 'clientSecret', 'tenantId'] as const).filter(k => !field(k))
    if (missing.length > 0) {
      problems.push(`creds: the JSON lacks ${missing.join(', ')}; use {"clientId", "clientSecret", "tenantId", "subscriptionId"}.`)
      return { kind: 'ambient' }
    }
    checkIds(field('clientId'), field('tenantId'), 'creds.clientId', 'creds.tenantId', bad)
    const subscriptionId = field('subscriptionId') || undefined
    if (subscriptionId && !GUID.test(subscriptionId)) bad('creds.subscriptionId', subscriptionId, 'use the subscription ID, a GUID')
    return { kind: 'secret', clientId: field('clientId'), tenantId: field('tenantId'), clientSecret: field('clientSecret'), subscriptionId }
  }
  if (!clientId && !tenantId) {
    if (clientSecret) problems.push('client-secret is set without client-id and tenant-id; set both, or remove client-secret.')
    return { kind: 'ambient' }
  }
  if (!clientId || !tenantId) {
    problems.push(
      `${clientId ? 'tenant-id' : 'client-id'} is required when ${clientId ? 'client-id' : 'tenant-id'} is set; set both (and client-secret, or nothing for OIDC).`
    )
    return { kind: 'ambient' }
  }
  checkIds(clientId, tenantId, 'client-id', 'tenant-id', bad)
  if (clientSecret) return { kind: 'secret', clientId, tenantId, clientSecret }
  const audienceProblem = oidcAudienceProblem(audience)
  if (audienceProblem) problems.push(`audience: ${audienceProblem}`)
  return { kind: 'oidc', clientId, tenantId, audience }
}

/**
 * Microsoft Entra ID takes one audience of at most 600 characters in a federated credential
 * (Microsoft Graph federatedIdentityCredential, `audiences`: "can only accept a single value
 * and has a limit of 600 characters"), so the OIDC token must carry exactly that.
 */
export const MAX_FEDERATED_AUDIENCE = 600

export function oidcAudienceProblem(audience: string): string | undefined {
  if (audience.length > MAX_FEDERATED_AUDIENCE)
    return `it has ${audience.length} characters, and a federated credential's audience has at most ${MAX_FEDERATED_AUDIENCE} (Microsoft Entra ID); use the audience the app's federated credential names, such as ${DEFAULT_OIDC_AUDIENCE}.`
  return undefined
}

function checkIds(clientId: string, tenantId: string, clientName: string, tenantName: string, bad: Bad): void {
  if (!GUID.test(clientId)) bad(clientName, clientId, 'use the application (client) ID, a GUID')
  if (!TENANT.test(tenantId)) bad(tenantName, tenantId, 'use the directory (tenant) ID, a GUID, or its domain')
}

/** The credentials the connector itself runs with. */
function parseConnectorIdentity(
  read: Read,
  signIn: SignIn,
  problems: string[],
  bad: Bad
): { connectorIdentity: ConnectorIdentity; connectorClientId?: string; connectorClientSecret?: string } {
  const identity = oneOf(read, 'connector-identity', ['auto', 'service-principal', 'managed'], 'auto', bad) as ConnectorIdentity
  let connectorClientId = optional(read, 'connector-client-id')
  let connectorClientSecret = optional(read, 'connector-client-secret')
  if (Boolean(connectorClientId) !== Boolean(connectorClientSecret)) {
    problems.push('connector-client-id and connector-client-secret go together; set both, or neither to use the sign-in service principal.')
  }
  if (connectorClientId && !GUID.test(connectorClientId)) bad('connector-client-id', connectorClientId, 'use the application (client) ID, a GUID')
  if (identity === 'managed' && connectorClientId) {
    problems.push('connector-identity is managed, but connector-client-id is set; remove one of them.')
  }
  if (!connectorClientId && identity !== 'managed' && signIn.kind === 'secret') {
    connectorClientId = signIn.clientId
    connectorClientSecret = signIn.clientSecret
  }
  if (identity === 'service-principal' && !connectorClientSecret) {
    problems.push(
      "connector-identity is service-principal, but no secret is known: the sign-in has none (OIDC or the runner's session). " +
        'Set connector-client-id and connector-client-secret, or use connector-identity: managed.'
    )
  }
  const resolved: ConnectorIdentity = identity === 'auto' ? (connectorClientSecret ? 'service-principal' : 'managed') : identity
  return { connectorIdentity: resolved, connectorClientId, connectorClientSecret }
}

/**
 * The checks that depend on the runner, made before anything is downloaded or signed in:
 * the cloud must be one az knows (public, or registered with `az cloud register`; read
 * from az's files, without starting it), a local chart must be there and be a chart, and
 * a pinned az must be new enough. Throws an InputError with every problem found.
 */
export async function checkInputsOnRunner(inputs: Inputs, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const problems: string[] = []
  if (!(await cloudIsKnown(inputs.environment, azConfigDir(env)))) {
    problems.push(
      `environment: "${inputs.environment}" is not a cloud the runner's az knows; use AzureCloud, AzureUSGovernment or AzureChinaCloud, or register it in an earlier step with \`az cloud register --name ${inputs.environment} --endpoint-resource-manager <ARM URL>\` (az reads ${path.join(azConfigDir(env), 'clouds.config')}).`
    )
  }
  const chartProblem = await localChartProblem(inputs.chartUrl)
  if (chartProblem) problems.push(`chart-url: ${chartProblem}`)
  else if (inputs.chartSha256 && (await isDirectory(inputs.chartUrl)))
    problems.push(
      `chart-sha256: "${inputs.chartUrl}" is a chart directory, which has no single digest; package it with \`helm package\` and point chart-url at the .tgz, or remove chart-sha256.`
    )
  if (/^\d+\.\d+\.\d+$/.test(inputs.azureCliVersion) && compareVersions(inputs.azureCliVersion, MIN_AZURE_CLI_VERSION) < 0) {
    problems.push(
      `azure-cli-version: "${inputs.azureCliVersion}" is older than ${MIN_AZURE_CLI_VERSION}, the oldest az this action supports (federated sign-in and @file arguments); use ${MIN_AZURE_CLI_VERSION} or newer, latest, or leave it empty.`
    )
  }
  if (problems.length > 0) throw new InputError(problems)
}

/** Whether a local chart path is a directory (never true for a URL). */
async function isDirectory(chartUrl: string): Promise<boolean> {
  if (/^(https?|oci):\/\//.test(chartUrl)) return false
  return (await fs.stat(path.resolve(chartUrl)).catch(() => undefined))?.isDirectory() ?? false
}

/** For a local chart path: why helm could not use it, or undefined (URLs are checked when fetched). */
export async function localChartProblem(chartUrl: string): Promise<string | undefined> {
  if (/^(https?|oci):\/\//.test(chartUrl)) return undefined
  // parseInputs has expanded ~/ already.
  const file = path.resolve(chartUrl)
  const stat = await fs.stat(file).catch(() => undefined)
  if (!stat) return `"${chartUrl}" does not exist on the runner (resolved to ${file}); check out the repository that holds it first, or use a chart URL.`
  if (stat.isDirectory()) {
    const hasChartYaml = await fs.stat(path.join(file, 'Chart.yaml')).then(
      s => s.isFile(),
      () => false
    )
    return hasChartYaml
      ? undefined
      : `"${chartUrl}" is a directory without a Chart.yaml; point it at the chart's own directory (the one holding Chart.yaml) or at a packaged .tgz.`
  }
  return /\.(tgz|tar\.gz)$/.test(file) ? undefined : `"${chartUrl}" is neither a chart directory nor a packaged chart (.tgz); use \`helm package\` to make one.`
}

/** Reads inputs the way the runner passes them (used by main and post). */
export function readActionInput(): Read {
  return name => core.getInput(name)
}
