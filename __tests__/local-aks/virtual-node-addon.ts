// AKS's virtual-node add-on inside the local cluster: when ARM enables it (arm.ts,
// addonProfiles.aciConnectorLinux), what AKS deploys runs here: the real azure-aci
// connector (the add-on "is based on" it, AKS docs virtual-nodes.md; AKS rolls azure-aci's
// releases out to add-on clusters, azure-aci README.md) in kube-system, registering the node
// virtual-node-aci-linux, running as the add-on's managed identity
// (VIRTUALNODE_USER_IDENTITY_CLIENTID = the client ID of aciconnectorlinux-<cluster>) and
// putting its pods into the add-on's subnet of the cluster's VNet (ACI_SUBNET_NAME).
// azure-aci docs/UPGRADE-README.md installs the same connector beside the built-in one with
// exactly these settings, and says the built-in one runs in kube-system; that is all that is
// published of AKS's own deployment (its manifest, image tag and labels are not), so the
// connector's own chart (azure-aci v1.6.4 charts/virtual-kubelet) is rendered with those
// settings and applied without a Helm release (AKS's add-on manager keeps none). Not
// imitated: AKS's other objects for the add-on, and the image version AKS ships (here 1.6.4).
import { KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node'
import { parseAllDocuments } from 'yaml'
import { runChecked } from './proc.js'

/** The node the add-on's connector registers (AKS docs virtual-nodes-cli.md `kubectl get nodes`). */
export const ADDON_NODE = 'virtual-node-aci-linux'
/** The namespace of the built-in connector (azure-aci docs/UPGRADE-README.md). */
export const ADDON_NAMESPACE = 'kube-system'
/** As the add-on's pods are named (`aci-connector-linux-XXXX`, azure-aci docs/UPGRADE-README.md). */
const ADDON_RELEASE = 'aci-connector-linux'

export interface AddonManager {
  enabled(addon: { subnetName: string; identityClientId: string; vnetName: string; vnetResourceGroup: string }): void
  disabled(): void
  /** The objects deployed now (for tests). */
  deployed(): string[]
  stop(): Promise<void>
}

export function startAddonManager(opts: { kc: KubeConfig; helm: string; chartDir: string; masterUri: string; log: (m: string) => void }): AddonManager {
  const api = KubernetesObjectApi.makeApiClient(opts.kc)
  let objects: KubernetesObject[] = []
  let work: Promise<void> = Promise.resolve()
  const queue = (fn: () => Promise<void>): void => {
    work = work.then(fn).catch(err => opts.log(`virtual-node add-on: ${String(err)}`))
  }

  const render = async (a: { subnetName: string; identityClientId: string; vnetName: string; vnetResourceGroup: string }): Promise<KubernetesObject[]> => {
    const sets = {
      nodeName: ADDON_NODE,
      nodeOsType: 'Linux',
      namespace: ADDON_NAMESPACE,
      'providers.azure.targetAKS': 'true',
      'providers.azure.managedIdentityID': a.identityClientId,
      'providers.azure.masterUri': opts.masterUri,
      'providers.azure.vnet.enabled': 'true',
      'providers.azure.vnet.subnetName': a.subnetName,
      // Empty: the connector takes the subnet's own range (pkg/network/aci_network.go shouldCreateOrUpdateSubnet);
      // the chart's default 10.241.0.0/16 (the docs' subnet) would refuse any other.
      'providers.azure.vnet.subnetCidr': '',
      'providers.azure.vnet.vnetName': a.vnetName,
      'providers.azure.vnet.vnetResourceGroup': a.vnetResourceGroup
    }
    const args = [
      'template',
      ADDON_RELEASE,
      opts.chartDir,
      '--namespace',
      ADDON_NAMESPACE,
      ...Object.entries(sets).flatMap(([k, v]) => ['--set-string', `${k}=${v}`])
    ]
    const text = await runChecked(opts.helm, args, { timeoutMs: 60_000 })
    return (
      parseAllDocuments(text)
        .map(d => d.toJS() as KubernetesObject | null)
        // kube-system is there already; the chart templates its namespace unconditionally.
        .filter((o): o is KubernetesObject => Boolean(o?.kind) && o?.kind !== 'Namespace')
    )
  }

  return {
    enabled: a =>
      queue(async () => {
        const rendered = await render(a)
        for (const o of rendered) await api.create(o)
        objects = rendered
        opts.log(`virtual-node add-on: connector deployed in ${ADDON_NAMESPACE} (subnet ${a.subnetName})`)
      }),
    disabled: () =>
      queue(async () => {
        for (const o of [...objects].reverse()) await api.delete(o).catch(() => undefined)
        objects = []
        opts.log('virtual-node add-on: connector removed')
      }),
    deployed: () => objects.map(o => `${o.kind}/${o.metadata?.name ?? ''}`),
    stop: async () => {
      await work
    }
  }
}
