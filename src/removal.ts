// The removal sequence, shared by `command: remove` and the post step's cleanup: the
// samples first (their pods are container groups billing in ACI), then each connector in
// parallel (drain, helm uninstall, delete the node; connector.ts removeConnector).
import * as core from '@actions/core'
import type { ArmClient } from './arm.js'
import { settleAll } from './async.js'
import { removeConnector, type HelmContext } from './connector.js'
import type { Kube } from './kube.js'
import type { ConnectorNames } from './naming.js'
import { deleteSample } from './samples.js'
import type { RunReport } from './summary.js'

/** Samples first, then each connector (in parallel); shared by `command: remove` and the post step. */
export async function removeAll(
  kube: Kube,
  helmCtx: HelmContext,
  connectors: ConnectorNames[],
  samplesNamespace: string,
  timeoutMs: number,
  aciResourceGroup: string,
  /** With ARM, a drain ends as soon as ACI has let the pods' container groups go. */
  arm?: ArmClient
): Promise<RunReport['removals']> {
  for (const c of connectors) {
    if (await deleteSample(kube, c.os, samplesNamespace)) core.info(`Deleted sample for ${c.os} in ${samplesNamespace}`)
  }
  const removals = await settleAll(connectors.map(c => removeConnector(kube, helmCtx, c, timeoutMs, aciResourceGroup, arm)))
  for (const r of removals) {
    core.info(
      r.releaseRemoved || r.nodeRemoved
        ? `${r.os}: release ${r.release} ${r.releaseRemoved ? 'uninstalled' : 'was not there'}, node ${r.node} ${r.nodeRemoved ? 'deleted' : 'was not there'}`
        : `${r.os}: nothing to remove (release ${r.release} and node ${r.node} are not there)`
    )
  }
  return removals
}
