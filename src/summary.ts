// Reporting: phase timing with folded log groups, and the job summary a user reads
// after the run (what was installed or removed, node status, samples, time per phase).
import * as core from '@actions/core'
import type { RemovalReport } from './connector.js'
import type { NodeStatus } from './readiness.js'
import type { SampleStatus } from './samples.js'
import type { SweepItem } from './sweep.js'
import type { Command } from './inputs.js'

export interface PhaseTiming {
  name: string
  ms: number
  ok: boolean
}

export class PhaseClock {
  readonly phases: PhaseTiming[] = []

  /** Runs `fn` inside a folded log group and records how long it took. */
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now()
    let ok = false
    try {
      const result = await core.group(name, fn)
      ok = true
      return result
    } finally {
      this.phases.push({ name, ms: Date.now() - started, ok })
    }
  }
}

export interface RunReport {
  command: Command
  cluster: string
  signedInAs?: string
  chart?: string
  nodes: NodeStatus[]
  samples: SampleStatus[]
  removals: RemovalReport[]
  /** command: remove reached the removal itself (a failure before it changed nothing). */
  removalStarted?: boolean
  /** command: sweep: every item found and what became of it. */
  sweep?: SweepItem[]
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

/** Markdown for the job summary; built as text so it can be tested without the runner. */
export function renderSummary(r: RunReport): string {
  const lines: string[] = []
  const verb = r.command
  const status = r.error ? 'failed' : 'succeeded'
  lines.push(`## Virtual Kubelet ACI connector: ${verb} ${status}`, '')
  lines.push(`Cluster **${r.cluster}**${r.signedInAs ? `, signed in as ${r.signedInAs}` : ''}${r.chart ? `, chart \`${r.chart}\`` : ''}.`, '')
  if (r.error) lines.push('> [!CAUTION]', ...r.error.split('\n').map(l => `> ${l}`), '')
  if (r.leftBehind) lines.push('> [!WARNING]', ...r.leftBehind.split('\n').map(l => `> ${l}`), '')
  if (r.nodes.length > 0) {
    lines.push('| OS | Virtual node | Ready | Waited | Taints |', '|---|---|---|---|---|')
    for (const n of r.nodes)
      lines.push(
        `| ${n.os} | \`${n.node}\` | ${n.ready ? '✅ Ready' : '❌ not Ready'} | ${seconds(n.waitedMs)} | ${n.taints.map(t => `\`${t}\``).join(' ') || '-'} |`
      )
    lines.push('')
  }
  if (r.samples.length > 0) {
    lines.push('| Sample | Namespace | Pod | IP | Node |', '|---|---|---|---|---|')
    for (const s of r.samples) for (const p of s.pods) lines.push(`| ${s.name} | ${s.namespace} | ${p.name} | ${p.ip || '-'} | \`${p.node}\` |`)
    lines.push('')
  }
  if (r.removals.length > 0) {
    lines.push('| OS | Release | Release removed | Node removed | Pods drained | Container groups deleted after |', '|---|---|---|---|---|---|')
    for (const x of r.removals) {
      const drained = `${x.podsEvicted}${x.podsForced.length ? ` (${x.podsForced.length} forced)` : ''}`
      const groups =
        x.containerGroupsDeleted === undefined
          ? 'not checked'
          : x.containerGroupsDeleted.length === 0
            ? 'none left'
            : x.containerGroupsDeleted.map(g => `\`${g}\``).join(' ')
      lines.push(
        `| ${x.os} | \`${x.release}\` | ${x.releaseRemoved ? 'yes' : 'was not there'} | ${x.nodeRemoved ? 'yes' : 'was not there'} | ${drained} | ${groups} |`
      )
    }
    lines.push('')
  }
  if (r.sweep) {
    if (r.sweep.length === 0) lines.push('Nothing to sweep: no matching connector, no dead virtual node, no orphaned container group.', '')
    else {
      lines.push('| What | Name | Age | Detail | Outcome |', '|---|---|---|---|---|')
      for (const i of r.sweep)
        lines.push(
          `| ${i.kind} | \`${i.name}\` | ${i.ageMs === undefined ? '-' : ageText(i.ageMs)} | ${i.detail} | ${i.outcome === 'failed' ? `❌ failed: ${(i.error ?? '').split('\n')[0]}` : i.outcome} |`
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
