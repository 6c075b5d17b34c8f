// The kinds of virtual node, listed once: each one's name (the virtual-node-kind input), its
// label, the operating systems it serves and its folder (loaded only when a step uses it).
// Which kind serves which OS is decided here and nowhere else. A new kind is a folder under
// virtual-nodes/ and one entry in KINDS.
import type { AddonInputs } from './addon/inputs.js'
import type { ConnectorInputs } from './connector/inputs.js'
import type { CommonInputs, KindContext, KindModule, KindRecord, VirtualNodeKind } from './kind.js'
import type { OsType } from './naming.js'
import type { V2HelmInputs } from './v2/helm-kind.js'
import type { V2Inputs } from './v2/kind.js'

/** Every input any kind reads: the runner's inputs have all of them. */
export type KindInputs = CommonInputs & ConnectorInputs & V2Inputs & V2HelmInputs & AddonInputs

interface KindDefinition {
  label: string
  /** The OS this kind can serve. */
  os: readonly OsType[]
  load(): Promise<KindModule<KindInputs>>
}

/** Every kind, in the order a step drives them: each teardown runs before the connector's, which serves what the others cannot. */
export const KINDS = {
  v2: { label: 'Virtual Nodes v2', os: ['Linux'], load: () => import('./v2/kind.js').then(m => m.v2) },
  'v2-helm': { label: 'Virtual Nodes v2 (Helm chart)', os: ['Linux'], load: () => import('./v2/helm-kind.js').then(m => m.v2Helm) },
  addon: { label: "AKS's virtual-node add-on", os: ['Linux'], load: () => import('./addon/kind.js').then(m => m.addon) },
  connector: { label: 'ACI connector', os: ['Linux', 'Windows'], load: () => import('./connector/kind.js').then(m => m.connector) }
} as const satisfies Record<string, KindDefinition>

export type KindName = keyof typeof KINDS
export const KIND_NAMES = Object.keys(KINDS) as KindName[]
/** Serves every OS the chosen kind does not: Windows virtual nodes come only from the connector. */
export const FALLBACK_KIND: KindName = 'connector'

export function kindLabel(name: string): string {
  return (KINDS as Record<string, KindDefinition>)[name]?.label ?? name
}

/** One kind and the OS it serves in a step; undefined OS: every OS it finds (a teardown not narrowed by os-type). */
export interface KindUse {
  name: KindName
  os?: OsType[]
}

/**
 * Which kind serves which OS: `chosen` for every OS of `os` it serves, the fallback for the
 * rest. Kinds with no OS to serve are left out. `os` undefined (a teardown without os-type):
 * the chosen kind and the fallback, each for every OS it finds.
 */
export function osSplit(chosen: KindName, os: OsType[] | undefined): KindUse[] {
  const serves: readonly OsType[] = KINDS[chosen].os
  const own = os?.filter(o => serves.includes(o))
  const rest = os?.filter(o => !serves.includes(o))
  const uses: KindUse[] = [{ name: chosen, os: own }]
  if (chosen !== FALLBACK_KIND) uses.push({ name: FALLBACK_KIND, os: rest })
  return uses.filter(u => u.os === undefined || u.os.length > 0).sort((a, b) => KIND_NAMES.indexOf(a.name) - KIND_NAMES.indexOf(b.name))
}

/**
 * Which kind serves which OS in a step: an install as the inputs ask. A teardown not told the
 * kind looks for every kind, each for the OS it serves that os-type allows (a remove must find
 * what is installed, whatever installed it); told, that kind and the connector for the rest.
 */
export function kindUses(inputs: {
  command: string
  virtualNodeKind: KindName | 'auto'
  virtualNodeKindGiven: boolean
  osTypes: OsType[]
  osTypesGiven: boolean
}): KindUse[] {
  const os = inputs.command === 'install' || inputs.osTypesGiven ? inputs.osTypes : undefined
  // An install with auto is decided once the cluster is read (choose.ts).
  if (inputs.virtualNodeKind === 'auto' && inputs.command === 'install') return []
  if (inputs.command !== 'install' && (!inputs.virtualNodeKindGiven || inputs.virtualNodeKind === 'auto'))
    return KIND_NAMES.map(name => ({ name, os: os?.filter(o => (KINDS[name].os as readonly OsType[]).includes(o)) })).filter(u => !u.os || u.os.length > 0)
  return osSplit(inputs.virtualNodeKind as KindName, os)
}

/** Loads and makes each kind a step uses; `recordOf` gives each its own record for the post step. */
export async function createKinds(
  uses: KindUse[],
  ctx: KindContext<KindInputs>,
  recordOf: (kind: KindName) => KindRecord<unknown>
): Promise<VirtualNodeKind[]> {
  return Promise.all(
    uses.map(async u => {
      const definition: KindDefinition = KINDS[u.name]
      const { create } = await definition.load()
      // Assigned, not spread: a kind may be a class instance whose methods live on its prototype.
      return Object.assign(create(ctx, u.os ?? [...definition.os], recordOf(u.name)), { name: u.name, label: definition.label })
    })
  )
}
