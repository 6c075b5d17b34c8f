// An access token that is fetched on first use and again shortly before it expires, so
// waits longer than a token's life (an hour or so) keep working.
import * as core from '@actions/core'
import type { AccessToken } from './azure-login.js'
import { errorText } from '../util/async.js'

/** A token with less than this left is replaced before use (helm re-reads its token file every minute). */
export const REFRESH_MARGIN_MS = 5 * 60_000
/** How often `keepFresh` checks. */
const BACKGROUND_REFRESH_MS = 60_000

/**
 * One token; concurrent callers share one fetch, a failed fetch is not kept. `onToken`
 * sees every new token (masking happens where it is fetched).
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

  /** Starts with a token already in hand (the sign-in's). */
  seed(t: AccessToken): this {
    this.current = t
    return this
  }

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
    this.timer = setInterval(() => void this.get().catch(err => core.warning(`Could not refresh an access token: ${errorText(err)}`)), BACKGROUND_REFRESH_MS)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }
}
