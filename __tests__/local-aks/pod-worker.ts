// One pod on the agent node (kubelet.ts): its sandbox, volumes, environment, image pulls,
// init containers then containers with the kubelet's restart back-off, and the status,
// events and logs a real kubelet reports (kubernetes v1.34 pkg/kubelet: kubelet.go
// backOffPeriod 10 s, MaxContainerBackOff 300 s; kubelet_pods.go pod phase, container
// statuses, service environment variables, $(VAR) expansion; images/image_manager.go
// ErrImagePull then ImagePullBackOff).
import { mkdirSync, rmSync, existsSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import type { KubeConfig, V1Container, V1ContainerState, V1ContainerStatus, V1EnvVar, V1Pod, V1Volume } from '@kubernetes/client-node'
import { containerArgv, prepareRoot, resolveImage, startContainer, type ContainerImage, type Mount } from './container-runtime.js'
import type { PodSandbox } from './pod-network.js'
import type { ManagedProcess } from './proc.js'
import type { AgentNodeKnobs, AgentNodeOptions } from './kubelet.js'
import { api, errCode, SMP, timestamp } from './kube-raw.js'
import { sleep } from '../../src/util/async.js'

/** kubernetes pkg/kubelet/kubelet.go: backOffPeriod and MaxContainerBackOff (the image back-off uses the same). */
const BACKOFF_INITIAL_MS = 10_000
const BACKOFF_MAX_MS = 300_000
/** A kubelet sends SIGKILL after the grace period; short here, so removals stay quick when a program ignores SIGTERM. */
const MAX_GRACE_MS = 10_000
const SA_TOKEN_SECONDS = 3607
const backoff = (failures: number): number => Math.min(BACKOFF_INITIAL_MS * 2 ** Math.max(0, failures - 1), BACKOFF_MAX_MS)

// ------------------------------------------------------------ environment

/** Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion): $$ escapes, unknown references stay. */
export function expand(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) =>
    m === '$$' ? '$' : name !== undefined && name in vars ? (vars[name] ?? '') : m
  )
}

class ConfigError extends Error {}

// ------------------------------------------------------------ per-container state

interface ContainerRun {
  spec: V1Container
  init: boolean
  restartCount: number
  /** Log file of each attempt, oldest first. */
  attempts: string[]
  proc?: ManagedProcess
  imageID: string
  containerID: string
  state: V1ContainerState
  lastState: V1ContainerState
  ready: boolean
}

function waiting(reason: string, message?: string): V1ContainerState {
  return { waiting: { reason, ...(message ? { message } : {}) } }
}

/** What a pod needs of its node. */
export interface PodHost {
  readonly dir: string
  readonly stopped: boolean
  readonly kc: KubeConfig
  readonly knobs: AgentNodeKnobs
  readonly pulled: Set<string>
  readonly opts: Pick<AgentNodeOptions, 'images' | 'network' | 'podEnv'>
  log(m: string): void
  nodePath(path: string): string
  forget(uid: string): void
  recordEvent(pod: V1Pod, fieldPath: string | undefined, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>
}

// ------------------------------------------------------------ one pod

export class PodWorker {
  readonly uid: string
  readonly ns: string
  readonly name: string
  readonly runs = new Map<string, ContainerRun>()
  private readonly dir: string
  private sandbox?: PodSandbox
  private readonly startedAt = timestamp()
  private stopping = false
  private terminated?: Promise<void>
  private statusChain: Promise<void> = Promise.resolve()

  constructor(
    private readonly node: PodHost,
    public pod: V1Pod
  ) {
    this.uid = pod.metadata?.uid ?? ''
    this.ns = pod.metadata?.namespace ?? 'default'
    this.name = pod.metadata?.name ?? ''
    this.dir = join(node.dir, 'pods', this.uid)
    const hasInit = (pod.spec?.initContainers ?? []).length > 0
    for (const [list, init] of [
      [pod.spec?.initContainers ?? [], true],
      [pod.spec?.containers ?? [], false]
    ] as const) {
      for (const spec of list) {
        this.runs.set(spec.name, {
          spec,
          init,
          restartCount: 0,
          attempts: [],
          imageID: '',
          containerID: '',
          state: waiting(init || hasInit ? 'PodInitializing' : 'ContainerCreating'),
          lastState: {},
          ready: false
        })
      }
    }
  }

  private get alive(): boolean {
    return !this.stopping && !this.node.stopped
  }

  async run(): Promise<void> {
    await this.pushStatus()
    this.sandbox = await this.node.opts.network.createSandbox(`${this.ns}/${this.name}`)
    if (!this.alive) return
    await this.pushStatus()
    const mounts = await this.prepareVolumes()
    if (!mounts || !this.alive) return
    for (const run of [...this.runs.values()].filter(r => r.init)) {
      if (!(await this.runInit(run, mounts))) return
    }
    await Promise.all([...this.runs.values()].filter(r => !r.init).map(r => this.keepRunning(r, mounts)))
  }

  // ---- volumes

  /** Materializes every volume under the pod's dir; retried (FailedMount events) until it works, as the kubelet's volume manager does. */
  private async prepareVolumes(): Promise<Map<string, string> | undefined> {
    let failures = 0
    let lastMessage = ''
    while (this.alive) {
      try {
        const sources = new Map<string, string>()
        for (const v of this.pod.spec?.volumes ?? []) sources.set(v.name, await this.materialize(v))
        return sources
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e)
        if (message !== lastMessage) await this.node.recordEvent(this.pod, undefined, 'Warning', 'FailedMount', message)
        lastMessage = message
        await sleep(Math.min(2000 * 2 ** failures++, 30_000))
      }
    }
    return undefined
  }

  private async materialize(v: V1Volume): Promise<string> {
    const kc = this.node.kc
    const dir = join(this.dir, 'volumes', v.name)
    const mountFailed = (why: string): Error => new Error(`MountVolume.SetUp failed for volume "${v.name}" : ${why}`)
    const writeItems = (data: Record<string, string>, items: Array<{ key: string; path: string }> | undefined): void => {
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
      for (const { key, path } of items ?? Object.keys(data).map(k => ({ key: k, path: k }))) {
        const value = data[key]
        if (value === undefined) throw mountFailed(`configmap or secret references non-existent key "${key}"`)
        mkdirSync(dirname(join(dir, path)), { recursive: true })
        writeFileSync(join(dir, path), value, { mode: 0o644 })
      }
    }
    if (v.secret) {
      const s = (await api(kc, 'GET', `/api/v1/namespaces/${this.ns}/secrets/${v.secret.secretName}`).catch(e => {
        if (errCode(e) === 404 && !v.secret?.optional) throw mountFailed(`secret "${v.secret?.secretName}" not found`)
        return { data: {} }
      })) as { data?: Record<string, string> }
      const decoded = Object.fromEntries(Object.entries(s.data ?? {}).map(([k, b]) => [k, Buffer.from(b, 'base64').toString('utf8')]))
      writeItems(decoded, v.secret.items)
      return dir
    }
    if (v.configMap) {
      const cm = (await api(kc, 'GET', `/api/v1/namespaces/${this.ns}/configmaps/${v.configMap.name}`).catch(e => {
        if (errCode(e) === 404 && !v.configMap?.optional) throw mountFailed(`configmap "${v.configMap?.name}" not found`)
        return { data: {} }
      })) as { data?: Record<string, string> }
      writeItems(cm.data ?? {}, v.configMap.items)
      return dir
    }
    if (v.projected) {
      const files: Record<string, string> = {}
      for (const source of v.projected.sources ?? []) {
        if (source.serviceAccountToken) {
          const sa = this.pod.spec?.serviceAccountName ?? 'default'
          const aud = source.serviceAccountToken.audience
          const tr = (await api(kc, 'POST', `/api/v1/namespaces/${this.ns}/serviceaccounts/${sa}/token`, {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: {
              ...(aud ? { audiences: [aud] } : {}),
              expirationSeconds: source.serviceAccountToken.expirationSeconds ?? SA_TOKEN_SECONDS,
              boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: this.name, uid: this.uid }
            }
          })) as { status: { token: string } }
          files[source.serviceAccountToken.path] = tr.status.token
        }
        if (source.configMap) {
          const cm = (await api(kc, 'GET', `/api/v1/namespaces/${this.ns}/configmaps/${source.configMap.name}`)) as { data?: Record<string, string> }
          for (const item of source.configMap.items ?? []) files[item.path] = cm.data?.[item.key] ?? ''
        }
        for (const item of source.downwardAPI?.items ?? []) files[item.path] = item.fieldRef ? this.fieldValue(item.fieldRef.fieldPath) : ''
      }
      writeItems(files, undefined)
      return dir
    }
    if (v.downwardAPI) {
      writeItems(Object.fromEntries((v.downwardAPI.items ?? []).map(i => [i.path, i.fieldRef ? this.fieldValue(i.fieldRef.fieldPath) : ''])), undefined)
      return dir
    }
    if (v.hostPath) {
      const path = this.node.nodePath(v.hostPath.path)
      const kind = existsSync(path) ? (statSync(path).isDirectory() ? 'directory' : 'file') : 'missing'
      const type = v.hostPath.type ?? ''
      // kubernetes pkg/volume/hostpath/host_path.go checkType: the messages are the kubelet's.
      if (type === 'File' && kind !== 'file') throw mountFailed(`hostPath type check failed: ${v.hostPath.path} is not a file`)
      if (type === 'Directory' && kind !== 'directory') throw mountFailed(`hostPath type check failed: ${v.hostPath.path} is not a directory`)
      // FileOrCreate makes an empty file (0644), DirectoryOrCreate and an untyped missing path a directory (host_path.go).
      if (kind === 'missing' && type === 'FileOrCreate') {
        mkdirSync(dirname(path), { recursive: true })
        writeFileSync(path, '', { mode: 0o644 })
      } else if (kind === 'missing') mkdirSync(path, { recursive: true })
      return path
    }
    if (v.emptyDir) {
      mkdirSync(dir, { recursive: true })
      return dir
    }
    throw mountFailed('this local node supports secret, configMap, projected, downwardAPI, hostPath and emptyDir volumes only')
  }

  private fieldValue(path: string): string {
    const m = this.pod.metadata
    const labels = /^metadata\.labels\['(.+)'\]$/.exec(path)
    if (labels) return m?.labels?.[labels[1] ?? ''] ?? ''
    const values: Record<string, string | undefined> = {
      'metadata.name': m?.name,
      'metadata.namespace': m?.namespace,
      'metadata.uid': m?.uid,
      'spec.nodeName': this.pod.spec?.nodeName,
      'spec.serviceAccountName': this.pod.spec?.serviceAccountName,
      'status.podIP': this.sandbox?.ip,
      'status.podIPs': this.sandbox?.ip,
      'status.hostIP': '127.0.0.1',
      'status.hostIPs': '127.0.0.1'
    }
    return values[path] ?? ''
  }

  // ---- environment

  private async environment(c: V1Container, image: ContainerImage): Promise<Record<string, string>> {
    const env: Record<string, string> = { ...image.env, ...this.node.opts.podEnv }
    const own: Record<string, string> = { ...this.node.opts.podEnv }
    for (const e of c.env ?? []) {
      const value = await this.envValue(e, own)
      if (value === undefined) continue
      env[e.name] = value
      own[e.name] = value
    }
    return env
  }

  private async envValue(e: V1EnvVar, defined: Record<string, string>): Promise<string | undefined> {
    if (e.valueFrom === undefined) return expand(e.value ?? '', defined)
    const from = e.valueFrom
    if (from.fieldRef) return this.fieldValue(from.fieldRef.fieldPath)
    const ref = from.secretKeyRef ?? from.configMapKeyRef
    if (!ref) return undefined
    const kind = from.secretKeyRef ? 'secrets' : 'configmaps'
    const what = from.secretKeyRef ? 'secret' : 'configmap'
    let data: Record<string, string> | undefined
    try {
      data = ((await api(this.node.kc, 'GET', `/api/v1/namespaces/${this.ns}/${kind}/${ref.name}`)) as { data?: Record<string, string> }).data
    } catch (err) {
      if (errCode(err) !== 404) throw err
      if (ref.optional) return undefined
      throw new ConfigError(`${what} "${ref.name}" not found`)
    }
    const raw = data?.[ref.key]
    if (raw === undefined) {
      if (ref.optional) return undefined
      throw new ConfigError(`couldn't find key ${ref.key} in ${from.secretKeyRef ? 'Secret' : 'ConfigMap'} ${this.ns}/${ref.name}`)
    }
    return from.secretKeyRef ? Buffer.from(raw, 'base64').toString('utf8') : raw
  }

  // ---- containers

  private fieldPath(run: ContainerRun): string {
    return `spec.${run.init ? 'initContainers' : 'containers'}{${run.spec.name}}`
  }

  /**
   * Pulls the image (once per node: pull policy IfNotPresent), retrying with back-off
   * (ErrImagePull, then ImagePullBackOff) until it works or the pod goes.
   */
  private async pull(run: ContainerRun): Promise<ContainerImage | undefined> {
    const image = run.spec.image ?? ''
    let failures = 0
    while (this.alive) {
      const pullMs = this.node.knobs.imagePullMs
      if (pullMs > 0 && !this.node.pulled.has(image)) {
        await this.node.recordEvent(this.pod, this.fieldPath(run), 'Normal', 'Pulling', `Pulling image "${image}"`)
        const until = Date.now() + pullMs
        while (this.alive && Date.now() < until && this.node.knobs.imagePullMs === pullMs) await sleep(Math.min(500, until - Date.now()))
        if (!this.alive) return undefined
        // The knob changed while pulling (a test unblocked the registry): look again.
        if (this.node.knobs.imagePullMs !== pullMs) continue
      }
      const found = resolveImage(this.node.opts.images, image)
      if (!('error' in found)) {
        this.node.pulled.add(image)
        run.imageID = `${image.split(':')[0]}@sha256:${createHash('sha256').update(image).digest('hex')}`
        return found
      }
      failures++
      run.state = waiting('ErrImagePull', found.error)
      await this.node.recordEvent(this.pod, this.fieldPath(run), 'Warning', 'Failed', `Failed to pull image "${image}": ${found.error}`)
      await this.pushStatus()
      await sleep(1000)
      run.state = waiting('ImagePullBackOff', `Back-off pulling image "${image}": ErrImagePull: ${found.error}`)
      await this.node.recordEvent(this.pod, this.fieldPath(run), 'Normal', 'BackOff', `Back-off pulling image "${image}"`)
      await this.pushStatus()
      const until = Date.now() + backoff(failures)
      while (this.alive && Date.now() < until) await sleep(Math.min(500, until - Date.now()))
    }
    return undefined
  }

  /** One attempt: start the container; resolves with its exit code once it ends (undefined: could not start). */
  private async attempt(run: ContainerRun, image: ContainerImage, mounts: Map<string, string>): Promise<number | undefined> {
    let env: Record<string, string>
    try {
      env = await this.environment(run.spec, image)
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e
      run.state = waiting('CreateContainerConfigError', e.message)
      await this.node.recordEvent(this.pod, this.fieldPath(run), 'Warning', 'Failed', `Error: ${e.message}`)
      await this.pushStatus()
      return undefined
    }
    const attemptNo = run.attempts.length
    const root = join(this.dir, 'containers', run.spec.name, `root-${attemptNo}`)
    const containerMounts: Mount[] = (run.spec.volumeMounts ?? []).flatMap(m => {
      const source = mounts.get(m.name)
      if (!source) return []
      if (!m.subPath) return [{ path: m.mountPath, source }]
      // A subPath the volume lacks is made, as kubelet does (kubernetes v1.34 pkg/kubelet/kubelet_pods.go
      // makeMounts: "Create the sub path now because if it's auto-created later when referenced, it may
      // have an incorrect ownership and mode").
      const sub = join(source, m.subPath)
      if (!existsSync(sub)) mkdirSync(sub, { recursive: true })
      return [{ path: m.mountPath, source: sub }]
    })
    rmSync(root, { recursive: true, force: true })
    prepareRoot(root, image, containerMounts)
    const argv = containerArgv(image, run.spec.command, run.spec.args).map(a => expand(a, env))
    const logPath = join(this.dir, 'logs', `${run.spec.name}-${attemptNo}.log`)
    mkdirSync(dirname(logPath), { recursive: true })
    writeFileSync(logPath, '')
    run.attempts.push(logPath)
    run.containerID = `containerd://${randomBytes(32).toString('hex')}`
    const started = timestamp()
    run.proc = startContainer({ name: `${this.ns}/${this.name}/${run.spec.name}`, netnsExec: this.sandbox?.exec ?? [], root, argv, env, logPath })
    run.state = { running: { startedAt: started as unknown as Date } }
    run.ready = !run.init
    await this.node.recordEvent(this.pod, this.fieldPath(run), 'Normal', 'Created', `Created container: ${run.spec.name}`)
    await this.node.recordEvent(this.pod, this.fieldPath(run), 'Normal', 'Started', `Started container ${run.spec.name}`)
    await this.pushStatus()
    const code = (await run.proc.exited) ?? 137
    run.ready = false
    run.state = {
      terminated: {
        exitCode: code,
        reason: code === 0 ? 'Completed' : 'Error',
        startedAt: started as unknown as Date,
        finishedAt: timestamp() as unknown as Date,
        containerID: run.containerID
      }
    }
    return code
  }

  /** Runs an init container until it succeeds; false when the pod went first. */
  private async runInit(run: ContainerRun, mounts: Map<string, string>): Promise<boolean> {
    let failures = 0
    while (this.alive) {
      const image = await this.pull(run)
      if (!image) return false
      const code = await this.attempt(run, image, mounts)
      if (!this.alive) return false
      if (code === 0) {
        await this.pushStatus()
        return true
      }
      await this.crashed(run, ++failures, code)
    }
    return false
  }

  /** Keeps a main container running (restartPolicy Always), restarting it with the kubelet's back-off. */
  private async keepRunning(run: ContainerRun, mounts: Map<string, string>): Promise<void> {
    let failures = 0
    while (this.alive) {
      const image = await this.pull(run)
      if (!image) return
      const code = await this.attempt(run, image, mounts)
      if (!this.alive) return
      if (this.pod.spec?.restartPolicy === 'Never' || (this.pod.spec?.restartPolicy === 'OnFailure' && code === 0)) {
        await this.pushStatus()
        return
      }
      await this.crashed(run, ++failures, code)
    }
  }

  /** After a failed attempt: CrashLoopBackOff (or a config error) for the back-off period, then the next attempt. */
  private async crashed(run: ContainerRun, failures: number, code: number | undefined): Promise<void> {
    const wait = backoff(failures)
    if (code !== undefined) {
      run.lastState = run.state
      run.restartCount++
      run.state = waiting(
        'CrashLoopBackOff',
        `back-off ${Math.round(wait / 1000)}s restarting failed container=${run.spec.name} pod=${this.name}_${this.ns}(${this.uid})`
      )
      await this.node.recordEvent(
        this.pod,
        this.fieldPath(run),
        'Warning',
        'BackOff',
        `Back-off restarting failed container ${run.spec.name} in pod ${this.name}_${this.ns}(${this.uid})`
      )
    }
    await this.pushStatus()
    const until = Date.now() + wait
    while (this.alive && Date.now() < until) await sleep(Math.min(500, until - Date.now()))
  }

  // ---- status

  private containerStatus(run: ContainerRun): V1ContainerStatus {
    return {
      name: run.spec.name,
      image: run.spec.image ?? '',
      imageID: run.imageID,
      ...(run.containerID ? { containerID: run.containerID } : {}),
      ready: run.ready,
      started: Boolean(run.state.running),
      restartCount: run.restartCount,
      state: run.state,
      lastState: run.lastState
    }
  }

  private podStatus(): Record<string, unknown> {
    const now = timestamp()
    const init = [...this.runs.values()].filter(r => r.init)
    const main = [...this.runs.values()].filter(r => !r.init)
    const initialized = init.every(r => r.state.terminated?.exitCode === 0)
    const ready = initialized && main.length > 0 && main.every(r => r.ready)
    // kubelet_pods.go getPhase: Running once every container was started and one runs or restarts.
    const started = initialized && main.every(r => r.attempts.length > 0)
    const succeeded = started && main.every(r => r.state.terminated?.exitCode === 0)
    const phase = succeeded ? 'Succeeded' : started ? 'Running' : 'Pending'
    const cond = (type: string, ok: boolean, reason?: string): Record<string, string> => ({
      type,
      status: ok ? 'True' : 'False',
      lastTransitionTime: now,
      ...(!ok && reason ? { reason } : {})
    })
    const ip = this.sandbox?.ip
    return {
      phase,
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      startTime: this.startedAt,
      qosClass: this.pod.status?.qosClass ?? 'BestEffort',
      conditions: [
        cond('PodReadyToStartContainers', Boolean(ip)),
        cond('Initialized', initialized, 'ContainersNotInitialized'),
        cond('Ready', ready, 'ContainersNotReady'),
        cond('ContainersReady', ready, 'ContainersNotReady'),
        cond('PodScheduled', true)
      ],
      ...(init.length ? { initContainerStatuses: init.map(r => this.containerStatus(r)) } : {}),
      containerStatuses: main.map(r => this.containerStatus(r))
    }
  }

  /** Status patches go out one at a time and in order; each carries the whole current status. */
  private pushStatus(): Promise<void> {
    this.statusChain = this.statusChain.then(async () => {
      if (this.stopping) return
      const status = this.podStatus()
      await api(this.node.kc, 'PATCH', `/api/v1/namespaces/${this.ns}/pods/${this.name}/status`, { status }, SMP).catch((e: unknown) => {
        if (errCode(e) !== 404) this.node.log(`status of ${this.ns}/${this.name}: ${String(e)}`)
      })
    })
    return this.statusChain
  }

  // ---- deletion

  /** Stops every container (SIGTERM, SIGKILL after the grace period) and the sandbox. Safe to call twice. */
  terminate(): Promise<void> {
    this.stopping = true
    this.terminated ??= (async () => {
      const graceMs = Math.min((this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000, MAX_GRACE_MS)
      await Promise.all([...this.runs.values()].flatMap(r => (r.proc ? [r.proc.kill(graceMs)] : [])))
      await this.sandbox?.destroy()
      rmSync(join(this.dir, 'containers'), { recursive: true, force: true })
      this.node.forget(this.uid)
    })()
    return this.terminated
  }

  /** Like the kubelet on a pod being deleted: stop it, then remove the pod object for good. */
  async finalize(): Promise<void> {
    await this.terminate()
    await api(this.node.kc, 'DELETE', `/api/v1/namespaces/${this.ns}/pods/${this.name}`, {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: 0,
      preconditions: { uid: this.uid }
    }).catch((e: unknown) => {
      if (errCode(e) !== 404 && errCode(e) !== 409) this.node.log(`deleting pod ${this.ns}/${this.name}: ${String(e)}`)
    })
  }
}
