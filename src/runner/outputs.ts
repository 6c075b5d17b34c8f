// The step's outputs, every one named in action.yml, and the only place that sets them.
// Each is published as soon as its value is known (not at the end), so a later step with
// `if: always()` or `if: cancelled()` still gets the kubeconfig and tool paths when a
// later phase fails or the job is cancelled.
import * as core from '@actions/core'
import type { ConnectorNames } from '../virtual-nodes/naming.js'

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

/** The release and node names of the connectors a command acts on; per-OS node names only for an install. */
export function connectorOutputs(connectors: ConnectorNames[], install: boolean): Outputs {
  if (connectors.length === 0) return {}
  const perOs: Outputs = install ? Object.fromEntries(connectors.map(c => [`${c.os.toLowerCase()}-node-name`, c.node])) : {}
  return { 'release-names': JSON.stringify(connectors.map(c => c.release)), 'node-names': JSON.stringify(connectors.map(c => c.node)), ...perOs }
}
