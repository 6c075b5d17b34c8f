// Reporting: phase timing with folded log groups, and the job summary a user reads
// after the run (what was installed or removed, node status, samples, time per phase).
import * as core from '@actions/core'
import { roleDeleteCommand, type GrantedRole } from '../azure/role-assignments.js'
import { kindLabel } from '../virtual-nodes/kinds.js'
import type { NodeStatus, RemovalReport, TeardownItem } from '../virtual-nodes/report.js'
import type { SampleStatus } from '../virtual-nodes/samples.js'
import type { Command } from '../virtual-nodes/kind.js'

export interface PhaseTiming {
  name: string
  ms: number
  ok: boolean
}

export class PhaseClock {
  readonly phases: PhaseTiming[] = []
  /** The phases running now (a cancel names them). */
  readonly running = new Set<string>()

  /** Runs `fn` inside a folded log group and records how long it took. */
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now()
    let ok = false
    this.running.add(name)
    try {
      const result = await core.group(name, fn)
      ok = true
      return result
    } finally {
      this.running.delete(name)
      this.phases.push({ name, ms: Date.now() - started, ok })
    }
  }
}

export interface RunReport {
  command: Command
  /** The kinds of virtual node the step used, by label (the title names them). */
  kinds?: string[]
  cluster: string
  signedInAs?: string
  chart?: string
  nodes: NodeStatus[]
  samples: SampleStatus[]
  removals: RemovalReport[]
  /** Facts the user should know about what outlives the step. */
  notes?: string[]
  /** Role assignments grant-connector-role made (or found) on this run. */
  roles?: GrantedRole[]
  /** command: remove reached the removal itself (a failure before it changed nothing). */
  removalStarted?: boolean
  /** remove, cleanup, sweep: every item found and what became of it (undefined before the teardown looked). */
  teardown?: TeardownItem[]
  /** A dry run: the teardown items say what would go. */
  dryRun?: boolean
  phases: PhaseTiming[]
  error?: string
  /** What stays in the cluster after a failure, and how to deal with it. */
  leftBehind?: string
}

/** An age as people say it: 3 d 4 h, 5 h 10 min, 12 min. */
export function ageText(ms: number): string {
  const min = Math.floor(ms / 60_000)
  const [d, h, m] = [Math.floor(min / 1440), Math.floor((min % 1440) / 60), min % 60]
  return d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : `${m} min`
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

/** The summary's title: the connector's own name when it is the only kind, else every kind. */
function summaryTitle(kinds: string[]): string {
  const others = kinds.filter(k => k !== kindLabel('connector'))
  if (others.length === 0) return 'Virtual Kubelet ACI connector'
  return `AKS virtual nodes (${[...others, ...(kinds.length > others.length ? ['the ACI connector'] : [])].join(' and ')})`
}

/** Markdown for the job summary; built as text so it can be tested without the runner. */
export function renderSummary(r: RunReport): string {
  const lines: string[] = []
  const verb = r.command
  const status = r.error ? 'failed' : 'succeeded'
  const title = summaryTitle(r.kinds ?? [])
  lines.push(`## ${title}: ${verb} ${status}`, '')
  lines.push(`Cluster **${r.cluster}**${r.signedInAs ? `, signed in as ${r.signedInAs}` : ''}${r.chart ? `, chart \`${r.chart}\`` : ''}.`, '')
  if (r.error) lines.push('> [!CAUTION]', ...r.error.split('\n').map(l => `> ${l}`), '')
  if (r.leftBehind) lines.push('> [!WARNING]', ...r.leftBehind.split('\n').map(l => `> ${l}`), '')
  if (r.nodes.length > 0) {
    lines.push('| OS | Kind | Virtual node | Ready | Waited | Taints |', '|---|---|---|---|---|---|')
    for (const n of r.nodes)
      lines.push(
        `| ${n.os} | ${kindLabel(n.kind ?? 'connector')} | \`${n.node}\` | ${n.ready ? '✅ Ready' : '❌ not Ready'} | ${seconds(n.waitedMs)} | ${n.taints.map(t => `\`${t}\``).join(' ') || '-'} |`
      )
    lines.push('')
  }
  if (r.roles && r.roles.length > 0) {
    lines.push('| Role | Scope | Principal | By this run | Stays after a remove |', '|---|---|---|---|---|')
    for (const g of r.roles)
      lines.push(
        `| ${g.role} | \`${g.scope}\` | \`${g.principalId}\` | ${g.outcome === 'created' ? 'assigned (grant-connector-role)' : 'was already assigned'} | ${g.removedWith ? `no: it goes with ${g.removedWith}` : `yes; delete with \`${roleDeleteCommand(g)}\``} |`
      )
    lines.push('')
  }
  if (r.samples.length > 0) {
    lines.push('| Sample | Namespace | Pod | IP | Node |', '|---|---|---|---|---|')
    for (const s of r.samples) for (const p of s.pods) lines.push(`| ${s.name} | ${s.namespace} | ${p.name} | ${p.ip || '-'} | \`${p.node}\` |`)
    lines.push('')
  }
  if (r.removals.length > 0) {
    lines.push('| OS | Installed as | Removed | Node removed | Pods drained | Container groups deleted after |', '|---|---|---|---|---|---|')
    for (const x of r.removals) {
      const drained = `${x.podsEvicted}${x.podsForced.length ? ` (${x.podsForced.length} forced)` : ''}`
      const groups =
        x.containerGroupsDeleted === undefined
          ? 'not checked'
          : x.containerGroupsDeleted.length === 0
            ? 'none left'
            : x.containerGroupsDeleted.map(g => `\`${g}\``).join(' ')
      lines.push(
        `| ${x.os} | \`${x.installedAs}\` | ${x.installRemoved ? 'yes' : 'was not there'} | ${x.nodeRemoved ? 'yes' : 'was not there'} | ${drained} | ${groups} |`
      )
    }
    lines.push('')
  }
  for (const n of r.notes ?? []) lines.push('> [!NOTE]', `> ${n}`, '')
  if (r.dryRun) lines.push('> [!NOTE]', '> Dry run: nothing was changed. The table lists what a real run would remove.', '')
  if (r.teardown) {
    if (r.teardown.length === 0)
      lines.push(
        r.command === 'sweep'
          ? 'Nothing to sweep: no matching connector, no dead virtual node, no orphaned container group.'
          : 'Nothing to remove: no connector release or virtual node of this connector is installed.',
        ''
      )
    else {
      lines.push('| What | Name | Age | Detail | Outcome |', '|---|---|---|---|---|')
      for (const i of r.teardown)
        lines.push(
          `| ${i.kind} | \`${i.name}\` | ${i.ageMs === undefined ? '-' : ageText(i.ageMs)} | ${i.detail.replace(/\|/g, '\\|')} | ${i.outcome === 'failed' ? `❌ failed: ${(i.error ?? '').split('\n')[0]}` : i.outcome} |`
        )
      lines.push('')
    }
  }
  if (r.phases.length > 0) {
    lines.push('| Phase | Time |', '|---|---|')
    for (const p of r.phases) lines.push(`| ${p.ok ? '' : '❌ '}${p.name} | ${seconds(p.ms)} |`)
    const total = r.phases.reduce((s, p) => s + p.ms, 0)
    lines.push(`| **Total** | **${seconds(total)}** |`, '')
  }
  return lines.join('\n')
}

export async function writeSummary(r: RunReport): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  await core.summary.addRaw(renderSummary(r), true).write()
}
