import { describe, expect, it } from 'vitest'
import { childEnv, runProcess, windowsCommandLine } from '../../src/process.js'

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
