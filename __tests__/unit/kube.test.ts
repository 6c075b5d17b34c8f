import { describe, expect, it, vi } from 'vitest'
import { isNotFound, kubeconfigSecrets, kubeFromString, PERSISTENT_REFUSAL_MS, RefusalTracker, watchUntilAborted } from '../../src/kubernetes/kube.js'
import { sleep } from '../../src/util/async.js'

describe('kubeconfig secrets', () => {
  it('finds every credential field so it can be masked', () => {
    const text = [
      'users:',
      '- name: clusterUser',
      '  user:',
      '    client-certificate-data: Q0VSVA==',
      '    client-key-data: S0VZ',
      '    token: "abc.def"',
      '- name: other',
      '  user:',
      '    password: hunter2'
    ].join('\n')
    expect(kubeconfigSecrets(text)).toEqual(['Q0VSVA==', 'S0VZ', 'abc.def', 'hunter2'])
  })
  it('recognizes a 404 from client-node', () => {
    expect(isNotFound({ code: 404 })).toBe(true)
    expect(isNotFound(new Error('HTTP-Code: 404\nMessage: Unknown API Status Code!'))).toBe(true)
    expect(isNotFound({ code: 403 })).toBe(false)
  })
})

describe('a watch ended by its caller', () => {
  // A stand-in API server that answers a watch slowly and then keeps the stream open, as a
  // quiet resource does; it records when the client hangs up.
  async function slowWatchServer(headerDelayMs: number) {
    const { createServer } = await import('node:http')
    const state = { requests: 0, open: 0, closed: 0 }
    const server = createServer((_req, res) => {
      state.requests++
      state.open++
      res.on('close', () => {
        state.open--
        state.closed++
      })
      setTimeout(() => {
        if (!res.destroyed) {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.write('')
        }
      }, headerDelayMs)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    const kube = kubeFromString(
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "http://127.0.0.1:' + port + '", insecure-skip-tls-verify: true}}]',
        'users: [{name: u, user: {}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x'
      ].join('\n')
    )
    return {
      state,
      kube,
      close: () =>
        new Promise<void>(resolve => {
          server.closeAllConnections()
          server.close(() => resolve())
        })
    }
  }

  const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
    const end = Date.now() + ms
    while (!cond() && Date.now() < end) await sleep(20)
    return cond()
  }

  // [when the caller aborts, server's delay before it answers, wait before the abort]
  it.each([
    ['while the watch is still connecting', 300, 0],
    ['after the stream is open', 0, 200]
  ])('hangs up when aborted %s', async (_when, headerDelayMs, abortAfterMs) => {
    const srv = await slowWatchServer(headerDelayMs)
    try {
      const abort = new AbortController()
      const done = watchUntilAborted(srv.kube, '/api/v1/nodes', {}, () => {}, abort.signal)
      expect(await until(() => srv.state.requests === 1, 2000)).toBe(true)
      await sleep(abortAfterMs)
      abort.abort()
      await done
      // An open stream would keep the step's process alive until the runner kills it.
      expect(await until(() => srv.state.open === 0, 3000)).toBe(true)
      expect(srv.state.requests).toBe(1)
    } finally {
      await srv.close()
    }
  })
})

describe('a watch refused by the API server', () => {
  /** What @actions/core printed while `fn` ran (it writes workflow commands to stdout). */
  function printed(fn: () => void): string {
    const lines: string[] = []
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation(chunk => {
      lines.push(String(chunk))
      return true
    })
    try {
      fn()
    } finally {
      spy.mockRestore()
    }
    return lines.join('')
  }

  it('is only a note when the refusal goes away, and a warning once it has lasted PERSISTENT_REFUSAL_MS', () => {
    vi.useFakeTimers({ now: 0 })
    try {
      const brief = new RefusalTracker('/api/v1/nodes')
      const out = printed(() => {
        brief.refused('Error: Forbidden')
        vi.advanceTimersByTime(2_000)
        brief.refused('Error: Forbidden')
        brief.allowed()
      })
      expect(out).not.toContain('::warning::')
      expect(out).toContain('Watching /api/v1/nodes was refused for 2 s and is allowed again: a transient refusal')

      const lasting = new RefusalTracker('/api/v1/pods')
      const warned = printed(() => {
        lasting.refused('Error: Forbidden')
        vi.advanceTimersByTime(PERSISTENT_REFUSAL_MS)
        lasting.refused('Error: Forbidden')
        lasting.refused('Error: Forbidden')
      })
      expect(warned.match(/::warning::/g)).toHaveLength(1)
      expect(warned).toContain('::warning::Watching /api/v1/pods has been refused for 15 s (Error: Forbidden); the cluster credentials may lack read access.')
    } finally {
      vi.useRealTimers()
    }
  })
})
