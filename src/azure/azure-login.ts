// Azure sign-in. A service principal (client secret or GitHub OIDC federated token) signs
// in straight at the cloud's Microsoft Entra token endpoint: no az process, nothing written
// to disk, a token per resource (ARM, the AKS server application) fetched when needed and
// refreshed before it expires. A session the action did not create (the runner's own az
// login) is only reachable through az, so its tokens come from `az account
// get-access-token`. The cloud's endpoints come from az's own files (built-in public
// clouds, `az cloud register`ed ones), read without starting az.
import * as core from '@actions/core'
import { HttpClient } from '@actions/http-client'
import { activeCloudName, azConfigDir, cloudEndpoints, type CloudEndpoints } from './clouds.js'
import { runProcess, lastLines, type ProcessResult } from '../tools/process.js'

/** How the action gets an Azure session (the inputs give one). */
export type SignIn =
  | { kind: 'secret'; clientId: string; tenantId: string; clientSecret: string; subscriptionId?: string }
  | { kind: 'oidc'; clientId: string; tenantId: string; audience: string }
  | { kind: 'ambient' }

const AZ_TIMEOUT_MS = 3 * 60_000
const TOKEN_REQUEST_TIMEOUT_MS = 60_000
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

export interface AccessToken {
  token: string
  expiresOnMs: number
}

export interface AzureSession {
  /** What signed in, for the summary (never a secret). */
  description: string
  cloud: CloudEndpoints
  tenantId: string
  /** The subscription az has selected (the runner's session only). */
  defaultSubscriptionId?: string
  /** A fresh access token for `resource` (ARM's, the AKS server application's). */
  getToken(resource: string): Promise<AccessToken>
}

/** Known sign-in failures and what the user should do about them. */
const AADSTS_HINTS: Array<[RegExp, string]> = [
  [/AADSTS7000215/, "The client secret is wrong: use the secret's Value (not its Secret ID) from the app registration."],
  [/AADSTS7000222/, 'The client secret has expired: create a new one for the app registration and update the repository secret.'],
  [/AADSTS700016/, 'No application with this client ID exists in the tenant: check client-id and tenant-id.'],
  [/AADSTS90002|AADSTS900023/, 'The tenant was not found: check tenant-id.'],
  [
    /AADSTS70021|AADSTS700213|AADSTS700212/,
    'No federated credential matches this workflow: add one whose subject matches the repository, branch or environment of this job.'
  ],
  [/AADSTS700024|AADSTS700027/, 'The federated token was rejected (expired or not signed as expected): request a fresh one; check the audience input.']
]

export function signInHint(text: string): string {
  return AADSTS_HINTS.find(([re]) => re.test(text))?.[1] ?? 'Check the credentials and that the service principal exists in the tenant.'
}

/** The token endpoint of `authority` for `tenant`; ADFS-style authorities (Azure Stack) have no tenant segment. */
export function tokenEndpoint(authority: string, tenant: string): string {
  const base = authority.replace(/\/+$/, '')
  return /\/adfs$/i.test(base) ? `${base}/oauth2/token` : `${base}/${encodeURIComponent(tenant)}/oauth2/v2.0/token`
}

/** The client-credentials form for `resource` (secret or federated assertion), as MSAL sends it. */
export function clientCredentialsForm(clientId: string, resource: string, credential: { secret: string } | { assertion: string }): string {
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, scope: `${resource}/.default` })
  if ('secret' in credential) form.set('client_secret', credential.secret)
  else {
    form.set('client_assertion_type', CLIENT_ASSERTION_TYPE)
    form.set('client_assertion', credential.assertion)
  }
  return form.toString()
}

interface TokenResponse {
  access_token?: string
  expires_in?: number | string
  error?: string
  error_description?: string
}

/** Thrown when Entra ID refuses the credential: its AADSTS text, which the hint reads. */
export class SignInError extends Error {
  constructor(readonly entraMessage: string) {
    super(entraMessage)
    this.name = 'SignInError'
  }
}

async function requestToken(url: string, form: string, now: () => number): Promise<AccessToken> {
  const http = new HttpClient('aks-aci-connector-action', undefined, { socketTimeout: TOKEN_REQUEST_TIMEOUT_MS })
  const response = await http.post(url, form, { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' })
  const text = await response.readBody()
  let body: TokenResponse = {}
  try {
    body = JSON.parse(text) as TokenResponse
  } catch {
    // Not JSON: reported below with the status.
  }
  if (response.message.statusCode !== 200 || !body.access_token) {
    throw new SignInError(body.error_description?.split(/\r?\n/)[0] ?? body.error ?? `HTTP ${response.message.statusCode ?? 0} from ${url}`)
  }
  core.setSecret(body.access_token)
  return { token: body.access_token, expiresOnMs: now() + Number(body.expires_in ?? 3600) * 1000 }
}

async function federatedToken(audience: string): Promise<string> {
  if (!process.env.ACTIONS_ID_TOKEN_REQUEST_URL) {
    throw new Error(
      'client-id and tenant-id are set without client-secret, so the action signs in with OpenID Connect, but the job has no ID token: ' +
        'add `permissions: id-token: write` to the job (or workflow), or set client-secret.'
    )
  }
  const token = await core.getIDToken(audience)
  core.setSecret(token)
  return token
}

/** A service principal's session: tokens from the token endpoint, a fresh GitHub ID token per exchange (they live minutes). */
export function servicePrincipalSession(signIn: Exclude<SignIn, { kind: 'ambient' }>, cloud: CloudEndpoints, now: () => number = Date.now): AzureSession {
  const url = tokenEndpoint(cloud.authority, signIn.tenantId)
  return {
    description: `service principal ${signIn.clientId} (${signIn.kind === 'secret' ? 'client secret' : 'OIDC federated token'})`,
    cloud,
    tenantId: signIn.tenantId,
    getToken: async resource => {
      const credential = signIn.kind === 'secret' ? { secret: signIn.clientSecret } : { assertion: await federatedToken(signIn.audience) }
      return requestToken(url, clientCredentialsForm(signIn.clientId, resource, credential), now)
    }
  }
}

/** Telemetry makes every az call start a background upload; the action does not need it. */
export function azEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...base, AZURE_CORE_COLLECT_TELEMETRY: 'no', AZURE_CORE_NO_COLOR: 'true' }
}

interface AzAccessToken {
  accessToken: string
  subscription?: string
  tenant: string
  expiresOn?: string
  expires_on?: number
}

/** az's answer -> expiry in ms; `expires_on` (epoch seconds) since az 2.54, else `expiresOn` in local time. */
export function azTokenExpiry(t: Pick<AzAccessToken, 'expiresOn' | 'expires_on'>, now = Date.now()): number {
  if (typeof t.expires_on === 'number') return t.expires_on * 1000
  const parsed = t.expiresOn ? Date.parse(t.expiresOn.replace(' ', 'T')) : NaN
  return Number.isNaN(parsed) ? now + 30 * 60_000 : parsed
}

/** Runs az and parses its JSON output; the output is never logged. */
export async function azJson<T>(az: string, args: string[]): Promise<T> {
  const result: ProcessResult & { timedOut: boolean } = await runProcess(az, [...args, '--output', 'json', '--only-show-errors'], {
    env: azEnv(process.env),
    timeoutMs: AZ_TIMEOUT_MS
  })
  if (result.code !== 0) {
    const notLoggedIn = /az login|Please run 'az login'|No subscription found/i.test(result.stderr)
    throw new Error(
      `az ${args.slice(0, 2).join(' ')} failed${result.timedOut ? ' (timed out)' : ''}.` +
        (notLoggedIn
          ? ' The runner has no az session: set creds, or client-id + tenant-id (+ client-secret), or sign in with Azure/login in an earlier step.'
          : '') +
        `\n${lastLines(result.stderr, 8)}`
    )
  }
  return JSON.parse(result.stdout) as T
}

/**
 * The runner's own az session (a self-hosted runner's, or Azure/login's in an earlier step):
 * its cloud is the one az has active; the ARM token is fetched now, which also proves the
 * session is there and names its tenant and subscription.
 */
export async function ambientSession(az: string, subscriptionId: string | undefined): Promise<{ session: AzureSession; armToken: AccessToken }> {
  const configDir = azConfigDir()
  const cloud = await cloudEndpoints(await activeCloudName(configDir), configDir)
  const azToken = async (args: string[]): Promise<AzAccessToken> => {
    const t = await azJson<AzAccessToken>(az, ['account', 'get-access-token', ...args])
    core.setSecret(t.accessToken)
    return t
  }
  const first = await azToken(subscriptionId ? ['--subscription', subscriptionId] : [])
  return {
    session: {
      description: `the runner's existing az session (${configDir})`,
      cloud,
      tenantId: first.tenant,
      defaultSubscriptionId: first.subscription,
      getToken: async resource => {
        const t = await azToken(resource === cloud.armResource ? (subscriptionId ? ['--subscription', subscriptionId] : []) : ['--resource', resource])
        return { token: t.accessToken, expiresOnMs: azTokenExpiry(t) }
      }
    },
    armToken: { token: first.accessToken, expiresOnMs: azTokenExpiry(first) }
  }
}

/**
 * Signs in as the inputs say. For a service principal the ARM token is fetched at once, so a
 * wrong secret or federated credential fails here with Entra ID's reason and what to do.
 */
export async function signIn(
  input: SignIn,
  environment: string,
  az: () => Promise<string>,
  subscriptionId: string | undefined
): Promise<{ session: AzureSession; armToken: AccessToken }> {
  if (input.kind === 'ambient') return ambientSession(await az(), subscriptionId)
  const session = servicePrincipalSession(input, await cloudEndpoints(environment))
  try {
    return { session, armToken: await session.getToken(session.cloud.armResource) }
  } catch (err) {
    if (!(err instanceof SignInError)) throw err
    const how = input.kind === 'secret' ? 'client secret' : 'OIDC federated token'
    throw new Error(
      `Azure sign-in failed for client ${input.clientId} in tenant ${input.tenantId} (${how}, cloud ${session.cloud.name}).\n` +
        `${signInHint(err.entraMessage)}\nMicrosoft Entra ID said: ${err.entraMessage}`
    )
  }
}

/** The signed-in principal's object ID, from the `oid` claim of its token. */
export function tokenObjectId(token: string): string | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { oid?: string }
    return claims.oid
  } catch {
    return undefined
  }
}
