// Raw calls to the API server as the agent node, and the time formats the API wants.
import { request } from 'node:https'
import type { KubeConfig } from '@kubernetes/client-node'

/**
 * A JSON request to the API server as the node. The generated client is not used here:
 * the kubelet needs control of the patch content type, and client-node serializes
 * MicroTime with millisecond precision, which the API server rejects for Leases.
 */
export async function api(kc: KubeConfig, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('kubeconfig has no current cluster')
  const url = new URL(path, cluster.server)
  const payload = body === undefined ? undefined : JSON.stringify(body)
  // An explicit length: sent chunked, a DELETE's DeleteOptions body is not read by the API
  // server, and the pod would keep its grace period.
  const length: Record<string, string> = payload === undefined ? {} : { 'content-length': String(Buffer.byteLength(payload)) }
  const opts: Parameters<typeof request>[1] = { method, headers: { 'content-type': contentType, accept: 'application/json', ...length }, timeout: 15_000 }
  await kc.applyToHTTPSOptions(opts)
  return new Promise((resolve, reject) => {
    const req = request(url, opts, res => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d.toString()))
      res.on('end', () => {
        const status = res.statusCode ?? 0
        if (status >= 200 && status < 300) resolve(text ? (JSON.parse(text) as unknown) : undefined)
        else reject(Object.assign(new Error(`${method} ${path}: ${status} ${text.slice(0, 500)}`), { code: status }))
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)))
    req.on('error', reject)
    if (payload) req.write(payload)
    req.end()
  })
}

export const SMP = 'application/strategic-merge-patch+json'
export const MERGE = 'application/merge-patch+json'

export function errCode(e: unknown): number | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? Number((e as { code: unknown }).code) : undefined
}

/** metav1.Time: seconds precision. */
export const timestamp = (d = new Date()): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z')
/** metav1.MicroTime wants exactly six fractional digits. */
export const microTime = (d = new Date()): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')

/**
 * Renews a node's Lease in kube-node-lease, making it when it is missing, as a kubelet does
 * every 10 s (kubernetes v1.34 pkg/kubelet/nodelease; leaseDurationSeconds 40): the node
 * lifecycle controller marks a node whose lease is not renewed NotReady.
 */
export async function renewNodeLease(kc: KubeConfig, node: string): Promise<void> {
  try {
    await api(kc, 'PATCH', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${node}`, { spec: { renewTime: microTime() } }, MERGE)
  } catch (e) {
    if (errCode(e) !== 404) throw e
    await api(kc, 'POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: node, namespace: 'kube-node-lease' },
      spec: { holderIdentity: node, leaseDurationSeconds: 40, renewTime: microTime() }
    })
  }
}
