// Microsoft Entra ID, as its clients here use it: the service principals and managed
// identities of the imitated tenant, the token endpoint in two forms (the `/adfs`
// authority the az CLI is registered with, and login.microsoftonline.com's v2.0 endpoints
// that MSAL in the connector uses), federated credentials (GitHub Actions OIDC), and
// verification of the access tokens it issued, for ARM and the API server.
//
// Access tokens have the v1.0 shape ARM and AKS accept (iss https://sts.windows.net/<tid>/,
// appid, oid, tid, idtyp app) whichever endpoint issued them: a resource's
// accessTokenAcceptedVersion decides the token version, not the endpoint
// (https://learn.microsoft.com/entra/identity-platform/access-tokens#token-formats).
import { createHash, createPublicKey, generateKeyPairSync, randomUUID, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto'
import { aadError, armError, type Caller, type Reply, type Req } from './azure-http.js'

export type Claims = Record<string, unknown>

export interface Principal {
  clientId: string
  objectId: string
  displayName: string
  kind: 'ServicePrincipal' | 'ManagedIdentity'
  /** Client secret accepted by the token endpoint. */
  secret?: string
  /** The secret exists but has expired (AADSTS7000222). */
  secretExpired?: boolean
  /** Subject a federated assertion must carry (GitHub: repo:<owner>/<repo>:ref:<ref>). */
  federatedSubject?: string
  /**
   * Audiences the federated credential accepts (Microsoft Graph federatedIdentityCredential
   * `audiences`; default the recommended api://AzureADTokenExchange).
   */
  federatedAudiences?: string[]
}

export const ACCESS_TOKEN_LIFETIME_S = 3599

/** A stable GUID-shaped object ID derived from a seed, so repeated runs agree. */
export function objectIdFor(seed: string): string {
  const h = createHash('sha256').update(`oid:${seed}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`
}

// ------------------------------------------------------------ JWTs (RS256)

export interface Signer {
  kid: string
  privateKey: KeyObject
  publicKey: KeyObject
}

export function newSigner(): Signer {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicKey = createPublicKey(privateKey)
  const der = publicKey.export({ type: 'spki', format: 'der' })
  return { kid: createHash('sha1').update(der).digest('base64url'), privateKey, publicKey }
}

const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url')

export function signJwt(signer: Signer, claims: Claims): string {
  const header = { typ: 'JWT', alg: 'RS256', kid: signer.kid, x5t: signer.kid }
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
  return `${input}.${sign('sha256', Buffer.from(input), signer.privateKey).toString('base64url')}`
}

/** The claims if `token` is a well-formed JWT signed by `signer`, else undefined. Expiry is the caller's call. */
export function verifyJwt(signer: Signer, token: string): Claims | undefined {
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

export function jwk(signer: Signer): Record<string, unknown> {
  return { ...signer.publicKey.export({ format: 'jwk' }), kid: signer.kid, x5t: signer.kid, use: 'sig', alg: 'RS256' }
}

export const nowS = (): number => Math.floor(Date.now() / 1000)

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

// ------------------------------------------------------------ the tenant

export const FEDERATED_AUDIENCE = 'api://AzureADTokenExchange'
/** Host of public Azure's Entra ID endpoints. */
export const LOGIN_HOST = 'login.microsoftonline.com'

export interface EntraOptions {
  tenantId: string
  principals: Principal[]
  /** Verifies a federated assertion (a GitHub Actions ID token): its claims, or undefined. */
  verifyAssertion: (jwt: string) => Claims | undefined
  githubIssuer: string
}

export interface Entra {
  readonly tenantId: string
  readonly signer: Signer
  principal(clientId: string): Principal | undefined
  addPrincipal(p: Principal): void
  /** A v1.0 access token for `resource` (as the token endpoint or IMDS issues it). */
  accessToken(p: Principal, resource: string, via: 'secret' | 'assertion' | 'msi'): string
  /** `<base>/adfs/...`: the authority the az CLI uses (base = https://127.0.0.1:PORT). */
  handleAdfs(req: Req, base: string): Reply
  /** login.microsoftonline.com: OpenID discovery, instance discovery and the v2.0 token endpoint (MSAL). */
  handleLogin(req: Req): Reply
  /** `https://sts.windows.net/<tid>/`: the `iss` of every access token issued here. */
  readonly v1Issuer: string
  /**
   * `<base>/entra/...`: the tenant's v1.0 OpenID configuration and keys for a client that
   * reaches this double directly rather than as login.microsoftonline.com (the local API server).
   */
  handleIssuerDiscovery(req: Req, base: string): Reply
  /** The caller of a bearer token for one of `audiences`, or ARM's 401 answer. */
  verifyBearer(authorization: string | undefined, audiences: string[], challengeAuthority: string): Caller | Reply
}

export function createEntra(opts: EntraOptions): Entra {
  const signer = newSigner()
  const principals = new Map(opts.principals.map(p => [p.clientId.toLowerCase(), p]))
  const tid = opts.tenantId
  const v1Issuer = `https://sts.windows.net/${tid}/`

  const principal = (clientId: string): Principal | undefined => principals.get(clientId.toLowerCase())

  function accessToken(p: Principal, resource: string, via: 'secret' | 'assertion' | 'msi'): string {
    const iat = nowS()
    return signJwt(signer, {
      aud: resource,
      iss: v1Issuer,
      iat,
      nbf: iat,
      exp: iat + ACCESS_TOKEN_LIFETIME_S,
      aio: randomUUID(),
      appid: p.clientId,
      // appidacr: 1 = client secret, 2 = certificate or assertion; 0 for managed identities.
      appidacr: via === 'secret' ? '1' : via === 'assertion' ? '2' : '0',
      idp: v1Issuer,
      idtyp: 'app',
      oid: p.objectId,
      rh: '0.AAAA.',
      sub: p.objectId,
      tid,
      uti: randomUUID().replace(/-/g, '').slice(0, 22),
      ver: '1.0'
    })
  }

  /** Which principal authenticated (secret or assertion), or the AADSTS error to return. */
  function authenticateClient(
    form: URLSearchParams,
    authorization: string | undefined
  ): { principal: Principal; via: 'secret' | 'assertion' } | { error: Reply } {
    let clientId = form.get('client_id') ?? ''
    let secret = form.get('client_secret') ?? undefined
    if (authorization?.startsWith('Basic ')) {
      const [id, pw] = Buffer.from(authorization.slice(6), 'base64').toString('utf8').split(':')
      clientId = decodeURIComponent(id ?? '')
      secret = decodeURIComponent(pw ?? '')
    }
    const p = principal(clientId)
    if (!p || p.kind !== 'ServicePrincipal') {
      return {
        error: aadError(
          400,
          'unauthorized_client',
          700016,
          `Application with identifier '${clientId}' was not found in the directory '${tid}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`
        )
      }
    }
    const assertion = form.get('client_assertion')
    if (assertion !== null) return checkAssertion(p, form.get('client_assertion_type'), assertion)
    if (secret === undefined)
      return {
        error: aadError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
      }
    if (p.secret === undefined || !safeEqual(secret, p.secret)) {
      return {
        error: aadError(
          401,
          'invalid_client',
          7000215,
          `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${p.clientId}'.`
        )
      }
    }
    if (p.secretExpired) {
      return {
        error: aadError(
          401,
          'invalid_client',
          7000222,
          `The provided client secret keys for app '${p.clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`
        )
      }
    }
    return { principal: p, via: 'secret' }
  }

  /** Federated credential check: a token from the GitHub issuer, for the exchange audience, unexpired, right subject. */
  function checkAssertion(p: Principal, type: string | null, assertion: string): { principal: Principal; via: 'assertion' } | { error: Reply } {
    if (type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
      return { error: aadError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.') }
    const claims = opts.verifyAssertion(assertion)
    if (!claims) return { error: aadError(401, 'invalid_client', 700027, 'Client assertion contains an invalid signature.') }
    const exp = Number(claims['exp'])
    if (!(exp > nowS())) {
      return {
        error: aadError(
          400,
          'invalid_client',
          700024,
          `Client assertion is not within its valid time range. Current time: ${new Date().toISOString()}, expiry time of assertion ${new Date(exp * 1000).toISOString()}.`
        )
      }
    }
    const aud = claims['aud']
    const subject = String(claims['sub'])
    const accepted = p.federatedAudiences ?? [FEDERATED_AUDIENCE]
    const audOk = accepted.some(a => aud === a || (Array.isArray(aud) && aud.includes(a)))
    if (!audOk || claims['iss'] !== opts.githubIssuer || (p.federatedSubject !== undefined && p.federatedSubject !== subject)) {
      return {
        error: aadError(
          400,
          'invalid_request',
          70021,
          `No matching federated identity record found for presented assertion. Assertion Issuer: '${String(claims['iss'])}'. Assertion Subject: '${subject}'. Assertion Audience: '${String(aud)}'. https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation`
        )
      }
    }
    return { principal: p, via: 'assertion' }
  }

  /** client_credentials: v2 style `scope=<resource>/.default` (MSAL) or v1 style `resource=<resource>`. */
  function tokenEndpoint(req: Req): Reply {
    const form = new URLSearchParams(req.body)
    const grant = form.get('grant_type')
    if (grant !== 'client_credentials') return aadError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant ?? ''}'.`)
    const auth = authenticateClient(form, req.headers.authorization)
    if ('error' in auth) return auth.error
    const scope = form
      .get('scope')
      ?.split(' ')
      .find(s => s.endsWith('/.default'))
    const resource = scope ? scope.slice(0, -'/.default'.length) : (form.get('resource') ?? '')
    if (!resource) {
      return aadError(
        400,
        'invalid_scope',
        1002012,
        'The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).'
      )
    }
    const token = accessToken(auth.principal, resource, auth.via)
    return { status: 200, body: { token_type: 'Bearer', expires_in: ACCESS_TOKEN_LIFETIME_S, ext_expires_in: ACCESS_TOKEN_LIFETIME_S, access_token: token } }
  }

  /** ADFS-style discovery for az (an `/adfs` authority makes MSAL skip instance discovery). */
  function adfsConfiguration(base: string): Reply {
    return {
      status: 200,
      body: {
        issuer: `${base}/adfs`,
        authorization_endpoint: `${base}/adfs/oauth2/authorize/`,
        token_endpoint: `${base}/adfs/oauth2/token/`,
        device_authorization_endpoint: `${base}/adfs/oauth2/devicecode`,
        jwks_uri: `${base}/adfs/discovery/keys`,
        userinfo_endpoint: `${base}/adfs/userinfo`,
        end_session_endpoint: `${base}/adfs/oauth2/logout`,
        access_token_issuer: v1Issuer,
        response_types_supported: ['code', 'id_token', 'code id_token', 'token'],
        response_modes_supported: ['query', 'fragment', 'form_post'],
        grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'device_code'],
        subject_types_supported: ['pairwise'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
        microsoft_multi_refresh_token: true
      }
    }
  }

  function handleAdfs(req: Req, base: string): Reply {
    const p = req.url.pathname.toLowerCase().replace(/\/+$/, '')
    if (req.method === 'GET' && p === '/adfs/.well-known/openid-configuration') return adfsConfiguration(base)
    if (req.method === 'GET' && p === '/adfs/discovery/keys') return { status: 200, body: { keys: [jwk(signer)] } }
    if (req.method === 'POST' && p === '/adfs/oauth2/token') return tokenEndpoint(req)
    return aadError(404, 'invalid_request', 90002, `The endpoint '${req.url.pathname}' is not supported by this authority.`)
  }

  /**
   * login.microsoftonline.com as MSAL Go v1.2.2 calls it for a trusted host: the tenant's
   * v2.0 OpenID configuration, then its token endpoint (apps/internal/oauth/resolvers.go);
   * instance discovery only for other hosts or regions (ops/authority/authority.go).
   */
  function handleLogin(req: Req): Reply {
    const segs = req.url.pathname.split('/').filter(Boolean)
    const origin = `https://${LOGIN_HOST}`
    if (req.method === 'GET' && segs.join('/').toLowerCase() === 'common/discovery/instance') {
      return {
        status: 200,
        body: {
          tenant_discovery_endpoint: `${origin}/${tid}/v2.0/.well-known/openid-configuration`,
          'api-version': '1.1',
          metadata: [
            {
              preferred_network: LOGIN_HOST,
              preferred_cache: 'login.windows.net',
              aliases: [LOGIN_HOST, 'login.windows.net', 'login.microsoft.com', 'sts.windows.net']
            }
          ]
        }
      }
    }
    const [tenant, ...rest] = segs
    const known = tenant !== undefined && [tid, 'organizations', 'common'].includes(tenant.toLowerCase())
    if (!known)
      return aadError(
        400,
        'invalid_tenant',
        90002,
        `Tenant '${tenant ?? ''}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`
      )
    const path = rest.join('/').toLowerCase()
    if (req.method === 'GET' && path === 'v2.0/.well-known/openid-configuration') {
      return {
        status: 200,
        body: {
          token_endpoint: `${origin}/${tid}/oauth2/v2.0/token`,
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
          jwks_uri: `${origin}/${tid}/discovery/v2.0/keys`,
          response_modes_supported: ['query', 'fragment', 'form_post'],
          subject_types_supported: ['pairwise'],
          id_token_signing_alg_values_supported: ['RS256'],
          response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
          scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
          issuer: `${origin}/${tid}/v2.0`,
          request_uri_parameter_supported: false,
          userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
          authorization_endpoint: `${origin}/${tid}/oauth2/v2.0/authorize`,
          device_authorization_endpoint: `${origin}/${tid}/oauth2/v2.0/devicecode`,
          end_session_endpoint: `${origin}/${tid}/oauth2/v2.0/logout`,
          tenant_region_scope: 'NA',
          cloud_instance_name: 'microsoftonline.com',
          cloud_graph_host_name: 'graph.windows.net',
          msgraph_host: 'graph.microsoft.com'
        }
      }
    }
    if (req.method === 'GET' && (path === 'discovery/v2.0/keys' || path === 'discovery/keys')) return { status: 200, body: { keys: [jwk(signer)] } }
    if (req.method === 'POST' && (path === 'oauth2/v2.0/token' || path === 'oauth2/token')) return tokenEndpoint(req)
    return aadError(404, 'invalid_request', 90002, `The endpoint '${req.url.pathname}' is not supported.`)
  }

  /**
   * What login.microsoftonline.com/<tid>/.well-known/openid-configuration (v1.0) publishes:
   * issuer https://sts.windows.net/<tid>/ (the `iss` of v1.0 access tokens), the keys at
   * /common/discovery/keys (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc).
   */
  function handleIssuerDiscovery(req: Req, base: string): Reply {
    const p = req.url.pathname
    if (req.method === 'GET' && p === `/entra/${tid}/.well-known/openid-configuration`) {
      return {
        status: 200,
        body: {
          token_endpoint: `${base}/entra/${tid}/oauth2/token`,
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
          jwks_uri: `${base}/entra/common/discovery/keys`,
          response_modes_supported: ['query', 'fragment', 'form_post'],
          subject_types_supported: ['pairwise'],
          id_token_signing_alg_values_supported: ['RS256'],
          response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
          scopes_supported: ['openid'],
          issuer: v1Issuer,
          authorization_endpoint: `${base}/entra/${tid}/oauth2/authorize`
        }
      }
    }
    if (req.method === 'GET' && p === '/entra/common/discovery/keys') return { status: 200, body: { keys: [jwk(signer)] } }
    return aadError(404, 'invalid_request', 90002, `The endpoint '${p}' is not supported.`)
  }

  /** ARM's 401 answers (code and message as ARM sends them) for a missing, foreign or expired token. */
  function verifyBearer(authorization: string | undefined, audiences: string[], challengeAuthority: string): Caller | Reply {
    const challenge = {
      'WWW-Authenticate': `Bearer authorization_uri="${challengeAuthority}", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`
    }
    if (!authorization) return armError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", challenge)
    const m = /^Bearer (\S+)$/i.exec(authorization)
    if (!m) return armError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is provided in an invalid format.", challenge)
    const claims = verifyJwt(signer, m[1] ?? '')
    if (!claims) return armError(401, 'InvalidAuthenticationToken', 'The access token is invalid.', challenge)
    const exp = Number(claims['exp'])
    if (!(exp > nowS())) {
      return armError(
        401,
        'ExpiredAuthenticationToken',
        `The access token expiry UTC time '${new Date(exp * 1000).toUTCString()}' is earlier than current UTC time '${new Date().toUTCString()}'.`,
        challenge
      )
    }
    const aud = String(claims['aud'])
    if (!audiences.includes(aud)) {
      return armError(
        401,
        'InvalidAuthenticationTokenAudience',
        `The access token has been obtained for wrong audience or resource '${aud}'. It should exactly match with one of the allowed audiences ${audiences.map(a => `'${a}'`).join(',')}.`,
        challenge
      )
    }
    if (claims['tid'] !== tid)
      return armError(
        401,
        'InvalidAuthenticationTokenTenant',
        `The access token is from the wrong issuer '${String(claims['iss'])}'. It must match the tenant associated with this subscription.`,
        challenge
      )
    return { appId: String(claims['appid'] ?? claims['azp'] ?? ''), objectId: String(claims['oid'] ?? ''), tenantId: tid }
  }

  return {
    tenantId: tid,
    signer,
    principal,
    addPrincipal: p => principals.set(p.clientId.toLowerCase(), p),
    accessToken,
    handleAdfs,
    handleLogin,
    v1Issuer,
    handleIssuerDiscovery,
    verifyBearer
  }
}
