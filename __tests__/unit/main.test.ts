import { describe, expect, it } from 'vitest'
import { settleAll } from '../../src/util/async.js'

describe('parallel parts of a phase', () => {
  it('all finish before a failure is reported, and every failure is named', async () => {
    let slowDone = false
    const slow = new Promise<string>(resolve =>
      setTimeout(() => {
        slowDone = true
        resolve('windows installed')
      }, 150)
    )
    const failed = Promise.reject(new Error('linux: helm failed'))
    const alsoFailed = Promise.reject(new Error('samples: timed out'))
    const err = (await settleAll([failed, slow, alsoFailed]).catch((e: unknown) => e)) as Error
    // A sibling helm must not be left running unwatched when the step reports its failure.
    expect(slowDone).toBe(true)
    expect(err.message).toBe('linux: helm failed\n\nsamples: timed out')
  })

  it('keeps each result in its place', async () => {
    const [a, b] = await settleAll([Promise.resolve(1), Promise.resolve('two')])
    expect([a, b]).toEqual([1, 'two'])
  })
})
