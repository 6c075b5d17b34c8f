// Direct Azure Resource Manager calls over HTTPS with a token from the sign-in (refreshed
// before it expires). The endpoint is the one of the cloud in use, never a hard-coded
// host, so sovereign clouds and registered clouds work unchanged.
import * as core from '@actions/core'
import { HttpClient } from '@actions/http-client'
import type { AccessToken, AzureSession } from './azure-login.js'
import { RefreshingToken } from './refreshing-token.js'
import { errorText, sleep } from '../util/async.js'

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
/**
 * The longest Retry-After honoured without a deadline. ARM's throttling resets within an
 * hour at most (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling);
 * retrying before the time it names only earns another 429.
 */
const MAX_RETRY_WAIT_MS = 15 * 60_000
const DEFAULT_RETRY_WAIT_MS = 2_000
const REQUEST_TIMEOUT_MS = 60_000
/**
 * Connection failures that say nothing about the request (the connection was reset, timed
 * out or not made); a retry is safe: ARM's PUT and DELETE are idempotent, and the POSTs the
 * action sends (list credentials, register a provider) change nothing twice.
 */
const RETRYABLE_NETWORK_ERRORS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED'
])

export interface ArmClientOptions {
  sleep?: (ms: number) => Promise<void>
  /** When the step must be done (epoch ms): a Retry-After past it fails at once, saying so. */
  deadline?: number
}

/** Seconds (or an HTTP date) in Retry-After -> milliseconds to wait (exponential back-off without one), capped. */
export function retryAfterMs(header: string | string[] | undefined, attempt: number, now = Date.now()): number {
  const value = Array.isArray(header) ? header[0] : header
  let ms = DEFAULT_RETRY_WAIT_MS * 2 ** (attempt - 1)
  if (value && /^\d+$/.test(value.trim())) ms = Number(value.trim()) * 1000
  else if (value && !Number.isNaN(Date.parse(value))) ms = Date.parse(value) - now
  return Math.min(Math.max(ms, 0), MAX_RETRY_WAIT_MS)
}

/** A connection-level failure worth retrying (not an HTTP answer). */
export function isRetryableNetworkError(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  return RETRYABLE_NETWORK_ERRORS.has(e?.code ?? '') || /socket hang up|Request timeout/i.test(e?.message ?? '')
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
    this.deadline = options.deadline
  }

  private readonly deadline?: number

  /**
   * A client for when there is no Azure session (the post step's sign-in failed): every call
   * fails with `reason`, so work that needs ARM says why and work that does not goes on.
   */
  static unavailable(reason: string, subscriptionId: string): ArmClient {
    const token = new RefreshingToken(() => Promise.reject(new Error(reason)))
    return new ArmClient({ endpoint: 'https://unavailable.invalid', token, subscriptionId, tenantId: '', cloudName: '', authority: '' })
  }

  /** Waits before retry `attempt`, unless that would pass the step's deadline. */
  private async waitToRetry(ms: number, why: string, method: string, path: string, attempt: number): Promise<void> {
    if (this.deadline !== undefined && Date.now() + ms > this.deadline) {
      throw new Error(
        `${method} ${path}: ${why}, and ARM asks to retry in ${Math.round(ms / 1000)} s, after this step's wait-timeout runs out. Re-run the step later, or raise wait-timeout.`
      )
    }
    core.info(`${why} to ${method} ${path}; retrying in ${Math.round(ms / 1000)} s (attempt ${attempt + 1} of ${MAX_ATTEMPTS})`)
    await this.sleep(ms)
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
      let status: number
      let text: string
      let retryAfter: string | string[] | undefined
      try {
        const response = await this.http.request(method, url, body === undefined ? (method === 'POST' ? '' : null) : JSON.stringify(body), headers)
        status = response.message.statusCode ?? 0
        retryAfter = response.message.headers['retry-after']
        text = await response.readBody()
      } catch (err) {
        if (!isRetryableNetworkError(err) || attempt >= MAX_ATTEMPTS) throw err
        await this.waitToRetry(retryAfterMs(undefined, attempt), `The connection to ARM failed (${errorText(err)})`, method, path, attempt)
        continue
      }
      if (status >= 200 && status < 300) return (text ? JSON.parse(text) : {}) as T
      if (RETRYABLE.has(status) && attempt < MAX_ATTEMPTS) {
        await this.waitToRetry(retryAfterMs(retryAfter, attempt), `ARM answered ${status}`, method, path, attempt)
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

/** Azure resource group names are case-insensitive. */
export function sameResourceGroup(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase()
}

/** Each resource group once, spelled as first given. */
export function distinctResourceGroups(groups: string[]): string[] {
  return groups.filter((g, i) => groups.findIndex(o => sameResourceGroup(o, g)) === i)
}
