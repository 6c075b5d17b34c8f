// Azure, imitated at the HTTP level, in one place: Microsoft Entra ID (entra.ts), ARM with
// Azure RBAC and Container Instances (arm.ts, azure-rbac.ts, aci.ts), the VM's instance
// metadata service (imds.ts) and GitHub's OIDC token service (oidc.ts), behind three
// servers on 127.0.0.1:
// - HTTPS for the az CLI and the action: the cloud `LocalAzure` that az is registered
//   with (ARM at the root, Entra ID at /adfs);
// - the cluster's outbound proxy for pods (AKS's HTTP proxy configuration,
//   https://learn.microsoft.com/azure/aks/http-proxy): CONNECT to login.microsoftonline.com
//   or management.azure.com gets a TLS server with a certificate for that name from this
//   double's CA, and plain requests to 169.254.169.254 reach IMDS, so the real connector
//   talks to "public Azure" with its hard-coded host names, unchanged;
// - plain HTTP for the runner's OIDC token endpoint.
// Key material lives in a 0700 temp dir removed by stop().
import { mkdtemp, readFile, rm, chmod } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { armError, send, type HostFamily, type Reply, type Req } from './azure-http.js'
import {
  createArm,
  normalizeLocation,
  type AddonEvents,
  type Arm,
  type ArmKnobs,
  type ExtensionEvents,
  type ManagedClusterOptions,
  type ProviderState
} from './arm.js'
import { createAci, type Aci } from './aci.js'
import { createRbac, type Rbac } from './azure-rbac.js'
import { createEntra, LOGIN_HOST, objectIdFor, type Entra, type Principal } from './entra.js'
import { handleImds, IMDS_HOST } from './imds.js'
import { createGithubOidc, GITHUB_OIDC_ISSUER } from './oidc.js'
import { createCa, issueCert } from './tls.js'
import { splice } from './splice.js'
import { sleep } from '../../src/util/async.js'

export { normalizeLocation }
export type { ProviderState }

/** Host names of public Azure that clients in pods reach through the proxy. */
export const ARM_HOST = 'management.azure.com'
/** Where the connector's published chart is downloaded from (the chart-url default). */
export const GITHUB_HOST = 'github.com'
const PUBLIC_HOSTS = [LOGIN_HOST, ARM_HOST, GITHUB_HOST]

export interface ServicePrincipalOptions {
  clientId: string
  displayName?: string
  /** Client secret accepted by the token endpoint. */
  secret?: string
  /** Subject a federated assertion must carry. */
  federatedSubject?: string
}

export interface RoleAssignmentOptions {
  /** Client ID of a principal (service principal or the kubelet identity). */
  clientId: string
  role: string
  scope: string
}

export interface AzureDoubleOptions {
  tenantId: string
  subscription: { id: string; name: string }
  principals: ServicePrincipalOptions[]
  cluster: Omit<ManagedClusterOptions, 'kubeletIdentity'> & { kubeletIdentityClientId: string }
  roleAssignments: RoleAssignmentOptions[]
  /** Microsoft.ContainerInstance state at start (default false: 'NotRegistered') */
  providerInitiallyRegistered?: boolean
  /** After POST register: 'Registering' until this much time passed (default 3000) */
  providerRegistrationDelayMs?: number
}

export interface AzureRequestRecord {
  method: string
  host: string
  /** Path with query (api-version is useful to assert on); never bodies or auth headers. */
  path: string
  status: number
  at: number
}

export interface AzureDouble {
  /** https://127.0.0.1:PORT, the ARM base and the AD authority base (authority = url + '/adfs') */
  url: string
  /** PEM of the double's own CA (for REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE) */
  caPath: string
  cloudName: string
  /** For ACTIONS_ID_TOKEN_REQUEST_URL / ACTIONS_ID_TOKEN_REQUEST_TOKEN */
  oidc: { requestUrl: string; requestToken: string }
  /** The outbound proxy pods use: 127.0.0.1:port */
  proxyPort: number
  requests: AzureRequestRecord[]
  knobs: ArmKnobs & { latencyMs: number }
  entra: Entra
  rbac: Rbac
  aci: Aci
  /** Object ID of a principal by client ID. */
  objectId(clientId: string): string
  /** The API server's address and the credentials ARM hands out, once the cluster runs (it starts after this double). */
  setClusterAccess(access: Pick<ManagedClusterOptions, 'fqdn' | 'userKubeconfig' | 'adminKubeconfig'>): void
  /**
   * Lets the proxy's CONNECT to `host`:443 reach 127.0.0.1:`port` as a plain TCP relay (TLS
   * passes through, so the client sees that server's certificate): the API server's public
   * name, beyond the proxy of a runner that reaches it only through one.
   */
  relayThroughProxy(host: string, port: number): void
  /** Who hears of extension releases installed and uninstalled (the Virtual Nodes v2 stand-in). */
  setExtensionEvents(e: ExtensionEvents): void
  /** Who deploys the virtual-node add-on's connector in the cluster (the add-on stand-in). */
  setAddonEvents(e: AddonEvents): void
  /** CONNECT tunnels the proxy opened to `host` so far. */
  tunnelsTo(host: string): number
  /**
   * What https://github.com`path` answers through the proxy: these bytes (a test control: a
   * file at a published path that is not the published file, as a tampered release would be).
   */
  serveOnGithub(path: string, bytes: Buffer): void
  assignRole(a: RoleAssignmentOptions): void
  unassignRole(a: RoleAssignmentOptions): void
  state(): ReturnType<Arm['state']>
  stop(): Promise<void>
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const b = chunk as Buffer
    size += b.length
    if (size > 4_000_000) throw new Error('request body too large')
    chunks.push(b)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function listen(s: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port))
  })
}

export async function startAzureDouble(opts: AzureDoubleOptions): Promise<AzureDouble> {
  const dir = await mkdtemp(join(tmpdir(), 'azure-double-'))
  await chmod(dir, 0o700)
  const ca = await createCa(dir, 'Local Azure Double CA')
  const [local, publicHosts] = await Promise.all([
    issueCert(dir, ca, 'local', { cn: '127.0.0.1', usage: 'server', ips: ['127.0.0.1'], dns: ['localhost'] }),
    issueCert(dir, ca, 'public', { cn: ARM_HOST, usage: 'server', dns: PUBLIC_HOSTS })
  ])

  const github = createGithubOidc()
  const kubeletIdentity: Principal = {
    clientId: opts.cluster.kubeletIdentityClientId,
    objectId: objectIdFor(opts.cluster.kubeletIdentityClientId),
    displayName: `${opts.cluster.name}-agentpool`,
    kind: 'ManagedIdentity'
  }
  const entra = createEntra({
    tenantId: opts.tenantId,
    principals: [
      ...opts.principals.map((p): Principal => ({
        clientId: p.clientId,
        objectId: objectIdFor(p.clientId),
        displayName: p.displayName ?? p.clientId,
        kind: 'ServicePrincipal',
        secret: p.secret,
        federatedSubject: p.federatedSubject
      })),
      kubeletIdentity
    ],
    verifyAssertion: jwt => github.verify(jwt),
    githubIssuer: GITHUB_OIDC_ISSUER
  })
  const rbac = createRbac({ subscriptionId: opts.subscription.id })
  const objectId = (clientId: string): string => {
    const p = entra.principal(clientId)
    if (!p) throw new Error(`no principal with client ID ${clientId}`)
    return p.objectId
  }
  for (const a of opts.roleAssignments) rbac.assign(objectId(a.clientId), a.role, a.scope)
  // ACI creates only once its provider is registered, which ARM tracks (bound below).
  let providerRegistered = (): boolean => false
  const aci = createAci({
    subscriptionId: opts.subscription.id,
    // The cluster's region and one more where ACI runs (West US 2, listed in
    // https://learn.microsoft.com/azure/container-instances/container-instances-region-availability),
    // so a connector can put its groups in a region other than the cluster's.
    locations: [...new Set([normalizeLocation(opts.cluster.location), 'westus2'])],
    providerRegistered: () => providerRegistered(),
    // The node resource group's VNet (arm.ts): a delegated subnet's range.
    subnetPrefix: id => {
      const name = /\/subnets\/([^/]+)$/i.exec(id)?.[1]
      const s = arm.state().subnets.find(x => x.name === name && x.delegations.some(d => d.serviceName === 'Microsoft.ContainerInstance/containerGroups'))
      return s?.addressPrefix
    }
  })
  const cluster = {
    ...opts.cluster,
    location: normalizeLocation(opts.cluster.location),
    kubeletIdentity: { clientId: kubeletIdentity.clientId, objectId: kubeletIdentity.objectId }
  }
  // The cluster (and the v2 stand-in in it) starts after this double: events reach it once it is there.
  let extensionTarget: ExtensionEvents | undefined
  let addonTarget: AddonEvents | undefined
  const arm: Arm = createArm({
    extensionEvents: { installed: (n, s) => extensionTarget?.installed(n, s), uninstalled: n => extensionTarget?.uninstalled(n) },
    addonEvents: { enabled: a => addonTarget?.enabled(a), disabled: () => addonTarget?.disabled() },
    subscription: opts.subscription,
    tenantId: opts.tenantId,
    cluster,
    entra,
    rbac,
    aci,
    providerInitiallyRegistered: opts.providerInitiallyRegistered ?? false,
    providerRegistrationDelayMs: opts.providerRegistrationDelayMs ?? 3000
  })
  providerRegistered = () => arm.state().providerState === 'Registered'

  const requests: AzureRequestRecord[] = []
  const latency = { ms: 0 }

  /** Reads the request, adds the configured latency, answers, and records what was asked (never bodies or headers). */
  const serve =
    (family: (req: Req) => HostFamily, answer: (req: Req) => Reply) =>
    async (raw: IncomingMessage, res: ServerResponse, origin: string): Promise<void> => {
      const at = Date.now()
      const url = new URL(raw.url ?? '/', origin)
      let reply: Reply
      let req: Req | undefined
      try {
        req = { method: raw.method ?? 'GET', url, headers: raw.headers, body: await readBody(raw) }
        if (latency.ms > 0) await sleep(latency.ms)
        reply = answer(req)
      } catch (e) {
        reply = armError(500, 'InternalServerError', `The double failed: ${e instanceof Error ? e.message : String(e)}`)
      }
      requests.push({ method: raw.method ?? 'GET', host: url.host, path: url.pathname + url.search, status: reply.status, at })
      send(res, reply, req ? family(req) : 'arm')
    }

  // ----- the LocalAzure cloud (az, the action)
  let base = ''
  const isEntraPath = (req: Req): boolean => /^\/(adfs|entra)\//i.test(req.url.pathname)
  const localHandler = serve(
    req => (isEntraPath(req) ? 'aad' : 'arm'),
    req =>
      req.url.pathname.toLowerCase().startsWith('/adfs')
        ? entra.handleAdfs(req, base)
        : req.url.pathname.startsWith('/entra/')
          ? entra.handleIssuerDiscovery(req, base)
          : arm.handle(req, base)
  )
  const localServer = createHttpsServer(
    { key: await readFile(local.keyPath), cert: await readFile(local.certPath) },
    (req, res) => void localHandler(req, res, base)
  )
  base = `https://127.0.0.1:${await listen(localServer)}`

  // ----- public Azure host names, reached through the proxy's CONNECT tunnels (never listening itself)
  const publicHandler = serve(
    req => (req.url.host === LOGIN_HOST ? 'aad' : 'arm'),
    req => (req.url.host === LOGIN_HOST ? entra.handleLogin(req) : arm.handle(req, `https://${ARM_HOST}`))
  )
  const githubFiles = new Map<string, Buffer>()
  const publicServer = createHttpsServer({ key: await readFile(publicHosts.keyPath), cert: await readFile(publicHosts.certPath) }, (req, res) => {
    const host = (req.headers.host ?? '').replace(/:443$/, '')
    if (host === GITHUB_HOST) {
      const path = new URL(req.url ?? '/', `https://${host}`).pathname
      const file = githubFiles.get(path)
      requests.push({ method: req.method ?? 'GET', host, path, status: file ? 200 : 404, at: Date.now() })
      if (file) res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(file.length) }).end(file)
      else res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found')
      return
    }
    void publicHandler(req, res, `https://${host}`)
  })

  // ----- the outbound proxy
  const imdsHandler = serve(
    () => 'imds',
    req => handleImds(req, entra, arm.vmIdentities())
  )
  const proxy = createHttpServer((req, res) => {
    let target: URL | undefined
    try {
      target = new URL(req.url ?? '')
    } catch {
      target = undefined
    }
    if (target?.protocol === 'http:' && target.hostname === IMDS_HOST) {
      void imdsHandler(req, res, `http://${IMDS_HOST}`)
      return
    }
    // Only Azure's endpoints are reachable from this cluster's network.
    res.writeHead(502, { 'content-type': 'text/plain' }).end(`The proxy cannot reach ${req.url ?? ''} from this network.\n`)
  })
  const tunnels = new Set<Socket>()
  const relays = new Map<string, number>()
  const tunnelCounts = new Map<string, number>()
  proxy.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const [host, port] = (req.url ?? '').split(':')
    const relayPort = relays.get(host?.toLowerCase() ?? '')
    if (host && relayPort !== undefined && (port ?? '443') === '443') {
      tunnelCounts.set(host.toLowerCase(), (tunnelCounts.get(host.toLowerCase()) ?? 0) + 1)
      tunnels.add(socket)
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      const upstream = connect(relayPort, '127.0.0.1')
      if (head.length > 0) upstream.write(head)
      splice(socket, upstream, () => tunnels.delete(socket))
      return
    }
    if (!host || !PUBLIC_HOSTS.includes(host.toLowerCase()) || (port ?? '443') !== '443') {
      socket.end(`HTTP/1.1 502 Bad Gateway\r\n\r\nThe proxy cannot reach ${req.url ?? ''} from this network.\r\n`)
      return
    }
    tunnels.add(socket)
    socket.on('close', () => tunnels.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    if (head.length > 0) socket.unshift(head)
    publicServer.emit('connection', socket)
  })
  const proxyPort = await listen(proxy)

  // ----- GitHub's OIDC token service
  const oidcHandler = serve(
    () => 'github',
    req => github.handle(req)
  )
  const oidcServer = createHttpServer((req, res) => void oidcHandler(req, res, 'http://127.0.0.1'))
  const oidcPort = await listen(oidcServer)

  const close = (s: Server): Promise<void> =>
    new Promise(resolve => {
      s.close(() => resolve())
      s.closeAllConnections()
    })

  return {
    url: base,
    caPath: ca.certPath,
    cloudName: 'LocalAzure',
    oidc: { requestUrl: `http://127.0.0.1:${oidcPort}/_apis/idtoken?api-version=2.0`, requestToken: github.requestToken },
    proxyPort,
    requests,
    knobs: {
      ...arm.knobs,
      get latencyMs() {
        return latency.ms
      },
      set latencyMs(ms: number) {
        latency.ms = ms
      }
    },
    entra,
    rbac,
    aci,
    objectId,
    setClusterAccess: access => void Object.assign(cluster, access),
    setExtensionEvents: e => {
      extensionTarget = e
    },
    setAddonEvents: e => {
      addonTarget = e
    },
    relayThroughProxy: (host, port) => void relays.set(host.toLowerCase(), port),
    tunnelsTo: host => tunnelCounts.get(host.toLowerCase()) ?? 0,
    serveOnGithub: (path, bytes) => void githubFiles.set(path, bytes),
    assignRole: a => void rbac.assign(objectId(a.clientId), a.role, a.scope),
    unassignRole: a => rbac.unassign(objectId(a.clientId), a.role, a.scope),
    state: () => arm.state(),
    stop: async () => {
      for (const t of tunnels) t.destroy()
      await Promise.all([close(localServer), close(proxy), close(oidcServer)])
      await rm(dir, { recursive: true, force: true })
    }
  }
}
