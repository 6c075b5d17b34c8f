// Virtual Nodes v2 as the AKS cluster extension `Microsoft.virtualnodes`: the ARM resource
// `az k8s-extension create --cluster-type managedClusters --extension-type microsoft.virtualnodes`
// makes, read, created and deleted over ARM (no az process).
// REST: Azure/azure-rest-api-specs specification/kubernetesconfiguration/resource-manager/
// Microsoft.KubernetesConfiguration/stable/2023-05-01/extensions.json (Extensions_Create,
// _Get, _Delete, _List; properties extensionType, configurationSettings, scope.cluster.releaseNamespace,
// provisioningState Succeeded|Failed|Canceled|Creating|Updating|Deleting, statuses, errorInfo,
// aksAssignedIdentity; PUT and DELETE are long-running).
import { ArmError, type ArmClient } from '../../azure/arm.js'
import type { ClusterInfo } from '../../kubernetes/cluster.js'
import { errorText, pollUntil } from '../../util/async.js'

export const EXTENSIONS_API_VERSION = '2023-05-01'
/** The extension type (Microsoft Learn, articles/aks/virtual-nodes-v2.md: `--extension-type microsoft.virtualnodes`). */
export const V2_EXTENSION_TYPE = 'microsoft.virtualnodes'
/**
 * The name this action gives the extension it creates. The extension manager installs the
 * chart as a release of this name, and the chart names its StatefulSet (and so each virtual
 * node) `<release>-virtualnode-<i>` (Helm/virtualnode/templates/_helpers.tpl
 * virtualnode2.fullname; the v2 troubleshooting article shows `<extension-name>-virtualnode-0`).
 */
export const V2_EXTENSION_NAME = 'aci-virtual-nodes'
/** The namespace the extension installs into (azure-cli-extensions k8s-extension partner_extensions/VirtualNodes.py). */
export const V2_NAMESPACE = 'vn-system'
/** How often provisioning is looked at while it runs. */
const POLL_MS = 2_000

export interface ExtensionStatus {
  code?: string
  displayStatus?: string
  level?: string
  message?: string
}

export interface Extension {
  id: string
  name: string
  extensionType: string
  /** Succeeded, Failed, Canceled, Creating, Updating, Deleting (Learn also shows Pending). */
  provisioningState: string
  replicaCount?: number
  statuses: ExtensionStatus[]
  error?: string
  /** The identity AKS gives the extension to act in Azure with (aksAssignedIdentity.principalId; null right after a PUT). */
  principalId?: string
  /** Its configuration settings as ARM shows them (protected settings are never shown). */
  settings: Record<string, string>
  /** When ARM says it was created (systemData.createdAt), when it says. */
  createdAt?: string
}

interface ExtensionResource {
  id?: string
  name?: string
  systemData?: { createdAt?: string } | null
  properties?: {
    extensionType?: string
    provisioningState?: string
    configurationSettings?: Record<string, string>
    statuses?: ExtensionStatus[]
    errorInfo?: { code?: string; message?: string; details?: Array<{ code?: string; message?: string }> }
    aksAssignedIdentity?: { principalId?: string } | null
  }
}

export function extensionsPath(arm: ArmClient, cluster: Pick<ClusterInfo, 'resourceGroup' | 'name'>): string {
  return arm.subscriptionPath(
    `/resourceGroups/${encodeURIComponent(cluster.resourceGroup)}/providers/Microsoft.ContainerService/managedClusters/${encodeURIComponent(cluster.name)}/providers/Microsoft.KubernetesConfiguration/extensions`
  )
}

/** The error ARM's errorInfo carries, with its details. */
function errorInfoText(e: NonNullable<ExtensionResource['properties']>['errorInfo']): string | undefined {
  if (!e) return undefined
  const details = (e.details ?? []).map(d => `${d.code ?? ''}: ${d.message ?? ''}`).join('; ')
  return `${e.code ?? 'Error'}: ${e.message ?? ''}${details ? ` (${details})` : ''}`
}

export function toExtension(r: ExtensionResource): Extension {
  const p = r.properties ?? {}
  const replicas = Number(p.configurationSettings?.replicaCount)
  return {
    id: r.id ?? '',
    name: r.name ?? '',
    extensionType: p.extensionType ?? '',
    provisioningState: p.provisioningState ?? 'Unknown',
    replicaCount: Number.isInteger(replicas) && replicas > 0 ? replicas : undefined,
    statuses: p.statuses ?? [],
    error: errorInfoText(p.errorInfo),
    principalId: p.aksAssignedIdentity?.principalId ?? undefined,
    settings: p.configurationSettings ?? {},
    createdAt: r.systemData?.createdAt ?? undefined
  }
}

export const isV2Extension = (e: Extension): boolean => e.extensionType.toLowerCase() === V2_EXTENSION_TYPE

/** Every Virtual Nodes v2 extension of the cluster (any name). */
export async function listV2Extensions(arm: ArmClient, cluster: Pick<ClusterInfo, 'resourceGroup' | 'name'>): Promise<Extension[]> {
  const out: Extension[] = []
  let page = await arm.get<{ value?: ExtensionResource[]; nextLink?: string }>(extensionsPath(arm, cluster), EXTENSIONS_API_VERSION)
  for (;;) {
    out.push(...(page.value ?? []).map(toExtension).filter(isV2Extension))
    if (!page.nextLink) return out
    page = await arm.getNextLink(page.nextLink)
  }
}

export async function getExtension(arm: ArmClient, cluster: Pick<ClusterInfo, 'resourceGroup' | 'name'>, name: string): Promise<Extension | undefined> {
  try {
    return toExtension(await arm.get<ExtensionResource>(`${extensionsPath(arm, cluster)}/${encodeURIComponent(name)}`, EXTENSIONS_API_VERSION))
  } catch (err) {
    if (err instanceof ArmError && err.status === 404) return undefined
    throw err
  }
}

/**
 * The body `az k8s-extension create --extension-type microsoft.virtualnodes --scope cluster`
 * sends: the type, minor upgrades on, the release namespace vn-system, and the settings the
 * validator allows (VirtualNodes.py; replicaCount is the number of virtual nodes,
 * Helm/virtualnode/values.yaml). No identity: for managedClusters AKS gives the extension its
 * own (aksAssignedIdentity).
 */
export function extensionBody(replicaCount: number, kept: Record<string, string> = {}): Record<string, unknown> {
  return {
    properties: {
      extensionType: V2_EXTENSION_TYPE,
      autoUpgradeMinorVersion: true,
      scope: { cluster: { releaseNamespace: V2_NAMESPACE } },
      // VirtualNodes.py validate_configuration adds aciSubnetName to every create; an update keeps every setting there is.
      configurationSettings: { aciSubnetName: 'virtualnodes-aci-subnet', ...kept, replicaCount: String(replicaCount) }
    }
  }
}

/** Creates the extension, or updates its node count keeping its other settings (`kept`: what ARM shows of them). */
export async function putExtension(
  arm: ArmClient,
  cluster: Pick<ClusterInfo, 'resourceGroup' | 'name'>,
  name: string,
  replicaCount: number,
  kept?: Record<string, string>
): Promise<void> {
  await arm.put(`${extensionsPath(arm, cluster)}/${encodeURIComponent(name)}`, EXTENSIONS_API_VERSION, extensionBody(replicaCount, kept))
}

/** The extension's own words on how provisioning goes: its errorInfo, then its status messages. */
export function extensionMessages(e: Extension): string {
  const statuses = e.statuses.map(s => [s.level, s.code, s.displayStatus, s.message].filter(Boolean).join(' ')).filter(Boolean)
  return [e.error, ...statuses].filter(Boolean).join('\n')
}

/**
 * Waits until the extension's provisioning ends. Succeeded returns it; Failed or Canceled
 * throws with the extension's own messages. `onChange` hears each new state or message.
 */
export async function waitForProvisioning(
  arm: ArmClient,
  cluster: Pick<ClusterInfo, 'resourceGroup' | 'name'>,
  name: string,
  deadline: number,
  onChange: (e: Extension) => void = () => undefined
): Promise<Extension> {
  let last = ''
  let latest: Extension | undefined
  const done = await pollUntil(
    async () => {
      latest = await getExtension(arm, cluster, name)
      if (!latest) throw new Error(`Extension ${name} is gone while it was being provisioned: someone deleted it. Re-run the step.`)
      const seen = `${latest.provisioningState}\n${extensionMessages(latest)}`
      if (seen !== last) onChange(latest)
      last = seen
      if (latest.provisioningState === 'Failed' || latest.provisioningState === 'Canceled')
        throw new Error(`Extension ${name} (${V2_EXTENSION_TYPE}) ended ${latest.provisioningState}:\n${extensionMessages(latest) || '(no message)'}`)
      return latest.provisioningState === 'Succeeded' ? latest : undefined
    },
    deadline - POLL_MS,
    POLL_MS
  )
  if (done) return done
  const said = latest ? extensionMessages(latest) : ''
  throw new Error(
    `Extension ${name} was still ${latest?.provisioningState ?? 'unknown'} at wait-timeout.${said ? `\n${said}` : ''}\nRe-run the step to keep waiting (it converges), or raise wait-timeout.`
  )
}

/**
 * Deletes the extension and waits until ARM no longer has it; one already gone is fine. One
 * still Creating or Updating is waited for first (ARM takes one operation at a time), and a
 * Failed state counts as a failed deletion only once the deletion has been seen under way
 * (right after the DELETE, ARM may still show the state from before).
 */
export async function deleteExtension(arm: ArmClient, cluster: Pick<ClusterInfo, 'resourceGroup' | 'name'>, name: string, deadline: number): Promise<void> {
  const before = await getExtension(arm, cluster, name)
  if (before && (before.provisioningState === 'Creating' || before.provisioningState === 'Updating')) {
    await waitForProvisioning(arm, cluster, name, deadline).catch(() => undefined)
  }
  try {
    await arm.delete(`${extensionsPath(arm, cluster)}/${encodeURIComponent(name)}`, EXTENSIONS_API_VERSION)
  } catch (err) {
    if (!(err instanceof ArmError && err.status === 404)) throw err
  }
  let latest: Extension | undefined
  let sawDeleting = false
  const gone = await pollUntil(
    async () => {
      latest = await getExtension(arm, cluster, name).catch((err: unknown) => {
        throw new Error(`Could not read extension ${name} while it was being deleted: ${errorText(err)}`)
      })
      if (latest?.provisioningState === 'Deleting') sawDeleting = true
      if (latest?.provisioningState === 'Failed' && sawDeleting)
        throw new Error(
          `Deleting extension ${name} failed:\n${extensionMessages(latest) || '(no message)'}\nRe-run the removal, or \`az k8s-extension delete\` it.`
        )
      return latest ? undefined : true
    },
    deadline - POLL_MS,
    POLL_MS
  )
  if (!gone) throw new Error(`Extension ${name} was still ${latest?.provisioningState ?? 'there'} at wait-timeout; re-run the removal.`)
}

/** The virtual nodes an extension's chart registers: the StatefulSet's pods' names (node name = pod name). */
export function v2NodeNames(extensionName: string, replicaCount: number): string[] {
  return Array.from({ length: replicaCount }, (_x, i) => `${v2FullName(extensionName)}-${i}`)
}

/** Helm/virtualnode/templates/_helpers.tpl virtualnode2.fullname: the release name when it holds the chart name, else `<release>-virtualnode`; 63 at most. */
export function v2FullName(release: string): string {
  const full = release.includes('virtualnode') ? release : `${release}-virtualnode`
  return full.slice(0, 63).replace(/-+$/, '')
}
