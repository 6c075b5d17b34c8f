/**
 * A double of Azure imitated at the HTTP level: Azure AD (behind an `/adfs` authority, so the
 * real az CLI / MSAL skip instance discovery), Azure Resource Manager, and a GitHub-like OIDC
 * token endpoint for federated sign-in. The real `az` (2.45) and the action's own HTTPS calls
 * talk to it unchanged; only the cloud registration and the CA bundle point them here.
 *
 * Everything listens on 127.0.0.1. Key material lives in a 0700 temp dir removed by stop().
 */
import { execFile } from 'node:child_process'
import { createPublicKey, generateKeyPairSync, randomUUID, sign, timingSafeEqual, verify, createHash } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export type ProviderState = 'NotRegistered' | 'Registering' | 'Registered'

export interface AzurePrincipal {
  clientId: string
  /** Client secret accepted by the token endpoint; without one, secret sign-in fails like a wrong secret. */
  secret?: string
  /** Subject a federated assertion must carry; undefined = any subject of a token this double issued. */
  federatedSubject?: string
}

export interface AzureClusterOptions {
  resourceGroup: string
  name: string
  /** Display ('East US') or normalized ('eastus'); served normalized like ARM does. */
  location: string
  /** host[:port] of the local apiserver */
  fqdn: string
  nodeResourceGroup: string
  enableRBAC: boolean
  kubernetesVersion: string
  kubeletIdentityClientId?: string
  aad?: boolean
  /** YAML text, returned base64 by listClusterUserCredential */
  userKubeconfig: string
  /** YAML text, returned base64 by listClusterAdminCredential */
  adminKubeconfig: string
}

export interface AzureDoubleOptions {
  tenantId: string
  subscription: { id: string; name: string }
  principals: AzurePrincipal[]
  cluster: AzureClusterOptions
  /** Microsoft.ContainerInstance state at start (default false: 'NotRegistered') */
  providerInitiallyRegistered?: boolean
  /** After POST register: 'Registering' until this much time passed (default 3000) */
  providerRegistrationDelayMs?: number
}

export interface AzureRequestRecord {
  method: string
  /** Path with query (api-version is useful to assert on); never bodies or auth headers. */
  path: string
  status: number
  at: number
}

export interface AzureKnobs {
  /** Added before every response (AD, ARM and OIDC). */
  latencyMs: number
  /** The next `count` requests whose path starts with `pathPrefix` (default: any ARM request) fail. */
  failNext(count: number, status: 429 | 503, retryAfterSeconds: number, pathPrefix?: string): void
  setProviderState(s: ProviderState): void
}

export interface AzureDouble {
  /** https://127.0.0.1:PORT, the ARM base and the AD authority base (authority = url + '/adfs') */
  url: string
  /** PEM of the double's own CA (for REQUESTS_CA_BUNDLE and NODE_EXTRA_CA_CERTS) */
  caPath: string
  cloudName: string
  /** For ACTIONS_ID_TOKEN_REQUEST_URL / ACTIONS_ID_TOKEN_REQUEST_TOKEN */
  oidc: { requestUrl: string; requestToken: string }
  requests: AzureRequestRecord[]
  knobs: AzureKnobs
  state(): { providerState: string; registerCalls: number }
  stop(): Promise<void>
}

/** Resource ids (audiences) ARM accepts, as the real one does. */
export const ARM_AUDIENCES = [
  'https://management.core.windows.net/',
  'https://management.core.windows.net',
  'https://management.azure.com/',
  'https://management.azure.com'
]
export const GITHUB_OIDC_ISSUER = 'https://token.actions.githubusercontent.com'
export const FEDERATED_AUDIENCE = 'api://AzureADTokenExchange'
const DEFAULT_OIDC_SUBJECT = 'repo:octo/repo:ref:refs/heads/main'
const ACCESS_TOKEN_LIFETIME_S = 3599

// ---------------------------------------------------------------------------------------------
// Certificates (openssl CLI, so nothing beyond Node built-ins is needed)
// ---------------------------------------------------------------------------------------------

interface TlsMaterial {
  dir: string
  caPath: string
  key: string
  cert: string
}

/**
 * A CA and a server certificate for 127.0.0.1/localhost. The extensions satisfy strict
 * verifiers (Python 3.13's VERIFY_X509_STRICT wants AKI/SKI and a critical CA constraint).
 */
async function makeTls(): Promise<TlsMaterial> {
  const dir = await mkdtemp(join(tmpdir(), 'azure-double-'))
  await chmod(dir, 0o700)
  const p = (f: string): string => join(dir, f)
  const ossl = async (args: string[]): Promise<void> => {
    await execFileAsync('openssl', args, { timeout: 30_000 })
  }
  await writeFile(p('leaf.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid'
  ].join('\n') + '\n')
  await ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'),
    '-days', '2', '-subj', '/CN=Local Azure Double CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash'])
  await ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'),
    '-subj', '/CN=127.0.0.1'])
  await ossl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'),
    '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-sha256', '-extfile', p('leaf.ext')])
  await chmod(p('ca.key'), 0o600)
  await chmod(p('server.key'), 0o600)
  return { dir, caPath: p('ca.pem'), key: await readFile(p('server.key'), 'utf8'), cert: await readFile(p('server.pem'), 'utf8') }
}

// ---------------------------------------------------------------------------------------------
// JWTs (RS256 with node:crypto)
// ---------------------------------------------------------------------------------------------

type Claims = Record<string, unknown>

interface Signer {
  kid: string
  privateKey: KeyObject
  publicKey: KeyObject
}

function newSigner(): Signer {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicKey = createPublicKey(privateKey)
  const der = publicKey.export({ type: 'spki', format: 'der' })
  return { kid: createHash('sha1').update(der).digest('base64url'), privateKey, publicKey }
}

const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url')

function signJwt(signer: Signer, claims: Claims): string {
  const header = { typ: 'JWT', alg: 'RS256', kid: signer.kid, x5t: signer.kid }
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
  return `${input}.${sign('sha256', Buffer.from(input), signer.privateKey).toString('base64url')}`
}

/** The claims if `token` is a well-formed JWT signed by `signer`, else undefined. Expiry is the caller's call. */
function verifyJwt(signer: Signer, token: string): Claims | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  const [h, c, s] = parts as [string, string, string]
  try {
    if (!verify('sha256', Buffer.from(`${h}.${c}`), signer.publicKey, Buffer.from(s, 'base64url'))) return undefined
    const claims: unknown = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'))
    return typeof claims === 'object' && claims !== null ? (claims as Claims) : undefined
  } catch {
    return undefined
  }
}

function jwk(signer: Signer): Record<string, unknown> {
  return { ...signer.publicKey.export({ format: 'jwk' }), kid: signer.kid, x5t: signer.kid, use: 'sig', alg: 'RS256' }
}

const nowS = (): number => Math.floor(Date.now() / 1000)

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

interface Reply {
  status: number
  body: unknown
  headers?: Record<string, string>
}

interface Req {
  method: string
  url: URL
  /** Lower-cased path without query, for case-insensitive ARM matching */
  lpath: string
  headers: IncomingMessage['headers']
  body: string
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const b = chunk as Buffer
    size += b.length
    if (size > 1_000_000) throw new Error('request body too large')
    chunks.push(b)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function send(res: ServerResponse, reply: Reply, family: 'arm' | 'aad' | 'github'): void {
  const requestId = randomUUID()
  const base: Record<string, string> = family === 'arm'
    ? {
        'Cache-Control': 'no-cache',
        Pragma: 'no-cache',
        Expires: '-1',
        'x-ms-request-id': requestId,
        'x-ms-correlation-request-id': requestId,
        'x-ms-routing-request-id': `EASTUS:${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}Z:${requestId}`,
        'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
        'X-Content-Type-Options': 'nosniff',
        'X-Cache': 'CONFIG_NOCACHE'
      }
    : family === 'aad'
      ? {
          'Cache-Control': 'no-store, no-cache',
          Pragma: 'no-cache',
          Expires: '-1',
          'x-ms-request-id': requestId,
          'x-ms-ests-server': '2.1.17000.3 - EUS ProdSlices',
          'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
          'X-Content-Type-Options': 'nosniff',
          P3P: 'CP="DSP CUR OTPi IND OTRi ONL FIN"'
        }
      : { 'x-github-request-id': requestId.slice(0, 18).toUpperCase() }
  const text = reply.body === undefined ? '' : JSON.stringify(reply.body)
  res.writeHead(reply.status, {
    ...base,
    ...(text ? { 'Content-Type': 'application/json; charset=utf-8' } : {}),
    'Content-Length': String(Buffer.byteLength(text)),
    ...reply.headers
  })
  res.end(text)
}

const armError = (status: number, code: string, message: string, headers?: Record<string, string>): Reply =>
  ({ status, body: { error: { code, message } }, headers })

function aadError(status: number, error: string, code: number, description: string): Reply {
  const traceId = randomUUID()
  const correlationId = randomUUID()
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`
    }
  }
}

/** Azure's display-name to name normalization, as az and ARM do ('East US' -> 'eastus'). */
export function normalizeLocation(location: string): string {
  return location.replace(/\s+/g, '').toLowerCase()
}

function displayLocation(location: string): string {
  if (/\s/.test(location)) return location
  const known: Record<string, string> = { eastus: 'East US', eastus2: 'East US 2', westus: 'West US', westus2: 'West US 2', westeurope: 'West Europe', northeurope: 'North Europe', centralus: 'Central US' }
  return known[normalizeLocation(location)] ?? location
}

// ---------------------------------------------------------------------------------------------
// The double
// ---------------------------------------------------------------------------------------------

interface Failure {
  remaining: number
  status: 429 | 503
  retryAfterSeconds: number
  pathPrefix?: string
}

export async function startAzureDouble(opts: AzureDoubleOptions): Promise<AzureDouble> {
  const tls = await makeTls()
  const adKey = newSigner() // signs access tokens
  const githubKey = newSigner() // signs the GitHub-like OIDC tokens
  const oidcRequestToken = randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '')
  const requests: AzureRequestRecord[] = []
  const failures: Failure[] = []
  const registrationDelayMs = opts.providerRegistrationDelayMs ?? 3000
  const provider = {
    state: (opts.providerInitiallyRegistered ? 'Registered' : 'NotRegistered') as ProviderState,
    since: 0,
    registerCalls: 0
  }
  const knobs: AzureKnobs = {
    latencyMs: 0,
    failNext(count, status, retryAfterSeconds, pathPrefix) {
      failures.push({ remaining: count, status, retryAfterSeconds, pathPrefix })
    },
    setProviderState(s) {
      provider.state = s
      provider.since = Date.now()
    }
  }
  // Registering turns into Registered lazily, when somebody looks.
  const providerState = (): ProviderState => {
    if (provider.state === 'Registering' && Date.now() - provider.since >= registrationDelayMs) provider.state = 'Registered'
    return provider.state
  }

  let url = '' // known once listening
  const sub = opts.subscription
  const cluster = opts.cluster
  const location = normalizeLocation(cluster.location)

  // ----- Azure AD (authority <url>/adfs) ------------------------------------------------------

  const openidConfiguration = (): Reply => ({
    status: 200,
    body: {
      issuer: `${url}/adfs`,
      authorization_endpoint: `${url}/adfs/oauth2/authorize/`,
      token_endpoint: `${url}/adfs/oauth2/token/`,
      device_authorization_endpoint: `${url}/adfs/oauth2/devicecode`,
      jwks_uri: `${url}/adfs/discovery/keys`,
      userinfo_endpoint: `${url}/adfs/userinfo`,
      end_session_endpoint: `${url}/adfs/oauth2/logout`,
      access_token_issuer: `https://sts.windows.net/${opts.tenantId}/`,
      response_types_supported: ['code', 'id_token', 'code id_token', 'token'],
      response_modes_supported: ['query', 'fragment', 'form_post'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'device_code'],
      subject_types_supported: ['pairwise'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
      microsoft_multi_refresh_token: true
    }
  })

  /** Which principal authenticated, or the AADSTS error to return. */
  function authenticateClient(form: URLSearchParams, authorization: string | undefined): { principal: AzurePrincipal } | { error: Reply } {
    let clientId = form.get('client_id') ?? ''
    let secret = form.get('client_secret') ?? undefined
    if (authorization?.startsWith('Basic ')) {
      const [id, pw] = Buffer.from(authorization.slice(6), 'base64').toString('utf8').split(':')
      clientId = decodeURIComponent(id ?? '')
      secret = decodeURIComponent(pw ?? '')
    }
    const principal = opts.principals.find((p) => p.clientId.toLowerCase() === clientId.toLowerCase())
    if (!principal) {
      return { error: aadError(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${opts.tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`) }
    }
    const assertion = form.get('client_assertion')
    if (assertion !== null) return checkAssertion(principal, form.get('client_assertion_type'), assertion)
    if (secret === undefined) {
      return { error: aadError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.") }
    }
    if (principal.secret === undefined || !safeEqual(secret, principal.secret)) {
      return { error: aadError(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${principal.clientId}'.`) }
    }
    return { principal }
  }

  /** Federated credential check: a token from our GitHub-like issuer, for the exchange audience, unexpired, right subject. */
  function checkAssertion(principal: AzurePrincipal, type: string | null, assertion: string): { principal: AzurePrincipal } | { error: Reply } {
    if (type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      return { error: aadError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.') }
    }
    const claims = verifyJwt(githubKey, assertion)
    if (!claims) return { error: aadError(401, 'invalid_client', 700027, 'Client assertion contains an invalid signature.') }
    const exp = Number(claims['exp'])
    if (!(exp > nowS())) {
      return { error: aadError(400, 'invalid_client', 700024, `Client assertion is not within its valid time range. Current time: ${new Date().toISOString()}, expiry time of assertion ${new Date(exp * 1000).toISOString()}.`) }
    }
    const aud = claims['aud']
    const subject = String(claims['sub'])
    const audOk = aud === FEDERATED_AUDIENCE || (Array.isArray(aud) && aud.includes(FEDERATED_AUDIENCE))
    if (!audOk || claims['iss'] !== GITHUB_OIDC_ISSUER || (principal.federatedSubject !== undefined && principal.federatedSubject !== subject)) {
      return { error: aadError(400, 'invalid_request', 70021, `No matching federated identity record found for presented assertion. Assertion Issuer: '${String(claims['iss'])}'. Assertion Subject: '${subject}'. Assertion Audience: '${String(aud)}'. https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation`) }
    }
    return { principal }
  }

  function tokenEndpoint(req: Req): Reply {
    const form = new URLSearchParams(req.body)
    const grant = form.get('grant_type')
    if (grant !== 'client_credentials') {
      return aadError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant ?? ''}'.`)
    }
    const auth = authenticateClient(form, req.headers.authorization)
    if ('error' in auth) return auth.error
    // v2 style 'scope=<resource>/.default' (MSAL) or v1 style 'resource=<resource>'
    const scope = form.get('scope')?.split(' ').find((s) => s.endsWith('/.default'))
    const resource = scope ? scope.slice(0, -'/.default'.length) : form.get('resource') ?? ''
    if (!resource) return aadError(400, 'invalid_scope', 1002012, 'The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).')
    const iat = nowS()
    const oid = objectIdFor(auth.principal.clientId)
    const accessToken = signJwt(adKey, {
      aud: resource, iss: `https://sts.windows.net/${opts.tenantId}/`, iat, nbf: iat, exp: iat + ACCESS_TOKEN_LIFETIME_S,
      aio: randomUUID(), appid: auth.principal.clientId, appidacr: form.has('client_assertion') ? '2' : '1',
      idp: `https://sts.windows.net/${opts.tenantId}/`, idtyp: 'app', oid, rh: '0.AAAA.', sub: oid, tid: opts.tenantId,
      uti: randomUUID().replace(/-/g, '').slice(0, 22), ver: '1.0', xms_tcdt: 1600000000
    })
    return {
      status: 200,
      body: { token_type: 'Bearer', expires_in: ACCESS_TOKEN_LIFETIME_S, ext_expires_in: ACCESS_TOKEN_LIFETIME_S, access_token: accessToken }
    }
  }

  function handleAad(req: Req): Reply {
    const p = req.lpath.replace(/\/+$/, '')
    if (req.method === 'GET' && p === '/adfs/.well-known/openid-configuration') return openidConfiguration()
    if (req.method === 'GET' && p === '/adfs/discovery/keys') return { status: 200, body: { keys: [jwk(adKey)] } }
    if (req.method === 'POST' && p === '/adfs/oauth2/token') return tokenEndpoint(req)
    return aadError(404, 'invalid_request', 90002, `The endpoint '${req.url.pathname}' is not supported by this authority.`)
  }

  // ----- ARM ------------------------------------------------------------------------------------

  const subscriptionBody = (): Record<string, unknown> => ({
    id: `/subscriptions/${sub.id}`,
    authorizationSource: 'RoleBased',
    managedByTenants: [],
    subscriptionId: sub.id,
    tenantId: opts.tenantId,
    displayName: sub.name,
    state: 'Enabled',
    subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' }
  })

  const tenantBody = (): Record<string, unknown> => ({
    id: `/tenants/${opts.tenantId}`,
    tenantId: opts.tenantId,
    countryCode: 'US',
    displayName: 'Local Azure Double',
    domains: ['localazure.onmicrosoft.com'],
    tenantCategory: 'Home',
    defaultDomain: 'localazure.onmicrosoft.com',
    tenantType: 'AAD'
  })

  const providerBody = (namespace: string, state: string): Record<string, unknown> => ({
    id: `/subscriptions/${sub.id}/providers/${namespace}`,
    namespace,
    authorizations: [],
    resourceTypes: namespace === 'Microsoft.ContainerInstance'
      ? [{ resourceType: 'containerGroups', locations: [displayLocation(cluster.location)], apiVersions: ['2023-05-01', '2022-09-01', '2021-09-01'], capabilities: 'SupportsTags, SupportsLocation' },
          { resourceType: 'locations', locations: [], apiVersions: ['2023-05-01', '2022-09-01'] }]
      : [{ resourceType: 'managedClusters', locations: [displayLocation(cluster.location)], apiVersions: ['2023-01-01', '2022-11-01', '2022-09-01'], capabilities: 'SupportsTags, SupportsLocation' }],
    registrationState: state,
    registrationPolicy: 'RegistrationRequired'
  })

  const providerStateOf = (namespace: string): string =>
    namespace.toLowerCase() === 'microsoft.containerinstance' ? providerState() : 'Registered'

  const KNOWN_PROVIDERS = ['Microsoft.ContainerInstance', 'Microsoft.ContainerService', 'Microsoft.Resources', 'Microsoft.Network', 'Microsoft.Compute']
  const canonicalNamespace = (ns: string): string | undefined => KNOWN_PROVIDERS.find((k) => k.toLowerCase() === ns.toLowerCase())

  const clusterId = `/subscriptions/${sub.id}/resourcegroups/${cluster.resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${cluster.name}`

  function clusterBody(): Record<string, unknown> {
    const dnsPrefix = `${cluster.name}-${cluster.resourceGroup}-${sub.id.slice(0, 6)}`.slice(0, 54)
    const identityProfile = cluster.kubeletIdentityClientId
      ? {
          kubeletidentity: {
            resourceId: `/subscriptions/${sub.id}/resourcegroups/${cluster.nodeResourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${cluster.name}-agentpool`,
            clientId: cluster.kubeletIdentityClientId,
            objectId: objectIdFor(cluster.kubeletIdentityClientId)
          }
        }
      : undefined
    return {
      id: clusterId,
      location,
      name: cluster.name,
      type: 'Microsoft.ContainerService/ManagedClusters',
      sku: { name: 'Base', tier: 'Free' },
      identity: { type: 'SystemAssigned', principalId: objectIdFor(`${cluster.name}-principal`), tenantId: opts.tenantId },
      properties: {
        provisioningState: 'Succeeded',
        powerState: { code: 'Running' },
        kubernetesVersion: cluster.kubernetesVersion,
        currentKubernetesVersion: cluster.kubernetesVersion,
        dnsPrefix,
        fqdn: cluster.fqdn,
        azurePortalFQDN: `${dnsPrefix}-portal.hcp.${location}.azmk8s.io`,
        agentPoolProfiles: [{
          name: 'nodepool1', count: 1, vmSize: 'Standard_DS2_v2', osDiskSizeGB: 128, osDiskType: 'Managed', kubeletDiskType: 'OS',
          maxPods: 110, type: 'VirtualMachineScaleSets', enableAutoScaling: false, provisioningState: 'Succeeded', powerState: { code: 'Running' },
          orchestratorVersion: cluster.kubernetesVersion, currentOrchestratorVersion: cluster.kubernetesVersion, enableNodePublicIP: false,
          mode: 'System', osType: 'Linux', osSKU: 'Ubuntu', nodeImageVersion: 'AKSUbuntu-2204gen2containerd-202401.09.0', enableFIPS: false
        }],
        servicePrincipalProfile: { clientId: 'msi' },
        addonProfiles: {},
        nodeResourceGroup: cluster.nodeResourceGroup,
        enableRBAC: cluster.enableRBAC,
        networkProfile: {
          networkPlugin: 'kubenet', loadBalancerSku: 'Standard', podCidr: '10.244.0.0/16', serviceCidr: '10.0.0.0/16',
          dnsServiceIP: '10.0.0.10', outboundType: 'loadBalancer', podCidrs: ['10.244.0.0/16'], serviceCidrs: ['10.0.0.0/16'], ipFamilies: ['IPv4']
        },
        ...(cluster.aad ? { aadProfile: { managed: true, enableAzureRBAC: false, tenantID: opts.tenantId, adminGroupObjectIDs: null } } : {}),
        maxAgentPools: 100,
        ...(identityProfile ? { identityProfile } : {}),
        disableLocalAccounts: false,
        securityProfile: {},
        storageProfile: { diskCSIDriver: { enabled: true }, fileCSIDriver: { enabled: true }, snapshotController: { enabled: true } },
        oidcIssuerProfile: { enabled: false }
      }
    }
  }

  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')

  /** 401 replies for a missing/foreign/expired bearer token, else undefined. */
  function checkBearer(req: Req): Reply | undefined {
    const challenge = {
      'WWW-Authenticate': `Bearer authorization_uri="${url}/adfs", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`
    }
    const auth = req.headers.authorization
    if (!auth) return armError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", challenge)
    const m = /^Bearer (\S+)$/i.exec(auth)
    if (!m) return armError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is provided in an invalid format.", challenge)
    const claims = verifyJwt(adKey, m[1] ?? '')
    if (!claims) return armError(401, 'InvalidAuthenticationToken', 'The access token is invalid.', challenge)
    const exp = Number(claims['exp'])
    if (!(exp > nowS())) {
      return armError(401, 'ExpiredAuthenticationToken', `The access token expiry UTC time '${new Date(exp * 1000).toUTCString()}' is earlier than current UTC time '${new Date().toUTCString()}'.`, challenge)
    }
    const aud = String(claims['aud'])
    if (!ARM_AUDIENCES.includes(aud)) {
      return armError(401, 'InvalidAuthenticationTokenAudience', `The access token has been obtained for wrong audience or resource '${aud}'. It should exactly match with one of the allowed audiences ${ARM_AUDIENCES.map((a) => `'${a}'`).join(',')}.`, challenge)
    }
    if (claims['tid'] !== opts.tenantId) return armError(401, 'InvalidAuthenticationTokenTenant', `The access token is from the wrong issuer '${String(claims['iss'])}'. It must match the tenant associated with this subscription.`, challenge)
    return undefined
  }

  function handleArm(req: Req): Reply {
    const denied = checkBearer(req)
    if (denied) return denied
    if (!req.url.searchParams.get('api-version')) {
      return armError(400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.")
    }
    const segs = req.url.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s))
    const l = segs.map((s) => s.toLowerCase())
    const { method } = req

    if (method === 'GET' && l.length === 1 && l[0] === 'tenants') return { status: 200, body: { value: [tenantBody()] } }
    if (l[0] !== 'subscriptions') return armError(404, 'NotFound', `The requested resource '${req.url.pathname}' does not exist.`)
    if (method === 'GET' && l.length === 1) return { status: 200, body: { value: [subscriptionBody()], count: { type: 'Total', value: 1 } } }
    const subscriptionId = segs[1] ?? ''
    if (subscriptionId.toLowerCase() !== sub.id.toLowerCase()) {
      return armError(404, 'SubscriptionNotFound', `The subscription '${subscriptionId}' could not be found.`)
    }
    if (method === 'GET' && l.length === 2) return { status: 200, body: subscriptionBody() }

    // /subscriptions/S/providers[/NS[/register]]
    if (l[2] === 'providers' && l.length <= 5) return handleProviders(method, segs.slice(3))

    // /subscriptions/S/resourceGroups/RG[/providers/Microsoft.ContainerService/managedClusters/N[/action]]
    if (l[2] === 'resourcegroups' && l.length >= 4) return handleResourceGroup(method, segs.slice(3))
    return armError(404, 'NotFound', `The requested resource '${req.url.pathname}' does not exist.`)
  }

  function handleProviders(method: string, rest: string[]): Reply {
    if (rest.length === 0 && method === 'GET') {
      return { status: 200, body: { value: KNOWN_PROVIDERS.map((ns) => providerBody(ns, providerStateOf(ns))) } }
    }
    const ns = canonicalNamespace(rest[0] ?? '')
    if (!ns) return armError(404, 'InvalidResourceNamespace', `The resource namespace '${rest[0] ?? ''}' is invalid.`)
    if (rest.length === 1 && method === 'GET') return { status: 200, body: providerBody(ns, providerStateOf(ns)) }
    if (rest.length === 2 && method === 'POST' && rest[1]?.toLowerCase() === 'register') {
      if (ns === 'Microsoft.ContainerInstance') {
        provider.registerCalls++
        if (providerState() === 'NotRegistered') knobs.setProviderState('Registering')
      }
      return { status: 200, body: providerBody(ns, providerStateOf(ns)) }
    }
    return armError(405, 'MethodNotAllowed', `The requested method '${method}' is not allowed for this resource.`)
  }

  function handleResourceGroup(method: string, rest: string[]): Reply {
    const rg = rest[0] ?? ''
    if (rg.toLowerCase() !== cluster.resourceGroup.toLowerCase() && rg.toLowerCase() !== cluster.nodeResourceGroup.toLowerCase()) {
      return armError(404, 'ResourceGroupNotFound', `Resource group '${rg}' could not be found.`)
    }
    const canonicalRg = rg.toLowerCase() === cluster.resourceGroup.toLowerCase() ? cluster.resourceGroup : cluster.nodeResourceGroup
    if (rest.length === 1 && method === 'GET') {
      return {
        status: 200,
        body: {
          id: `/subscriptions/${sub.id}/resourceGroups/${canonicalRg}`, name: canonicalRg, type: 'Microsoft.Resources/resourceGroups', location,
          ...(canonicalRg === cluster.nodeResourceGroup ? { managedBy: clusterId } : {}), properties: { provisioningState: 'Succeeded' }
        }
      }
    }
    const l = rest.map((s) => s.toLowerCase())
    if (l[1] === 'providers' && l[2] === 'microsoft.containerservice' && l[3] === 'managedclusters' && rest[4] !== undefined) {
      const name = rest[4]
      const found = canonicalRg === cluster.resourceGroup && name.toLowerCase() === cluster.name.toLowerCase()
      if (!found) {
        return armError(404, 'ResourceNotFound', `The Resource 'Microsoft.ContainerService/managedClusters/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`)
      }
      if (rest.length === 5 && method === 'GET') return { status: 200, body: clusterBody() }
      if (rest.length === 6 && method === 'POST' && l[5] === 'listclusterusercredential') {
        return { status: 200, body: { kubeconfigs: [{ name: 'clusterUser', value: b64(cluster.userKubeconfig) }] } }
      }
      if (rest.length === 6 && method === 'POST' && l[5] === 'listclusteradmincredential') {
        return { status: 200, body: { kubeconfigs: [{ name: 'clusterAdmin', value: b64(cluster.adminKubeconfig) }] } }
      }
    }
    return armError(404, 'ResourceNotFound', `The Resource '${rest.slice(2).join('/')}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`)
  }

  /** ARM discovery document (`az cloud register` reads it when endpoints are left out). */
  const metadataEndpoints = (): Reply => ({
    status: 200,
    body: {
      galleryEndpoint: '', graphEndpoint: 'https://graph.windows.net/', portalEndpoint: '',
      authentication: { loginEndpoint: `${url}/adfs`, audiences: ['https://management.core.windows.net/', 'https://management.azure.com/'] }
    }
  })

  // ----- failure injection ----------------------------------------------------------------------

  function injectedFailure(path: string, family: 'arm' | 'aad'): Reply | undefined {
    const f = failures.find((x) => x.remaining > 0 && (x.pathPrefix !== undefined ? path.startsWith(x.pathPrefix) : family === 'arm'))
    if (!f) return undefined
    f.remaining--
    const headers = { 'Retry-After': String(f.retryAfterSeconds), 'x-ms-failure-cause': 'gateway' }
    if (family === 'aad') {
      const r = aadError(f.status, 'temporarily_unavailable', 90033, 'A transient error has occurred. Please try again.')
      return { ...r, headers }
    }
    return f.status === 429
      ? armError(429, 'SubscriptionRequestsThrottled', `Number of 'read' requests for subscription '${sub.id}' actor '${randomUUID()}' exceeded. Please try again after '${f.retryAfterSeconds}' seconds after additional '${f.retryAfterSeconds}' seconds. For more information, refer to - https://aka.ms/srpthrottlinglimits`, headers)
      : armError(503, 'ServiceUnavailable', 'The service is temporarily unavailable. Please retry the request later.', headers)
  }

  // ----- dispatch -------------------------------------------------------------------------------

  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

  async function onAzureRequest(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now()
    const reqUrl = new URL(raw.url ?? '/', url || 'https://127.0.0.1')
    const lpath = reqUrl.pathname.toLowerCase()
    const family: 'arm' | 'aad' = lpath.startsWith('/adfs') ? 'aad' : 'arm'
    let reply: Reply
    try {
      const body = await readBody(raw)
      if (knobs.latencyMs > 0) await sleep(knobs.latencyMs)
      const req: Req = { method: raw.method ?? 'GET', url: reqUrl, lpath, headers: raw.headers, body }
      const path = reqUrl.pathname + reqUrl.search
      reply = injectedFailure(path, family) ??
        (family === 'aad' ? handleAad(req) : lpath === '/metadata/endpoints' ? metadataEndpoints() : handleArm(req))
    } catch (e) {
      reply = armError(500, 'InternalServerError', `The double failed: ${e instanceof Error ? e.message : String(e)}`)
    }
    requests.push({ method: raw.method ?? 'GET', path: reqUrl.pathname + reqUrl.search, status: reply.status, at })
    send(res, reply, family)
  }

  // ----- GitHub-like OIDC token endpoint (plain http, like the runner-local URL form) ------------

  async function onOidcRequest(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now()
    const reqUrl = new URL(raw.url ?? '/', 'http://127.0.0.1')
    await readBody(raw).catch(() => '')
    if (knobs.latencyMs > 0) await sleep(knobs.latencyMs)
    let reply: Reply
    if (reqUrl.pathname === '/.well-known/jwks') {
      reply = { status: 200, body: { keys: [jwk(githubKey)] } }
    } else if (reqUrl.pathname !== '/_apis/idtoken') {
      reply = { status: 404, body: { message: 'Not Found' } }
    } else if (!safeEqual(raw.headers.authorization ?? '', `Bearer ${oidcRequestToken}`)) {
      reply = { status: 401, body: { message: 'Unauthorized' } }
    } else {
      const iat = nowS()
      const token = signJwt(githubKey, {
        jti: randomUUID(), sub: DEFAULT_OIDC_SUBJECT, aud: reqUrl.searchParams.get('audience') ?? 'https://github.com/octo',
        ref: 'refs/heads/main', sha: 'f'.repeat(40), repository: 'octo/repo', repository_owner: 'octo', run_id: '1', run_number: '1',
        run_attempt: '1', actor: 'octocat', workflow: 'ci', event_name: 'push', ref_type: 'branch', job_workflow_ref: 'octo/repo/.github/workflows/ci.yml@refs/heads/main',
        runner_environment: 'self-hosted', iss: GITHUB_OIDC_ISSUER, nbf: iat - 5, iat, exp: iat + 600
      })
      reply = { status: 200, body: { count: token.length, value: token } }
    }
    requests.push({ method: raw.method ?? 'GET', path: reqUrl.pathname + reqUrl.search, status: reply.status, at })
    send(res, reply, 'github')
  }

  // ----- lifecycle ------------------------------------------------------------------------------

  const azureServer = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => void onAzureRequest(req, res))
  const oidcServer = createHttpServer((req, res) => void onOidcRequest(req, res))
  const listen = (s: Server): Promise<number> => new Promise((resolve, reject) => {
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port))
  })
  const port = await listen(azureServer)
  const oidcPort = await listen(oidcServer)
  url = `https://127.0.0.1:${port}`

  const close = (s: Server): Promise<void> => new Promise((resolve) => {
    s.close(() => resolve())
    s.closeAllConnections()
  })

  return {
    url,
    caPath: tls.caPath,
    cloudName: 'LocalAzure',
    oidc: { requestUrl: `http://127.0.0.1:${oidcPort}/_apis/idtoken?api-version=2.0`, requestToken: oidcRequestToken },
    requests,
    knobs,
    state: () => ({ providerState: providerState(), registerCalls: provider.registerCalls }),
    stop: async () => {
      await Promise.all([close(azureServer), close(oidcServer)])
      await rm(tls.dir, { recursive: true, force: true })
    }
  }
}

/** A stable GUID-shaped object id derived from a client id, so repeated runs agree. */
function objectIdFor(seed: string): string {
  const h = createHash('sha256').update(`oid:${seed}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
