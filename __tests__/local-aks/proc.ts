// Small helpers for child processes used by the local AKS test environment:
// every child is bounded in time, its output goes to a log file we can quote
// in errors, and it is killed by pid (never by name) - including when the
// test process itself exits.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync, existsSync } from 'node:fs'

export interface ManagedProcess {
  name: string
  pid: number
  logPath: string
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>
  isRunning(): boolean
  /** SIGTERM, then SIGKILL after graceMs. Resolves when the process is gone. */
  kill(graceMs?: number): Promise<void>
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Own process group, so kill() also reaches grandchildren (go build's compilers). */
  group?: boolean
}

// Children that are still alive; killed synchronously if this process exits
// without cleaning up (a crashed or interrupted test run).
const live = new Map<number, { group: boolean }>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const [pid, { group }] of live) {
      try {
        process.kill(group ? -pid : pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  })
  // Turn signals into a normal exit so the 'exit' hook runs.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    if (process.listenerCount(sig) === 0) process.once(sig, () => process.exit(130))
  }
}

function signal(pid: number, group: boolean, sig: NodeJS.Signals): void {
  try {
    process.kill(group ? -pid : pid, sig)
  } catch {
    // ESRCH: already exited
  }
}

/** Starts a long-running child whose stdout+stderr are appended to logPath. */
export function spawnLogged(name: string, command: string, args: readonly string[], logPath: string, opts: SpawnOptions = {}): ManagedProcess {
  installExitHook()
  const fd = openSync(logPath, 'a')
  let child: ChildProcess
  try {
    child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: opts.group ?? false
    })
  } finally {
    closeSync(fd)
  }
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`)
  const pid = child.pid
  const group = opts.group ?? false
  live.set(pid, { group })
  let running = true
  const exited = new Promise<number | null>(resolve => {
    child.once('error', () => {
      running = false
      live.delete(pid)
      resolve(-1)
    })
    child.once('exit', code => {
      running = false
      live.delete(pid)
      resolve(code)
    })
  })
  // A detached child must not keep our event loop alive on its own.
  if (group) child.unref()
  return {
    name,
    pid,
    logPath,
    exited,
    isRunning: () => running,
    async kill(graceMs = 5000): Promise<void> {
      if (!running) return
      signal(pid, group, 'SIGTERM')
      const timer = setTimeout(() => signal(pid, group, 'SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    }
  }
}

/** The last n lines of a log file, for error messages. */
export function tailFile(path: string, n = 30): string {
  if (!existsSync(path)) return `(no log at ${path})`
  const lines = readFileSync(path, 'utf8').trimEnd().split('\n')
  return lines.slice(-n).join('\n')
}

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface RunOptions extends SpawnOptions {
  timeoutMs: number
  /** Called every progressMs with the elapsed seconds while the command runs. */
  onProgress?: (elapsedSec: number) => void
  progressMs?: number
}

/** Runs a command to completion (bounded by timeoutMs), capturing its output. */
export function runCommand(command: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  installExitHook()
  return new Promise((resolve, reject) => {
    const group = opts.group ?? true
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: group
    })
    const pid = child.pid
    if (pid !== undefined) live.set(pid, { group })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const started = Date.now()
    const progress = opts.onProgress ? setInterval(() => opts.onProgress?.(Math.round((Date.now() - started) / 1000)), opts.progressMs ?? 15_000) : undefined
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      if (pid !== undefined) {
        signal(pid, group, 'SIGTERM')
        setTimeout(() => signal(pid, group, 'SIGKILL'), 3000).unref()
      }
    }, opts.timeoutMs)
    const finish = (): void => {
      clearTimeout(timer)
      if (progress) clearInterval(progress)
      if (pid !== undefined) live.delete(pid)
    }
    child.once('error', err => {
      finish()
      reject(new Error(`${command}: ${err.message}`))
    })
    child.once('close', code => {
      finish()
      if (timedOut) {
        reject(new Error(`${command} ${args.join(' ')} timed out after ${opts.timeoutMs} ms\n${stderr.slice(-4000)}`))
      } else {
        resolve({ code, stdout, stderr })
      }
    })
  })
}

/** Like runCommand but throws (with the tail of stderr) on a non-zero exit. */
export async function runChecked(command: string, args: readonly string[], opts: RunOptions): Promise<string> {
  const r = await runCommand(command, args, opts)
  if (r.code !== 0) {
    const out = (r.stderr || r.stdout).trimEnd().split('\n').slice(-40).join('\n')
    throw new Error(`${command} ${args.join(' ')} failed (exit ${r.code}):\n${out}`)
  }
  return r.stdout
}
