// A real Kubernetes control plane on 127.0.0.1: etcd + kube-apiserver +
// kube-controller-manager + kube-scheduler, client-certificate users, all in a
// temp dir. Stands in for the AKS control plane in the e2e tests.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { ensureBinaries, type Binaries } from './binaries.js'
import { runChecked, spawnLogged, tailFile, type ManagedProcess } from './proc.js'
import { createCa, issueCert, type CertOptions, type CertPair } from './tls.js'
import { pollUntil } from '../../src/util/async.js'

export type { CertOptions, CertPair } from './tls.js'

export interface LocalCluster {
  dir: string
  /** https://127.0.0.1:PORT */
  server: string
  caPath: string
  caPem: string
  adminKubeconfigPath: string
  /** YAML, client-cert user in group system:masters, data embedded. */
  adminKubeconfig: string
  /** YAML, client-cert user "clusterUser" (not system:masters) bound to cluster-admin: what the Azure double hands out. */
  userKubeconfig: string
  /** Client cert the apiserver presents to kubelets (kubectl logs). */
  kubeletClientCert: CertPair
  /** Admin client. */
  kc: KubeConfig
  bins: Binaries
  /** Issues a cert signed by the cluster CA (e.g. a kubelet serving cert). */
  issueCert(name: string, opts: CertOptions): Promise<CertPair>
  /**
   * Stops kube-apiserver and starts it again with the same flags on the same port, as an AKS
   * control-plane upgrade or repair does; resolves once it is ready again.
   */
  restartApiServer(): Promise<void>
  stop(): Promise<void>
}

export interface StartClusterOptions {
  log?: (m: string) => void
  bins?: Binaries
  /** Overall startup bound. Default 90 s. */
  timeoutMs?: number
  /** Trust an OpenID issuer's tokens (Microsoft Entra ID for an Entra ID cluster). */
  jwt?: JwtAuthenticatorOptions
  /** More DNS names the API server's certificate holds (the public name AKS gives it). */
  serverNames?: string[]
}

/**
 * A JWT authenticator of the API server's structured authentication configuration
 * (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#using-authentication-configuration).
 */
export interface JwtAuthenticatorOptions {
  /** The tokens' `iss`. */
  issuer: string
  /** Where the API server reads the issuer's OpenID configuration (when not at `<issuer>/.well-known/openid-configuration`). */
  discoveryUrl: string
  /** PEM the API server trusts for the discovery and key URLs. */
  certificateAuthority: string
  audiences: string[]
  /** Claim that becomes the Kubernetes user name. */
  usernameClaim: string
  groupsClaim: string
}

/** The AuthenticationConfiguration file for `jwt` (JSON is YAML). */
export function authenticationConfig(jwt: JwtAuthenticatorOptions): string {
  return JSON.stringify(
    {
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'AuthenticationConfiguration',
      jwt: [
        {
          issuer: { url: jwt.issuer, discoveryURL: jwt.discoveryUrl, certificateAuthority: jwt.certificateAuthority, audiences: jwt.audiences },
          // A claim other than `sub` needs an explicit prefix; "" keeps the object ID as the user name.
          claimMappings: { username: { claim: jwt.usernameClaim, prefix: '' }, groups: { claim: jwt.groupsClaim, prefix: '' } }
        }
      ]
    },
    null,
    2
  )
}

const SERVICE_CIDR = '10.0.0.0/24'

/** A free TCP port on 127.0.0.1 (the OS picks; tiny race accepted). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

const b64 = (path: string): string => readFileSync(path).toString('base64')

function kubeconfigYaml(server: string, caPath: string, user: string, cert: CertPair): string {
  // Plain template: the shape is fixed and this avoids a YAML dependency here.
  return `apiVersion: v1
kind: Config
clusters:
- name: local-aks
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(caPath)}
users:
- name: ${user}
  user:
    client-certificate-data: ${b64(cert.certPath)}
    client-key-data: ${b64(cert.keyPath)}
contexts:
- name: ${user}@local-aks
  context:
    cluster: local-aks
    user: ${user}
current-context: ${user}@local-aks
`
}

// ------------------------------------------------------------ readiness

/** GET path on the apiserver with a client cert; resolves with status and body. */
function apiGet(server: string, path: string, ca: string, cert: CertPair): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server}${path}`, { ca, cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath), timeout: 5000 }, res => {
      let body = ''
      res.on('data', (d: Buffer) => (body += d.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

/** Polls check() until true; on deadline or a dead component, throws with that component's log tail. */
async function waitFor(what: string, deadline: number, procs: ManagedProcess[], blame: ManagedProcess, check: () => Promise<boolean>): Promise<void> {
  let lastErr = ''
  const done = await pollUntil(
    async () => {
      const dead = procs.find(p => !p.isRunning())
      if (dead) throw new Error(`${dead.name} exited while waiting for ${what}:\n${tailFile(dead.logPath, 40)}`)
      try {
        return (await check()) || undefined
      } catch (e) {
        lastErr = e instanceof Error ? e.message : String(e)
        return undefined
      }
    },
    deadline,
    250
  )
  if (done) return
  throw new Error(`timed out waiting for ${what} (${lastErr})\n--- ${blame.name} log:\n${tailFile(blame.logPath, 40)}`)
}

function isNotFound(e: unknown): boolean {
  return typeof e === 'object' && e !== null && 'code' in e && (e as { code: unknown }).code === 404
}

// ---------------------------------------------------------------- start

export async function startCluster(opts: StartClusterOptions = {}): Promise<LocalCluster> {
  const log = opts.log ?? (() => {})
  const bins = opts.bins ?? (await ensureBinaries(log))
  const dir = mkdtempSync(join(tmpdir(), 'local-aks-'))
  const procs: ManagedProcess[] = []
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    // Control-plane components together (the apiserver alone takes seconds to drain), etcd last.
    const [etcd, ...rest] = procs
    await Promise.all(rest.map(p => p.kill(3000)))
    await etcd?.kill(3000)
    if (process.env.AKS_LOCAL_KEEP === '1') log(`keeping ${dir} (AKS_LOCAL_KEEP=1)`)
    else rmSync(dir, { recursive: true, force: true })
  }
  try {
    return await boot(dir, bins, procs, stop, log, Date.now() + (opts.timeoutMs ?? 90_000), opts.jwt, opts.serverNames ?? [])
  } catch (e) {
    await stop()
    throw e
  }
}

async function boot(
  dir: string,
  bins: Binaries,
  procs: ManagedProcess[],
  stop: () => Promise<void>,
  log: (m: string) => void,
  deadline: number,
  jwt: JwtAuthenticatorOptions | undefined,
  serverNames: string[]
): Promise<LocalCluster> {
  const t0 = Date.now()
  const pki = join(dir, 'pki')
  await runChecked('mkdir', ['-p', pki, join(dir, 'etcd')], { timeoutMs: 5000 })

  // --- certificates
  const ca = await createCa(pki, 'local-aks-ca')
  const issue = (name: string, o: CertOptions): Promise<CertPair> => issueCert(pki, ca, name, o)
  const [serving, admin, user, kcm, sched, kubeletClient] = await Promise.all([
    issue('apiserver', {
      cn: 'kube-apiserver',
      usage: 'server',
      ips: ['127.0.0.1', '10.0.0.1'],
      dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', ...serverNames]
    }),
    issue('admin', { cn: 'admin', org: 'system:masters', usage: 'client' }),
    issue('cluster-user', { cn: 'clusterUser', org: 'local-aks:users', usage: 'client' }),
    issue('controller-manager', { cn: 'system:kube-controller-manager', usage: 'client' }),
    issue('scheduler', { cn: 'system:kube-scheduler', usage: 'client' }),
    issue('apiserver-kubelet-client', { cn: 'kube-apiserver-kubelet-client', org: 'system:masters', usage: 'client' })
  ])
  const saKey = join(pki, 'sa.key')
  const saPub = join(pki, 'sa.pub')
  await runChecked('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', saKey], { timeoutMs: 30_000 })
  await runChecked('openssl', ['pkey', '-in', saKey, '-pubout', '-out', saPub], { timeoutMs: 30_000 })
  log(`certificates ready (${Date.now() - t0} ms)`)

  // --- etcd
  const [etcdClient, etcdPeer, apiPort] = await Promise.all([freePort(), freePort(), freePort()])
  const etcd = spawnLogged(
    'etcd',
    bins.etcd,
    [
      '--name=local-aks',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=local-aks=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync=true', // throwaway data: durability only costs time
      '--log-level=warn'
    ],
    join(dir, 'etcd.log')
  )
  procs.push(etcd)

  // --- kube-apiserver
  const server = `https://127.0.0.1:${apiPort}`
  const authConfig = join(dir, 'authentication-config.json')
  if (jwt) writeFileSync(authConfig, authenticationConfig(jwt), { mode: 0o600 })
  const apiserverArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    `--cert-dir=${pki}`,
    `--tls-cert-file=${serving.certPath}`,
    `--tls-private-key-file=${serving.keyPath}`,
    `--secure-port=${apiPort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--authorization-mode=RBAC,Node',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${saPub}`,
    `--service-account-signing-key-file=${saKey}`,
    `--client-ca-file=${ca.certPath}`,
    `--kubelet-client-certificate=${kubeletClient.certPath}`,
    `--kubelet-client-key=${kubeletClient.keyPath}`,
    '--kubelet-preferred-address-types=InternalIP',
    '--enable-priority-and-fairness=false', // saves the APF bootstrap work and goroutines
    // Debian's etcd 3.4 sends no watch progress notifications, so the watch cache of a
    // quiet resource never catches up and consistent watches/lists time out with
    // "Too large resource version". Serving them from etcd directly avoids that.
    '--watch-cache=false',
    // A loopback advertise address cannot go into the kubernetes Service's endpoints.
    '--endpoint-reconciler-type=none',
    '--allow-privileged=true',
    // No kube-proxy here: the API server reaches a webhook's Service (Virtual Nodes v2's
    // admission controller) through its endpoints' pod IPs, as AKS's reaches the pod network.
    '--enable-aggregator-routing=true',
    '--profiling=false',
    ...(jwt ? [`--authentication-config=${authConfig}`] : []),
    '--v=1'
  ]
  const caPem = readFileSync(ca.certPath, 'utf8')
  const startApiServer = async (until: number): Promise<ManagedProcess> => {
    const p = spawnLogged('kube-apiserver', bins.kubeApiserver, apiserverArgs, join(dir, 'kube-apiserver.log'))
    procs.splice(1, 0, p)
    await waitFor('kube-apiserver /readyz', until, procs, p, async () => {
      const r = await apiGet(server, '/readyz', caPem, admin)
      return r.status === 200
    })
    return p
  }
  let apiserver = await startApiServer(deadline)
  log(`kube-apiserver ready at ${server} (${Date.now() - t0} ms)`)
  const restartApiServer = async (): Promise<void> => {
    const t = Date.now()
    await apiserver.kill(10_000)
    procs.splice(procs.indexOf(apiserver), 1)
    apiserver = await startApiServer(Date.now() + 90_000)
    log(`kube-apiserver restarted (${Date.now() - t} ms)`)
  }

  // --- kubeconfigs
  const adminKubeconfig = kubeconfigYaml(server, ca.certPath, 'admin', admin)
  const adminKubeconfigPath = join(dir, 'admin.kubeconfig')
  writeFileSync(adminKubeconfigPath, adminKubeconfig, { mode: 0o600 })
  const userKubeconfig = kubeconfigYaml(server, ca.certPath, 'clusterUser', user)
  writeFileSync(join(dir, 'user.kubeconfig'), userKubeconfig, { mode: 0o600 })
  const kcmKubeconfig = join(dir, 'controller-manager.kubeconfig')
  writeFileSync(kcmKubeconfig, kubeconfigYaml(server, ca.certPath, 'system:kube-controller-manager', kcm), { mode: 0o600 })
  const schedKubeconfig = join(dir, 'scheduler.kubeconfig')
  writeFileSync(schedKubeconfig, kubeconfigYaml(server, ca.certPath, 'system:kube-scheduler', sched), { mode: 0o600 })

  // --- controller-manager and scheduler
  const controllerManager = spawnLogged(
    'kube-controller-manager',
    bins.kubeControllerManager,
    [
      `--kubeconfig=${kcmKubeconfig}`,
      `--authentication-kubeconfig=${kcmKubeconfig}`,
      `--authorization-kubeconfig=${kcmKubeconfig}`,
      `--service-account-private-key-file=${saKey}`,
      `--root-ca-file=${ca.certPath}`,
      `--cluster-signing-cert-file=${ca.certPath}`,
      `--cluster-signing-key-file=${ca.keyPath}`,
      '--use-service-account-credentials=true',
      '--controllers=*',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--node-monitor-grace-period=40s', // AKS-like: node NotReady ~40 s after the last lease renewal
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--v=1'
    ],
    join(dir, 'kube-controller-manager.log')
  )
  procs.push(controllerManager)
  const scheduler = spawnLogged(
    'kube-scheduler',
    bins.kubeScheduler,
    [
      `--kubeconfig=${schedKubeconfig}`,
      `--authentication-kubeconfig=${schedKubeconfig}`,
      `--authorization-kubeconfig=${schedKubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--v=1'
    ],
    join(dir, 'kube-scheduler.log')
  )
  procs.push(scheduler)

  const kc = new KubeConfig()
  kc.loadFromString(adminKubeconfig)
  const core = kc.makeApiClient(CoreV1Api)

  // --- the user credential the Azure double hands out: cluster-admin via RBAC, not system:masters
  await kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: 'local-aks-cluster-user' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'clusterUser' }]
    }
  })

  // The default ServiceAccount appears only once the controller-manager works;
  // pods cannot be admitted before that.
  await waitFor('the default ServiceAccount (kube-controller-manager)', deadline, procs, controllerManager, async () => {
    try {
      await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })
      return true
    } catch (e) {
      if (isNotFound(e)) return false
      throw e
    }
  })
  log(`control plane ready (${Date.now() - t0} ms), dir ${dir}`)

  return {
    dir,
    server,
    caPath: ca.certPath,
    caPem,
    adminKubeconfigPath,
    adminKubeconfig,
    userKubeconfig,
    kubeletClientCert: kubeletClient,
    kc,
    bins,
    issueCert: (name, o) => issue(name, o),
    restartApiServer,
    stop
  }
}
