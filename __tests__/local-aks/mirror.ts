// A local stand-in for dl.k8s.io, get.helm.sh and kubelogin's GitHub releases: same paths, same archive
// layout, same checksum files. The action is pointed at it through its base
// URLs, so its real download + SHA-256 check + tool-cache code runs unchanged.
// Knobs let a test break the mirror on purpose (corrupt bytes, outage).
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { copyFile, chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface MirrorOptions {
  /** version ('v1.34.4') -> path of a linux/amd64 kubectl binary */
  kubectl: Record<string, string>
  /** version ('v4.3.1') -> path of a linux/amd64 helm binary */
  helm: Record<string, string>
  /** version ('v0.2.21') -> path of a kubelogin release zip (kubelogin-linux-amd64.zip) */
  kubelogin?: Record<string, string>
  /** Other files: URL path (e.g. the published chart's path on github.com) -> file on this machine */
  files?: Record<string, string>
  /** What stable.txt / helm-latest-version answer; absent -> 404 */
  latest?: { kubectl?: string; helm?: string }
}

export type MirrorTool = 'kubectl' | 'helm' | 'kubelogin'

export interface Mirror {
  /** <base>/<v>/bin/linux/amd64/kubectl (+ .sha256), <base>/stable.txt */
  kubectlBaseUrl: string
  /** <base>/helm-<v>-linux-amd64.tar.gz (+ .sha256sum), <base>/helm-latest-version */
  helmBaseUrl: string
  /** <base>/<v>/kubelogin-linux-amd64.zip (+ .sha256), laid out like github.com/Azure/kubelogin/releases/download */
  kubeloginBaseUrl: string
  /** Absolute URL of a path this mirror serves. */
  url(path: string): string
  knobs: {
    /** serve this tool's binary/archive with flipped bytes; its checksum file stays right */
    corrupt: Set<MirrorTool>
    /** every request -> 503 */
    down: boolean
  }
  requests: Array<{ path: string; status: number }>
  stop(): Promise<void>
}

/** One file the mirror can serve, with its bytes loaded once. */
interface Entry {
  body: Buffer
  contentType: string
  /** set for the tool payloads the corrupt knob applies to */
  tool?: MirrorTool
}

const BINARY = 'application/octet-stream'
const TEXT = 'text/plain; charset=utf-8'

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

function execTar(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('tar', args, { timeout: 120_000, killSignal: 'SIGKILL' }, (err, _out, stderr) => {
      if (err) reject(new Error(`tar ${args.join(' ')}: ${err.message}\n${stderr}`))
      else resolve()
    })
  })
}

/** helm-<v>-linux-amd64.tar.gz with linux-amd64/helm inside, as get.helm.sh ships it. */
async function buildHelmArchive(helmBinary: string, workDir: string): Promise<Buffer> {
  const stage = await mkdtemp(join(workDir, 'helm-'))
  await mkdir(join(stage, 'linux-amd64'))
  await copyFile(helmBinary, join(stage, 'linux-amd64', 'helm'))
  await chmod(join(stage, 'linux-amd64', 'helm'), 0o755)
  const archive = join(stage, 'helm.tar.gz')
  await execTar(['-czf', archive, '-C', stage, '--owner=0', '--group=0', 'linux-amd64'])
  return readFile(archive)
}

async function addKubectl(files: Map<string, Entry>, version: string, binary: string): Promise<void> {
  const body = await readFile(binary)
  const path = `/kubectl/release/${version}/bin/linux/amd64/kubectl`
  files.set(path, { body, contentType: BINARY, tool: 'kubectl' })
  // dl.k8s.io's .sha256 holds the bare hex digest, no file name.
  files.set(`${path}.sha256`, { body: Buffer.from(sha256(body)), contentType: TEXT })
}

async function addHelm(files: Map<string, Entry>, version: string, binary: string, workDir: string): Promise<void> {
  const body = await buildHelmArchive(binary, workDir)
  const name = `helm-${version}-linux-amd64.tar.gz`
  files.set(`/helm/${name}`, { body, contentType: 'application/x-tar', tool: 'helm' })
  // get.helm.sh's .sha256sum is sha256sum(1) output: "<hex>  <file name>".
  files.set(`/helm/${name}.sha256sum`, { body: Buffer.from(`${sha256(body)}  ${name}\n`), contentType: TEXT })
}

async function buildFiles(opts: MirrorOptions, workDir: string): Promise<Map<string, Entry>> {
  const files = new Map<string, Entry>()
  for (const [v, bin] of Object.entries(opts.kubectl)) await addKubectl(files, v, bin)
  for (const [v, bin] of Object.entries(opts.helm)) await addHelm(files, v, bin, workDir)
  for (const [v, zip] of Object.entries(opts.kubelogin ?? {})) {
    const body = await readFile(zip)
    const name = 'kubelogin-linux-amd64.zip'
    files.set(`/kubelogin/releases/download/${v}/${name}`, { body, contentType: 'application/zip', tool: 'kubelogin' })
    // kubelogin's release workflow: `sha256sum kubelogin-linux-amd64.zip > kubelogin-linux-amd64.zip.sha256`.
    files.set(`/kubelogin/releases/download/${v}/${name}.sha256`, { body: Buffer.from(`${sha256(body)}  ${name}\n`), contentType: TEXT })
  }
  for (const [urlPath, file] of Object.entries(opts.files ?? {})) {
    files.set(urlPath, { body: await readFile(file), contentType: /\.t?gz$/.test(file) ? 'application/gzip' : BINARY })
  }
  // The real hosts answer "latest" with a version and a trailing newline.
  if (opts.latest?.kubectl) files.set('/kubectl/release/stable.txt', { body: Buffer.from(`${opts.latest.kubectl}\n`), contentType: TEXT })
  if (opts.latest?.helm) files.set('/helm/helm-latest-version', { body: Buffer.from(`${opts.latest.helm}\n`), contentType: TEXT })
  return files
}

/** A copy with bytes flipped through the file, so any checksum differs but the length does not. */
function corrupted(body: Buffer): Buffer {
  const copy = Buffer.from(body)
  for (let i = 0; i < copy.length; i += 4096) copy[i] = copy[i]! ^ 0xff
  if (copy.length > 0) copy[copy.length - 1] = copy[copy.length - 1]! ^ 0xff
  return copy
}

function send(res: ServerResponse, status: number, body: Buffer, contentType: string, head: boolean): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': body.length })
  res.end(head ? undefined : body)
}

function makeHandler(files: Map<string, Entry>, mirror: Mirror) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://mirror').pathname)
    const head = req.method === 'HEAD'
    const answer = (status: number, body: Buffer, type: string): void => {
      mirror.requests.push({ path, status })
      send(res, status, body, type, head)
    }
    if (mirror.knobs.down) return answer(503, Buffer.from('Service Unavailable\n'), TEXT)
    if (req.method !== 'GET' && !head) return answer(405, Buffer.from('Method Not Allowed\n'), TEXT)
    const entry = files.get(path)
    // Anything else (darwin/windows/arm64 builds, unknown versions) is a 404, like the real hosts.
    if (!entry) return answer(404, Buffer.from('Not Found\n'), TEXT)
    const body = entry.tool && mirror.knobs.corrupt.has(entry.tool) ? corrupted(entry.body) : entry.body
    answer(200, body, entry.contentType)
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  })
}

/** Starts the mirror on a free 127.0.0.1 port; checksums are computed once, here. */
export async function startMirror(opts: MirrorOptions): Promise<Mirror> {
  const workDir = await mkdtemp(join(tmpdir(), 'tool-mirror-'))
  let files: Map<string, Entry>
  try {
    files = await buildFiles(opts, workDir)
  } finally {
    // Archives are held in memory; the staging folder is not needed any more.
    await rm(workDir, { recursive: true, force: true })
  }
  const server = createServer()
  const port = await listen(server)
  const origin = `http://127.0.0.1:${port}`
  const mirror: Mirror = {
    kubectlBaseUrl: `${origin}/kubectl/release`,
    helmBaseUrl: `${origin}/helm`,
    kubeloginBaseUrl: `${origin}/kubelogin/releases/download`,
    url: (path: string) => `${origin}${path}`,
    knobs: { corrupt: new Set<MirrorTool>(), down: false },
    requests: [],
    stop: () =>
      new Promise<void>(resolve => {
        // Keep-alive sockets would hold close() open; drop them.
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
  server.on('request', makeHandler(files, mirror))
  return mirror
}
