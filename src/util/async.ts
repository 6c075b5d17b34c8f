// Small helpers every phase shares: error text, time limits, waiting for parallel work.

/**
 * An error as one line a user can act on. A Kubernetes API error (client-node's
 * ApiException: `code` and the API server's Status as `body`) says the server's own message
 * (an admission policy's reason, say) rather than its HTTP dump.
 */
export function errorText(err: unknown): string {
  const api = err as { code?: unknown; body?: unknown }
  if (err instanceof Error && typeof api.code === 'number' && api.body !== undefined) {
    const message = statusMessage(api.body)
    if (message) return `${message} (HTTP ${api.code})`
  }
  return err instanceof Error ? err.message : String(err)
}

/** The message of a Kubernetes Status, given as an object or as its JSON text. */
function statusMessage(body: unknown): string | undefined {
  let status = body
  if (typeof body === 'string') {
    try {
      status = JSON.parse(body) as unknown
    } catch {
      return undefined
    }
  }
  const message = (status as { message?: unknown } | null)?.message
  return typeof message === 'string' && message ? message : undefined
}

export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Waits for every part before reporting, so a failed part never leaves a sibling (a helm
 * upgrade, a download) running unwatched; then throws all failures together.
 */
export async function settleAll<T extends readonly unknown[]>(work: readonly [...{ [K in keyof T]: Promise<T[K]> }]): Promise<T> {
  // A tuple of promises typed through a mapped type, which the rule cannot see through.
  // eslint-disable-next-line @typescript-eslint/await-thenable
  const settled = await Promise.allSettled(work)
  const failures = settled.flatMap(r => (r.status === 'rejected' ? [errorText(r.reason)] : []))
  if (failures.length > 0) throw new Error(failures.join('\n\n'))
  return settled.map(r => (r as PromiseFulfilledResult<unknown>).value) as unknown as T
}

/**
 * Calls `check` until it returns something other than undefined, `intervalMs` apart;
 * undefined once `deadline` (epoch ms) has passed. The one polling loop of the action:
 * used where a fresh read each time is safer than a watch (which can miss a deletion
 * while it resumes) or where there is nothing to watch (ARM, a log).
 */
export async function pollUntil<T>(check: () => Promise<T | undefined>, deadline: number, intervalMs: number): Promise<T | undefined> {
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) return undefined
    await sleep(intervalMs)
  }
}

export type Settled<R> = { ok: true; value: R } | { ok: false; error: string }

/** Runs `work` over `items` with at most `limit` at once; never rejects (each result says how its item went). */
export async function pool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<Array<Settled<R>>> {
  const results: Array<Settled<R>> = new Array(items.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      try {
        results[i] = { ok: true, value: await work(items[i]!) }
      } catch (err) {
        results[i] = { ok: false, error: errorText(err) }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane))
  return results
}

/**
 * One time limit for every wait of a step (wait-timeout): each wait gets what is left of
 * it, so the waits together never take longer than the limit. At least `MIN_WAIT_MS`, so a
 * late wait still looks once instead of failing without looking.
 */
export class Deadline {
  static readonly MIN_WAIT_MS = 1_000
  constructor(readonly at: number) {}

  static after(ms: number): Deadline {
    return new Deadline(Date.now() + ms)
  }

  /** Milliseconds left (at least MIN_WAIT_MS). */
  left(): number {
    return Math.max(Deadline.MIN_WAIT_MS, this.at - Date.now())
  }
}
