// The scheduled teardown that finds what is left without being told names: `command:
// sweep` with a glob and an age, on connectors the real chart installed, a node left
// without its connector, container groups whose node is gone, and things that are not a
// connector's (the managed add-on's node, a team's own container group).
import { describe, expect, it } from 'vitest'
import { IDS, type LocalAks } from '../local-aks/local-aks.js'
import { expectNoSecretLeak, expectSuccess, job, node, putContainerGroup, releasesIn, rewriteRelease, secretSignIn, useLocalAks } from './helpers.js'

const DAY_MS = 86_400_000
const GONE_NODE = 'virtual-kubelet-gone-linux-eastus'
/** A matching connector's node without its release, NotReady for ten minutes, but created just now. */
const GHOST_NODE = 'virtual-kubelet-pr-ghost-linux-eastus'
/** Another connector's node without its release, NotReady for ten minutes. */
const TEAM_NODE = 'virtual-kubelet-team-linux-eastus'
/** A matching connector's node NotReady for a moment only (a connector pod restarting). */
const BLIP_NODE = 'virtual-kubelet-pr-blip-linux-eastus'
const MIN_MS = 60_000
const ADDON_NODE = 'virtual-node-aci-linux'

describe('command: sweep', () => {
  let env: LocalAks
  useLocalAks({}, e => (env = e))

  const putGroup = (name: string, tags: Record<string, string>): void => putContainerGroup(env, IDS.nodeResourceGroup, name, tags)

  /**
   * A node as an ACI connector registers it (label type=virtual-kubelet, taint
   * virtual-kubelet.io/provider=azure: azure-aci v1.6.4 charts/virtual-kubelet/values.yaml),
   * with no kubelet behind it, NotReady (Unknown, as the node lifecycle controller marks a
   * node that stopped posting status) since `notReadyForMs` ago.
   */
  async function virtualNodeWithoutKubelet(name: string, notReadyForMs?: number, provider = 'azure'): Promise<void> {
    const labels = { type: 'virtual-kubelet', 'kubernetes.io/role': 'agent', 'kubernetes.io/os': 'linux' }
    const taints = name === ADDON_NODE ? [] : [{ key: 'virtual-kubelet.io/provider', value: provider, effect: 'NoSchedule' }]
    if (!(await node(env, name))) await env.core.createNode({ body: { metadata: { name, labels }, spec: { taints } } })
    if (notReadyForMs !== undefined) await setNotReadySince(name, notReadyForMs)
  }

  async function setNotReadySince(name: string, msAgo: number): Promise<void> {
    // The node lifecycle controller writes the same status; a conflict means read again and retry.
    for (let attempt = 1; ; attempt++) {
      try {
        return await writeNotReady(name, msAgo)
      } catch (err) {
        if (attempt >= 5 || !String(err).includes('409')) throw err
      }
    }
  }

  async function writeNotReady(name: string, msAgo: number): Promise<void> {
    const current = await env.core.readNode({ name })
    const since = new Date(Date.now() - msAgo)
    const ready = {
      type: 'Ready',
      status: 'Unknown',
      reason: 'NodeStatusUnknown',
      message: 'Kubelet stopped posting node status.',
      lastHeartbeatTime: since,
      lastTransitionTime: since
    }
    await env.core.replaceNodeStatus({ name, body: { ...current, status: { ...current.status, conditions: [ready] } } })
  }

  it('finds matching old connectors, dead nodes and orphaned container groups; a dry run changes nothing; the sweep removes exactly those; a second finds nothing', async () => {
    for (const name of ['pr-1', 'pr-2', 'keep']) {
      const r = await job(env, { ...secretSignIn, 'connector-name': name })
      await r.job.cleanup()
      expectSuccess(r.main)
    }
    // pr-1 was first deployed two days ago; pr-2 just now.
    await rewriteRelease(env, 'pr-1-linux-eastus', body => (body.info.first_deployed = new Date(Date.now() - 2 * DAY_MS).toISOString()))
    await virtualNodeWithoutKubelet(GHOST_NODE, 10 * MIN_MS)
    await virtualNodeWithoutKubelet(TEAM_NODE, 10 * MIN_MS)
    await virtualNodeWithoutKubelet(BLIP_NODE, 10_000)
    await virtualNodeWithoutKubelet(ADDON_NODE, 10 * MIN_MS)
    putGroup('default-left-behind', { PodName: 'left-behind', Namespace: 'default', NodeName: GONE_NODE })
    putGroup('team-db', { owner: 'team' })

    const inputs = { ...secretSignIn, command: 'sweep', 'connector-name': 'pr-*', 'older-than': '1d' }
    const dry = await job(env, { ...inputs, 'dry-run': 'true' })
    await dry.job.cleanup()
    expectSuccess(dry.main)
    // The ghost node is too young for older-than (it was created just now), the team's is another connector's.
    const expected = {
      releases: ['default/pr-1-linux-eastus'],
      // A sweep not told the kind looks for every kind: none of v2 or the add-on is here.
      extensions: [],
      addons: [],
      nodes: ['virtual-kubelet-pr-1-linux-eastus'],
      containerGroups: [`${IDS.nodeResourceGroup}/default-left-behind`],
      notAttributable: []
    }
    expect(JSON.parse(dry.main.outputs.swept)).toEqual({ dryRun: true, ...expected })
    expect(dry.main.summary).toContain('Dry run: nothing was changed.')
    expect(dry.main.summary).toContain(
      `| release | \`default/pr-1-linux-eastus\` | 2 d 0 h | Helm release default/pr-1-linux-eastus (chart virtual-kubelet-azure-aci, deployed) of connector pr-1: Linux node virtual-kubelet-pr-1-linux-eastus in eastus, container groups in ${IDS.nodeResourceGroup} | would remove |`
    )
    expect(dry.main.summary).toContain(
      `| container group | \`${IDS.nodeResourceGroup}/default-left-behind\` | - | tagged for node ${GONE_NODE}, in the cluster's own node resource group (1 CPU, 1.5 GB) | would remove |`
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
    for (const left of [GHOST_NODE, TEAM_NODE, BLIP_NODE]) expect(await node(env, left), left).toBeDefined()
    // Not a connector's: the add-on's node and a group without the connector's tags stay.
    expect(await node(env, ADDON_NODE)).toBeDefined()
    expect(await node(env, 'virtual-kubelet-pr-2-linux-eastus')).toBeDefined()
    expect(env.azure.aci.groups().map(g => g.name)).toEqual(['team-db'])

    // Without an age, the ghost goes (NotReady for the grace period); the blip and the team's node stay.
    await setNotReadySince(BLIP_NODE, 10_000)
    const young = await job(env, { ...secretSignIn, command: 'sweep', 'connector-name': 'pr-ghost*' })
    await young.job.cleanup()
    expectSuccess(young.main)
    expect(JSON.parse(young.main.outputs.swept).nodes).toEqual([GHOST_NODE])
    expect(young.main.summary).toMatch(
      new RegExp(`\\| node \\| \`${GHOST_NODE}\` \\| \\d+ min \\| ACI virtual node of connector pr-ghost that no Helm release serves, not Ready since `)
    )
    await setNotReadySince(BLIP_NODE, 10_000)
    const blip = await job(env, { ...secretSignIn, command: 'sweep', 'connector-name': 'pr-*' })
    await blip.job.cleanup()
    expectSuccess(blip.main)
    expect(await node(env, GHOST_NODE)).toBeUndefined()
    expect(await node(env, BLIP_NODE)).toBeDefined()
    expect(await node(env, TEAM_NODE)).toBeDefined()
    expect(JSON.parse(blip.main.outputs.swept).releases).toEqual(['default/pr-2-linux-eastus'])
    await env.core.deleteNode({ name: BLIP_NODE })

    const again = await job(env, inputs)
    await again.job.cleanup()
    expectSuccess(again.main)
    expect(JSON.parse(again.main.outputs.swept)).toEqual({
      dryRun: false,
      releases: [],
      extensions: [],
      addons: [],
      nodes: [],
      containerGroups: [],
      notAttributable: []
    })
    expect(again.main.summary).toContain('Nothing to sweep')
    await expectNoSecretLeak(env, [dry.main, swept.main, young.main, blip.main, again.main])
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
    expect(first.main.log).toContain('Could not remove 1 item(s); what is listed may still be there (container groups still bill):')
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

  it('a glob of * with no age takes every connector and every ACI node dead long enough, and no other provider’s virtual kubelet', async () => {
    // Another provider's virtual kubelet (virtual-kubelet's own mock provider), as dead as the others.
    const otherProvider = 'virtual-kubelet-mock-linux-eastus'
    await virtualNodeWithoutKubelet(otherProvider, 10 * MIN_MS, 'mock')
    const r = await job(env, { ...secretSignIn, command: 'sweep', 'connector-name': '*' })
    await r.job.cleanup()
    expectSuccess(r.main)
    expect(JSON.parse(r.main.outputs.swept).releases).toEqual(['default/keep-linux-eastus'])
    expect(JSON.parse(r.main.outputs.swept).nodes.sort()).toEqual(['virtual-kubelet-keep-linux-eastus', TEAM_NODE])
    expect(await releasesIn(env)).toEqual([])
    expect(await node(env, ADDON_NODE)).toBeDefined()
    expect(await node(env, otherProvider)).toBeDefined()
  })
})
