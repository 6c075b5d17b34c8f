// Connectors that several runs use at once. A connector's release name is fixed by its
// connector name, OS and region (names.ts), so per-PR jobs on one cluster with the default
// connector-name install the same release: the first creates it, the others find it. Each
// run records its use (installs.ts); a teardown keeps a release another live run still uses,
// and the last user's cleanup takes one a run that cleans up made.
import { forgetInstall, useVerdict, readInstalls, recordUse, installKey, currentRun } from '../installs.js'
import type { Kube } from '../../kubernetes/kube.js'
import type { TeardownItem } from '../report.js'
import type { ConnectorNames } from './names.js'
import type { RemovalTarget } from './targets.js'

export const CONNECTOR_KIND = 'connector'

/**
 * Records this run's use, before helm runs, of each connector it creates (`created`) and of
 * each it reuses that a run with cleanup made (another job's, still going perhaps); returns
 * the latter: this run's cleanup judges those too (it may be their last user). A connector
 * that was there otherwise (made by a run without cleanup, or by hand) is no run's to take
 * at its end, so no use of it is recorded.
 */
export async function recordConnectorUse(kube: Kube, connectors: ConnectorNames[], created: ConnectorNames[], cleanup: boolean): Promise<ConnectorNames[]> {
  const installs = await readInstalls(kube)
  const run = { run: currentRun(), cleanup }
  const shared = connectors.filter(c => !created.includes(c) && installs.get(installKey(CONNECTOR_KIND, c.release))?.removeWhenUnused === true)
  for (const c of [...created, ...shared]) await recordUse(kube, { kind: CONNECTOR_KIND, name: c.release }, run, { created: created.includes(c) })
  return shared
}

/**
 * The targets this teardown may take, and the releases it keeps because another live run
 * uses them (or, for a cleanup, because no run that cleans up made them). A release with no
 * record (installed before runs were recorded, or by hand) is judged as before: by its name.
 */
export async function keepShared(
  kube: Kube,
  targets: RemovalTarget[],
  op: 'remove' | 'sweep' | 'cleanup'
): Promise<{ targets: RemovalTarget[]; kept: TeardownItem[] }> {
  const installs = await readInstalls(kube)
  const taken: RemovalTarget[] = []
  const kept: TeardownItem[] = []
  for (const t of targets) {
    const record = t.release ? installs.get(installKey(CONNECTOR_KIND, t.names.release)) : undefined
    const verdict = record ? useVerdict(record, op) : { take: true as const }
    if (verdict.take) taken.push(t)
    else kept.push({ kind: 'release', name: `${t.names.helmNamespace ?? 'default'}/${t.names.release}`, detail: verdict.why, outcome: 'kept' })
  }
  return { targets: taken, kept }
}

/** Drops the records of the releases a teardown removed. */
export async function forgetRemoved(kube: Kube, items: TeardownItem[]): Promise<void> {
  for (const i of items) if (i.kind === 'release' && i.outcome === 'removed') await forgetInstall(kube, CONNECTOR_KIND, i.name.slice(i.name.indexOf('/') + 1))
}
