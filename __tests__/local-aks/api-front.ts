// What stands in front of an AKS API server, as far as the tests need it: a TCP relay on
// 127.0.0.1 (TLS passes through untouched) that can drop every open connection at once,
// as Azure's load balancer drops idle watches. The action gets its address in the
// kubeconfig, so a drop hits exactly the connections the action holds.
import { connect, createServer, type Socket } from 'node:net'
import { splice } from './splice.js'

export interface ApiFront {
  /** https://127.0.0.1:<port>, for kubeconfigs */
  server: string
  host: string
  /** Destroys every open client connection (and its upstream); returns how many there were. */
  dropAll(): number
  stop(): Promise<void>
}

export async function startApiFront(upstream: URL): Promise<ApiFront> {
  const clients = new Set<Socket>()
  const relay = createServer(client => {
    clients.add(client)
    splice(client, connect(Number(upstream.port), upstream.hostname), () => clients.delete(client))
  })
  await new Promise<void>((resolve, reject) => {
    relay.once('error', reject)
    relay.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (relay.address() as { port: number }).port
  return {
    server: `https://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    dropAll: () => {
      const n = clients.size
      for (const c of [...clients]) c.destroy()
      return n
    },
    stop: () =>
      new Promise<void>(resolve => {
        for (const c of [...clients]) c.destroy()
        relay.close(() => resolve())
      })
  }
}
