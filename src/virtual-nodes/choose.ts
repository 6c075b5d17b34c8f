// virtual-node-kind: auto. For Linux, the first kind of virtual node in AUTO_ORDER the
// cluster already has, else the first whose prerequisites it meets (each kind's probe reads
// only); Windows always from the connector. None: refused with every kind's problems, so the
// user sees every way to get virtual nodes on this cluster and what each needs.
import * as core from '@actions/core'
import type { KindContext, KindProbe } from './kind.js'
import { FALLBACK_KIND, KINDS, kindLabel, type KindInputs, type KindName, type KindUse } from './kinds.js'
import type { OsType } from './naming.js'

/**
 * The order auto tries the kinds for Linux, and why:
 * 1. AKS's virtual-node add-on: generally available and run by AKS itself (the page this
 *    action started from tells Linux users to prefer it), but it needs Azure CNI and a subnet
 *    for it in the cluster's VNet.
 * 2. Virtual Nodes v2 as the AKS extension: managed by AKS's extension manager, in preview,
 *    needs the cluster's VNet in its node resource group.
 * 3. Virtual Nodes v2 through its Helm chart: also preview, self-managed; the route for a
 *    VNet of the user's own.
 * 4. The ACI connector: the open-source Virtual Kubelet provider, not an Azure-supported
 *    service, yet the one that fits any cluster (kubenet too) and the only one for Windows.
 * What the cluster already has comes first, whatever its place: installing a second kind
 * beside it would give the workloads two kinds of node to land on.
 */
export const AUTO_ORDER: KindName[] = ['addon', 'v2', 'v2-helm', 'connector']

export interface Choice {
  uses: KindUse[]
  /** Why, for the log and the summary. */
  reason: string
}

async function probeOf(name: KindName, ctx: KindContext<KindInputs>): Promise<KindProbe> {
  const module = await KINDS[name].load()
  if (!module.probe) return { problems: [] }
  return module.probe(ctx).catch((err: unknown) => ({ problems: [`could not be checked: ${err instanceof Error ? err.message : String(err)}`] }))
}

/** Looks at each kind in AUTO_ORDER (reads only, all at once) and picks one for Linux; throws with every kind's problems when none fits. */
export async function chooseKinds(ctx: KindContext<KindInputs>, os: OsType[]): Promise<Choice> {
  const probes = os.includes('Linux') ? await Promise.all(AUTO_ORDER.map(async name => [name, await probeOf(name, ctx)] as const)) : []
  const choice = pickKinds(new Map(probes), os)
  core.info(choice.reason)
  return choice
}

/** What auto takes, from each kind's probe: what is installed first, else the first that fits; none: every kind's problems. Pure. */
export function pickKinds(probes: ReadonlyMap<KindName, KindProbe>, os: OsType[]): Choice {
  const windows: KindUse[] = os.includes('Windows') ? [{ name: FALLBACK_KIND, os: ['Windows'] }] : []
  if (!os.includes('Linux')) return { uses: windows, reason: 'virtual-node-kind auto: Windows virtual nodes come only from the ACI connector.' }
  const probe = (n: KindName): KindProbe => probes.get(n) ?? { problems: ['could not be checked'] }
  const installed = AUTO_ORDER.find(n => probe(n).installed)
  const fits = AUTO_ORDER.find(n => probe(n).problems.length === 0)
  const chosen = installed ?? fits
  if (!chosen)
    throw new Error(
      `virtual-node-kind auto: this cluster meets the prerequisites of no kind of virtual node; nothing was changed. What each needs:\n` +
        AUTO_ORDER.map(
          n =>
            `- ${kindLabel(n)}:\n${probe(n)
              .problems.map(p => `    - ${p}`)
              .join('\n')}`
        ).join('\n')
    )
  const skipped = AUTO_ORDER.slice(0, AUTO_ORDER.indexOf(chosen)).map(n => `${kindLabel(n)} (${probe(n).problems[0]?.split(':')[0] ?? 'not installed'})`)
  const why = installed
    ? `the cluster already has it (${probe(chosen).installed})`
    : `the first in auto's order (add-on, v2 extension, v2 Helm chart, ACI connector) whose prerequisites the cluster meets${skipped.length ? `; not: ${skipped.join('; ')}` : ''}`
  const reason = `virtual-node-kind auto chose ${kindLabel(chosen)} for Linux: ${why}.${windows.length && chosen !== FALLBACK_KIND ? ' Windows nodes come from the ACI connector.' : ''}`
  const uses: KindUse[] = chosen === FALLBACK_KIND ? [{ name: FALLBACK_KIND, os }] : [{ name: chosen, os: ['Linux'] }, ...windows]
  return { uses, reason }
}
