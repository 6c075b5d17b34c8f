// The agent node's pod network, as kubenet gives an AKS node: every pod gets its own
// network namespace with an `eth0` (one end of a veth pair) and its own IP address from
// the node's pod CIDR, reachable from the node (so the API server can call a virtual
// node's kubelet API at `<pod IP>:10250`, the port the azure-aci chart sets). Two
// connectors can therefore both listen on 10250, as they do on AKS.
//
// A pod reaches the API server and the cluster's outbound proxy through a relay in its
// namespace (pod-network-relay.mjs) that forwards to unix sockets served here; every
// server of the local AKS keeps listening on the host's 127.0.0.1 only.
//
// Needs root (ip netns, veth). Namespaces and links are named after this process's pid,
// so a later run can tell its own from those a crashed run left behind and remove those.
import { connect, createServer, type Server } from 'node:net'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runChecked, runCommand, spawnLogged, tailFile, type ManagedProcess } from './proc.js'
import { splice } from './splice.js'
import { pollUntil } from '../../src/util/async.js'

const IP = '/usr/sbin/ip'
const NAMESPACE_PREFIX = 'lak-'
const RELAY_SCRIPT = fileURLToPath(new URL('./pod-network-relay.mjs', import.meta.url))
/** Each pod takes a /30: the node's end of the veth, the pod's end. */
const MAX_PODS = 62
const IP_TIMEOUT_MS = 15_000

/** A TCP endpoint on the host's loopback that pods reach at the same port on their own 127.0.0.1. */
export interface PodRoute {
  port: number
  /** Where the host side connects (127.0.0.1 and a port). */
  target: { host: string; port: number }
}

export interface PodSandbox {
  /** The pod's IP (status.podIP). */
  ip: string
  /** Prefix that runs a command inside the pod's network namespace. */
  exec: string[]
  destroy(): Promise<void>
}

export interface PodNetwork {
  /** The node's pod CIDR, as AKS kubenet assigns one per node. */
  podCidr: string
  createSandbox(name: string): Promise<PodSandbox>
  stop(): Promise<void>
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function ip(args: string[]): Promise<string> {
  return runChecked(IP, args, { timeoutMs: IP_TIMEOUT_MS })
}

/**
 * Namespaces a crashed run of the local AKS left behind (their owner pid is gone): end
 * the processes still inside them (pod relays and containers that run started) and
 * delete them, which also deletes their veth pairs.
 */
async function removeStaleNamespaces(log: (m: string) => void): Promise<void> {
  const list = await runCommand(IP, ['netns', 'list'], { timeoutMs: IP_TIMEOUT_MS })
  for (const name of list.stdout.split('\n').map(l => l.split(' ')[0] ?? '')) {
    const owner = new RegExp(`^${NAMESPACE_PREFIX}(\\d+)-`).exec(name)
    if (!owner || pidAlive(Number(owner[1]))) continue
    const pids = await runCommand(IP, ['netns', 'pids', name], { timeoutMs: IP_TIMEOUT_MS })
    for (const pid of pids.stdout
      .split('\n')
      .map(Number)
      .filter(p => p > 0)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone already
      }
    }
    await runCommand(IP, ['netns', 'del', name], { timeoutMs: IP_TIMEOUT_MS })
    log(`removed network namespace ${name} left by an earlier run (pid ${owner[1]})`)
  }
}

/** Host side of one route: a unix socket that connects each client to the target. */
function serveRoute(socketPath: string, target: PodRoute['target']): Promise<Server> {
  const server = createServer(client => splice(client, connect(target.port, target.host)))
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, () => resolve(server))
  })
}

export async function startPodNetwork(opts: { dir: string; routes: PodRoute[]; log?: (m: string) => void }): Promise<PodNetwork> {
  const log = opts.log ?? (() => undefined)
  await removeStaleNamespaces(log)
  mkdirSync(opts.dir, { recursive: true })
  const servers: Server[] = []
  const relayArgs: string[] = []
  for (const route of opts.routes) {
    const socketPath = join(opts.dir, `route-${route.port}.sock`)
    rmSync(socketPath, { force: true })
    servers.push(await serveRoute(socketPath, route.target))
    relayArgs.push(`${route.port}=${socketPath}`)
  }
  // One /24 per node, from 10.244.0.0/16 as kubenet does; picked by pid so that two runs
  // on one machine do not collide.
  const subnet = 1 + (process.pid % 250)
  const podCidr = `10.244.${subnet}.0/24`
  const sandboxes = new Set<PodSandbox>()
  let next = 0
  // A deleted pod's /30 is given to a later pod, as a CNI's IPAM frees a pod's address: a
  // long run (the bench's sweeps) creates far more pods than are ever alive at once.
  const freed: number[] = []

  async function createSandbox(podName: string): Promise<PodSandbox> {
    const index = freed.shift() ?? next++
    if (index >= MAX_PODS) throw new Error(`the pod network of this node is full (${MAX_PODS} pods at once)`)
    const netns = `${NAMESPACE_PREFIX}${process.pid}-${index}`
    const hostLink = `lk${process.pid.toString(36)}h${index}`
    const nodeIp = `10.244.${subnet}.${index * 4 + 1}`
    const podIp = `10.244.${subnet}.${index * 4 + 2}`
    await ip(['netns', 'add', netns])
    let relay: ManagedProcess | undefined
    const destroy = async (): Promise<void> => {
      sandboxes.delete(sandbox)
      await relay?.kill(2000)
      // Deleting the namespace deletes the pod's end of the veth, and with it the node's.
      const deleted = await runCommand(IP, ['netns', 'del', netns], { timeoutMs: IP_TIMEOUT_MS })
      if (deleted.code === 0 && !freed.includes(index)) freed.push(index)
    }
    const sandbox: PodSandbox = { ip: podIp, exec: [IP, 'netns', 'exec', netns], destroy }
    sandboxes.add(sandbox)
    try {
      await ip(['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns])
      await ip(['addr', 'add', `${nodeIp}/30`, 'dev', hostLink])
      await ip(['link', 'set', hostLink, 'up'])
      await ip(['-n', netns, 'link', 'set', 'lo', 'up'])
      await ip(['-n', netns, 'addr', 'add', `${podIp}/30`, 'dev', 'eth0'])
      await ip(['-n', netns, 'link', 'set', 'eth0', 'up'])
      await ip(['-n', netns, 'route', 'add', 'default', 'via', nodeIp])
      const logPath = join(opts.dir, `${netns}-relay.log`)
      relay = spawnLogged(`pod-network-relay[${podName}]`, IP, ['netns', 'exec', netns, process.execPath, RELAY_SCRIPT, ...relayArgs], logPath)
      await waitForRelay(relay, relayArgs.length)
      return sandbox
    } catch (e) {
      await destroy()
      throw e
    }
  }

  return {
    podCidr,
    createSandbox,
    stop: async () => {
      await Promise.all([...sandboxes].map(s => s.destroy()))
      await Promise.all(servers.map(s => new Promise<void>(resolve => s.close(() => resolve()))))
    }
  }
}

/** The relay prints one line per listening port; a pod must not start before they all listen. */
async function waitForRelay(relay: ManagedProcess, ports: number): Promise<void> {
  const listening = await pollUntil(
    async () => {
      if (!relay.isRunning()) throw new Error(`the pod network relay exited:\n${tailFile(relay.logPath, 10)}`)
      const lines = tailFile(relay.logPath, 50).split('\n')
      return lines.filter(l => l.startsWith('relay ')).length >= ports ? true : undefined
    },
    Date.now() + 10_000,
    25
  )
  if (listening) return
  throw new Error(`the pod network relay did not start listening:\n${tailFile(relay.logPath, 10)}`)
}
