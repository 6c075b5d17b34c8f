// Which proxy the action's own Kubernetes client uses for the API server: the one helm and
// kubectl use. Both are Go programs whose client-go transport takes
// `http.ProxyFromEnvironment` unless the kubeconfig's cluster sets `proxy-url`; this is
// that function's rule (golang.org/x/net v0.47.0 `http/httpproxy/proxy.go`, which net/http
// vendors), so a runner behind a proxy reaches the API server the same way from every
// tool. @kubernetes/client-node itself only honours a kubeconfig `proxy-url`.
import { isIP } from 'node:net'

export type Env = Record<string, string | undefined>

/** The first variable of `names` that is set and not empty (httpproxy's `getEnvAny`). */
function envAny(env: Env, ...names: string[]): string {
  for (const n of names) {
    const v = env[n]
    if (v) return v
  }
  return ''
}

/** A proxy address as httpproxy's `parseProxy` reads it: without a scheme it is `http://`. */
export function parseProxy(value: string): URL | undefined {
  if (!value) return undefined
  for (const candidate of [value, `http://${value}`]) {
    try {
      const u = new URL(candidate)
      if (u.protocol && u.host) return u
    } catch {
      // try the next form
    }
  }
  return undefined
}

/** An address as Go's net.IP holds it: 16 bytes, IPv4 mapped into IPv6 (so 10.0.0.1 equals ::ffff:10.0.0.1). */
export function ipBytes(ip: string): number[] {
  if (isIP(ip) === 4) return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ip.split('.').map(Number)]
  let text = ip
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  const tailBytes = v4 ? v4[1].split('.').map(Number) : []
  if (v4) {
    text = text.slice(0, v4.index)
    if (!text.endsWith('::')) text = text.replace(/:$/, '')
  }
  const [head, tail] = text.split('::')
  const groups = (s: string | undefined): number[] => (s ? s.split(':').map(g => parseInt(g, 16)) : [])
  const h = groups(head)
  const t = groups(tail)
  const missing = 8 - h.length - t.length - tailBytes.length / 2
  const all = tail === undefined ? h : [...h, ...Array<number>(missing).fill(0), ...t]
  return [...all.flatMap(g => [g >> 8, g & 0xff]), ...tailBytes]
}

/** The 16 bytes hold an IPv4 address (::ffff:a.b.c.d), as net.IP.To4 finds one. */
function isV4(bytes: number[]): boolean {
  return bytes.slice(0, 10).every(x => x === 0) && bytes[10] === 0xff && bytes[11] === 0xff
}

/** net.IP.IsLoopback: 127/8 (also IPv4-mapped) or ::1. */
function isLoopback(ip: string): boolean {
  const b = ipBytes(ip)
  return isV4(b) ? b[12] === 127 : b.slice(0, 15).every(x => x === 0) && b[15] === 1
}

/** net.IPNet.Contains for `cidr` (an IPv4 network only holds IPv4 addresses, IPv4-mapped included). */
function inCidr(ip: string, cidr: string): boolean {
  const [net, lenText] = cidr.split('/')
  const v4net = isIP(net) === 4
  const a = ipBytes(ip)
  if (v4net !== isV4(a)) return false
  const prefix = Number(lenText) + (v4net ? 96 : 0)
  const b = ipBytes(net)
  for (let bit = 0; bit < prefix; bit++) {
    const i = bit >> 3
    const m = 0x80 >> (bit & 7)
    if ((a[i] & m) !== (b[i] & m)) return false
  }
  return true
}

function sameIp(x: string, y: string): boolean {
  const a = ipBytes(x)
  const b = ipBytes(y)
  return a.every((v, i) => v === b[i])
}

/** One NO_PROXY entry matching host:port, per httpproxy's `init` and its ip/cidr/domain matchers. */
function entryMatches(entry: string, host: string, port: string): boolean {
  if (entry.includes('/')) {
    const [net, len] = entry.split('/')
    return isIP(net) !== 0 && /^\d+$/.test(len) && isIP(host) !== 0 && inCidr(host, entry)
  }
  let phost = entry
  let pport = ''
  const withPort = /^(\[[^\]]*\]|[^:]*):(\d+)$/.exec(entry)
  if (withPort) {
    phost = withPort[1].replace(/^\[(.*)\]$/, '$1')
    pport = withPort[2]
  }
  if (!phost) return false
  const portOk = pport === '' || pport === port
  if (isIP(phost)) return isIP(host) !== 0 && sameIp(phost, host) && portOk
  // Domain matchers never match an IP address.
  if (isIP(host)) return false
  if (phost.startsWith('*.')) phost = phost.slice(1)
  const matchHost = !phost.startsWith('.')
  if (matchHost) phost = `.${phost}`
  return (host.endsWith(phost) || (matchHost && host === phost.slice(1))) && portOk
}

/**
 * The proxy for requests to `server` (an https or http URL) from `env`, or undefined to go
 * direct: HTTPS_PROXY (or https_proxy) for https, HTTP_PROXY for http; never for
 * localhost or a loopback address; never when NO_PROXY (or no_proxy) is `*` or has an
 * entry for the host: a domain (matching it and its subdomains), `.domain` or `*.domain`
 * (subdomains only), an IP, or a CIDR, each optionally with `:port`.
 */
export function proxyFromEnvironment(server: string, env: Env = process.env): URL | undefined {
  const url = new URL(server)
  const proxy = parseProxy(
    url.protocol === 'https:' ? envAny(env, 'HTTPS_PROXY', 'https_proxy') : url.protocol === 'http:' ? envAny(env, 'HTTP_PROXY', 'http_proxy') : ''
  )
  if (!proxy) return undefined
  // URL.hostname keeps an IPv6 address in brackets.
  const host = url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  const port = url.port || (url.protocol === 'https:' ? '443' : '80')
  if (host === 'localhost' || (isIP(host) !== 0 && isLoopback(host))) return undefined
  for (const raw of envAny(env, 'NO_PROXY', 'no_proxy').split(',')) {
    const entry = raw.trim().toLowerCase()
    if (!entry) continue
    if (entry === '*') return undefined
    if (entryMatches(entry, host, port)) return undefined
  }
  return proxy
}
