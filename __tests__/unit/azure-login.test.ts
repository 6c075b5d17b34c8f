import { describe, expect, it } from 'vitest'
import { azEnv, loginArgs, privateConfigText, signInHint, withoutInteractiveAdvice } from '../../src/azure-login.js'

const SECRET = 'Q~secret.value-that-must-not-leak'

describe('az login arguments', () => {
  it('never put the client secret in argv; az reads it from the @file', () => {
    const args = loginArgs({ kind: 'secret', clientId: 'cid', tenantId: 'tid', clientSecret: SECRET }, '/tmp/x/.credential')
    expect(args.join(' ')).not.toContain(SECRET)
    expect(args).toContain('--password=@/tmp/x/.credential')
    expect(args).toEqual(expect.arrayContaining(['--service-principal', '--username', 'cid', '--tenant', 'tid']))
  })
  it('hand the federated token over as a file too', () => {
    const args = loginArgs({ kind: 'oidc', clientId: 'cid', tenantId: 'tid', audience: 'api://AzureADTokenExchange' }, '/tmp/t')
    expect(args).toContain('--federated-token=@/tmp/t')
    expect(args.some(a => a.startsWith('ey'))).toBe(false)
  })
})

describe('private az config', () => {
  it('keeps the runner settings but selects the requested cloud', () => {
    const text = privateConfigText('[core]\noutput = table\n\n[cloud]\nname = AzureCloud\n', 'LocalAzure')
    expect(text).toContain('[core]\noutput = table')
    expect(text).toContain('[cloud]\nname = LocalAzure')
    expect(text.match(/\[cloud\]/g)).toHaveLength(1)
  })
  it('works when the runner has no az config', () => {
    expect(privateConfigText(undefined, 'AzureUSGovernment')).toBe('[cloud]\nname = AzureUSGovernment\n')
  })
  it('points az at the private dir and turns telemetry off', () => {
    expect(azEnv({ PATH: '/bin' }, '/tmp/cfg')).toMatchObject({ PATH: '/bin', AZURE_CONFIG_DIR: '/tmp/cfg', AZURE_CORE_COLLECT_TELEMETRY: 'no' })
    expect(azEnv({ AZURE_CONFIG_DIR: '/home/runner/.azure' })).toMatchObject({ AZURE_CONFIG_DIR: '/home/runner/.azure' })
  })
})

describe('sign-in failures', () => {
  it.each([
    ['AADSTS7000215: Invalid client secret provided.', /secret's Value \(not its Secret ID\)/],
    ['AADSTS7000222: The provided client secret keys are expired.', /expired: create a new one/],
    ['AADSTS700016: Application with identifier', /check client-id and tenant-id/],
    ['AADSTS70021: No matching federated identity record found', /federated credential/],
    ['something else', /Check the credentials/]
  ])('%s -> a hint', (stderr, hint) => expect(signInHint(stderr)).toMatch(hint))

  it('drops az\'s interactive advice, which misleads in CI', () => {
    const stderr = 'ERROR: AADSTS7000215: Invalid client secret provided.\nTrace ID: 1\nInteractive authentication is needed. Please run:\naz login\n'
    const cleaned = withoutInteractiveAdvice(stderr)
    expect(cleaned).toContain('AADSTS7000215')
    expect(cleaned).not.toMatch(/az login|Interactive authentication/)
  })
})
