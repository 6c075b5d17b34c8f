// Starts az, helm and kubectl with a time limit. @actions/exec has no time limit, and a
// hung helm or az would hold the job until the workflow's own timeout, so the action
// spawns the tools itself and ends them (and only them) when their time is up. The step's
// own process is bounded too: see exitIfLingering.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import * as path from 'node:path'
import * as core from '@actions/core'

export interface ProcessOptions {
  /** Hard limit; the process group is killed when it passes. */
  timeoutMs: number
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Written to stdin, then stdin is closed (used to hand over secrets). */
  input?: string
  /**
   * Copy output lines to the job log as they come (never for commands that print tokens):
   * true prints each with core.info; a function decides per line.
   */
  echo?: boolean | ((line: string) => void)
}

/**
 * A klog-formatted line (`I1123 10:00:00.123456   42 warnings.go:107] message`), as helm
 * prints client-go's messages on stderr: its severity letter, source file and message.
 */
const KLOG_LINE = /^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+([\w.-]+):\d+\]\s?(.*)$/

export function parseKlogLine(line: string): { severity: string; file: string; message: string } | undefined {
  const m = KLOG_LINE.exec(line)
  return m ? { severity: m[1]!, file: m[2]!, message: m[3]! } : undefined
}

/** API server warnings already shown in this step (each helm run repeats the chart's). */
const shownWarnings = new Set<string>()

/**
 * Echoes a tool's output for a reader: plain lines as info; klog lines in debug only. An
 * API server warning (client-go warnings.go) is shown once per step in plain words: as a
 * warning, except a deprecation of a field in the chart's own templates, which the user
 * cannot act on (one info line).
 */
export function readableEcho(tool: string): (line: string) => void {
  return line => {
    const klog = parseKlogLine(line)
    if (!klog) return core.info(line)
    core.debug(`${tool}: ${line}`)
    if (klog.file !== 'warnings.go') return
    const message = klog.message
      .replace(/^"|"$/g, '')
      .replace(/\\"/g, '"')
      .replace(/^warning:\s*/i, '')
    if (shownWarnings.has(message)) return
    shownWarnings.add(message)
    if (/deprecated/i.test(message)) core.info(`${tool}: the API server notes that the chart uses a deprecated field: ${message}`)
    else core.warning(`${tool}: the API server warned: ${message}`)
  }
}

export interface ProcessResult {
  code: number
  stdout: string
  stderr: string
}

/** A tool exited non-zero or ran out of time; the message carries its last output lines. */
export class ProcessError extends Error {
  constructor(
    readonly tool: string,
    readonly result: ProcessResult,
    readonly timedOut: boolean
  ) {
    const tail = lastLines(`${result.stderr}\n${result.stdout}`, 15)
    super(
      timedOut
        ? `${tool} did not finish in time and was stopped.${tail ? `\n${tail}` : ''}`
        : `${tool} failed with exit code ${result.code}.${tail ? `\n${tail}` : ''}`
    )
    this.name = 'ProcessError'
  }
}

/** Grace between SIGTERM and SIGKILL for a tool that ran out of time. */
const KILL_GRACE_MS = 5_000
const IS_WINDOWS = process.platform === 'win32'

export function lastLines(text: string, count: number): string {
  return text
    .split(/\r?\n/)
    .map(l => l.trimEnd())
    .filter(l => l.length > 0)
    .slice(-count)
    .join('\n')
}

/**
 * Variables a tool never needs and must not see: the step's inputs (client secrets, creds
 * JSON) and the runner's tokens (an OIDC request token mints federated tokens). pip, for
 * one, runs third-party build code.
 */
const PRIVATE_ENV = /^(INPUT_|ACTIONS_ID_TOKEN_REQUEST_|ACTIONS_RUNTIME_TOKEN$|ACTIONS_RESULTS_URL$|ACTIONS_CACHE_URL$)/i

export function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !PRIVATE_ENV.test(name)))
}

/** The tools running now, by process id (group leader on POSIX), ended if the step must stop. */
const running = new Map<number, string>()

/**
 * Node (18.20.2+) refuses to spawn .cmd/.bat files directly, and az on Windows is az.cmd:
 * start those through cmd.exe with every argument quoted.
 */
export function windowsCommandLine(file: string, args: string[]): string {
  const quote = (a: string): string => `"${a.replace(/"/g, '""')}"`
  return `"${[file, ...args].map(quote).join(' ')}"`
}

function startTool(file: string, args: string[], options: ProcessOptions): ChildProcessWithoutNullStreams {
  const common = { cwd: options.cwd, env: childEnv(options.env ?? process.env), windowsHide: true }
  if (IS_WINDOWS && /\.(cmd|bat)$/i.test(file)) {
    return spawn(process.env.ComSpec || 'cmd.exe', ['/d', '/s', '/c', windowsCommandLine(file, args)], { ...common, windowsVerbatimArguments: true })
  }
  // Own process group on POSIX, so a timeout ends the tool and its children only.
  return spawn(file, args, { ...common, detached: !IS_WINDOWS })
}

/** Runs a process to completion; resolves with its exit code, never rejects on non-zero. */
export function runProcess(file: string, args: string[], options: ProcessOptions): Promise<ProcessResult & { timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = startTool(file, args, options)
    const pid = child.pid
    // Named by the tool and its subcommand (never later arguments: they may be paths to secrets).
    if (pid !== undefined) running.set(pid, [path.basename(file), ...args.slice(0, 2)].join(' '))
    let stdout = ''
    let stderr = ''
    let timedOut = false
    const perLine = typeof options.echo === 'function' ? options.echo : options.echo ? (line: string) => core.info(line) : undefined
    // Whole lines only: a chunk may end mid-line; the rest waits for the next chunk (or the end).
    const partial = { stdout: '', stderr: '' }
    const echo = (stream: 'stdout' | 'stderr', chunk: string, final = false): void => {
      if (!perLine) return
      const lines = (partial[stream] + chunk).split(/\r?\n/)
      partial[stream] = final ? '' : (lines.pop() ?? '')
      for (const line of lines) if (line) perLine(line)
    }
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      echo('stdout', chunk)
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      echo('stderr', chunk)
    })
    const timer = setTimeout(() => {
      timedOut = true
      signal(child.pid, 'SIGTERM')
      setTimeout(() => signal(child.pid, 'SIGKILL'), KILL_GRACE_MS).unref()
    }, options.timeoutMs)
    child.on('error', err => {
      clearTimeout(timer)
      if (pid !== undefined) running.delete(pid)
      reject(new Error(`Could not start ${file}: ${err.message}`))
    })
    child.on('close', code => {
      echo('stdout', '', true)
      echo('stderr', '', true)
      clearTimeout(timer)
      if (pid !== undefined) running.delete(pid)
      resolve({ code: code ?? (timedOut ? 124 : 1), stdout, stderr, timedOut })
    })
    child.stdin.on('error', () => undefined)
    child.stdin.end(options.input ?? '')
  })
}

/** Runs a process and throws a ProcessError naming `tool` when it fails. */
export async function runChecked(tool: string, file: string, args: string[], options: ProcessOptions): Promise<ProcessResult> {
  const result = await runProcess(file, args, options)
  if (result.code !== 0 || result.timedOut) throw new ProcessError(tool, result, result.timedOut)
  return result
}

function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return
  try {
    // Windows has no process groups: taskkill /T ends the tool's children (az's python) too.
    if (IS_WINDOWS) spawn('taskkill', ['/T', '/F', '/PID', String(pid)], { stdio: 'ignore', windowsHide: true }).on('error', () => undefined)
    else process.kill(-pid, sig)
  } catch {
    // Already gone.
  }
}

/** Ends every tool this step started that is still running (a helm upgrade, a pip install); returns what it ended. */
export function endRunningTools(): string[] {
  const ended = [...running.values()]
  for (const pid of running.keys()) signal(pid, 'SIGKILL')
  running.clear()
  return ended
}

type CancelHook = () => Promise<void> | void
const cancelHooks = new Set<CancelHook>()
/**
 * What the cancel hooks may take together. On cancel the runner sends SIGINT, SIGTERM
 * 7.5 s later, SIGKILL 2.5 s after that (actions/runner src/Runner.Sdk/ProcessInvoker.cs,
 * _sigintTimeout and _sigtermTimeout): the hooks are done well before the SIGTERM.
 */
const CANCEL_HOOKS_MS = 5_000

/** Runs `hook` on cancel, before the step exits (bounded by CANCEL_HOOKS_MS); returns its removal. */
export function whenCancelled(hook: CancelHook): () => void {
  cancelHooks.add(hook)
  return () => void cancelHooks.delete(hook)
}

/**
 * On cancel the runner signals this process only; the tools run in their own process
 * groups and would outlive it, racing the post step's cleanup. End them, let the hooks say
 * what is left (summary, files with values), then exit.
 */
export function endToolsOnSignal(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      const ended = endRunningTools()
      core.info(`Received ${sig}: stopped the tools this step started${ended.length > 0 ? `: ${ended.join(', ')}` : ' (none was running)'}.`)
      const hooks = Promise.allSettled([...cancelHooks].map(h => Promise.resolve().then(h)))
      const bound = new Promise(resolve => setTimeout(resolve, CANCEL_HOOKS_MS).unref())
      void Promise.race([hooks, bound]).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
    })
  }
}

/** How long a finished step may stay alive before it is ended. */
const EXIT_GRACE_MS = 10_000
export const LINGERING_EXIT_MESSAGE = 'The step is done but a connection is still open; exiting.'

/**
 * Once the step's work is done, Node exits when nothing is left open. Should a connection
 * stay open anyway (a watch the Kubernetes client did not close), end the process after a
 * grace period instead of holding the job until its timeout. The timer is unref'd, so it
 * never delays a clean exit.
 */
export function exitIfLingering(): void {
  setTimeout(() => {
    core.debug(LINGERING_EXIT_MESSAGE)
    endRunningTools()
    process.exit()
  }, EXIT_GRACE_MS).unref()
}
