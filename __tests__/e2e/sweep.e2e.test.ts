// The scheduled teardown that finds what is left without being told names: `command:
// sweep` with a glob and an age, on connectors the real chart installed, a node left
// without its connector, container groups whose node is gone, and things that are not a
// connector's (the managed add-on's node, a team's own container group).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalAks, IDS, type LocalAks } from '../local-aks/local-aks.js'
import { expectNoSecretLeak, expectSuccess, job, node, releasesIn, rewriteRelease, secretSignIn } from './helpers.js'

const DAY_MS = 86_400_000
const GONE_NODE = 'virtual-kubelet-gone-linux-eastus'
const GHOST_NODE = 'virtual-kubelet-ghost-linux-eastus'
const ADDON_NODE = 'virtual-node-aci-linux'

describe('command: sweep', () => {
  let env: LocalAks
  beforeAll(async () => {
    env = await startLocalAks({ log: m => console.log(`[local-aks] ${m}`) })
  })
  afterAll(async () => {
    await env?.stop()
  })

  /** A container group as one would be left in ACI (created over ARM, as the connector does). */
  function putGroup(name: string, tags: Record<string, string>): void {
    const reply = env.azure.aci.handle({
      method: 'PUT',
      resourceGroup: IDS.nodeResourceGroup,
      rest: ['containerGroups', name],
      query: new URLSearchParams(),
      body: JSON.stringify({
        location: 'eastus',
        tags,
        properties: {
          osType: 'Linux',
          containers: [{ name: 'c', properties: { image: 'mcr.microsoft.com/azuredocs/aci-helloworld', resources: { requests: { cpu: 1, memoryInGB: 1.5 } } } }]
        }
      })
    })
    expect(reply.status).toBe(201)
  }

  async function virtualNodeWithoutKubelet(name: string): Promise<void> {
    await env.core.createNode({ body: { metadata: { name, labels: { type: 'virtual-kubelet', 'kubernetes.io/role': 'agent', 'kubernetes.io/os': 'linux' } } } })
  }

  it('finds matching old connectors, dead nodes and orphaned container groups; a dry run changes nothing; the sweep removes exactly those; a second finds nothing', async () => {
    for (const name of ['pr-1', 'pr-2', 'keep']) {
      const r = await job(env, { ...secretSignIn, 'connector-name': name })
      await r.job.cleanup()
      expectSuccess(r.main)
    }
    // pr-1 was first deployed two days ago; pr-2 just now.
    await rewriteRelease(env, 'pr-1-linux-eastus', body => (body.info.first_deployed = new Date(Date.now() - 2 * DAY_MS).toISOString()))
    await virtualNodeWithoutKubelet(GHOST_NODE)
    await virtualNodeWithoutKubelet(ADDON_NODE)
    putGroup('default-left-behind', { PodName: 'left-behind', Namespace: 'default', NodeName: GONE_NODE })
    putGroup('team-db', { owner: 'team' })

    const inputs = { ...secretSignIn, command: 'sweep', 'connector-name': 'pr-*', 'older-than': '1d' }
    const dry = await job(env, { ...inputs, 'dry-run': 'true' })
    await dry.job.cleanup()
    expectSuccess(dry.main)
    const expected = { releases: ['default/pr-1-linux-eastus'], nodes: [GHOST_NODE], containerGroups: [`${IDS.nodeResourceGroup}/default-left-behind`] }
    expect(JSON.parse(dry.main.outputs.swept)).toEqual({ dryRun: true, ...expected })
    expect(dry.main.summary).toMatch(
      /\| release \| `default\/pr-1-linux-eastus` \| 2 d 0 h \| Linux connector pr-1, chart virtual-kubelet-azure-aci, node virtual-kubelet-pr-1-linux-eastus \| would remove \|/
    )
    expect(dry.main.summary).toContain(
      `| container group | \`${IDS.nodeResourceGroup}/default-left-behind\` | - | tagged for node ${GONE_NODE}, 1 CPU, 1.5 GB | would remove |`
    )
    expect(await releasesIn(env)).toEqual(['keep-linux-eastus', 'pr-1-linux-eastus', 'pr-2-linux-eastus'])
    expect(await node(env, GHOST_NODE)).toBeDefined()
    expect(
      env.azure.aci
        .groups()
        .map(g => g.name)
        .sort()
    ).toEqual(['default-left-behind', 'team-db'])

    const swept = await job(env, inputs)
    await swept.job.cleanup()
    expectSuccess(swept.main)
    expect(JSON.parse(swept.main.outputs.swept)).toEqual({ dryRun: false, ...expected })
    expect(await releasesIn(env)).toEqual(['keep-linux-eastus', 'pr-2-linux-eastus'])
    expect(await node(env, 'virtual-kubelet-pr-1-linux-eastus')).toBeUndefined()
    expect(await node(env, GHOST_NODE)).toBeUndefined()
    // Not a connector's: the add-on's node and a group without the connector's tags stay.
    expect(await node(env, ADDON_NODE)).toBeDefined()
    expect(await node(env, 'virtual-kubelet-pr-2-linux-eastus')).toBeDefined()
    expect(env.azure.aci.groups().map(g => g.name)).toEqual(['team-db'])
    expect(swept.main.summary).toContain(`| node | \`${GHOST_NODE}\` |`)

    const again = await job(env, inputs)
    await again.job.cleanup()
    expectSuccess(again.main)
    expect(JSON.parse(again.main.outputs.swept)).toEqual({ dryRun: false, releases: [], nodes: [], containerGroups: [] })
    expect(again.main.summary).toContain('Nothing to sweep')
    await expectNoSecretLeak(env, [dry.main, swept.main, again.main])
  })

  it('one item that cannot be removed does not stop the others; the step names it, and a re-run picks it up', async () => {
    putGroup('default-stuck', { PodName: 'stuck', Namespace: 'default', NodeName: GONE_NODE })
    putGroup('default-free', { PodName: 'free', Namespace: 'default', NodeName: GONE_NODE })
    // ARM keeps answering 503 to this one group's delete (more often than the action retries).
    env.azure.knobs.failNext(
      6,
      503,
      0,
      `/subscriptions/${IDS.subscriptionId}/resourceGroups/${IDS.nodeResourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/default-stuck`
    )
    const inputs = { ...secretSignIn, command: 'sweep', 'connector-name': 'nothing-*' }
    const first = await job(env, inputs)
    await first.job.cleanup()
    expect(first.main.exitCode).toBe(1)
    expect(first.main.log).toContain('The sweep could not remove 1 item(s):')
    expect(first.main.log).toContain(`- container group ${IDS.nodeResourceGroup}/default-stuck: DELETE`)
    expect(first.main.log).toContain('Re-run the sweep: it finds them again.')
    expect(first.main.summary).toMatch(/\| container group \| `[^`]+\/default-stuck` \| - \| [^|]+ \| ❌ failed: /)
    expect(JSON.parse(first.main.outputs.swept).containerGroups).toEqual([`${IDS.nodeResourceGroup}/default-free`])
    expect(
      env.azure.aci
        .groups()
        .map(g => g.name)
        .sort()
    ).toEqual(['default-stuck', 'team-db'])

    const again = await job(env, inputs)
    await again.job.cleanup()
    expectSuccess(again.main)
    expect(JSON.parse(again.main.outputs.swept).containerGroups).toEqual([`${IDS.nodeResourceGroup}/default-stuck`])
    expect(env.azure.aci.groups().map(g => g.name)).toEqual(['team-db'])
  })

  it('a glob of * with no age takes every connector', async () => {
    const r = await job(env, { ...secretSignIn, command: 'sweep', 'connector-name': '*' })
    await r.job.cleanup()
    expectSuccess(r.main)
    expect(JSON.parse(r.main.outputs.swept).releases).toEqual(['default/keep-linux-eastus', 'default/pr-2-linux-eastus'])
    expect(await releasesIn(env)).toEqual([])
    expect(await node(env, ADDON_NODE)).toBeDefined()
  })
})
