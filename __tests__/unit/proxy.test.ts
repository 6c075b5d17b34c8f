// The proxy rule of Go's http.ProxyFromEnvironment, which helm and kubectl follow. The
// tables are golang.org/x/net v0.47.0 `http/httpproxy/proxy_test.go` (UseProxyTests with
// its noProxy list, and cases of proxyForURLTests), so the action's client decides as they do.
import { describe, expect, it } from 'vitest'
import { KubeConfig } from '@kubernetes/client-node'
import { proxyFromEnvironment } from '../../src/kubernetes/proxy.js'
import { withEnvironmentProxy } from '../../src/kubernetes/kube.js'
import { tokenFileKubeconfig } from '../../src/kubernetes/cluster.js'

const NO_PROXY =
  'foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, 10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, 2002:db8:a::45/64'

// host, proxied?
const USE_PROXY: Array<[string, boolean]> = [
  ['localhost', false],
  ['127.0.0.1', false],
  ['127.0.0.2', false],
  ['[::1]', false],
  ['[::2]', true],
  ['192.168.1.1', false],
  ['192.168.1.2', true],
  ['192.168.1.3', false],
  ['192.168.1.4', true],
  ['10.0.0.2', false],
  ['[2001:db8::52:0:1]', false],
  ['[2001:db8::52:0:2]', true],
  ['[2001:db8::52:0:3]', false],
  ['[2002:db8:a::123]', false],
  ['[fe80::424b:c8be:1643:a1b6]', true],
  ['barbaz.net', true],
  ['www.barbaz.net', false],
  ['foobar.com', false],
  ['www.foobar.com', false],
  ['foofoobar.com', true],
  ['baz.com', true],
  ['localhost.net', true],
  ['local.localhost', true],
  ['barbarbaz.net', true],
  ['wildcard.io', true],
  ['nested.wildcard.io', false],
  ['awildcard.io', true]
]

describe('proxyFromEnvironment', () => {
  it.each(USE_PROXY)('%s:80 proxied: %s (httpproxy UseProxyTests)', (host, proxied) => {
    const proxy = proxyFromEnvironment(`http://${host}:80/`, { HTTP_PROXY: 'http://proxy:3128', NO_PROXY })
    expect(proxy !== undefined).toBe(proxied)
  })

  it('takes HTTPS_PROXY for https and HTTP_PROXY for http, upper case first, http:// when no scheme', () => {
    expect(proxyFromEnvironment('https://secure.tld/', { HTTP_PROXY: 'http.proxy.tld', HTTPS_PROXY: 'secure.proxy.tld' })?.href).toBe(
      'http://secure.proxy.tld/'
    )
    expect(proxyFromEnvironment('https://secure.tld/', { HTTPS_PROXY: 'https://secure.proxy.tld' })?.href).toBe('https://secure.proxy.tld/')
    expect(proxyFromEnvironment('https://secure.tld/', { HTTP_PROXY: 'http.proxy.tld' })).toBeUndefined()
    expect(proxyFromEnvironment('http://insecure.tld/', { HTTP_PROXY: 'http.proxy.tld', HTTPS_PROXY: 'secure.proxy.tld' })?.href).toBe('http://http.proxy.tld/')
    expect(proxyFromEnvironment('https://a.tld/', { HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:2' })?.host).toBe('upper:1')
    expect(proxyFromEnvironment('https://a.tld/', { https_proxy: 'socks5://127.0.0.1' })?.href).toBe('socks5://127.0.0.1')
  })

  it('goes direct for NO_PROXY=* and for domain entries as the table in proxyForURLTests', () => {
    const env = (NO_PROXY: string) => ({ HTTP_PROXY: 'proxy', NO_PROXY })
    expect(proxyFromEnvironment('https://anything.example/', { HTTPS_PROXY: 'proxy', no_proxy: '*' })).toBeUndefined()
    expect(proxyFromEnvironment('http://example.com/', env('example.com'))).toBeUndefined()
    expect(proxyFromEnvironment('http://example.com/', env('.example.com'))?.host).toBe('proxy')
    expect(proxyFromEnvironment('http://example.com/', env('ample.com'))?.host).toBe('proxy')
    expect(proxyFromEnvironment('http://foo.example.com/', env('example.com'))).toBeUndefined()
    expect(proxyFromEnvironment('http://example.com/', env('.foo.com'))?.host).toBe('proxy')
    // An AKS API server: the default port of https counts for an entry with a port.
    expect(proxyFromEnvironment('https://aks-dns-1a2b3c4d.hcp.eastus.azmk8s.io:443', { HTTPS_PROXY: 'proxy', NO_PROXY: '.azmk8s.io:443' })).toBeUndefined()
    expect(proxyFromEnvironment('https://aks-dns-1a2b3c4d.hcp.eastus.azmk8s.io', { HTTPS_PROXY: 'proxy', NO_PROXY: 'hcp.eastus.azmk8s.io:6443' })?.host).toBe(
      'proxy'
    )
  })
})

const kubeconfig = (extra = ''): string => `apiVersion: v1
kind: Config
clusters:
- name: aks
  cluster:
    server: https://aks-dns-1a2b3c4d.hcp.eastus.azmk8s.io:443
    certificate-authority-data: Y2E=${extra}
users:
- name: u
  user: { token: t }
contexts:
- name: c
  context: { cluster: aks, user: u }
current-context: c
`

describe('withEnvironmentProxy', () => {
  it("gives the API server the environment's proxy, and keeps a kubeconfig's own proxy-url", () => {
    const kc = new KubeConfig()
    kc.loadFromString(kubeconfig())
    withEnvironmentProxy(kc, { HTTPS_PROXY: 'http://user:p%40ss@proxy.corp:3128', NO_PROXY: 'localhost' })
    expect(kc.getCurrentCluster()?.proxyUrl).toBe('http://user:p%40ss@proxy.corp:3128/')
    expect(kc.getCurrentUser()?.token).toBe('t')

    const own = new KubeConfig()
    own.loadFromString(kubeconfig('\n    proxy-url: http://own:1'))
    withEnvironmentProxy(own, { HTTPS_PROXY: 'http://proxy.corp:3128' })
    expect(own.getCurrentCluster()?.proxyUrl).toBe('http://own:1')

    const direct = new KubeConfig()
    direct.loadFromString(kubeconfig())
    withEnvironmentProxy(direct, { HTTPS_PROXY: 'http://proxy.corp:3128', NO_PROXY: '.azmk8s.io' })
    expect(direct.getCurrentCluster()?.proxyUrl).toBeUndefined()
  })

  it("keeps a cluster's proxy-url in the token-file kubeconfig later steps get", () => {
    const text = tokenFileKubeconfig(kubeconfig('\n    proxy-url: http://own:1'), '/tmp/token')
    expect((JSON.parse(text) as { clusters: Array<{ cluster: Record<string, string> }> }).clusters[0].cluster['proxy-url']).toBe('http://own:1')
  })
})
