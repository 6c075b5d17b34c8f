import { describe, expect, it } from 'vitest'
import { ApiException } from '@kubernetes/client-node'
import { errorText, pollUntil, settleAll } from '../../src/util/async.js'
import { watchUntil } from '../../src/kubernetes/kube.js'

describe('pollUntil', () => {
  it('returns the first value the check gives', async () => {
    let calls = 0
    expect(await pollUntil(async () => (++calls === 3 ? 'done' : undefined), Date.now() + 5_000, 1)).toBe('done')
    expect(calls).toBe(3)
  })
  it('gives undefined once the deadline has passed, after one last check', async () => {
    let calls = 0
    expect(await pollUntil(async () => void calls++, Date.now() + 20, 5)).toBeUndefined()
    expect(calls).toBeGreaterThan(1)
  })
  it('passes a failing check on', async () => {
    await expect(pollUntil(async () => Promise.reject(new Error('boom')), Date.now() + 1_000, 1)).rejects.toThrow('boom')
  })
})

describe('watchUntil', () => {
  it('settles with the first value and stops the watches', async () => {
    let signal: AbortSignal | undefined
    const result = await watchUntil<string>(5_000, (settle, s) => {
      signal = s
      setTimeout(() => settle('first'), 5)
      setTimeout(() => settle('second'), 10)
    })
    expect(result).toBe('first')
    expect(signal?.aborted).toBe(true)
  })
  it('gives undefined at the time limit', async () => {
    expect(await watchUntil<string>(10, () => undefined)).toBeUndefined()
  })
})

describe('settleAll', () => {
  it('waits for every part and reports all failures together', async () => {
    let slowDone = false
    const slow = new Promise<number>(resolve => setTimeout(() => ((slowDone = true), resolve(1)), 20))
    await expect(settleAll([Promise.reject(new Error('a')), slow, Promise.reject(new Error('b'))])).rejects.toThrow('a\n\nb')
    expect(slowDone).toBe(true)
  })
})

describe('Deadline', () => {
  it('gives each wait what is left of one limit, and at least a second to look once', async () => {
    const { Deadline } = await import('../../src/util/async.js')
    const d = Deadline.after(5_000)
    expect(d.left()).toBeGreaterThan(4_000)
    expect(d.left()).toBeLessThanOrEqual(5_000)
    expect(new Deadline(Date.now() - 60_000).left()).toBe(Deadline.MIN_WAIT_MS)
  })
})

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

describe('errorText', () => {
  it("says the Kubernetes API server's own reason, not client-node's HTTP dump", () => {
    const status = { kind: 'Status', status: 'Failure', message: 'nodes "n" is forbidden: ValidatingAdmissionPolicy \'no-cordon\' denied request', code: 422 }
    expect(errorText(new ApiException(422, 'Unprocessable Entity', JSON.stringify(status), {}))).toBe(`${status.message} (HTTP 422)`)
    expect(errorText(new ApiException(422, 'Unprocessable Entity', status, {}))).toBe(`${status.message} (HTTP 422)`)
    // Without a Status message the error stays as it is.
    expect(errorText(new ApiException(500, 'x', 'not json', {}))).toMatch(/^HTTP-Code: 500/)
    expect(errorText(new Error('plain'))).toBe('plain')
    expect(errorText('text')).toBe('text')
  })
})
