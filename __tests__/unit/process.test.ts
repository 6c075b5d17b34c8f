import { describe, expect, it } from 'vitest'
import { childEnv, parseKlogLine, readableEcho, runProcess, windowsCommandLine } from '../../src/tools/process.js'

describe('the environment a tool gets', () => {
  it('drops the step inputs and the runner tokens, keeps the rest', () => {
    const env = childEnv({
      PATH: '/usr/bin',
      AZURE_CONFIG_DIR: '/tmp/az',
      'INPUT_CLIENT-SECRET': 's3cret',
      INPUT_CREDS: '{"clientSecret":"s3cret"}',
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'tok',
      ACTIONS_ID_TOKEN_REQUEST_URL: 'https://token',
      ACTIONS_RUNTIME_TOKEN: 'rt',
      GITHUB_ACTIONS: 'true'
    })
    expect(env).toEqual({ PATH: '/usr/bin', AZURE_CONFIG_DIR: '/tmp/az', GITHUB_ACTIONS: 'true' })
  })

  it('is what a real child process sees', async () => {
    const secret = 'never-in-a-child-0123456789'
    const result = await runProcess(process.execPath, ['-e', 'process.stdout.write(JSON.stringify(process.env))'], {
      timeoutMs: 20_000,
      env: { ...process.env, 'INPUT_CLIENT-SECRET': secret, ACTIONS_ID_TOKEN_REQUEST_TOKEN: secret, KEEP_ME: 'yes' }
    })
    expect(result.code).toBe(0)
    expect(result.stdout).not.toContain(secret)
    expect(JSON.parse(result.stdout).KEEP_ME).toBe('yes')
  })
})

describe('a tool that runs out of time', () => {
  it('is ended with its children, and the result says so', async () => {
    const started = Date.now()
    const result = await runProcess('sh', ['-c', 'sleep 30 & sleep 30; wait'], { timeoutMs: 300 })
    expect(result.timedOut).toBe(true)
    expect(Date.now() - started).toBeLessThan(10_000)
  })
})

describe('az.cmd on Windows', () => {
  it('goes through cmd.exe with every argument quoted', () => {
    expect(windowsCommandLine('C:\\Program Files\\az.cmd', ['account', 'show', '--query', 'a b"c'])).toBe(
      '""C:\\Program Files\\az.cmd" "account" "show" "--query" "a b""c""'
    )
  })
})

describe('readable tool output', () => {
  it('recognises klog lines and leaves plain ones alone', () => {
    expect(
      parseKlogLine(
        'W1123 10:00:00.123456   42 warnings.go:70] spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use "kubernetes.io/os" instead'
      )
    ).toEqual({
      severity: 'W',
      file: 'warnings.go',
      message: 'spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use "kubernetes.io/os" instead'
    })
    expect(parseKlogLine('Release "x" has been upgraded. Happy Helming!')).toBeUndefined()
  })

  it('keeps klog lines in debug; shows each API server warning once per step, a deprecation as info', () => {
    const out: string[] = []
    const write = process.stdout.write
    process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write
    try {
      const deprecation =
        'I1123 10:00:00.123456   42 warnings.go:110] "Warning: spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use \\"kubernetes.io/os\\" instead"'
      const other = 'W1123 10:00:00.5   42 warnings.go:70] would violate PodSecurity "restricted:latest": runAsNonRoot != true'
      for (const echo of [readableEcho('helm'), readableEcho('helm')]) {
        echo('Release "x" does not exist. Installing it now.')
        echo(deprecation)
        echo(deprecation.replace('10:00:00', '10:00:01'))
        echo(other)
      }
      readableEcho('helm')('I1123 10:00:00.2   42 request.go:700] Waited for 1.0s due to client-side throttling')
    } finally {
      process.stdout.write = write
    }
    const text = out.join('')
    expect(text.match(/^Release "x" does not exist/gm)).toHaveLength(2)
    expect(
      text.match(
        /^helm: the API server notes that the chart uses a deprecated field: spec\.template\.spec\.nodeSelector\[beta\.kubernetes\.io\/os\]: deprecated since v1\.14; use "kubernetes\.io\/os" instead$/gm
      )
    ).toHaveLength(1)
    expect(text.match(/^::warning::helm: the API server warned: would violate PodSecurity "restricted:latest": runAsNonRoot != true$/gm)).toHaveLength(1)
    // Every klog line is still there for a debug run, never at info level.
    expect(text.split('\n').filter(l => /^[IW]1123 /.test(l))).toEqual([])
    expect(text.match(/^::debug::helm: [IW]1123 /gm)).toHaveLength(7)
  })

  it('echoes whole lines even when a chunk ends mid-line', async () => {
    const lines: string[] = []
    await runProcess('sh', ['-c', "printf 'first li'; sleep 0.2; printf 'ne\\nsecond'"], { timeoutMs: 10_000, echo: l => lines.push(l) })
    expect(lines).toEqual(['first line', 'second'])
  })
})
