// Direct Azure Resource Manager calls over HTTPS with a token from the sign-in (refreshed
// before it expires). The endpoint is the one of the cloud in use, never a hard-coded
// host, so sovereign clouds and registered clouds work unchanged.
import * as core from '@actions/core'
import { HttpClient } from '@actions/http-client'
import type { AccessToken, AzureSession } from './azure-login.js'
import { RefreshingToken } from './refreshing-token.js'
import { sleep } from './async.js'

export interface ArmAccess {
  endpoint: string
  /** The current ARM token (refreshed by the client before it expires). */
  token: RefreshingToken
  subscriptionId: string
  tenantId: string
  cloudName: string
  /** The cloud's Microsoft Entra ID authority. */
  authority: string
}

const SUBSCRIPTIONS_API = '2022-12-01'

interface SubscriptionList {
  value?: Array<{ subscriptionId: string; displayName?: string; state?: string }>
}

/**
 * ARM access for the session: the subscription is the input's (or creds'), else the one az
 * has selected (runner's session), else the only one the identity can see. Several and
 * none named is an error: picking one would be a guess.
 */
export async function getArmAccess(session: AzureSession, armToken: AccessToken, subscriptionId?: string): Promise<ArmAccess> {
  const token = new RefreshingToken(() => session.getToken(session.cloud.armResource)).seed(armToken)
  const endpoint = session.cloud.resourceManager.replace(/\/+$/, '')
  let subscription = subscriptionId ?? session.defaultSubscriptionId
  if (!subscription) {
    const client = new ArmClient({
      endpoint,
      token,
      subscriptionId: '',
      tenantId: session.tenantId,
      cloudName: session.cloud.name,
      authority: session.cloud.authority
    })
    const enabled = ((await client.get<SubscriptionList>('/subscriptions', SUBSCRIPTIONS_API)).value ?? []).filter(
      s => s.state === undefined || s.state === 'Enabled'
    )
    if (enabled.length !== 1) {
      throw new Error(
        enabled.length === 0
          ? `${session.description} can see no enabled subscription in tenant ${session.tenantId}: give it a role on the cluster's subscription, or check tenant-id.`
          : `${session.description} can see ${enabled.length} subscriptions (${enabled.map(s => `${s.subscriptionId} ${s.displayName ?? ''}`.trim()).join(', ')}): set subscription-id (or subscriptionId in creds).`
      )
    }
    subscription = enabled[0]!.subscriptionId
  }
  return {
    endpoint,
    token,
    subscriptionId: subscription.toLowerCase(),
    tenantId: session.tenantId,
    cloudName: session.cloud.name,
    authority: session.cloud.authority
  }
}

/** An ARM error with its code, e.g. ResourceNotFound, AuthorizationFailed. */
export class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message)
    this.name = 'ArmError'
  }
}

/** Statuses ARM asks clients to retry (throttling, transient outages). */
const RETRYABLE = new Set([429, 500, 502, 503, 504])
const MAX_ATTEMPTS = 6
const MAX_RETRY_WAIT_MS = 60_000
const DEFAULT_RETRY_WAIT_MS = 2_000
const REQUEST_TIMEOUT_MS = 60_000

export interface ArmClientOptions {
  sleep?: (ms: number) => Promise<void>
}

/** Seconds (or an HTTP date) in Retry-After -> milliseconds to wait, capped. */
export function retryAfterMs(header: string | string[] | undefined, attempt: number, now = Date.now()): number {
  const value = Array.isArray(header) ? header[0] : header
  let ms = DEFAULT_RETRY_WAIT_MS * 2 ** (attempt - 1)
  if (value && /^\d+$/.test(value.trim())) ms = Number(value.trim()) * 1000
  else if (value && !Number.isNaN(Date.parse(value))) ms = Date.parse(value) - now
  return Math.min(Math.max(ms, 0), MAX_RETRY_WAIT_MS)
}

export class ArmClient {
  private readonly http: HttpClient
  private readonly sleep: (ms: number) => Promise<void>

  constructor(
    readonly access: ArmAccess,
    options: ArmClientOptions = {}
  ) {
    this.http = new HttpClient('aks-aci-connector-action', undefined, { socketTimeout: REQUEST_TIMEOUT_MS, allowRetries: false })
    this.sleep = options.sleep ?? sleep
  }

  /** `/subscriptions/<current>` + rest. */
  subscriptionPath(rest: string): string {
    return `/subscriptions/${this.access.subscriptionId}${rest}`
  }

  async get<T>(path: string, apiVersion: string): Promise<T> {
    return this.request<T>('GET', path, apiVersion)
  }

  async post<T>(path: string, apiVersion: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, apiVersion, body)
  }

  async put<T>(path: string, apiVersion: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, apiVersion, body)
  }

  async delete(path: string, apiVersion: string): Promise<void> {
    await this.request<unknown>('DELETE', path, apiVersion)
  }

  /** A `nextLink` of a list: a full URL that already carries its api-version. */
  async getNextLink<T>(url: string): Promise<T> {
    if (!url.startsWith(`${this.access.endpoint}/`)) throw new Error(`ARM returned a nextLink outside ${this.access.endpoint}: ${url}`)
    return this.request<T>('GET', url.slice(this.access.endpoint.length), '')
  }

  private async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, apiVersion: string, body?: unknown): Promise<T> {
    const url = apiVersion ? `${this.access.endpoint}${path}${path.includes('?') ? '&' : '?'}api-version=${apiVersion}` : `${this.access.endpoint}${path}`
    const headers = {
      authorization: `Bearer ${await this.access.token.get()}`,
      accept: 'application/json',
      'content-type': 'application/json'
    }
    for (let attempt = 1; ; attempt++) {
      const response = await this.http.request(method, url, body === undefined ? (method === 'POST' ? '' : null) : JSON.stringify(body), headers)
      const status = response.message.statusCode ?? 0
      const text = await response.readBody()
      if (status >= 200 && status < 300) return (text ? JSON.parse(text) : {}) as T
      if (RETRYABLE.has(status) && attempt < MAX_ATTEMPTS) {
        const wait = retryAfterMs(response.message.headers['retry-after'], attempt)
        core.info(`ARM answered ${status} to ${method} ${path}; retrying in ${Math.round(wait / 1000)} s (attempt ${attempt + 1} of ${MAX_ATTEMPTS})`)
        await this.sleep(wait)
        continue
      }
      throw armError(status, method, path, text)
    }
  }
}

function armError(status: number, method: string, path: string, text: string): ArmError {
  let code = `HTTP${status}`
  let message = text.slice(0, 500)
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } }
    code = parsed.error?.code ?? code
    message = parsed.error?.message ?? message
  } catch {
    // Not JSON: keep the raw text.
  }
  return new ArmError(status, code, `${method} ${path} failed: ${status} ${code}: ${message}`)
}
