// Kubernetes API access with the cluster's kubeconfig: clients, and a watch that
// resumes when the connection drops (API servers close watches every few minutes,
// and load balancers in front of AKS drop idle ones).
import * as core from '@actions/core'
import { AppsV1Api, CoreV1Api, KubeConfig, Watch, type KubernetesObject } from '@kubernetes/client-node'

export interface Kube {
  kc: KubeConfig
  core: CoreV1Api
  apps: AppsV1Api
}

/** Credential fields of a kubeconfig, masked as soon as the file is read. */
const CREDENTIAL_FIELDS = /^\s*(client-key-data|client-certificate-data|token|password):\s*(\S+)\s*$/gm

export function kubeconfigSecrets(text: string): string[] {
  return [...text.matchAll(CREDENTIAL_FIELDS)].map(m => m[2].replace(/^["']|["']$/g, ''))
}

export function maskKubeconfig(text: string): void {
  for (const secret of kubeconfigSecrets(text)) core.setSecret(secret)
}

export function kubeFromString(text: string): Kube {
  const kc = new KubeConfig()
  kc.loadFromString(text)
  return { kc, core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api) }
}

/** The API answered 404: the object is not there. */
export function isNotFound(err: unknown): boolean {
  const e = err as { code?: number; statusCode?: number; response?: { statusCode?: number }; body?: unknown }
  return e?.code === 404 || e?.statusCode === 404 || e?.response?.statusCode === 404 || /HTTP-Code: 404|"code":\s*404/.test(String((e as Error)?.message ?? ''))
}

export async function ignoreNotFound<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise
  } catch (err) {
    if (isNotFound(err)) return undefined
    throw err
  }
}

const RESUME_DELAY_MS = 1_000

/**
 * Watches `path` until `signal` aborts. The watch asks for resourceVersion 0 ("any"): the
 * API server replays its current objects as ADDED and streams changes from there, without
 * the consistent-read wait that a resourceVersion-less watch needs on a quiet resource
 * (which times out with "Too large resource version" where etcd sends no progress
 * notifications). A resumed watch replays the state again, so handlers stay state-based.
 */
export async function watchUntilAborted<T extends KubernetesObject>(
  kube: Kube,
  path: string,
  query: Record<string, string>,
  onEvent: (type: string, obj: T) => void,
  signal: AbortSignal
): Promise<void> {
  const watch = new Watch(kube.kc)
  while (!signal.aborted) {
    const ended = new Promise<unknown>(resolve => {
      watch
        .watch(
          path,
          { ...query, resourceVersion: '0' },
          (type, obj) => {
            // An ERROR event carries a Status (e.g. 410 Gone); the watch ends and is resumed below.
            if (type === 'ERROR') core.debug(`watch on ${path}: ${(obj as { message?: string })?.message ?? 'error'}`)
            else onEvent(type, obj as T)
          },
          err => resolve(err)
        )
        .then(controller => signal.addEventListener('abort', () => controller.abort(), { once: true }))
        .catch(err => resolve(err))
    })
    const err = await ended
    if (signal.aborted) return
    core.debug(`watch on ${path} ended (${err ? String(err) : 'closed by the server'}); resuming`)
    await new Promise(resolve => setTimeout(resolve, RESUME_DELAY_MS))
  }
}
