// A record the action keeps in the cluster itself: a ConfigMap whose keys each hold one JSON
// value, labelled as the action's. It lives as long as the cluster does, so a later job (a
// scheduled teardown with other credentials, say) reads what an earlier one wrote. Changes
// are read-modify-write with the ConfigMap's resourceVersion, retried when another writer
// came first; an empty record is deleted.
import * as core from '@actions/core'
import type { V1ConfigMap } from '@kubernetes/client-node'
import { ignoreNotFound, isConflict, type Kube } from './kube.js'

/** Where a record lives, and the label that marks it as the action's. */
export interface RecordRef {
  namespace: string
  name: string
  labels: Record<string, string>
}

/** Each key's JSON value that `valid` accepts; an unreadable entry is skipped (and said in the debug log). */
function parse<T>(ref: RecordRef, cm: V1ConfigMap | undefined, valid: (v: unknown) => v is T): Map<string, T> {
  const entries = new Map<string, T>()
  for (const [key, value] of Object.entries(cm?.data ?? {})) {
    try {
      const parsed: unknown = JSON.parse(value)
      if (valid(parsed)) entries.set(key, parsed)
      else core.debug(`${ref.name}: entry ${key} is not of the expected shape; ignored`)
    } catch {
      core.debug(`${ref.name}: entry ${key} is not readable; ignored`)
    }
  }
  return entries
}

export async function readRecord<T>(kube: Kube, ref: RecordRef, valid: (v: unknown) => v is T): Promise<Map<string, T>> {
  return parse(ref, await ignoreNotFound(kube.core.readNamespacedConfigMap(ref)), valid)
}

/** Changes the record with `change` (read, modify, write; retried when another writer came first). */
export async function updateRecord<T>(kube: Kube, ref: RecordRef, valid: (v: unknown) => v is T, change: (entries: Map<string, T>) => void): Promise<void> {
  const { namespace, name } = ref
  for (let attempt = 1; ; attempt++) {
    const cm = await ignoreNotFound(kube.core.readNamespacedConfigMap({ namespace, name }))
    const entries = parse(ref, cm, valid)
    change(entries)
    const data = Object.fromEntries([...entries].map(([key, v]) => [key, JSON.stringify(v)]))
    try {
      if (!cm) {
        if (entries.size === 0) return
        await kube.core.createNamespacedConfigMap({ namespace, body: { metadata: { name, labels: ref.labels }, data } })
      } else if (entries.size === 0) {
        await ignoreNotFound(
          kube.core.deleteNamespacedConfigMap({ namespace, name, body: { preconditions: { resourceVersion: cm.metadata?.resourceVersion } } })
        )
      } else {
        await kube.core.replaceNamespacedConfigMap({ namespace, name, body: { ...cm, data } })
      }
      return
    } catch (err) {
      if (attempt < 5 && isConflict(err)) continue
      throw err
    }
  }
}
