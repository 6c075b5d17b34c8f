// Waiting for parallel work without leaving any of it running unwatched.
import { errorText } from './tools.js'

/**
 * Waits for every part before reporting, so a failed part never leaves a sibling (a helm
 * upgrade, a download) running unwatched; then throws all failures together.
 */
export async function settleAll<T extends readonly unknown[]>(work: readonly [...{ [K in keyof T]: Promise<T[K]> }]): Promise<T> {
  const settled = await Promise.allSettled(work)
  const failures = settled.flatMap(r => (r.status === 'rejected' ? [errorText(r.reason)] : []))
  if (failures.length > 0) throw new Error(failures.join('\n\n'))
  return settled.map(r => (r as PromiseFulfilledResult<unknown>).value) as unknown as T
}
