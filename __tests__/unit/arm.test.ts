import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { RefreshingToken } from '../../src/azure/refreshing-token.js'
import { ArmClient, ArmError, getArmAccess, retryAfterMs } from '../../src/azure/arm.js'
import { ensureProviderRegistered } from '../../src/azure/provider-registration.js'

describe('Retry-After', () => {
  it('reads seconds and HTTP dates, caps long waits, backs off without a header', () => {
    expect(retryAfterMs('7', 1)).toBe(7000)
    expect(retryAfterMs(new Date(1_000_000 + 3000).toUTCString(), 1, 1_000_000)).toBe(3000)
    expect(retryAfterMs('120', 1)).toBe(120_000)
    expect(retryAfterMs('36000', 1)).toBe(15 * 60_000)
    expect(retryAfterMs(undefined, 3)).toBe(8000)
  })
})

// A real HTTP server on 127.0.0.1 stands in for ARM here: the client's retry logic is
// pure HTTP; the end-to-end tests run it against the Azure double with the real az.
describe('ArmClient', () => {
  let server: http.Server | undefined
  afterEach(() => new Promise<void>(resolve => (server ? server.close(() => resolve()) : resolve())))

  async function serve(responses: Array<[number, Record<string, string>, string]>): Promise<{ url: string; seen: string[] }> {
    const seen: string[] = []
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`)
      const [status, headers, body] = responses.shift() ?? [500, {}, '']
      // Status 0: the connection is reset before any answer.
      if (status === 0) return void req.socket.destroy()
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body)
    })
    await new Promise<void>(resolve => server?.listen(0, '127.0.0.1', resolve))
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
  }
  const access = (endpoint: string) => ({
    endpoint,
    token: new RefreshingToken(async () => ({ token: 'tok', expiresOnMs: Date.now() + 3_600_000 })),
    subscriptionId: 'sub',
    tenantId: 't',
    cloudName: 'c',
    authority: 'https://login.example'
  })

  it('retries 429 and 503 after the Retry-After it was given, with the bearer token', async () => {
    const { url, seen } = await serve([
      [429, { 'retry-after': '2' }, '{"error":{"code":"TooManyRequests"}}'],
      [503, { 'retry-after': '1' }, ''],
      [200, {}, '{"ok":true}']
    ])
    const waits: number[] = []
    const arm = new ArmClient(access(url), { sleep: async ms => void waits.push(ms) })
    expect(await arm.get(arm.subscriptionPath('/providers/X'), '2021-04-01')).toEqual({ ok: true })
    expect(waits).toEqual([2000, 1000])
    expect(seen).toEqual(Array(3).fill('GET /subscriptions/sub/providers/X?api-version=2021-04-01 Bearer tok'))
  })

  it('retries a connection reset with back-off, and a Retry-After past the deadline fails at once, saying so', async () => {
    const { url, seen } = await serve([
      [0, {}, ''],
      [200, {}, '{"ok":true}']
    ])
    const waits: number[] = []
    const arm = new ArmClient(access(url), { sleep: async ms => void waits.push(ms) })
    expect(await arm.get('/x', '1')).toEqual({ ok: true })
    expect(waits).toEqual([2000])
    expect(seen).toHaveLength(2)

    await new Promise<void>(resolve => server?.close(() => resolve()))
    const late = await serve([[429, { 'retry-after': '120' }, '']])
    const bounded = new ArmClient(access(late.url), { sleep: async () => undefined, deadline: Date.now() + 60_000 })
    await expect(bounded.get('/x', '1')).rejects.toThrow("ARM answered 429, and ARM asks to retry in 120 s, after this step's wait-timeout runs out")
    expect(late.seen).toHaveLength(1)
  })

  it('turns an ARM error body into an ArmError with its code', async () => {
    const { url } = await serve([[404, {}, '{"error":{"code":"ResourceNotFound","message":"The Resource x was not found."}}']])
    const arm = new ArmClient(access(url))
    const err = (await arm.get('/x', '1').catch((e: unknown) => e)) as ArmError
    expect(err).toBeInstanceOf(ArmError)
    expect(err).toMatchObject({ status: 404, code: 'ResourceNotFound' })
    expect(err.message).toContain('The Resource x was not found.')
  })

  it('a provider this identity may not register fails with the one-time command for an owner', async () => {
    const { url, seen } = await serve([
      [200, {}, '{"namespace":"Microsoft.ContainerInstance","registrationState":"NotRegistered"}'],
      [403, {}, '{"error":{"code":"AuthorizationFailed","message":"The client does not have authorization to perform action register/action."}}']
    ])
    const arm = new ArmClient(access(url))
    const err = (await ensureProviderRegistered(arm).catch((e: unknown) => e)) as Error
    expect(err.message).toContain('Ask a subscription owner to run once: `az provider register --namespace Microsoft.ContainerInstance --wait`')
    expect(err.message).toContain('AuthorizationFailed')
    expect(seen.map(s => s.split(' ')[0])).toEqual(['GET', 'POST'])
  })

  it('gives up after a bounded number of retries', async () => {
    const { url, seen } = await serve(Array(10).fill([503, { 'retry-after': '0' }, '']))
    const arm = new ArmClient(access(url), { sleep: async () => undefined })
    await expect(arm.post('/x', '1')).rejects.toMatchObject({ status: 503 })
    expect(seen).toHaveLength(6)
  })

  it('takes the only subscription a service principal can see, and asks for subscription-id when it sees several', async () => {
    const session = (url: string) => ({
      description: 'service principal cid (client secret)',
      cloud: { name: 'AzureCloud', resourceManager: url, authority: 'https://login.example', armResource: 'https://management.core.windows.net/' },
      tenantId: 't',
      getToken: async () => ({ token: 'tok', expiresOnMs: Date.now() + 3_600_000 })
    })
    const token = { token: 'tok', expiresOnMs: Date.now() + 3_600_000 }
    const one = await serve([[200, {}, '{"value":[{"subscriptionId":"AAAA-1","state":"Enabled"},{"subscriptionId":"bbbb-2","state":"Disabled"}]}']])
    expect((await getArmAccess(session(one.url), token)).subscriptionId).toBe('aaaa-1')
    expect(one.seen).toEqual(['GET /subscriptions?api-version=2022-12-01 Bearer tok'])
    await new Promise<void>(resolve => server?.close(() => resolve()))
    const two = await serve([
      [200, {}, '{"value":[{"subscriptionId":"a","displayName":"Dev","state":"Enabled"},{"subscriptionId":"b","displayName":"Prod","state":"Enabled"}]}']
    ])
    await expect(getArmAccess(session(two.url), token)).rejects.toThrow('can see 2 subscriptions (a Dev, b Prod): set subscription-id')
    // Given one, nothing is listed.
    expect((await getArmAccess(session(two.url), token, 'c')).subscriptionId).toBe('c')
    expect(two.seen).toHaveLength(1)
  })
})
