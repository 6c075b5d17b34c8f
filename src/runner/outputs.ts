// The step's outputs, every one named in action.yml, and the only place that sets them.
// Each is published as soon as its value is known (not at the end), so a later step with
// `if: always()` or `if: cancelled()` still gets the kubeconfig and tool paths when a
// later phase fails or the job is cancelled.
import * as core from '@actions/core'

/** Every output action.yml declares (a unit test keeps the two in step). */
export const OUTPUT_NAMES = [
  'node-names',
  'linux-node-name',
  'windows-node-name',
  'release-names',
  'kubeconfig-path',
  'sample-pod-ips',
  'az-path',
  'kubectl-path',
  'kubelogin-path',
  'helm-path',
  'swept',
  'placement',
  'nodes'
] as const

export type Outputs = Partial<Record<(typeof OUTPUT_NAMES)[number], string | undefined>>

/** Sets the given outputs; undefined values are left unset. */
export function publishOutputs(values: Outputs): void {
  for (const [name, value] of Object.entries(values)) if (value !== undefined) core.setOutput(name, value)
}

/**
 * The node-names and release-names outputs for the virtual nodes a command acts on (a Helm
 * release only where one serves the node, each once); the per-OS node names only for an install.
 */
export function nodeOutputs(nodes: Array<{ os: string; node: string; release?: string }>, install: boolean): Outputs {
  if (nodes.length === 0) return {}
  // Each release once: one release may serve several nodes (v2's chart, replicaCount of them).
  const releases = [...new Set(nodes.flatMap(n => (n.release ? [n.release] : [])))]
  // The first node of each OS (a v2 install may make several; node-names has them all).
  const perOs: Outputs = install ? Object.fromEntries([...nodes].reverse().map(n => [`${n.os.toLowerCase()}-node-name`, n.node])) : {}
  return { ...(releases.length ? { 'release-names': JSON.stringify(releases) } : {}), 'node-names': JSON.stringify(nodes.map(n => n.node)), ...perOs }
}
