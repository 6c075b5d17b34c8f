// What a run found and did, in the terms every kind of virtual node reports it: the nodes
// it waited for, the removals it made, and each item a teardown found with its outcome.
// The runner renders these (summary.ts, outputs.ts); the kinds only fill them in.
import * as core from '@actions/core'

/** One thing a teardown (remove, cleanup, sweep) found, and what became of it. */
export interface TeardownItem {
  kind: 'release' | 'extension' | 'add-on' | 'node' | 'pod' | 'sample' | 'container group' | 'role assignment'
  name: string
  ageMs?: number
  /** Why it is taken (or left), as the log says it. */
  detail: string
  /** left: not provably this action's (listed, never touched); kept: stays by design (a role assignment). */
  outcome: 'would remove' | 'removed' | 'failed' | 'left' | 'kept'
  error?: string
}

/** A virtual node an install waited for. */
export interface NodeStatus {
  os: string
  /** The name of the kind of virtual node that serves it (kinds.ts). */
  kind?: string
  node: string
  ready: boolean
  waitedMs: number
  labels: Record<string, string>
  taints: string[]
}

/** One virtual node a removal took, with what installed it (a Helm release, an extension, an add-on). */
export interface RemovalReport {
  os: string
  node: string
  /** What installed the node, as the summary names it (the release's name, say). */
  installedAs: string
  /** What installed it was removed now (false: it was not there). */
  installRemoved: boolean
  nodeRemoved: boolean
  podsEvicted: number
  podsForced: string[]
  /** Container groups tagged for the node that were still in ACI after the removal; undefined when not checked. */
  containerGroupsDeleted?: string[]
}

/** Logs each item as one line: what, name, outcome, why. */
export function logItems(items: TeardownItem[]): void {
  for (const item of items)
    core.info(
      `${item.outcome === 'failed' ? '✗' : '•'} ${item.kind} ${item.name}: ${item.outcome}${item.error ? ` (${item.error.split('\n')[0]})` : ''} - ${item.detail}`
    )
}

/** The items that failed, as one error that says how to finish; undefined when none did. */
export function failedItemsError(items: TeardownItem[], rerun: string): Error | undefined {
  const failed = items.filter(i => i.outcome === 'failed')
  if (failed.length === 0) return undefined
  return new Error(
    `Could not remove ${failed.length} item(s); what is listed may still be there (container groups still bill):\n` +
      `${failed.map(i => `- ${i.kind} ${i.name}: ${(i.error ?? '').split('\n')[0]}`).join('\n')}\n${rerun}`
  )
}

/** The keys of the swept output for what installs virtual nodes, by teardown item kind. */
const INSTALL_OUTPUT_KEYS = { release: 'releases', extension: 'extensions', 'add-on': 'addons' } as const
export type InstallItemKind = keyof typeof INSTALL_OUTPUT_KEYS

/**
 * The swept output: what went (or would), and what was left as not attributable. `installs`
 * are the kinds of installation the teardown looked for (each kind of virtual node says its
 * own), each listed even when none was found.
 */
export function teardownOutput(items: TeardownItem[], dryRun: boolean, installs: InstallItemKind[]): string {
  const taken = (kind: TeardownItem['kind']): string[] =>
    items
      .filter(i => i.kind === kind && (i.outcome === 'removed' || i.outcome === 'would remove'))
      .map(i => i.name)
      .sort()
  const installKinds = (Object.keys(INSTALL_OUTPUT_KEYS) as InstallItemKind[]).filter(k => installs.includes(k))
  return JSON.stringify({
    dryRun,
    ...Object.fromEntries(installKinds.map(k => [INSTALL_OUTPUT_KEYS[k], taken(k)])),
    nodes: taken('node'),
    containerGroups: taken('container group'),
    notAttributable: items
      .filter(i => i.kind === 'container group' && i.outcome === 'left')
      .map(i => i.name)
      .sort()
  })
}
