// A stand-in for Virtual Nodes v2's agent, which is closed source (the images
// mcr.microsoft.com/aci/virtual-node-2-*; github.com/microsoft/virtualnodesOnAzureContainerInstances
// publishes only its MIT chart and docs). It does only what that chart and those docs say
// the agent does, each behaviour cited beside it; where they are silent it does nothing.
// Sources (repository at 0895131, chart 1.3409.26080501): Helm/virtualnode/templates/_helpers.tpl
// and deployment.yaml, values.yaml, README.md, Docs/PodCustomizations.md; Microsoft Learn
// articles/aks/virtual-nodes-v2.md; the v2 troubleshooting article (MicrosoftDocs/SupportArticles-docs
// support/azure/azure-container-instances/management/troubleshoot-microsoft-virtualnodes-extension.md).
//
// The extension: its StatefulSet and infrastructure pods are not imitated (the extension
// manager is part of the Azure double; each node is registered directly). The chart installed
// with Helm: its real objects run, and their containers run stand-ins/pause (the agent's
// images cannot run here); each running infrastructure pod's node is registered as its pod's
// env configures it. Not imitated either way: the admission controller's work, kube-proxy,
// logs and exec.
import { randomUUID } from 'node:crypto'
import type { KubeConfig } from '@kubernetes/client-node'
import type { Aci } from './aci.js'
import type { ExtensionEvents } from './arm.js'
import { api, errCode, renewNodeLease, SMP, timestamp } from './kube-raw.js'

/** kubelet's default node-status and lease cadence (the agent runs a kubelet, Helm/virtualnode deployment.yaml image virtual-node-2-kubelet). */
const HEARTBEAT_MS = 10_000
const POD_POLL_MS = 1_000
const MAX_PODS = 200
const NODE_CAPACITY = { pods: String(MAX_PODS), cpu: String(MAX_PODS * 4), memory: `${MAX_PODS * 16}Gi` }

export interface V2AgentOptions {
  kc: KubeConfig
  aci: Aci
  /** Where the container groups go: aciResourceGroupName is empty by default (values.yaml), and the agent then uses the cluster's node resource group (README.md, "Update AKS' Managed Identity"). */
  nodeResourceGroup: string
  location: string
  /** The node's /etc/kubernetes/azure.json as it is now, which the chart mounts into the agent (deployment.yaml volume aks-credential, AKS_CREDENTIAL_LOCATION): it names the cluster's VNet. */
  azureJson: () => string
  log?: (m: string) => void
}

export interface V2Agent extends ExtensionEvents {
  /** Test control, not an agent behaviour: false leaves an installed extension's nodes unregistered (its infrastructure pods never start). */
  knobs: { registerNodes: boolean }
  /** The agents of an extension's nodes stop (their infrastructure pods crash): nodes go NotReady, groups and Node objects stay. */
  crash(extension: string): void
  stop(): void
}

/** Helm/virtualnode/templates/_helpers.tpl virtualnode2.fullname: the release when it contains "virtualnode", else `<release>-virtualnode`. */
function fullName(release: string): string {
  return (release.includes('virtualnode') ? release : `${release}-virtualnode`).slice(0, 63).replace(/-+$/, '')
}

/** Docs/PodCustomizations.md "Using Custom ARM Tags": `key1=value1;key2=value2`. */
function parseTags(text: string | undefined): Record<string, string> {
  const tags: Record<string, string> = {}
  for (const pair of (text ?? '').split(';')) {
    const i = pair.indexOf('=')
    if (i > 0) tags[pair.slice(0, i).trim()] = pair.slice(i + 1).trim()
  }
  return tags
}

/** values.yaml nodeLabels: "Labels must be key=value pairs separated by ','". */
function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {}
  for (const pair of (text ?? '').split(',')) {
    const i = pair.indexOf('=')
    if (i > 0) labels[pair.slice(0, i).trim()] = pair.slice(i + 1).trim()
  }
  return labels
}

/** An infrastructure pod of the chart's StatefulSet, as far as the stand-in reads it. */
interface InfraPod {
  metadata?: { name?: string; deletionTimestamp?: string }
  spec?: { containers?: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> }
  status?: { phase?: string }
}

/** A Kubernetes quantity of CPU in cores, memory in GB. */
function cores(q: string | undefined): number | undefined {
  if (!q) return undefined
  return q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q)
}
function gigabytes(q: string | undefined): number | undefined {
  if (!q) return undefined
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(q)
  if (!m) return undefined
  const unit: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9, '': 1 }
  return Math.round(((Number(m[1]) * unit[m[2] ?? '']!) / 2 ** 30) * 1000) / 1000
}

interface PodObject {
  metadata?: { name?: string; namespace?: string; uid?: string; deletionTimestamp?: string; annotations?: Record<string, string> }
  spec?: {
    nodeName?: string
    containers?: Array<{ name: string; image: string; ports?: Array<{ containerPort: number }>; resources?: { requests?: Record<string, string> } }>
  }
}

class V2Node {
  private timer: NodeJS.Timeout | undefined
  constructor(
    readonly name: string,
    private readonly kc: KubeConfig,
    private readonly log: (m: string) => void,
    /** values.yaml nodeLabels (env CustomNodeLabels): "Labels to add when registering the node". */
    private readonly extraLabels: Record<string, string> = {}
  ) {}

  async register(): Promise<void> {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.name,
        // Pods select v2 nodes with `virtualization: virtualnode2` and `kubernetes.io/os: linux`
        // (README.md "Deploy your first pod to a virtual node"; Learn virtual-nodes-v2.md).
        // `type: virtual-kubelet`: Docs/PodCustomizations.md's confidential-containers example selects it, and the
        // chart keeps its own infrastructure pods off nodes labelled so (_helpers.tpl affinity, type NotIn virtual-kubelet).
        labels: {
          ...this.extraLabels,
          virtualization: 'virtualnode2',
          'kubernetes.io/os': 'linux',
          'kubernetes.io/hostname': this.name,
          type: 'virtual-kubelet'
        }
      },
      // Pods tolerate `virtual-kubelet.io/provider` (Exists, NoSchedule) to land on it (same
      // README example); the taint's value is not documented, so it has none.
      spec: { taints: [{ key: 'virtual-kubelet.io/provider', effect: 'NoSchedule' }] }
    }
    try {
      await api(this.kc, 'POST', '/api/v1/nodes', node)
    } catch (e) {
      if (errCode(e) !== 409) throw e
    }
    await this.heartbeat()
    this.timer = setInterval(() => void this.heartbeat().catch(err => this.log(`v2 node ${this.name}: ${String(err)}`)), HEARTBEAT_MS)
  }

  private async heartbeat(): Promise<void> {
    const now = timestamp()
    // Each virtual node takes up to 200 pods (Learn virtual-nodes-v2.md; README.md "Each virtual
    // node supports 200 pods"). Its CPU and memory capacity is not documented, yet a pod that
    // requests some (as the README's first pod does) must fit: the stand-in advertises what 200
    // pods could at most ask of ACI (4 cores and 16 GB per Linux container group,
    // https://learn.microsoft.com/azure/container-instances/container-instances-resource-and-quota-limits),
    // so only the documented pod count limits scheduling.
    await api(
      this.kc,
      'PATCH',
      `/api/v1/nodes/${this.name}/status`,
      {
        status: {
          capacity: NODE_CAPACITY,
          allocatable: NODE_CAPACITY,
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'kubelet is posting ready status',
              lastHeartbeatTime: now,
              lastTransitionTime: now
            }
          ],
          nodeInfo: { operatingSystem: 'linux', architecture: 'amd64' }
        }
      },
      SMP
    )
    await renewNodeLease(this.kc, this.name)
  }

  stop(): void {
    clearInterval(this.timer)
  }
}

export function startV2Agent(opts: V2AgentOptions): V2Agent {
  const log = opts.log ?? (() => undefined)
  const nodes = new Map<string, V2Node>()
  const byExtension = new Map<string, string[]>()
  /** pod uid -> the container group made for it. */
  const groups = new Map<string, string>()
  let busy = false
  const knobs = { registerNodes: true }
  // What each node's agent was configured with: its ACI subnet (aciSubnetName, env Subnets of
  // proxycri in deployment.yaml; a name is "within the AKS VNET", Docs/NodeCustomizations.md) and
  // its node-level custom tags (customTags, env VirtualNode_CustomTags).
  const settingsOf = new Map<string, { subnet: string; tags: Record<string, string> }>()
  const subnetId = (node: string): string => {
    const azure = JSON.parse(opts.azureJson()) as { subscriptionId: string; resourceGroup: string; vnetName: string; vnetResourceGroup?: string }
    const subnet = settingsOf.get(node)?.subnet ?? 'cg'
    // "If full resource IDs to the subnet are provided, they will be used as is."
    if (subnet.startsWith('/subscriptions/')) return subnet
    return `/subscriptions/${azure.subscriptionId}/resourceGroups/${azure.vnetResourceGroup || azure.resourceGroup}/providers/Microsoft.Network/virtualNetworks/${azure.vnetName}/subnets/${subnet}`
  }

  /** Pods bound to a running v2 node get a container group; deleted ones lose it, then go. */
  async function reconcile(): Promise<void> {
    if (busy || nodes.size === 0) return
    busy = true
    try {
      for (const node of nodes.keys()) {
        const list = (await api(opts.kc, 'GET', `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`)) as { items: PodObject[] }
        for (const pod of list.items) await reconcilePod(pod).catch(err => log(`v2 pod ${pod.metadata?.name}: ${String(err)}`))
      }
    } finally {
      busy = false
    }
  }

  async function reconcilePod(pod: PodObject): Promise<void> {
    const uid = pod.metadata?.uid ?? ''
    const ns = pod.metadata?.namespace ?? ''
    const name = pod.metadata?.name ?? ''
    const aci = (method: string, group: string, body = ''): ReturnType<Aci['handle']> =>
      opts.aci.handle({
        method,
        resourceGroup: opts.nodeResourceGroup,
        rest: ['containerGroups', group],
        query: new URLSearchParams('api-version=2023-05-01'),
        body
      })
    if (pod.metadata?.deletionTimestamp) {
      // Deleting the workloads first deletes their container groups (Learn virtual-nodes-v2.md:
      // remove the workloads before the extension, or their container groups are orphaned and keep billing).
      const group = groups.get(uid)
      if (group) aci('DELETE', group)
      groups.delete(uid)
      await api(opts.kc, 'DELETE', `/api/v1/namespaces/${ns}/pods/${name}`, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid }
      }).catch((e: unknown) => {
        if (errCode(e) !== 404 && errCode(e) !== 409) throw e
      })
      return
    }
    const containers = pod.spec?.containers ?? []
    // How v2 sizes a container group for containers without requests is not documented: such a pod is left as it is.
    const sized = containers.map(c => ({ c, cpu: cores(c.resources?.requests?.cpu), mem: gigabytes(c.resources?.requests?.memory) }))
    if (sized.some(s => !s.cpu || !s.mem)) return
    let group = groups.get(uid)
    if (!group) {
      // The group's name is not documented (nothing may rely on it): a random one.
      group = `vn2-${randomUUID()}`
      groups.set(uid, group)
      const ports = containers.flatMap(c => (c.ports ?? []).map(p => ({ port: p.containerPort, protocol: 'TCP' })))
      const reply = aci(
        'PUT',
        group,
        JSON.stringify({
          location: opts.location,
          // The node's custom tags and the pod's (Docs/PodCustomizations.md microsoft.containerinstance.virtualnode.customtags;
          // "the value from the pod level will override"); v2's own system tags are not documented.
          tags: {
            ...settingsOf.get(pod.spec?.nodeName ?? '')?.tags,
            ...parseTags(pod.metadata?.annotations?.['microsoft.containerinstance.virtualnode.customtags'])
          },
          properties: {
            osType: 'Linux',
            containers: sized.map(s => ({
              name: s.c.name,
              properties: {
                image: s.c.image,
                resources: { requests: { cpu: s.cpu, memoryInGB: s.mem } },
                ports: (s.c.ports ?? []).map(p => ({ port: p.containerPort }))
              }
            })),
            // In the cluster's VNet, in the delegated ACI subnet (values.yaml aciSubnetName: "this subnet needs to be delegated to Microsoft.ContainerInstance/containerGroups").
            subnetIds: [{ id: subnetId(pod.spec?.nodeName ?? '') }],
            ipAddress: { type: 'Private', ports }
          }
        })
      )
      if (reply.status >= 300) {
        groups.delete(uid)
        log(`v2: ACI refused the group of ${ns}/${name}: ${JSON.stringify(reply.body)}`)
        return
      }
    }
    const view = aci('GET', group)
    const props = (view.body as { properties?: { instanceView?: { state?: string }; ipAddress?: { ip?: string } } } | undefined)?.properties
    if (props?.instanceView?.state !== 'Running') return
    const now = timestamp()
    await api(
      opts.kc,
      'PATCH',
      `/api/v1/namespaces/${ns}/pods/${name}/status`,
      {
        status: {
          phase: 'Running',
          podIP: props.ipAddress?.ip ?? '',
          podIPs: props.ipAddress?.ip ? [{ ip: props.ipAddress.ip }] : [],
          startTime: now,
          conditions: [
            { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
            { type: 'Initialized', status: 'True', lastTransitionTime: now },
            { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
            { type: 'Ready', status: 'True', lastTransitionTime: now }
          ],
          containerStatuses: containers.map(c => ({
            name: c.name,
            image: c.image,
            imageID: '',
            ready: true,
            started: true,
            restartCount: 0,
            state: { running: { startedAt: now } }
          }))
        }
      },
      SMP
    )
  }

  /**
   * The chart installed with Helm: each running infrastructure pod of its StatefulSet (pod
   * labels app.kubernetes.io/name: virtualnode, _helpers.tpl selectorLabels) is the agent of
   * the node of its own name (env NodeName from metadata.name). Its settings come from its
   * containers' env (deployment.yaml: proxycri Subnets and VirtualNode_CustomTags, kubelet
   * CustomNodeLabels). When the pod goes, its agent stops and the Node object stays
   * (Docs/NodeCustomizations.md: removed replicas "will NOT clean up the 'fake' K8s Nodes").
   */
  const helmNodes = new Set<string>()
  let syncing = false
  async function syncHelmAgents(): Promise<void> {
    if (syncing) return
    syncing = true
    try {
      const list = (await api(opts.kc, 'GET', `/api/v1/pods?labelSelector=${encodeURIComponent('app.kubernetes.io/name=virtualnode')}`)) as {
        items: InfraPod[]
      }
      const running = list.items.filter(p => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp)
      for (const pod of running) {
        const name = pod.metadata?.name ?? ''
        if (nodes.has(name) || !knobs.registerNodes) continue
        const env = (container: string): Record<string, string> =>
          Object.fromEntries((pod.spec?.containers?.find(c => c.name === container)?.env ?? []).map(e => [e.name, e.value ?? '']))
        const proxycri = env('proxycri')
        settingsOf.set(name, { subnet: (proxycri.Subnets ?? 'cg').split(',')[0]!.trim(), tags: parseTags(proxycri.VirtualNode_CustomTags) })
        const node = new V2Node(name, opts.kc, log, parseLabels(env('kubelet').CustomNodeLabels))
        nodes.set(name, node)
        helmNodes.add(name)
        await node.register().catch(err => log(`v2 node ${name}: ${String(err)}`))
      }
      for (const name of [...helmNodes]) {
        if (running.some(p => p.metadata?.name === name)) continue
        nodes.get(name)?.stop()
        nodes.delete(name)
        helmNodes.delete(name)
      }
    } finally {
      syncing = false
    }
  }

  const poll = setInterval(() => {
    void reconcile().catch(err => log(`v2 agent: ${String(err)}`))
    void syncHelmAgents().catch(err => log(`v2 agents of Helm releases: ${String(err)}`))
  }, POD_POLL_MS)

  return {
    knobs,
    installed(extension, settings) {
      // replicaCount = the number of virtual nodes (values.yaml), each named after its StatefulSet pod `<fullname>-<i>`.
      const count = Number(settings.replicaCount ?? '1')
      const names = Array.from({ length: count }, (_x, i) => `${fullName(extension)}-${i}`)
      // A scale down leaves the Node objects of the removed replicas (Docs/NodeCustomizations.md; Learn): only their agents stop.
      for (const old of byExtension.get(extension) ?? []) {
        if (names.includes(old)) continue
        nodes.get(old)?.stop()
        nodes.delete(old)
      }
      byExtension.set(extension, names)
      // values.yaml default aciSubnetName is cg; the extension's validator sets virtualnodes-aci-subnet.
      for (const n of names) settingsOf.set(n, { subnet: settings.aciSubnetName ?? 'cg', tags: parseTags(settings.customTags) })
      for (const n of names) {
        if (nodes.has(n) || !knobs.registerNodes) continue
        const node = new V2Node(n, opts.kc, log)
        nodes.set(n, node)
        void node.register().catch(err => log(`v2 node ${n}: ${String(err)}`))
      }
    },
    uninstalled(extension) {
      // The release goes with the extension; its Node objects and the container groups of pods still there stay
      // (Learn virtual-nodes-v2.md: delete the workloads first; `kubectl delete node` the nodes left).
      this.crash(extension)
      byExtension.delete(extension)
    },
    crash(extension) {
      for (const n of byExtension.get(extension) ?? []) {
        nodes.get(n)?.stop()
        nodes.delete(n)
      }
    },
    stop() {
      clearInterval(poll)
      for (const n of nodes.values()) n.stop()
      nodes.clear()
    }
  }
}
