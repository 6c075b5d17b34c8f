// virtual-node-kind: auto, from what each kind's probe found: what the cluster has first,
// else the first in AUTO_ORDER that fits, Windows always from the connector, and none
// refused with every kind's problems.
import { describe, expect, it } from 'vitest'
import { AUTO_ORDER, pickKinds } from '../../src/virtual-nodes/choose.js'
import type { KindProbe } from '../../src/virtual-nodes/kind.js'
import type { KindName } from '../../src/virtual-nodes/kinds.js'

const FITS: KindProbe = { problems: [] }
const no = (problem: string): KindProbe => ({ problems: [problem] })
const probes = (over: Partial<Record<KindName, KindProbe>>): Map<KindName, KindProbe> =>
  new Map(AUTO_ORDER.map(n => [n, over[n] ?? no(`${n} problem: its fix`)] as const))

describe('virtual-node-kind auto', () => {
  it('the order: the add-on (GA), the v2 extension, the v2 chart, the connector', () => {
    expect(AUTO_ORDER).toEqual(['addon', 'v2', 'v2-helm', 'connector'])
  })

  it('takes the first kind that fits, and says which it passed over and why', () => {
    const c = pickKinds(probes({ 'v2-helm': FITS, connector: FITS }), ['Linux'])
    expect(c.uses).toEqual([{ name: 'v2-helm', os: ['Linux'] }])
    expect(c.reason).toBe(
      "virtual-node-kind auto chose Virtual Nodes v2 (Helm chart) for Linux: the first in auto's order (add-on, v2 extension, v2 Helm chart, ACI connector) whose prerequisites the cluster meets; " +
        "not: AKS's virtual-node add-on (addon problem); Virtual Nodes v2 (v2 problem)."
    )
  })

  it('what the cluster already has comes first, even before a kind earlier in the order that fits', () => {
    const c = pickKinds(probes({ addon: FITS, connector: { problems: [], installed: 'release virtual-kubelet-x-linux-eastus' } }), ['Linux'])
    expect(c.uses).toEqual([{ name: 'connector', os: ['Linux'] }])
    expect(c.reason).toContain('the cluster already has it (release virtual-kubelet-x-linux-eastus)')
  })

  it('Both: Linux from the kind chosen, Windows from the connector; the connector alone serves both', () => {
    expect(pickKinds(probes({ addon: FITS }), ['Linux', 'Windows'])).toMatchObject({
      uses: [
        { name: 'addon', os: ['Linux'] },
        { name: 'connector', os: ['Windows'] }
      ],
      reason: expect.stringContaining('Windows nodes come from the ACI connector.')
    })
    expect(pickKinds(probes({ connector: FITS }), ['Linux', 'Windows']).uses).toEqual([{ name: 'connector', os: ['Linux', 'Windows'] }])
  })

  it('Windows only: the connector, nothing probed', () => {
    expect(pickKinds(new Map(), ['Windows']).uses).toEqual([{ name: 'connector', os: ['Windows'] }])
  })

  it('none fits: refused, naming every kind and each of its problems', () => {
    expect(() => pickKinds(probes({ v2: { problems: ['no 4-core pool: add one', 'kubenet: use Azure CNI'] } }), ['Linux'])).toThrow(
      'virtual-node-kind auto: this cluster meets the prerequisites of no kind of virtual node; nothing was changed. What each needs:\n' +
        "- AKS's virtual-node add-on:\n    - addon problem: its fix\n" +
        '- Virtual Nodes v2:\n    - no 4-core pool: add one\n    - kubenet: use Azure CNI\n' +
        '- Virtual Nodes v2 (Helm chart):\n    - v2-helm problem: its fix\n' +
        '- ACI connector:\n    - connector problem: its fix'
    )
  })
})
