import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { checkInputsOnRunner, InputError, parseDuration, parseInputs, readActionInput, DEFAULT_CHART_URL } from '../../src/runner/inputs.js'
import { MIN_AZURE_CLI_VERSION } from '../../src/tools/versions.js'

const SP = '11111111-2222-4333-8444-555555555555'
const TENANT = '99999999-8888-4777-8666-555555555555'
const SUB = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'

function reader(values: Record<string, string>): (name: string) => string {
  return name => values[name] ?? ''
}
const base = { 'resource-group': 'rg-aks', 'cluster-name': 'aks1' }
const parse = (extra: Record<string, string> = {}) => parseInputs(reader({ ...base, ...extra }))

function problemsOf(extra: Record<string, string>): string[] {
  try {
    parse(extra)
  } catch (err) {
    expect(err).toBeInstanceOf(InputError)
    return (err as InputError).problems
  }
  throw new Error('expected an InputError')
}

describe('parseInputs', () => {
  it('applies the documented defaults', () => {
    const i = parse()
    expect(i).toMatchObject({
      command: 'install',
      connectorName: 'aci-connector',
      osTypes: ['Linux'],
      chartUrl: DEFAULT_CHART_URL,
      signIn: { kind: 'ambient' },
      connectorIdentity: 'managed',
      deploySamples: false,
      samplesNamespace: 'default',
      waitTimeoutMs: 600_000,
      cleanup: false,
      admin: false,
      environment: 'AzureCloud',
      kubectlBaseUrl: 'https://dl.k8s.io/release',
      helmBaseUrl: 'https://get.helm.sh'
    })
  })

  it('reads os-type case-insensitively; Both means Linux and Windows', () => {
    expect(parse({ 'os-type': 'both' }).osTypes).toEqual(['Linux', 'Windows'])
    expect(parse({ 'os-type': 'WINDOWS' }).osTypes).toEqual(['Windows'])
  })

  it('normalizes the location as the old CLI did', () => {
    expect(parse({ location: 'West Europe' }).location).toBe('westeurope')
  })

  it('uses a client secret for both sign-in and connector by default', () => {
    const i = parse({ 'client-id': SP, 'tenant-id': TENANT, 'client-secret': 's3cr3t-value' })
    expect(i.signIn).toEqual({ kind: 'secret', clientId: SP, tenantId: TENANT, clientSecret: 's3cr3t-value' })
    expect(i.connectorIdentity).toBe('service-principal')
    expect(i.connectorClientId).toBe(SP)
    expect(i.connectorClientSecret).toBe('s3cr3t-value')
  })

  it('signs in with OIDC when no secret is given, and the connector then uses the managed identity', () => {
    const i = parse({ 'client-id': SP, 'tenant-id': TENANT })
    expect(i.signIn).toEqual({ kind: 'oidc', clientId: SP, tenantId: TENANT, audience: 'api://AzureADTokenExchange' })
    expect(i.connectorIdentity).toBe('managed')
  })

  it('reads creds JSON, with its subscription unless subscription-id overrides it', () => {
    const creds = JSON.stringify({ clientId: SP, clientSecret: 'x-secret', tenantId: TENANT, subscriptionId: SUB })
    expect(parse({ creds }).subscriptionId).toBe(SUB)
    expect(parse({ creds, 'subscription-id': TENANT }).subscriptionId).toBe(TENANT)
    expect(parse({ creds }).signIn.kind).toBe('secret')
  })

  it('maps Azure/login cloud names and keeps registered custom clouds', () => {
    expect(parse({ environment: 'azureusgovernment' }).environment).toBe('AzureUSGovernment')
    expect(parse({ environment: 'AzureChinaCloud' }).environment).toBe('AzureChinaCloud')
    expect(parse({ environment: 'MyAzureStack' }).environment).toBe('MyAzureStack')
  })

  it('normalizes tool versions to a leading v and keeps latest', () => {
    expect(parse({ 'kubectl-version': '1.33.2' }).kubectlVersion).toBe('v1.33.2')
    expect(parse({ 'helm-version': 'latest' }).helmVersion).toBe('latest')
  })

  const badInputs: Array<[string, Record<string, string>, RegExp]> = [
    ['missing resource-group', { 'resource-group': '' }, /resource-group is required/],
    ['missing cluster-name', { 'cluster-name': '' }, /cluster-name is required/],
    ['bad command', { command: 'upgrade' }, /command: "upgrade" is not valid; use one of install, remove/],
    ['bad os-type', { 'os-type': 'Mac' }, /os-type: "Mac" is not valid; use Linux, Windows or Both/],
    ['upper-case connector name', { 'connector-name': 'ACI' }, /connector-name: "ACI" is not valid; it must be lower-case/],
    ['connector name with trailing hyphen', { 'connector-name': 'aci-' }, /connector-name/],
    ['connector name too long for the node name', { 'connector-name': 'a'.repeat(35), location: 'eastus' }, /within 47.*at most 32 characters/s],
    ['bad subscription', { 'subscription-id': 'my-sub' }, /subscription-id: "my-sub" is not valid; use the subscription ID, a GUID/],
    ['bad resource group', { 'resource-group': 'rg with spaces' }, /resource-group: "rg with spaces"/],
    ['resource group ending in a period', { 'resource-group': 'rg.' }, /resource-group/],
    ['bad aci resource group', { 'aci-resource-group': 'a/b' }, /aci-resource-group/],
    ['bad cluster name', { 'cluster-name': '-aks' }, /cluster-name: "-aks"/],
    ['bad location', { location: 'east-us!' }, /location/],
    ['bad chart url', { 'chart-url': 'ftp://x/chart.tgz' }, /chart-url: "ftp:\/\/x\/chart.tgz" is not valid/],
    ['bad image tag', { 'image-tag': 'has space' }, /image-tag/],
    ['bad wait-timeout', { 'wait-timeout': 'ten minutes' }, /wait-timeout: "ten minutes" is not valid; use a duration such as 300s, 10m or 1m30s/],
    ['zero wait-timeout', { 'wait-timeout': '0s' }, /wait-timeout/],
    ['wait-timeout beyond a job', { 'wait-timeout': '700h' }, /wait-timeout: "700h" is not valid; use at most 6h/],
    ['bad boolean', { 'deploy-samples': 'yes' }, /deploy-samples: "yes" is not valid; use true or false/],
    ['bad cleanup', { cleanup: '1' }, /cleanup: "1"/],
    ['bad kubectl version', { 'kubectl-version': '1.30' }, /kubectl-version: "1.30" is not valid; use a version such as v1.34.4 or latest/],
    ['helm 2', { 'helm-version': 'v2.17.0' }, /helm-version: "v2.17.0" is not valid; use Helm 3 or 4/],
    ['bad az version', { 'azure-cli-version': '2.x' }, /azure-cli-version/],
    ['bad download url', { 'helm-download-base-url': 'get.helm.sh' }, /helm-download-base-url: "get.helm.sh"/],
    ['bad environment', { environment: 'Azure Cloud!' }, /environment/],
    ['client-id without tenant-id', { 'client-id': SP }, /tenant-id is required when client-id is set/],
    ['tenant-id without client-id', { 'tenant-id': TENANT }, /client-id is required when tenant-id is set/],
    ['secret alone', { 'client-secret': 'abc' }, /client-secret is set without client-id and tenant-id/],
    ['client-id not a GUID', { 'client-id': 'my-app', 'tenant-id': TENANT }, /client-id: "my-app" is not valid; use the application \(client\) ID, a GUID/],
    ['creds and client-id', { creds: '{}', 'client-id': SP, 'tenant-id': TENANT }, /creds and client-id\/tenant-id\/client-secret are both set/],
    ['creds not JSON', { creds: 'not json' }, /creds: the value is not valid JSON/],
    ['creds missing fields', { creds: JSON.stringify({ clientId: SP }) }, /creds: the JSON lacks clientSecret, tenantId/],
    ['connector id without secret', { 'connector-client-id': SP }, /connector-client-id and connector-client-secret go together/],
    ['service-principal without any secret', { 'connector-identity': 'service-principal' }, /connector-identity is service-principal, but no secret is known/],
    [
      'managed plus connector sp',
      { 'connector-identity': 'managed', 'connector-client-id': SP, 'connector-client-secret': 'x' },
      /connector-identity is managed, but connector-client-id is set/
    ],
    ['bad identity', { 'connector-identity': 'msi' }, /connector-identity: "msi" is not valid; use one of auto, service-principal, managed/],
    ['bad samples namespace', { 'samples-namespace': 'Samples' }, /samples-namespace/],
    ['unknown kind', { 'virtual-node-kind': 'helm' }, /virtual-node-kind: "helm" is not valid; use one of v2, v2-helm, addon, connector, auto/],
    ['subnet-name for the connector', { 'subnet-name': 'cg' }, /subnet-name: "cg" is not valid; it applies to virtual-node-kind: addon, v2-helm or auto only/],
    ['bad subnet name', { 'virtual-node-kind': 'v2-helm', 'subnet-name': 'my subnet' }, /subnet-name: "my subnet" is not valid; use an Azure subnet name/],
    [
      'virtual-nodes for the add-on',
      { 'virtual-node-kind': 'addon', 'virtual-nodes': '2' },
      /virtual-nodes: "2" is not valid; it applies to virtual-node-kind: v2, v2-helm or auto only/
    ],
    [
      'v2-chart-url for the extension',
      { 'virtual-node-kind': 'v2', 'v2-chart-url': 'https://x/vn.tgz' },
      /v2-chart-url: "https:\/\/x\/vn.tgz" is not valid; it applies to virtual-node-kind: v2-helm or auto only/
    ],
    [
      'v2-chart-url an oci:// chart',
      { 'virtual-node-kind': 'v2-helm', 'v2-chart-url': 'oci://x/vn' },
      /v2-chart-url: "oci:\/\/x\/vn" is not valid; use an https:\/\/ or http:\/\/ URL/
    ],
    [
      'v2-chart-sha256 alone',
      { 'virtual-node-kind': 'v2-helm', 'v2-chart-sha256': 'a'.repeat(64) },
      /v2-chart-sha256: .* it pins v2-chart-url; the published charts are pinned already/
    ],
    [
      'v2-chart-sha256 not hex',
      { 'virtual-node-kind': 'v2-helm', 'v2-chart-url': 'https://x/vn.tgz', 'v2-chart-sha256': 'abc' },
      /v2-chart-sha256: "abc" is not valid; use the 64 hex digits/
    ]
  ]
  it.each(badInputs)('rejects %s, naming the input and the fix', (_label, extra, expected) => {
    const problems = problemsOf(extra)
    expect(problems.join('\n')).toMatch(expected)
  })

  it('reports every problem at once', () => {
    const problems = problemsOf({ 'os-type': 'x', 'wait-timeout': 'y', command: 'z' })
    expect(problems).toHaveLength(3)
  })

  it('never echoes the creds JSON (it holds a secret)', () => {
    const creds = '{"clientSecret": "super-secret-value", broken'
    expect(problemsOf({ creds }).join('\n')).not.toContain('super-secret-value')
  })
})

describe('parseDuration', () => {
  it.each([
    ['300', 300_000],
    ['300s', 300_000],
    ['5m', 300_000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['1500ms', 1500]
  ])('%s -> %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms))
  it.each(['', 'm', '5 m', '5x', '-5s'])('rejects %j', text => expect(parseDuration(text)).toBeUndefined())
})

describe('readActionInput', () => {
  it('reads INPUT_ variables the way the runner names them (hyphens kept, upper-case)', () => {
    process.env['INPUT_RESOURCE-GROUP'] = '  rg1 '
    try {
      const read = readActionInput()
      expect(read('resource-group')).toBe('rg1')
      expect(read('cluster-name')).toBe('')
    } finally {
      delete process.env['INPUT_RESOURCE-GROUP']
    }
  })
})

describe('single-line inputs', () => {
  it.each([
    ['location', 'eastus\nwestus'],
    ['connector-name', 'pr-1\r'],
    ['chart-url', 'https://example.com/chart.tgz\u0000'],
    ['image-tag', '1.6.4\t'],
    ['aci-resource-group', 'rg\u001b[31m']
  ])('rejects a line break or control character in %s without echoing the value', (name, value) => {
    const problems = problemsOf({ [name]: value })
    const problem = problems.find(p => p.startsWith(name))
    expect(problem).toBe(`${name} contains a line break or control character; give it as a single line (in YAML, quote it or use a plain scalar, not | or >).`)
  })

  it('lets the creds JSON span lines', () => {
    const creds = JSON.stringify({ clientId: SP, clientSecret: 's3cret', tenantId: TENANT, subscriptionId: SUB }, null, 2)
    expect(parse({ creds }).signIn).toMatchObject({ kind: 'secret', clientId: SP })
  })
})

describe('checkInputsOnRunner', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inputs-runner-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })
  const env = (): NodeJS.ProcessEnv => ({ AZURE_CONFIG_DIR: join(dir, 'azure') })
  async function runnerProblems(extra: Record<string, string>): Promise<string[]> {
    try {
      await checkInputsOnRunner(parse(extra), env())
      return []
    } catch (err) {
      expect(err).toBeInstanceOf(InputError)
      return (err as InputError).problems
    }
  }

  it('accepts the public clouds and the default chart URL without any az config', async () => {
    for (const environment of ['AzureCloud', 'AzureUSGovernment', 'AzureChinaCloud', 'public']) expect(await runnerProblems({ environment })).toEqual([])
  })

  it('accepts a cloud the runner registered with az cloud register, and refuses one it did not', async () => {
    await mkdir(join(dir, 'azure'))
    await writeFile(
      join(dir, 'azure', 'clouds.config'),
      '[MyStack]\nendpoint_resource_manager = https://management.local.azurestack.external/\nendpoint_active_directory = https://adfs.local.azurestack.external/adfs\nendpoint_active_directory_resource_id = https://management.adfs.azurestack.local/123\n'
    )
    expect(await runnerProblems({ environment: 'mystack' })).toEqual([])
    const [problem] = await runnerProblems({ environment: 'OtherStack' })
    expect(problem).toContain('environment: "OtherStack" is not a cloud the runner\'s az knows')
    expect(problem).toContain('az cloud register --name OtherStack --endpoint-resource-manager <ARM URL>')
  })

  it('checks a local chart path: missing, a directory without Chart.yaml, not an archive', async () => {
    expect((await runnerProblems({ 'chart-url': join(dir, 'nope') }))[0]).toMatch(/^chart-url: ".*nope" does not exist on the runner/)
    await mkdir(join(dir, 'empty'))
    expect((await runnerProblems({ 'chart-url': join(dir, 'empty') }))[0]).toContain('is a directory without a Chart.yaml')
    await writeFile(join(dir, 'notes.txt'), 'x')
    expect((await runnerProblems({ 'chart-url': join(dir, 'notes.txt') }))[0]).toContain('is neither a chart directory nor a packaged chart (.tgz)')
    await mkdir(join(dir, 'chart'))
    await writeFile(join(dir, 'chart', 'Chart.yaml'), 'apiVersion: v2\nname: c\nversion: 1.0.0\n')
    await writeFile(join(dir, 'c-1.0.0.tgz'), '')
    expect(await runnerProblems({ 'chart-url': join(dir, 'chart') })).toEqual([])
    expect(await runnerProblems({ 'chart-url': join(dir, 'c-1.0.0.tgz') })).toEqual([])
  })

  it('refuses chart-sha256 with a chart directory before anything is downloaded (a directory has no single digest)', async () => {
    await mkdir(join(dir, 'chart'))
    await writeFile(join(dir, 'chart', 'Chart.yaml'), 'apiVersion: v2\nname: c\nversion: 1.0.0\n')
    const [problem] = await runnerProblems({ 'chart-url': join(dir, 'chart'), 'chart-sha256': 'a'.repeat(64) })
    expect(problem).toContain('chart-sha256: ')
    expect(problem).toContain('is a chart directory, which has no single digest; package it with `helm package`')
    await writeFile(join(dir, 'c-1.0.0.tgz'), '')
    expect(await runnerProblems({ 'chart-url': join(dir, 'c-1.0.0.tgz'), 'chart-sha256': 'a'.repeat(64) })).toEqual([])
  })

  it('refuses an az older than the supported floor, naming the floor', async () => {
    expect(await runnerProblems({ 'azure-cli-version': '2.29.9' })).toEqual([
      `azure-cli-version: "2.29.9" is older than ${MIN_AZURE_CLI_VERSION}, the oldest az this action supports (federated sign-in and @file arguments); use ${MIN_AZURE_CLI_VERSION} or newer, latest, or leave it empty.`
    ])
    expect(await runnerProblems({ 'azure-cli-version': MIN_AZURE_CLI_VERSION })).toEqual([])
    expect(await runnerProblems({ 'azure-cli-version': 'latest' })).toEqual([])
  })
})

describe('connector inputs where no connector is installed', () => {
  it('a v2 or add-on install for Linux only takes any region (the connector region list is not theirs)', () => {
    expect(parse({ 'virtual-node-kind': 'v2' }).virtualNodeKind).toBe('v2')
    expect(problemsOf({ 'virtual-node-kind': 'v2', location: 'antarctica' })[0]).toMatch(
      /^location: "antarctica" is not valid; it applies to the ACI connector, and virtual-node-kind: v2/
    )
    // With Windows from the connector, the region must be one the connector runs in.
    expect(problemsOf({ 'virtual-node-kind': 'v2', 'os-type': 'Both', location: 'antarctica' })[0]).toContain('the azure-aci connector runs only in')
    expect(parse({ 'virtual-node-kind': 'addon', 'os-type': 'Both', location: 'westeurope' }).location).toBe('westeurope')
  })

  it('only warns about the chart and image a Linux-only v2 or add-on install does not use', () => {
    const i = parse({ 'virtual-node-kind': 'v2', 'chart-url': 'https://example.com/c.tgz', 'chart-sha256': 'a'.repeat(64), 'image-tag': '1.6.4' })
    expect(i.unused).toEqual([
      'chart-url is not used: virtual-node-kind: v2 with os-type: Linux installs no ACI connector, whose chart and image it sets.',
      'chart-sha256 is not used: virtual-node-kind: v2 with os-type: Linux installs no ACI connector, whose chart and image it sets.',
      'image-tag is not used: virtual-node-kind: v2 with os-type: Linux installs no ACI connector, whose chart and image it sets.'
    ])
    expect(parse({ 'virtual-node-kind': 'v2', 'os-type': 'Both', 'image-tag': '1.6.4' }).unused).toEqual([])
    expect(parse({ 'virtual-node-kind': 'addon', 'chart-url': DEFAULT_CHART_URL }).unused).toEqual([])
  })

  it.each([
    ['aci-resource-group', 'rg-aci'],
    ['connector-identity', 'managed']
  ])('refuses %s with a Linux-only v2 or add-on install, naming the fix', (name, value) => {
    for (const kind of ['v2', 'addon']) {
      const problems = problemsOf({ 'virtual-node-kind': kind, [name]: value })
      expect(problems.some(p => p.startsWith(`${name}: "${value}" is not valid; it applies to the ACI connector`) && p.includes('use os-type: Both'))).toBe(
        true
      )
    }
    // With Windows from the connector it applies; told to remove, it narrows.
    expect(() => parse({ 'virtual-node-kind': 'v2', 'os-type': 'Both', [name]: value })).not.toThrow()
    expect(() => parse({ 'virtual-node-kind': 'v2', command: 'remove', [name]: value })).not.toThrow()
  })

  it('never echoes a connector secret it refuses', () => {
    const problems = problemsOf({ 'virtual-node-kind': 'v2', 'connector-client-id': SP, 'connector-client-secret': 's3cr3t-value' })
    expect(problems.join('\n')).not.toContain('s3cr3t-value')
    expect(problems).toContain(
      'connector-client-secret: "(set)" is not valid; it applies to the ACI connector, and virtual-node-kind: v2 with os-type: Linux installs none (its nodes run in the cluster\'s region, as its identity); leave it empty, or use os-type: Both to also get Windows nodes from the connector.'
    )
  })
})

describe('location', () => {
  it('refuses a region the connector does not run in, listing those it does', () => {
    const [problem] = problemsOf({ location: 'antarctica' })
    expect(problem).toMatch(
      /^location: "antarctica" is not valid; the azure-aci connector runs only in the regions where ACI is offered \(australiacentral, .*westus3, usgovvirginia, usgovarizona\); it would exit at start for "antarctica"/
    )
    expect(parse({ location: 'West Europe' }).location).toBe('westeurope')
    // A removal must still reach a release whatever its region.
    expect(parse({ location: 'antarctica', command: 'remove' }).location).toBe('antarctica')
  })
})

describe('command: sweep', () => {
  it('takes connector-name as a glob, older-than as a duration with days, and dry-run', () => {
    expect(parse({ command: 'sweep', 'connector-name': 'pr-*', 'older-than': '1d12h', 'dry-run': 'true' })).toMatchObject({
      command: 'sweep',
      connectorName: 'pr-*',
      olderThanMs: 36 * 3_600_000,
      dryRun: true
    })
    expect(parse({ command: 'sweep' })).toMatchObject({ olderThanMs: undefined, dryRun: false })
  })

  it('refuses a glob with other characters, a bad age, and older-than outside a sweep', () => {
    expect(problemsOf({ command: 'sweep', 'connector-name': 'PR_*' })[0]).toContain(
      'connector-name: "PR_*" is not valid; for command: sweep use a glob over connector names'
    )
    expect(problemsOf({ command: 'sweep', 'older-than': 'a week' })[0]).toBe('older-than: "a week" is not valid; use a duration such as 36h, 7d or 90m.')
    expect(problemsOf({ 'older-than': '7d' })[0]).toBe('older-than: "7d" is not valid; it applies to command: sweep only.')
    expect(problemsOf({ 'connector-name': 'pr-*' })[0]).toContain('connector-name: "pr-*" is not valid')
  })

  it('refuses an older-than without a unit: a bare number would be seconds, in a command that deletes', () => {
    expect(problemsOf({ command: 'sweep', 'older-than': '7' })).toEqual([
      'older-than: "7" is not valid; give it a unit, such as 7d, 7h or 7m (a bare number would be read as seconds).'
    ])
    expect(parse({ command: 'sweep', 'older-than': '7d' }).olderThanMs).toBe(7 * 86_400_000)
  })
})

describe('OIDC audience', () => {
  const oidc = { 'client-id': SP, 'tenant-id': TENANT }
  it('refuses an audience longer than a federated credential may have (600 characters)', () => {
    const long = `api://${'a'.repeat(600)}`
    expect(problemsOf({ ...oidc, audience: long })).toEqual([
      `audience: it has ${long.length} characters, and a federated credential's audience has at most 600 (Microsoft Entra ID); use the audience the app's federated credential names, such as api://AzureADTokenExchange.`
    ])
    expect(parse({ ...oidc, audience: `api://${'a'.repeat(594)}` }).signIn).toMatchObject({ kind: 'oidc', audience: `api://${'a'.repeat(594)}` })
  })
})

describe('teardown inputs', () => {
  it('os-type left empty is Linux for an install and "every OS found" for a remove; given, it narrows', () => {
    expect(parse()).toMatchObject({ osTypes: ['Linux'], osTypesGiven: false })
    expect(parse({ command: 'remove' })).toMatchObject({ osTypesGiven: false })
    expect(parse({ command: 'remove', 'os-type': 'Windows' })).toMatchObject({ osTypes: ['Windows'], osTypesGiven: true })
  })

  it('takes dry-run for remove and sweep, and refuses it for install before anything runs', () => {
    expect(parse({ command: 'remove', 'dry-run': 'true' }).dryRun).toBe(true)
    expect(parse({ command: 'sweep', 'dry-run': 'true' }).dryRun).toBe(true)
    expect(problemsOf({ 'dry-run': 'true' })[0]).toBe(
      'dry-run: "true" is not valid; it applies to command: remove and command: sweep only (an install changes the cluster by its nature).'
    )
    expect(parse({ 'dry-run': 'false' }).dryRun).toBe(false)
  })

  it('verify-aci defaults to true and takes only true or false', () => {
    expect(parse({ command: 'remove' }).verifyAci).toBe(true)
    expect(parse({ command: 'remove', 'verify-aci': 'false' }).verifyAci).toBe(false)
    expect(problemsOf({ 'verify-aci': 'no' })[0]).toBe('verify-aci: "no" is not valid; use true or false.')
  })
})

describe('inputs that validate must not break later', () => {
  it('expands ~/ in a local chart path for helm too, and refuses ~name', () => {
    expect(parse({ 'chart-url': '~/charts/vk.tgz' }).chartUrl).toBe(join(homedir(), 'charts/vk.tgz'))
    expect(problemsOf({ 'chart-url': '~bob/vk.tgz' })[0]).toContain("use ~/ (the runner user's home) or an absolute path")
  })

  it('refuses a kubectl older than the chart needs, naming the floor', () => {
    expect(problemsOf({ 'kubectl-version': 'v0.9.0' })[0]).toContain('kubectl-version: "v0.9.0" is not valid; use v1.9.0 or newer')
    expect(problemsOf({ 'kubectl-version': '1.8.15' })[0]).toContain('use v1.9.0 or newer')
    expect(parse({ 'kubectl-version': 'v1.9.0' }).kubectlVersion).toBe('v1.9.0')
  })
})

describe('chart-sha256', () => {
  it('takes 64 hex digits for an https:// or local chart, and refuses other values and oci:// charts', () => {
    const digest = 'a'.repeat(64)
    expect(parse({ 'chart-sha256': digest, 'chart-url': 'https://example.com/vk-1.0.0.tgz' }).chartSha256).toBe(digest)
    expect(problemsOf({ 'chart-sha256': 'abc' })[0]).toBe('chart-sha256: "abc" is not valid; use the 64 hex digits `sha256sum <chart>.tgz` prints.')
    expect(problemsOf({ 'chart-sha256': digest, 'chart-url': 'oci://example.io/charts/vk' })[0]).toContain(
      'an oci:// chart is pinned by its registry reference'
    )
  })

  it("pins the default chart to its published file's digest, and refuses another digest for it", () => {
    const published = '10461acdb8c730bf45504257e182d7503649b0126442f1778ea6a768a06e6f81'
    expect(parse().chartSha256).toBe(published)
    expect(parse({ 'chart-url': DEFAULT_CHART_URL, 'chart-sha256': published.toUpperCase() }).chartSha256).toBe(published.toUpperCase())
    expect(problemsOf({ 'chart-sha256': 'a'.repeat(64) })[0]).toBe(
      `chart-sha256: "${'a'.repeat(64)}" is not valid; chart-url is the default chart, whose published file is pinned to ${published}; leave chart-sha256 empty, or set chart-url to the chart this digest is of.`
    )
    // A chart of the user's own is pinned only when they pin it.
    expect(parse({ 'chart-url': 'https://example.com/vk-1.0.0.tgz' }).chartSha256).toBeUndefined()
  })

  it('warns about a plain http:// chart unless it is pinned', async () => {
    const { insecureChartWarning } = await import('../../src/kubernetes/chart-file.js')
    const names = { urlInput: 'chart-url', shaInput: 'chart-sha256' }
    expect(insecureChartWarning({ ...names, url: 'http://mirror/vk-1.0.0.tgz' })).toContain('chart-url http://mirror/vk-1.0.0.tgz is plain http://')
    expect(insecureChartWarning({ ...names, url: 'http://mirror/vk-1.0.0.tgz', sha256: 'a'.repeat(64) })).toBeUndefined()
    expect(insecureChartWarning({ ...names, url: DEFAULT_CHART_URL })).toBeUndefined()
  })
})

describe('virtual-node-kind v2-helm and auto', () => {
  it('takes v2-helm with its subnet, node count and a chart of the user’s own', () => {
    expect(
      parse({
        'virtual-node-kind': 'v2-helm',
        'subnet-name': 'aci-subnet',
        'virtual-nodes': '3',
        'v2-chart-url': 'https://mirror.example/vn.tgz',
        'v2-chart-sha256': 'A'.repeat(64)
      })
    ).toMatchObject({
      virtualNodeKind: 'v2-helm',
      subnetName: 'aci-subnet',
      v2NodeCount: 3,
      v2ChartUrl: 'https://mirror.example/vn.tgz',
      v2ChartSha256: 'A'.repeat(64)
    })
  })

  it('takes auto with the inputs of every kind it may choose (auto may choose the connector, so its region is still checked)', () => {
    expect(parse({ 'virtual-node-kind': 'auto', 'subnet-name': 'cg', 'virtual-nodes': '2', 'os-type': 'Both' })).toMatchObject({
      virtualNodeKind: 'auto',
      osTypes: ['Linux', 'Windows'],
      subnetName: 'cg',
      v2NodeCount: 2
    })
    expect(problemsOf({ 'virtual-node-kind': 'auto', location: 'israelnorthwest' }).join('\n')).toMatch(/^location: "israelnorthwest" is not valid/)
  })

  it('takes auto for a remove, which looks for every kind', () => {
    expect(parse({ command: 'remove', 'virtual-node-kind': 'auto' })).toMatchObject({ command: 'remove', virtualNodeKind: 'auto' })
  })
})
