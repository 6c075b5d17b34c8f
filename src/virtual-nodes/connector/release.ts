// The connector's Helm release: values for the current chart, `helm upgrade --install` (so a
// re-run converges), a release left pending by an interrupted helm put right, and the
// checks an install makes first (its namespace free, its connector available).
import * as core from '@actions/core'
import { ignoreNotFound, type Kube } from '../../kubernetes/kube.js'
import { helmEnv, HELM_TIMEOUT_MS, withValuesFile, type HelmContext } from '../../kubernetes/helm.js'
import { runChecked, readableEcho } from '../../tools/process.js'
import { pollUntil } from '../../util/async.js'
import { connectorDeploymentName, REINSTALLED_STATUSES, RELEASE_NAMESPACE, type ConnectorNames } from './names.js'
import { removeConnector } from './removal.js'

/** How often an install looks whether a terminating namespace of the same name is gone (the namespace controller finishes within seconds). */
const NAMESPACE_POLL_MS = 250

export interface ConnectorSettings {
  tenantId: string
  subscriptionId: string
  aciResourceGroup: string
  location: string
  masterUri: string
  enableRBAC: boolean
  imageTag?: string
  /** Service principal the connector runs as; absent = managed identity / azure.json. */
  clientId?: string
  clientSecret?: string
  managedIdentityClientId?: string
}

/**
 * YAML 1.1's plain scalars that are not strings (integers, floats, booleans such as yes/no/on/off, null, ~),
 * as sigs.k8s.io/yaml (go-yaml v2) resolves them: anything not starting with a letter, and those words.
 */
const YAML_NON_STRING_WORDS = /^(y|yes|n|no|true|false|on|off|null)$/i

/**
 * A value for a template slot that renders it unquoted: the azure-aci chart writes
 * `value: {{ .aciResourceGroup }}` (v1.6.4 charts/virtual-kubelet/templates/deployment.yaml),
 * so a resource group named `12345` or `yes` would become a number or a boolean and the
 * Deployment would be refused. Such a value is passed already quoted (a JSON string is a
 * YAML string); any other value as it is.
 */
export function unquotedSlotValue(value: string): string {
  return /^[A-Za-z][-\w.()]*$/.test(value) && !YAML_NON_STRING_WORDS.test(value) ? value : JSON.stringify(value)
}

/** Values for `virtual-kubelet-azure-aci` 1.6.4 (https://github.com/virtual-kubelet/azure-aci/blob/v1.6.4/charts/virtual-kubelet/values.yaml). */
export function renderValues(c: ConnectorNames, s: ConnectorSettings): Record<string, unknown> {
  return {
    provider: 'azure',
    nodeName: c.node,
    nodeOsType: c.os,
    namespace: c.namespace,
    ...(s.imageTag ? { image: { tag: s.imageTag } } : {}),
    taint: { enabled: true, key: 'virtual-kubelet.io/provider', value: 'azure', effect: 'NoSchedule' },
    rbac: { install: s.enableRBAC },
    providers: {
      azure: {
        targetAKS: true,
        tenantId: s.tenantId,
        subscriptionId: s.subscriptionId,
        aciResourceGroup: unquotedSlotValue(s.aciResourceGroup),
        aciRegion: unquotedSlotValue(s.location),
        masterUri: s.masterUri,
        ...(s.clientId ? { clientId: s.clientId, clientKey: s.clientSecret ?? '' } : {}),
        ...(s.managedIdentityClientId ? { managedIdentityID: s.managedIdentityClientId } : {})
      }
    }
  }
}

export function installArgs(c: ConnectorNames, chart: string, valuesFile: string, kubeconfig: string): string[] {
  return ['upgrade', '--install', c.release, chart, '--namespace', RELEASE_NAMESPACE, '--kubeconfig', kubeconfig, '--values', valuesFile, '--history-max', '5']
}

/**
 * The chart templates its Namespace, so a namespace of that name that Helm does not own
 * (or one still terminating after a removal) blocks the install: wait for a terminating
 * one, refuse a foreign one with what to do.
 */
export async function checkNamespaceFree(kube: Kube, c: ConnectorNames, timeoutMs: number): Promise<void> {
  const free = await pollUntil(
    async () => {
      const ns = await ignoreNotFound(kube.core.readNamespace({ name: c.namespace }))
      if (!ns) return true
      if (ns.metadata?.deletionTimestamp) return undefined
      const owner = ns.metadata?.annotations?.['meta.helm.sh/release-name']
      if (owner === c.release) return true
      throw new Error(
        `Namespace ${c.namespace} exists and is not owned by Helm release ${c.release}${owner ? ` (owner: ${owner})` : ''}; the chart must create it. ` +
          `Delete it (\`kubectl delete namespace ${c.namespace}\`) if it is left over, or choose another connector-name.`
      )
    },
    Date.now() + timeoutMs,
    NAMESPACE_POLL_MS
  )
  if (!free) {
    throw new Error(`Namespace ${c.namespace} is still terminating from an earlier removal; re-run when it is gone (\`kubectl get namespace ${c.namespace}\`).`)
  }
}

/**
 * Why a release whose chart and values are unchanged must still be upgraded: its connector
 * Deployment is gone (deleted by hand) or has no available replica (crash-looping, say,
 * after a fix outside the cluster). The chart renders a new certificate into its Secret on
 * every upgrade and the Deployment carries that Secret's checksum, so an upgrade always
 * rolls the connector pod (azure-aci v1.6.4 charts/virtual-kubelet/templates/secrets.yaml,
 * deployment.yaml).
 */
export async function connectorRolloutReason(kube: Kube, c: ConnectorNames): Promise<string | undefined> {
  const name = connectorDeploymentName(c.release)
  const found = await ignoreNotFound(kube.apps.readNamespacedDeployment({ name, namespace: c.namespace }))
  if (!found) return `its Deployment ${c.namespace}/${name} is missing`
  return (found.status?.availableReplicas ?? 0) > 0 ? undefined : `its connector ${c.namespace}/${name} is not available, and an upgrade restarts it`
}

/**
 * A helm that was stopped mid-way (cancelled job, timeout) leaves its release `pending-*`,
 * and every later `helm upgrade` fails with "another operation is in progress". Put the
 * release back in a state an upgrade can start from, so a re-run converges.
 */
export async function recoverPendingRelease(
  kube: Kube,
  ctx: HelmContext,
  c: ConnectorNames,
  status: string | undefined,
  timeoutMs: number,
  aciResourceGroup: string
): Promise<void> {
  const release = c.release
  if (status && REINSTALLED_STATUSES.includes(status)) {
    core.warning(`Release ${release} was left ${status} by an interrupted helm; uninstalling it before installing again.`)
    // The whole removal: the chart's namespace must be gone before it can be created again.
    await removeConnector(kube, ctx, c, timeoutMs, aciResourceGroup)
  } else if (status === 'pending-upgrade' || status === 'pending-rollback') {
    core.warning(`Release ${release} was left ${status} by an interrupted helm; rolling it back to its last revision before upgrading.`)
    await runChecked(`helm rollback ${release}`, ctx.helm, ['rollback', release, '--namespace', RELEASE_NAMESPACE, '--kubeconfig', ctx.kubeconfig], {
      env: helmEnv(ctx),
      timeoutMs: HELM_TIMEOUT_MS
    })
  }
}

export async function installConnector(ctx: HelmContext, c: ConnectorNames, chart: string, values: Record<string, unknown>): Promise<void> {
  await withValuesFile(ctx.workDir, values, async file => {
    await runChecked(`helm upgrade --install ${c.release}`, ctx.helm, installArgs(c, chart, file, ctx.kubeconfig), {
      env: helmEnv(ctx),
      timeoutMs: HELM_TIMEOUT_MS,
      echo: readableEcho('helm')
    })
  })
}
