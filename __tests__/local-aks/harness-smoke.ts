// Proves the three test doubles work on their own, before any end-to-end test
// leans on them: the chart double (packaged + rendered), the tool mirror
// (layout, checksums, knobs) and the runner harness (inputs, file commands,
// masking, post-if, timeout).
//   npx tsx __tests__/local-aks/harness-smoke.ts [path/to/helm]
// helm defaults to $HELM, then the cached helm-v4.3.1 build, then `helm` on PATH.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { CHART_NAME, CHART_VERSION, packageChart } from './chart.js'
import { startMirror } from './mirror.js'
import { evaluateStatusExpression, runJob, runMain, runPost } from './runner.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

function sh(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

function findHelm(): string {
  const candidates = [
    process.argv[2],
    process.env.HELM,
    join(homedir(), '.cache', 'aks-aci-connector-action', 'bin', 'helm-v4.3.1', 'helm'),
    '/tmp/helmtmp/helm'
  ]
  return candidates.find(c => c && existsSync(c)) ?? 'helm'
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

function step(name: string): void {
  console.log(`-- ${name}`)
}

// ---------------------------------------------------------------- chart

async function render(helm: string, tgz: string, release: string, releaseNs: string, sets: string[]): Promise<Obj[]> {
  const args = ['template', release, tgz, '--namespace', releaseNs, ...sets.flatMap(s => ['--set', s])]
  const docs = parseAllDocuments(await sh(helm, args))
  return docs.map(d => d.toJS() as Obj).filter(o => o && o.kind)
}

function byKind(objs: Obj[], kind: string): Obj[] {
  return objs.filter(o => o.kind === kind)
}

function envOf(container: Obj): Record<string, Obj> {
  return Object.fromEntries((container.env as Obj[]).map(e => [e.name, e]))
}

async function checkChart(helm: string, dir: string): Promise<string> {
  step(`chart: helm package with ${helm}`)
  const pkg = await packageChart(helm, dir)
  assert.equal(basename(pkg.path), `${CHART_NAME}-${CHART_VERSION}.tgz`)
  assert.equal(pkg.version, '1.6.4')
  assert.match(pkg.sha256, /^[0-9a-f]{64}$/)
  await sh(helm, ['lint', pkg.path])

  step('chart: linux release, defaults')
  const a = await render(helm, pkg.path, 'aci-connector-linux-eastus', 'default', [
    'nodeName=virtual-kubelet-aci-connector-linux-eastus',
    'nodeOsType=Linux',
    'namespace=vk-linux',
    'providers.azure.masterUri=https://c.hcp.eastus.azmk8s.io',
    'providers.azure.aciRegion=eastus',
    'providers.azure.clientKey=s3cret'
  ])
  const full = 'aci-connector-linux-eastus-virtual-kubelet-azure-aci'
  assert.deepEqual(byKind(a, 'Namespace').map(o => o.metadata.name), ['vk-linux'])
  const [secret] = byKind(a, 'Secret')
  assert.equal(secret!.metadata.name, full)
  assert.equal(secret!.metadata.namespace, 'vk-linux')
  assert.equal(Buffer.from(secret!.data.clientSecret, 'base64').toString(), 's3cret')
  assert.ok(secret!.data['cert.pem'] && secret!.data['key.pem'])
  const [dep] = byKind(a, 'Deployment')
  assert.equal(dep!.metadata.name, full)
  assert.equal(dep!.metadata.namespace, 'vk-linux')
  assert.equal(dep!.metadata.labels.app, 'virtual-kubelet-azure-aci')
  assert.deepEqual(dep!.spec.selector.matchLabels, { app: full })
  assert.equal(dep!.spec.template.metadata.labels.app, full)
  const c = dep!.spec.template.spec.containers[0]
  assert.equal(c.name, full)
  assert.equal(c.image, 'mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet:1.6.4')
  assert.deepEqual(c.command, ['virtual-kubelet'])
  const args: string[] = c.args
  assert.equal(args[args.indexOf('--provider') + 1], 'azure')
  assert.equal(args[args.indexOf('--nodename') + 1], 'virtual-kubelet-aci-connector-linux-eastus')
  assert.equal(args[args.indexOf('--os') + 1], 'Linux')
  assert.ok(!args.includes('--disable-taint'))
  const env = envOf(c)
  assert.deepEqual(env.AZURE_CLIENT_SECRET!.valueFrom, { secretKeyRef: { name: full, key: 'clientSecret' } })
  assert.equal(env.MASTER_URI!.value, 'https://c.hcp.eastus.azmk8s.io')
  assert.equal(env.ACI_REGION!.value, 'eastus')
  assert.equal(env.VKUBELET_TAINT_KEY!.value, 'virtual-kubelet.io/provider')
  assert.equal(env.VKUBELET_TAINT_VALUE!.value, 'azure')
  assert.equal(env.VKUBELET_TAINT_EFFECT!.value, 'NoSchedule')
  assert.ok(!env.VIRTUALNODE_USER_IDENTITY_CLIENTID)
  for (const k of ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_SUBSCRIPTION_ID', 'ACI_RESOURCE_GROUP']) assert.ok(k in env, k)
  const vols = Object.fromEntries((dep!.spec.template.spec.volumes as Obj[]).map(v => [v.name, v]))
  assert.deepEqual(vols['aks-credential']!.hostPath, { path: '/etc/kubernetes/azure.json', type: 'File' })
  assert.equal(dep!.spec.template.spec.serviceAccountName, `${full}-virtual-kubelet-helm`)
  assert.deepEqual(dep!.spec.template.spec.nodeSelector, { 'beta.kubernetes.io/os': 'linux' })
  const [sa] = byKind(a, 'ServiceAccount')
  assert.equal(sa!.metadata.name, `${full}-virtual-kubelet-helm`)
  assert.equal(sa!.metadata.namespace, 'vk-linux')
  const [crb] = byKind(a, 'ClusterRoleBinding')
  assert.deepEqual(crb!.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' })
  assert.deepEqual(crb!.subjects, [{ kind: 'ServiceAccount', name: `${full}-virtual-kubelet-helm`, namespace: 'vk-linux' }])

  step('chart: windows release, long name, rbac off, taint off, managed identity')
  // helm caps release names at 53 characters; the chart's fullname is then cut at 63.
  await assert.rejects(render(helm, pkg.path, 'x'.repeat(54), 'other', []), /longer than 53/)
  const longRelease = 'aci-connector-long-name-windows-australiasoutheast'
  assert.ok(longRelease.length <= 53 && longRelease.length + 26 > 63)
  const b = await render(helm, pkg.path, longRelease, 'other', [
    'nodeName=vk-win',
    'nodeOsType=Windows',
    'namespace=vk-windows',
    'rbac.install=false',
    'taint.enabled=false',
    'providers.azure.managedIdentityID=11111111-2222-3333-4444-555555555555',
    'image.tag=latest'
  ])
  const fullB = `${longRelease}-virtual-kubelet-azure-aci`.slice(0, 63).replace(/-+$/, '')
  assert.equal(fullB.length, 63)
  assert.deepEqual(byKind(b, 'Namespace').map(o => o.metadata.name), ['vk-windows'])
  assert.equal(byKind(b, 'ServiceAccount').length, 0)
  assert.equal(byKind(b, 'ClusterRoleBinding').length, 0)
  const [depB] = byKind(b, 'Deployment')
  assert.equal(depB!.metadata.name, fullB)
  assert.equal(depB!.metadata.namespace, 'vk-windows')
  assert.equal(depB!.spec.template.spec.serviceAccountName, undefined)
  const cB = depB!.spec.template.spec.containers[0]
  assert.equal(cB.image, 'mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet:latest')
  assert.equal(cB.args[cB.args.indexOf('--os') + 1], 'Windows')
  assert.deepEqual(cB.args.slice(0, 2), ['--disable-taint', 'true'])
  assert.equal(envOf(cB).VIRTUALNODE_USER_IDENTITY_CLIENTID!.value, '11111111-2222-3333-4444-555555555555')

  step('chart: targetAKS=false needs aciResourceGroup/aciRegion, no azure.json mount')
  await assert.rejects(render(helm, pkg.path, 'r', 'default', ['providers.azure.targetAKS=false']), /aciResourceGroup is required/)
  const d = await render(helm, pkg.path, 'r', 'default', ['providers.azure.targetAKS=false', 'providers.azure.aciResourceGroup=rg', 'providers.azure.aciRegion=westus'])
  const [depD] = byKind(d, 'Deployment')
  assert.ok(!(depD!.spec.template.spec.volumes as Obj[]).some(v => v.name === 'aks-credential'))
  assert.ok(byKind(d, 'Secret')[0]!.data['credentials.json'])
  return pkg.path
}

// ---------------------------------------------------------------- mirror

async function get(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(url)
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) }
}

async function checkMirror(helm: string, kubectl: string, chart: string, dir: string): Promise<void> {
  step('mirror: layout and checksums')
  const m = await startMirror({ kubectl: { 'v1.34.4': kubectl }, helm: { 'v4.3.1': helm }, charts: [chart], latest: { kubectl: 'v1.34.4' } })
  try {
    assert.match(m.kubectlBaseUrl, /^http:\/\/127\.0\.0\.1:\d+\/kubectl\/release$/)
    const k = await get(`${m.kubectlBaseUrl}/v1.34.4/bin/linux/amd64/kubectl`)
    const kSum = await get(`${m.kubectlBaseUrl}/v1.34.4/bin/linux/amd64/kubectl.sha256`)
    assert.equal(k.status, 200)
    assert.equal(kSum.body.toString(), sha256(k.body))
    assert.equal((await get(`${m.kubectlBaseUrl}/stable.txt`)).body.toString(), 'v1.34.4\n')
    assert.equal((await get(`${m.helmBaseUrl}/helm-latest-version`)).status, 404)
    assert.equal((await get(`${m.kubectlBaseUrl}/v1.34.4/bin/darwin/arm64/kubectl`)).status, 404)
    assert.equal((await get(`${m.kubectlBaseUrl}/v1.34.4/bin/windows/amd64/kubectl.exe`)).status, 404)
    assert.equal((await get(`${m.helmBaseUrl}/helm-v4.3.1-windows-amd64.zip`)).status, 404)

    const name = 'helm-v4.3.1-linux-amd64.tar.gz'
    const h = await get(`${m.helmBaseUrl}/${name}`)
    const hSum = (await get(`${m.helmBaseUrl}/${name}.sha256sum`)).body.toString()
    assert.equal(hSum, `${sha256(h.body)}  ${name}\n`)
    const tgz = join(dir, name)
    await writeFile(tgz, h.body)
    assert.deepEqual((await sh('tar', ['-tzf', tgz])).trim().split('\n'), ['linux-amd64/', 'linux-amd64/helm'])
    await sh('tar', ['-xzf', tgz, '-C', dir])
    assert.match(await sh(join(dir, 'linux-amd64', 'helm'), ['version', '--short']), /^v\d+\.\d+\.\d+/)

    const ch = await get(m.chartUrl(basename(chart)))
    assert.equal(ch.status, 200)

    step('mirror: corrupt and down knobs')
    m.knobs.corrupt.add('helm')
    const bad = await get(`${m.helmBaseUrl}/${name}`)
    assert.equal(bad.body.length, h.body.length)
    assert.notEqual(sha256(bad.body), hSum.split(' ')[0])
    assert.equal((await get(`${m.helmBaseUrl}/${name}.sha256sum`)).body.toString(), hSum)
    assert.equal(sha256((await get(`${m.kubectlBaseUrl}/v1.34.4/bin/linux/amd64/kubectl`)).body), kSum.body.toString())
    m.knobs.corrupt.clear()
    m.knobs.down = true
    assert.equal((await get(`${m.kubectlBaseUrl}/stable.txt`)).status, 503)
    m.knobs.down = false
    assert.ok(m.requests.some(r => r.path === '/kubectl/release/stable.txt' && r.status === 503))
    assert.ok(m.requests.some(r => r.path === `/helm/${name}` && r.status === 200))
  } finally {
    await m.stop()
  }
}

// ---------------------------------------------------------------- runner

const FAKE_ACTION_YML = `name: fake
description: fake action for the runner harness smoke test
inputs:
  greeting:
    description: x
    default: hello
  token:
    description: x
    default: \${{ github.token }}
  secret-value:
    description: x
    required: false
  mode:
    description: ok | fail | hang
    default: ok
  count:
    description: a number default
    default: 3
outputs:
  said:
    description: x
runs:
  using: node24
  main: index.mjs
  post: index.mjs
  post-if: POST_IF
`

// One bundle for main and post, telling them apart by saved state like the real action.
const FAKE_ACTION_JS = `import { appendFileSync } from 'node:fs'
import { EOL } from 'node:os'
const input = n => process.env['INPUT_' + n.replace(/ /g, '_').toUpperCase()] ?? ''
const isPost = !!process.env.STATE_isPost
if (!isPost) {
  appendFileSync(process.env.GITHUB_STATE, 'isPost=true' + EOL)
  appendFileSync(process.env.GITHUB_STATE, 'multi<<EOF_1' + EOL + 'a' + EOL + 'b' + EOL + 'EOF_1' + EOL)
  const secret = input('secret-value')
  console.log('::add-mask::' + secret)
  console.log('the secret is ' + secret)
  console.log('::group::details')
  console.log('greeting=' + input('greeting') + ' token=[' + input('token') + '] count=' + input('count'))
  console.log('leak=' + (process.env.HARNESS_LEAK_CHECK ?? 'none') + ' extra=' + (process.env.EXTRA ?? 'none'))
  console.log('::endgroup::')
  console.error('::warning file=a.ts,line=3::careful%0Anow')
  appendFileSync(process.env.GITHUB_OUTPUT, 'said=' + input('greeting') + EOL)
  appendFileSync(process.env.GITHUB_OUTPUT, 'multi<<ghadelim_x' + EOL + 'line1' + EOL + 'line2' + EOL + 'ghadelim_x' + EOL)
  appendFileSync(process.env.GITHUB_ENV, 'FROM_MAIN=yes' + EOL)
  appendFileSync(process.env.GITHUB_PATH, '/opt/fake-tool/bin' + EOL)
  appendFileSync(process.env.GITHUB_STEP_SUMMARY, '| a | b |' + EOL + '|---|---|' + EOL)
  if (input('mode') === 'hang') setInterval(() => {}, 1000)
  if (input('mode') === 'fail') { console.log('::error::it broke'); process.exit(1) }
} else {
  console.log('post sees multi=' + JSON.stringify(process.env.STATE_multi) + ' FROM_MAIN=' + process.env.FROM_MAIN)
  console.log('post path0=' + process.env.PATH.split(':')[0] + ' greeting=' + input('greeting'))
}
`

async function fakeAction(dir: string, postIf: string): Promise<string> {
  const actionDir = await mkdtemp(join(dir, 'fake-action-'))
  await writeFile(join(actionDir, 'action.yml'), FAKE_ACTION_YML.replace('POST_IF', postIf))
  await writeFile(join(actionDir, 'index.mjs'), FAKE_ACTION_JS)
  return actionDir
}

async function checkRunner(dir: string): Promise<void> {
  step('runner: post-if expressions')
  assert.equal(evaluateStatusExpression('always()', 'cancelled'), true)
  assert.equal(evaluateStatusExpression('${{ !cancelled() }}', 'failure'), true)
  assert.equal(evaluateStatusExpression('!cancelled()', 'cancelled'), false)
  assert.equal(evaluateStatusExpression('success() || failure()', 'failure'), true)
  assert.equal(evaluateStatusExpression('success() && !cancelled()', 'failure'), false)
  assert.throws(() => evaluateStatusExpression("github.event_name == 'push'", 'success'))

  step('runner: main + post, masking, file commands')
  process.env.HARNESS_LEAK_CHECK = 'leaked'
  const always = await fakeAction(dir, 'always()')
  const secret = 'p@ss-w0rd-9876'
  const { main, post, job } = await runJob({ actionDir: always, inputs: { 'secret-value': secret, greeting: 'hi', typo: 'x' }, env: { EXTRA: 'given' } })
  try {
    assert.equal(main.exitCode, 0, main.log)
    assert.deepEqual(main.outputs, { said: 'hi', multi: 'line1\nline2' })
    assert.deepEqual(main.state, { isPost: 'true', multi: 'a\nb' })
    assert.deepEqual(main.env, { FROM_MAIN: 'yes' })
    assert.deepEqual(main.path, ['/opt/fake-tool/bin'])
    assert.equal(main.summary, '| a | b |\n|---|---|\n')
    assert.ok(main.log.includes('the secret is ***'), main.log)
    assert.ok(!main.log.includes(secret))
    assert.ok(main.rawLog.includes(`the secret is ${secret}`))
    assert.ok(main.log.includes('greeting=hi token=[] count=3'))
    assert.ok(main.log.includes('leak=none extra=given'), main.log)
    assert.ok(main.log.includes('::group::details') && main.log.includes('::endgroup::'))
    assert.deepEqual(main.annotations, [{ level: 'warning', message: 'careful\nnow', properties: { file: 'a.ts', line: '3' } }])
    assert.deepEqual(main.masks, [secret])
    assert.deepEqual(main.unexpectedInputs, ['typo'])
    assert.ok(post, 'post should run with always()')
    assert.equal(post.exitCode, 0, post.log)
    assert.ok(post.log.includes('post sees multi="a\\nb" FROM_MAIN=yes'), post.log)
    assert.ok(post.log.includes('post path0=/opt/fake-tool/bin greeting=hi'), post.log)
  } finally {
    await job.cleanup()
  }

  step('runner: post-if success() after a failing main is skipped; always() still runs')
  const onSuccess = await fakeAction(dir, 'success()')
  const failed = await runJob({ actionDir: onSuccess, inputs: { 'secret-value': 'zzzzzz', mode: 'fail' } })
  assert.equal(failed.main.exitCode, 1)
  // stdout and stderr are separate pipes: their relative order is arrival order, as on a runner.
  assert.deepEqual(failed.main.annotations.map(a => a.level).sort(), ['error', 'warning'])
  assert.equal(failed.post, null)
  assert.ok(await runPost(failed.job, { jobStatus: 'success' }), 'explicit jobStatus overrides')
  await failed.job.cleanup()
  const later = await runJob({ actionDir: onSuccess, inputs: { 'secret-value': 'zzzzzz' }, failLaterStep: true })
  assert.equal(later.post, null)
  await later.job.cleanup()
  // Unquoted, `!cancelled()` is a YAML tag: the harness must refuse it rather than run post.
  await assert.rejects(runMain({ actionDir: await fakeAction(dir, '!cancelled()'), inputs: {} }), /Unresolved tag/)
  const cancelled = await fakeAction(dir, "'!cancelled()'")
  const c = await runMain({ actionDir: cancelled, inputs: { 'secret-value': 'zzzzzz' } })
  assert.equal(await runPost(c.job, { jobStatus: 'cancelled' }), null)
  assert.ok(await runPost(c.job, { jobStatus: 'failure' }))
  await c.job.cleanup()

  step('runner: timeout kills the step')
  const hang = await runMain({ actionDir: always, inputs: { 'secret-value': 'zzzzzz', mode: 'hang' }, timeoutMs: 1500 })
  assert.equal(hang.result.timedOut, true)
  assert.equal(hang.result.exitCode, 137)
  assert.ok(hang.result.durationMs < 10_000)
  await hang.job.cleanup()
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'harness-smoke-'))
  try {
    const helm = findHelm()
    const chart = await checkChart(helm, dir)
    await checkMirror(helm, '/usr/bin/kubectl', chart, dir)
    await checkRunner(dir)
    console.log('harness smoke: all good')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
