// Runs inside a pod's network namespace (started with `ip netns exec`): for each
// `<port>=<unix socket>` argument it listens on the pod's own 127.0.0.1:<port> and relays
// every connection to that unix socket, which the local AKS serves from the host side.
// Unix sockets are file-system objects, so they cross network namespaces; this is how a
// pod reaches the API server and the cluster's outbound proxy while every server of the
// local AKS listens on the host's 127.0.0.1 only. Plain JavaScript: it starts in ~0.1 s.
import { connect, createServer } from 'node:net'

for (const route of process.argv.slice(2)) {
  const eq = route.indexOf('=')
  const port = Number(route.slice(0, eq))
  const socketPath = route.slice(eq + 1)
  createServer(client => {
    const upstream = connect(socketPath)
    // Same as splice.ts (this file runs under plain node, without the TypeScript loader).
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
    client.pipe(upstream)
    upstream.pipe(client)
  }).listen(port, '127.0.0.1', () => process.stdout.write(`relay 127.0.0.1:${port} -> ${socketPath}\n`))
}
// The pod's sandbox ends this process (SIGTERM) when the pod goes.
process.on('SIGTERM', () => process.exit(0))
