// Which container groups a teardown may delete. The connector tags each group with the pod
// it runs (PodName, Namespace, UID, CreationTimestamp) and its virtual node (NodeName)
// (azure-aci v1.6.4 pkg/provider/aci.go), and nothing that names the cluster. So:
// - in the cluster's own node resource group (MC_*), which AKS makes for one cluster
//   only, a group tagged for a virtual node that is gone is this cluster's;
// - in any other resource group (one shared by several clusters, say), the same node name
//   may be another cluster's (two clusters with the default connector name in one region
//   have the same node names), so a group is this cluster's only when its UID tag is the
//   UID of a pod this cluster has, or had and recorded: a removal records the pods of each
//   node before it drains it, in a ConfigMap (POD_RECORD) kept until their groups are gone.
// A group that cannot be proven ours is listed, never deleted.
import type { V1Pod } from '@kubernetes/client-node'
import { ArmError, distinctResourceGroups, sameResourceGroup, type ArmClient } from '../../azure/arm.js'
import { listContainerGroups, type ContainerGroupRef } from '../../azure/container-groups.js'
import { ignoreNotFound, type Kube } from '../../kubernetes/kube.js'
import { readRecord, updateRecord, type RecordRef } from '../../kubernetes/record.js'
import { errorText } from '../../util/async.js'
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../naming.js'

/** Where the record lives: the namespace Helm keeps the action's releases in (always there). */
export const POD_RECORD: RecordRef = { namespace: 'default', name: 'aks-aci-connector-action-pods', labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } }

export interface RecordedPod {
  uid: string
  namespace: string
  name: string
}

/** What a removal recorded of one virtual node before draining it. */
export interface NodeRecord {
  aciResourceGroup: string
  recordedAt: string
  pods: RecordedPod[]
}

export interface Verdict {
  ours: boolean
  reason: string
}

/**
 * Whether `group` (tagged for a node that is gone or going) in `resourceGroup` is this
 * cluster's, and why. `knownPods` maps pod UIDs this cluster has or recorded to ns/name.
 */
export function attributeGroup(group: ContainerGroupRef, resourceGroup: string, nodeResourceGroup: string, knownPods: Map<string, string>): Verdict {
  const node = group.node ?? '(no NodeName tag)'
  if (sameResourceGroup(resourceGroup, nodeResourceGroup)) {
    return { ours: true, reason: `tagged for node ${node}, in the cluster's own node resource group` }
  }
  const pod = group.uid ? knownPods.get(group.uid) : undefined
  if (pod) return { ours: true, reason: `its pod ${pod} (UID ${group.uid}) was on ${node} in this cluster` }
  return {
    ours: false,
    reason:
      `tagged for node ${node}, but resource group ${resourceGroup} is not the cluster's own and ` +
      (group.uid ? `pod UID ${group.uid} is not one this cluster has or recorded` : 'the group has no UID tag') +
      ': it may be another cluster’s'
  }
}

/** One container group in one resource group, with why a teardown takes it (or leaves it). */
export interface GroupFinding {
  resourceGroup: string
  group: ContainerGroupRef
  reason: string
}

export interface GroupPlan {
  /** Proven this cluster's: to delete. */
  ours: GroupFinding[]
  /** Tagged as a candidate would be, but not provably this cluster's: listed, never deleted. */
  notAttributable: GroupFinding[]
  /** Resource groups whose groups could not be listed (refused, timed out). */
  unchecked: Array<{ resourceGroup: string; error: string }>
}

/**
 * Looks through each resource group for the groups `isCandidate` picks (tagged for a node
 * that is gone or going) and sorts them by attributeGroup. Reads only.
 */
export async function planGroupCleanup(
  arm: ArmClient,
  resourceGroups: string[],
  isCandidate: (g: ContainerGroupRef) => boolean,
  nodeResourceGroup: string,
  knownPods: Map<string, string>,
  /** Finds a group's pod in the cluster now, by its tags (ns/name when the UID matches). */
  lookup?: (g: ContainerGroupRef) => Promise<string | undefined>
): Promise<GroupPlan> {
  const plan: GroupPlan = { ours: [], notAttributable: [], unchecked: [] }
  const distinct = distinctResourceGroups(resourceGroups)
  await Promise.all(
    distinct.map(async resourceGroup => {
      let groups: ContainerGroupRef[]
      try {
        groups = await listContainerGroups(arm, resourceGroup)
      } catch (err) {
        // A resource group that is gone holds no container group.
        if (err instanceof ArmError && err.status === 404 && err.code === 'ResourceGroupNotFound') return
        plan.unchecked.push({ resourceGroup, error: errorText(err) })
        return
      }
      for (const group of groups.filter(isCandidate)) {
        // Outside MC_ only a known pod UID proves a group ours: the cluster is asked about each candidate's own pod.
        if (lookup && group.uid && !knownPods.has(group.uid) && !sameResourceGroup(resourceGroup, nodeResourceGroup)) {
          const pod = await lookup(group)
          if (pod) knownPods.set(group.uid, pod)
        }
        const verdict = attributeGroup(group, resourceGroup, nodeResourceGroup, knownPods)
        ;(verdict.ours ? plan.ours : plan.notAttributable).push({ resourceGroup, group, reason: verdict.reason })
      }
    })
  )
  return plan
}

/** A group's pod as the cluster has it now (its Namespace and PodName tags), when its UID is the group's UID tag. */
export async function livePodOf(kube: Kube, g: ContainerGroupRef): Promise<string | undefined> {
  const namespace = g.tags?.Namespace
  const name = g.tags?.PodName
  if (!namespace || !name || !g.uid) return undefined
  const pod = await ignoreNotFound(kube.core.readNamespacedPod({ name, namespace }))
  return pod?.metadata?.uid === g.uid ? `${namespace}/${name}` : undefined
}

export function podRef(p: V1Pod): RecordedPod {
  return { uid: p.metadata?.uid ?? '', namespace: p.metadata?.namespace ?? '', name: p.metadata?.name ?? '' }
}

const isNodeRecord = (v: unknown): v is NodeRecord =>
  typeof v === 'object' && v !== null && typeof (v as NodeRecord).aciResourceGroup === 'string' && Array.isArray((v as NodeRecord).pods)

/** The pods removals recorded, per virtual node. */
export async function readPodRecord(kube: Kube): Promise<Map<string, NodeRecord>> {
  return readRecord(kube, POD_RECORD, isNodeRecord)
}

/** UID -> ns/name of every recorded pod. */
export function recordedPods(records: Map<string, NodeRecord>): Map<string, string> {
  return new Map([...records.values()].flatMap(r => r.pods.map(p => [p.uid, `${p.namespace}/${p.name}`] as const)))
}

/** Adds the pods of `node` to the record (before they are drained), keeping earlier ones. */
export async function recordPods(kube: Kube, node: string, aciResourceGroup: string, pods: RecordedPod[]): Promise<void> {
  if (pods.length === 0) return
  await updateRecord(kube, POD_RECORD, isNodeRecord, records => {
    const known = records.get(node)?.pods ?? []
    const uids = new Set(known.map(p => p.uid))
    records.set(node, { aciResourceGroup, recordedAt: new Date().toISOString(), pods: [...known, ...pods.filter(p => p.uid && !uids.has(p.uid))] })
  })
}

/** Drops what was recorded for `nodes` (once ACI holds no group of theirs). */
export async function forgetNodes(kube: Kube, nodes: string[]): Promise<void> {
  await updateRecord(kube, POD_RECORD, isNodeRecord, records => {
    for (const n of nodes) records.delete(n)
  })
}
