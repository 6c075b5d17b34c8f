// Microsoft Entra tokens for the API server of a cluster with AKS-managed Entra ID
// integration (https://learn.microsoft.com/azure/aks/enable-authentication-microsoft-entra-id).
// Such a cluster accepts a token whose audience is the AKS server application; its user
// kubeconfig only names kubelogin, which would sign in again on every kubectl or helm
// call. The action gets the token itself from the sign-in it already has: straight from
// the token endpoint for a service principal (no az process), from az for a session the
// action did not create. The token is refreshed before it expires, so long waits work.
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import { HttpClient } from '@actions/http-client'
import { azJson, type AzSession } from './azure-login.js'
import type { SignIn } from './inputs.js'

/** The AKS server application: the audience of every token an Entra ID cluster accepts. */
export const AKS_SERVER_APP_ID = '6dae42f8-4368-4678-94ff-3960e28e3630'
/** A token with less than this left is replaced before use (helm re-reads its token file every minute). */
export const REFRESH_MARGIN_MS = 5 * 60_000
/** How often the token file helm reads is checked for freshness. */
const BACKGROUND_REFRESH_MS = 60_000
const TOKEN_REQUEST_TIMEOUT_MS = 60_000
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

export interface AccessToken {
  token: string
  expiresOnMs: number
}

/**
 * One token, fetched on first use and again whenever it is within REFRESH_MARGIN_MS of
 * expiring; concurrent callers share one fetch. `onToken` sees every new token (the
 * action masks it and writes helm's token file).
 */
export class RefreshingToken {
  private current?: AccessToken
  private pending?: Promise<AccessToken>
  private timer?: NodeJS.Timeout

  constructor(
    private readonly fetchToken: () => Promise<AccessToken>,
    private readonly onToken: (t: AccessToken) => Promise<void> = async () => undefined,
    private readonly now: () => number = Date.now
  ) {}

  async get(): Promise<string> {
    if (this.current && this.current.expiresOnMs - this.now() > REFRESH_MARGIN_MS) return this.current.token
    this.pending ??= (async () => {
      try {
        const fresh = await this.fetchToken()
        core.setSecret(fresh.token)
        await this.onToken(fresh)
        this.current = fresh
        return fresh
      } finally {
        this.pending = undefined
      }
    })()
    return (await this.pending).token
  }

  /** Keeps the token fresh without callers (helm reads it from a file); the timer never holds the process open. */
  keepFresh(): void {
    if (this.timer) return
    this.timer = setInterval(() => void this.get().catch(err => core.warning(`Could not refresh the cluster token: ${String(err)}`)), BACKGROUND_REFRESH_MS)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }
}

/** The token endpoint of `authority` (az's `endpoints.activeDirectory`) for `tenant`; ADFS-style authorities (Azure Stack) have no tenant segment. */
export function tokenEndpoint(authority: string, tenant: string): string {
  const base = authority.replace(/\/+$/, '')
  return /\/adfs$/i.test(base) ? `${base}/oauth2/token` : `${base}/${encodeURIComponent(tenant)}/oauth2/v2.0/token`
}

/** The client-credentials form for the AKS server application (secret or federated assertion). */
export function clientCredentialsForm(clientId: string, credential: { secret: string } | { assertion: string }): string {
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, scope: `${AKS_SERVER_APP_ID}/.default` })
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
    const why = body.error_description?.split(/\r?\n/)[0] ?? body.error ?? `HTTP ${response.message.statusCode ?? 0}`
    throw new Error(`Microsoft Entra ID refused a token for the cluster's API server (AKS server application ${AKS_SERVER_APP_ID}): ${why}`)
  }
  return { token: body.access_token, expiresOnMs: now() + Number(body.expires_in ?? 3600) * 1000 }
}

interface AzAccessToken {
  accessToken: string
  expiresOn?: string
  expires_on?: number
}

/** az's answer -> expiry in ms; `expires_on` (epoch seconds) since az 2.54, else `expiresOn` in local time. */
export function azTokenExpiry(t: AzAccessToken): number {
  if (typeof t.expires_on === 'number') return t.expires_on * 1000
  const parsed = t.expiresOn ? Date.parse(t.expiresOn.replace(' ', 'T')) : NaN
  return Number.isNaN(parsed) ? Date.now() + 30 * 60_000 : parsed
}

export interface ClusterTokenSource {
  signIn: SignIn
  session: AzSession
  /** The cloud's Entra ID authority (az's endpoints.activeDirectory). */
  authority: string
  tenantId: string
}

/** How to get a fresh token for the way the action signed in. */
export function tokenFetcher(src: ClusterTokenSource, now: () => number = Date.now): () => Promise<AccessToken> {
  const { signIn } = src
  if (signIn.kind === 'secret') {
    return () => requestToken(tokenEndpoint(src.authority, signIn.tenantId), clientCredentialsForm(signIn.clientId, { secret: signIn.clientSecret }), now)
  }
  if (signIn.kind === 'oidc') {
    // A fresh GitHub ID token per exchange: they live minutes, the cluster token an hour.
    return async () => {
      const assertion = await core.getIDToken(signIn.audience)
      core.setSecret(assertion)
      return requestToken(tokenEndpoint(src.authority, signIn.tenantId), clientCredentialsForm(signIn.clientId, { assertion }), now)
    }
  }
  // A session the action did not create: only az holds its credential.
  return async () => {
    const t = await azJson<AzAccessToken>(src.session, ['account', 'get-access-token', '--resource', AKS_SERVER_APP_ID])
    return { token: t.accessToken, expiresOnMs: azTokenExpiry(t) }
  }
}

/** A token file (0600) that helm's kubeconfig names in `tokenFile`; replaced atomically on refresh. */
export async function writeTokenFile(file: string, token: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`)
  await fs.writeFile(tmp, token, { mode: 0o600 })
  await fs.rename(tmp, file)
}
