// Starts az, helm and kubectl with a time limit. @actions/exec has no time limit, and a
// hung helm or az would hold the job until the workflow's own timeout, so the action
// spawns the tools itself and ends them (and only them) when their time is up.
import { spawn } from 'node:child_process'
import * as core from '@actions/core'

export interface ProcessOptions {
  /** Hard limit; the process group is killed when it passes. */
  timeoutMs: number
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Written to stdin, then stdin is closed (used to hand over secrets). */
  input?: string
  /** Copy output lines to the job log as they come (never for commands that print tokens). */
  echo?: boolean
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

/** Runs a process to completion; resolves with its exit code, never rejects on non-zero. */
export function runProcess(file: string, args: string[], options: ProcessOptions): Promise<ProcessResult & { timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Own process group on POSIX, so a timeout ends the tool and its children only.
      detached: !IS_WINDOWS,
      windowsHide: true
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    const echo = (chunk: string): void => {
      if (options.echo) for (const line of chunk.split(/\r?\n/)) if (line) core.info(line)
    }
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      echo(chunk)
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      echo(chunk)
    })
    const timer = setTimeout(() => {
      timedOut = true
      signal(child.pid, 'SIGTERM')
      setTimeout(() => signal(child.pid, 'SIGKILL'), KILL_GRACE_MS).unref()
    }, options.timeoutMs)
    child.on('error', err => {
      clearTimeout(timer)
      reject(new Error(`Could not start ${file}: ${err.message}`))
    })
    child.on('close', code => {
      clearTimeout(timer)
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
    if (IS_WINDOWS) process.kill(pid, sig)
    else process.kill(-pid, sig)
  } catch {
    // Already gone.
  }
}
