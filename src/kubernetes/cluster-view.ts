// One view of the cluster shared by every removal of a step: the namespaces, and the pods of
// each node being drained (only those: a busy cluster's other pods are never listed or
// watched), each a list, then a watch from the list's resourceVersion, kept in memory as state
// (client-go's reflector, k8s.io/client-go tools/cache/reflector.go ListAndWatch, in small).
// A removal waits on it for its node's pods and its namespace to go instead of polling the
// API server itself, so a sweep of twelve connectors costs thirteen watches, not twelve polls.
import * as core from '@actions/core'
import { Watch, type KubernetesListObject, type KubernetesObject, type V1Namespace, type V1Pod } from '@kubernetes/client-node'
import { sleep } from '../util/async.js'
import { watchOnce, type Kube } from './kube.js'

/** What a removal needs of a pod. */
export interface PodEntry {
  uid: string
  namespace: string
  name: string
  node: string
  /** deletionTimestamp is set: the kubelet (here the connector) has yet to confirm it. */
  deleting: boolean
  daemonSet: boolean
}

/** Waits re-check their condition this often besides on every change (local work only, no request). */
export const VIEW_TICK_MS = 500
/** Before a list is tried again after it failed, or a watch after it ended with an error. */
const RETRY_MS = 1_000

/**
 * One resource kept as state. After its first list it knows every object that existed
 * then; later objects arrive as ADDED events, deleted ones as DELETED events or by being
 * absent from a later list (after a watch error: a 410 Gone, a dropped connection), and
 * each deletion is remembered by UID so a waiter cannot miss one that happened between
 * two of its checks.
 */
class Reflector<O extends KubernetesObject, E> {
  readonly items = new Map<string, E>()
  readonly deleted = new Set<string>()
  private rv: string | undefined
  synced = false

  constructor(
    private readonly kube: Kube,
    private readonly path: string,
    /** The list's and the watch's selectors (a field selector narrows both alike). */
    private readonly query: Record<string, string>,
    private readonly list: () => Promise<KubernetesListObject<O>>,
    private readonly entry: (o: O) => E,
    private readonly changed: () => void
  ) {}

  private replace(objects: O[]): void {
    const seen = new Set<string>()
    for (const o of objects) {
      const uid = o.metadata?.uid ?? ''
      seen.add(uid)
      this.items.set(uid, this.entry(o))
    }
    for (const uid of [...this.items.keys()])
      if (!seen.has(uid)) {
        this.items.delete(uid)
        this.deleted.add(uid)
      }
  }

  async run(signal: AbortSignal): Promise<void> {
    const watch = new Watch(this.kube.kc)
    while (!signal.aborted) {
      if (this.rv === undefined) {
        try {
          const l = await this.list()
          this.replace(l.items)
          this.rv = l.metadata?.resourceVersion ?? '0'
          this.synced = true
          this.changed()
        } catch (err) {
          core.debug(`list ${this.path}: ${String(err)}`)
          await sleep(RETRY_MS)
          continue
        }
      }
      let relist = false
      const err = await watchOnce(
        watch,
        this.path,
        { ...this.query, resourceVersion: this.rv ?? '0', allowWatchBookmarks: 'true' },
        (type, raw) => {
          const obj = raw as O
          // An ERROR event carries a Status (410 Gone when the version is too old): start over from a list.
          if (type === 'ERROR') {
            relist = true
            return
          }
          if (obj.metadata?.resourceVersion) this.rv = obj.metadata.resourceVersion
          if (type === 'BOOKMARK') return
          const uid = obj.metadata?.uid ?? ''
          if (type === 'DELETED') {
            this.items.delete(uid)
            this.deleted.add(uid)
          } else this.items.set(uid, this.entry(obj))
          this.changed()
        },
        signal
      )
      if (signal.aborted) return
      // After an error the events in between may be lost: a list sets the state right (and
      // a watch the credentials may not make degrades to one list a second, shared).
      if (relist || err) {
        core.debug(`watch ${this.path} ended (${err ? String(err) : 'error event'}); listing again`)
        this.rv = undefined
        await sleep(RETRY_MS)
      }
    }
  }
}

export function podEntry(p: V1Pod): PodEntry {
  return {
    uid: p.metadata?.uid ?? '',
    namespace: p.metadata?.namespace ?? '',
    name: p.metadata?.name ?? '',
    node: p.spec?.nodeName ?? '',
    deleting: Boolean(p.metadata?.deletionTimestamp),
    daemonSet: Boolean(p.metadata?.ownerReferences?.some(o => o.kind === 'DaemonSet'))
  }
}

export class ClusterView {
  private readonly abort = new AbortController()
  private readonly waiters = new Set<() => void>()
  /** The pods of each node watched, by node name. */
  private readonly nodes = new Map<string, Reflector<V1Pod, PodEntry>>()
  private readonly namespaces: Reflector<V1Namespace, { name: string; uid: string }>
  private readonly changed = (): void => {
    for (const w of [...this.waiters]) w()
  }

  private constructor(private readonly kube: Kube) {
    // resourceVersion 0: served from the API server's watch cache, so the watch that follows
    // starts at a version the cache has (a quorum list can be ahead of it, and a watch from
    // there waits, then fails with "Too large resource version").
    this.namespaces = new Reflector(
      kube,
      '/api/v1/namespaces',
      {},
      () => kube.core.listNamespace({ resourceVersion: '0' }),
      n => ({ name: n.metadata?.name ?? '', uid: n.metadata?.uid ?? '' }),
      this.changed
    )
  }

  /**
   * Starts the view of namespaces; resolves once it has listed. A view that cannot list within
   * `timeoutMs` is refused (a removal waiting on it would wait blind).
   */
  static async start(kube: Kube, timeoutMs = 30_000): Promise<ClusterView> {
    const view = new ClusterView(kube)
    void view.namespaces.run(view.abort.signal)
    await view.synced(() => view.namespaces.synced, timeoutMs, 'namespaces')
    return view
  }

  private async synced(isSynced: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (await this.until(() => (isSynced() ? true : undefined), Date.now() + timeoutMs)) return
    this.stop()
    throw new Error(
      `Could not list the cluster's ${what} within ${timeoutMs / 1000} s to follow the removal; ` +
        'the credentials need list and watch on pods and namespaces in all namespaces. Nothing was removed; re-run when the API server answers.'
    )
  }

  /**
   * Follows the pods bound to `node` from now on (a list and a watch with the field selector
   * spec.nodeName, so the API server sends only that node's pods); resolves once listed.
   */
  async watchNode(node: string, timeoutMs = 30_000): Promise<void> {
    let r = this.nodes.get(node)
    if (!r) {
      const fieldSelector = `spec.nodeName=${node}`
      r = new Reflector(
        this.kube,
        '/api/v1/pods',
        { fieldSelector },
        () => this.kube.core.listPodForAllNamespaces({ fieldSelector, resourceVersion: '0' }),
        podEntry,
        this.changed
      )
      this.nodes.set(node, r)
      void r.run(this.abort.signal)
    }
    const reflector = r
    await this.synced(() => reflector.synced, timeoutMs, `pods on ${node}`)
  }

  /** Pods bound to `node` now, as far as the view has seen (watchNode first). */
  podsOn(node: string): PodEntry[] {
    return [...(this.nodes.get(node)?.items.values() ?? [])]
  }

  /** The pod with this UID as the view has it now. */
  pod(uid: string): PodEntry | undefined {
    for (const r of this.nodes.values()) {
      const p = r.items.get(uid)
      if (p) return p
    }
    return undefined
  }

  /** The pod with this UID is gone (deleted since its node was first watched). */
  podGone(uid: string): boolean {
    return [...this.nodes.values()].some(r => r.deleted.has(uid))
  }

  /** The namespace with this UID is gone. */
  namespaceGone(uid: string): boolean {
    return this.namespaces.deleted.has(uid)
  }

  /**
   * Resolves with `check`'s first defined value, re-checking on every change the view sees
   * and every VIEW_TICK_MS; undefined at `deadline`. One check runs at a time.
   */
  async until<R>(check: () => R | undefined | Promise<R | undefined>, deadline: number): Promise<R | undefined> {
    let wake: (() => void) | undefined
    const waiter = (): void => wake?.()
    this.waiters.add(waiter)
    try {
      for (;;) {
        const value = await check()
        if (value !== undefined) return value
        const left = deadline - Date.now()
        if (left <= 0) return undefined
        await new Promise<void>(resolve => {
          const timer = setTimeout(resolve, Math.min(VIEW_TICK_MS, left))
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        wake = undefined
      }
    } finally {
      this.waiters.delete(waiter)
    }
  }

  stop(): void {
    this.abort.abort()
    for (const w of [...this.waiters]) w()
  }
}
