// Kubernetes API access with the cluster's kubeconfig: clients, and a watch that
// resumes when the connection drops (API servers close watches every few minutes,
// and load balancers in front of AKS drop idle ones).
import * as core from '@actions/core'
import {
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  createConfiguration,
  KubeConfig,
  ServerConfiguration,
  Watch,
  type KubernetesObject,
  type RequestContext,
  type ResponseContext
} from '@kubernetes/client-node'
import { sleep } from '../util/async.js'
import { proxyFromEnvironment, type Env } from './proxy.js'

export interface Kube {
  kc: KubeConfig
  core: CoreV1Api
  apps: AppsV1Api
  authz: AuthorizationV1Api
}

/** The credentials in a kubeconfig (client certificate and key, token, password), as the client parses them; masked as soon as the file is read. */
export function kubeconfigSecrets(text: string): string[] {
  const kc = new KubeConfig()
  kc.loadFromString(text)
  return kc.getUsers().flatMap(u => [u.certData, u.keyData, u.token, u.password].filter((v): v is string => typeof v === 'string' && v.length > 0))
}

export function maskKubeconfig(text: string): void {
  for (const secret of kubeconfigSecrets(text)) core.setSecret(secret)
}

/**
 * Time limit of one API request (not of a watch). The client sets none, and an API server
 * that stops answering would otherwise hold a call until the OS gives up on the connection.
 */
export const API_REQUEST_TIMEOUT_MS = 30_000

const requestTimeout = {
  pre: async (request: RequestContext): Promise<RequestContext> => {
    request.setSignal(AbortSignal.timeout(API_REQUEST_TIMEOUT_MS))
    return request
  },
  post: async (response: ResponseContext): Promise<ResponseContext> => response
}

/**
 * Clients for the kubeconfig `text`. With `bearer`, every request (and watch) carries the
 * token it returns, fetched per request so a refreshed token is used at once (Entra ID
 * clusters; the kubeconfig's user then has no credential of its own).
 */
export function kubeFromString(text: string, bearer?: () => Promise<string>): Kube {
  const kc = new KubeConfig()
  kc.loadFromString(text)
  withEnvironmentProxy(kc)
  if (bearer) {
    kc.addAuthenticator({
      isAuthProvider: () => true,
      applyAuthentication: async (_user, opts) => {
        opts.headers = { ...opts.headers, Authorization: `Bearer ${await bearer()}` }
      }
    })
  }
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('The kubeconfig has no current cluster.')
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [requestTimeout]
  })
  return { kc, core: new CoreV1Api(configuration), apps: new AppsV1Api(configuration), authz: new AuthorizationV1Api(configuration) }
}

/**
 * Gives each cluster of `kc` without a `proxy-url` of its own the proxy helm and kubectl
 * take from `env` for its server (client-go uses the kubeconfig's `proxy-url` when set and
 * `http.ProxyFromEnvironment` otherwise), so the action's namespace checks and watches
 * reach an API server that only the proxy reaches. A password in the proxy address is
 * masked.
 */
export function withEnvironmentProxy(kc: KubeConfig, env: Env = process.env): void {
  const clusters = kc.getClusters().map(c => {
    if (c.proxyUrl) return c
    const proxy = proxyFromEnvironment(c.server, env)
    if (!proxy) return c
    if (proxy.password) {
      core.setSecret(proxy.password)
      core.setSecret(decodeURIComponent(proxy.password))
    }
    return { ...c, proxyUrl: proxy.href }
  })
  kc.loadFromOptions({ clusters, users: kc.getUsers(), contexts: kc.getContexts(), currentContext: kc.getCurrentContext() })
}

/** The API answered 404: the object is not there. */
export function isNotFound(err: unknown): boolean {
  const e = err as { code?: number; statusCode?: number; response?: { statusCode?: number }; body?: unknown }
  return e?.code === 404 || e?.statusCode === 404 || e?.response?.statusCode === 404 || /HTTP-Code: 404|"code":\s*404/.test(String((e as Error)?.message ?? ''))
}

/** The UID of the cluster's kube-system namespace: made once with the cluster, it tells one cluster from another. */
export async function clusterUid(kube: Kube): Promise<string> {
  return (await kube.core.readNamespace({ name: 'kube-system' })).metadata?.uid ?? ''
}

/** The API answered 409: another writer changed the object first (or it already exists). */
export function isConflict(err: unknown): boolean {
  const e = err as { code?: number; statusCode?: number; response?: { statusCode?: number } }
  return e?.code === 409 || e?.statusCode === 409 || e?.response?.statusCode === 409 || /HTTP-Code: 409/.test(String((e as Error)?.message ?? ''))
}

export async function ignoreNotFound<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise
  } catch (err) {
    if (isNotFound(err)) return undefined
    throw err
  }
}

/** Items per page of a list that may be long (a busy cluster's Helm records, say). */
export const LIST_PAGE_SIZE = 250

/** Every item of a list, a page at a time (limit and continue), so no single response holds them all. */
export async function listPaged<T>(
  page: (opts: { limit: number; _continue?: string }) => Promise<{ items: T[]; metadata?: { _continue?: string } }>
): Promise<T[]> {
  const items: T[] = []
  let token: string | undefined
  do {
    const r = await page({ limit: LIST_PAGE_SIZE, ...(token ? { _continue: token } : {}) })
    items.push(...r.items)
    token = r.metadata?._continue || undefined
  } while (token)
  return items
}

const RESUME_DELAY_MS = 1_000
/** The server ends each watch after this long; the client gives it a margin, then ends it itself (a dropped connection sends nothing). */
const WATCH_SERVER_TIMEOUT_S = 60
const WATCH_CLIENT_MARGIN_MS = 15_000

/**
 * One watch of `path`, until the server ends it, the connection drops, the client's own
 * guard ends it (a dropped connection sends nothing), or `signal` aborts; resolves with the
 * error it ended with (undefined when the server closed it).
 */
export async function watchOnce(
  watch: Watch,
  path: string,
  query: Record<string, string>,
  onEvent: (type: string, obj: unknown) => void,
  signal: AbortSignal
): Promise<unknown> {
  let stop: (() => void) | undefined
  const onAbort = (): void => stop?.()
  signal.addEventListener('abort', onAbort, { once: true })
  const ended = new Promise<unknown>(resolve => {
    watch
      .watch(path, { ...query, timeoutSeconds: String(WATCH_SERVER_TIMEOUT_S) }, onEvent, err => resolve(err))
      .then(controller => {
        stop = () => controller.abort()
        // The wait may have ended while this watch was connecting: an abort now would
        // otherwise be missed, and the open stream would keep the step's process alive.
        if (signal.aborted) stop()
      })
      .catch(err => resolve(err))
  })
  const guard = setTimeout(() => stop?.(), WATCH_SERVER_TIMEOUT_S * 1000 + WATCH_CLIENT_MARGIN_MS)
  try {
    return await ended
  } finally {
    clearTimeout(guard)
    signal.removeEventListener('abort', onAbort)
  }
}

/**
 * Watches `path` until `signal` aborts. The watch asks for resourceVersion 0 ("any"): the
 * API server replays its current objects as ADDED and streams changes from there, without
 * the consistent-read wait that a resourceVersion-less watch needs on a quiet resource
 * (which times out with "Too large resource version" where etcd sends no progress
 * notifications). A resumed watch replays the state again, so handlers stay state-based.
 */
export async function watchUntilAborted<T extends KubernetesObject>(
  kube: Pick<Kube, 'kc'>,
  path: string,
  query: Record<string, string>,
  onEvent: (type: string, obj: T) => void,
  signal: AbortSignal
): Promise<void> {
  const watch = new Watch(kube.kc)
  const refusal = new RefusalTracker(path)
  while (!signal.aborted) {
    let answered = false
    const err = await watchOnce(
      watch,
      path,
      { ...query, resourceVersion: '0' },
      (type, obj) => {
        // The first event of a watch shows it is allowed again (a refused one gets none).
        if (!answered) refusal.allowed()
        answered = true
        // An ERROR event carries a Status (e.g. 410 Gone); the watch ends and is resumed below.
        if (type === 'ERROR') core.debug(`watch on ${path}: ${(obj as { message?: string })?.message ?? 'error'}`)
        else onEvent(type, obj as T)
      },
      signal
    )
    if (signal.aborted) return
    const reason = err ? String(err) : 'closed by the server'
    if (/\b(401|403)\b|Unauthorized|Forbidden/i.test(reason)) refusal.refused(reason)
    else {
      if (!err) refusal.allowed()
      core.debug(`watch on ${path} ended (${reason}); resuming`)
    }
    await sleep(RESUME_DELAY_MS)
  }
}

/**
 * How long a watch must be refused before the action calls it a missing permission. An API
 * server that has just restarted refuses requests for a moment while its authorizer's
 * caches fill (RBAC reads its roles through informers that must sync first), so a refusal
 * that goes away within this time says nothing about the credentials.
 */
export const PERSISTENT_REFUSAL_MS = 15_000

/** Refusals of one watch: a warning only when they last, and a plain note when a lasting one (or any) went away. */
export class RefusalTracker {
  private since: number | undefined
  private warned = false

  constructor(private readonly path: string) {}

  refused(reason: string): void {
    this.since ??= Date.now()
    const forMs = Date.now() - this.since
    if (!this.warned && forMs >= PERSISTENT_REFUSAL_MS) {
      this.warned = true
      core.warning(
        `Watching ${this.path} has been refused for ${Math.round(forMs / 1000)} s (${reason}); the cluster credentials may lack read access. Retrying until the wait times out.`
      )
    } else core.debug(`watch on ${this.path} refused (${reason}); retrying`)
  }

  allowed(): void {
    if (this.since === undefined) return
    const forMs = Date.now() - this.since
    this.since = undefined
    const what = `Watching ${this.path} was refused for ${Math.round(forMs / 1000)} s and is allowed again`
    if (this.warned) core.info(`${what}; the refusal was transient after all.`)
    else noteOnce(`${what}: a transient refusal, as an API server gives for a moment after a restart while its authorization caches fill. Nothing to do.`)
    this.warned = false
  }
}

const noted = new Set<string>()
/** One note per kind of event a step: several watches recovering from the same restart say it once. */
function noteOnce(text: string): void {
  const key = text.replace(/^Watching \S+ was refused for \d+ s/, '')
  if (noted.has(key)) return
  noted.add(key)
  core.info(text)
}

/**
 * Starts watches (through `start`, each a watchUntilAborted on the signal given) and
 * resolves with the first value a handler settles with, or undefined after `timeoutMs`;
 * either way every watch is stopped. The one "wait for the cluster to show X" of the action.
 */
export async function watchUntil<R>(timeoutMs: number, start: (settle: (result: R) => void, signal: AbortSignal) => void): Promise<R | undefined> {
  const abort = new AbortController()
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise<R | undefined>(resolve => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, timeoutMs))
      start(resolve, abort.signal)
    })
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
}
