// The inputs the connector reads, beside those every kind reads (kind.ts CommonInputs).
import type { SignIn } from '../../azure/azure-login.js'

/** The chart an install uses by default: the azure-aci project's published 1.6.4 release. */
export const DEFAULT_CHART_URL = 'https://github.com/virtual-kubelet/azure-aci/raw/gh-pages/charts/virtual-kubelet-azure-aci-1.6.4.tgz'
/**
 * Its SHA-256, pinned: the file at that path on the gh-pages branch of virtual-kubelet/azure-aci
 * (commit 4e43214443024372f8bd6804be05718f312ffa71, 5993 bytes) hashes to it, and that branch's
 * charts/index.yaml lists virtual-kubelet-azure-aci 1.6.4 with this digest. The default chart
 * is checked against it like a chart pinned with chart-sha256.
 */
export const DEFAULT_CHART_SHA256 = '10461acdb8c730bf45504257e182d7503649b0126442f1778ea6a768a06e6f81'

/** What the connector runs as: `auto` is resolved by the inputs to one of the others. */
export type ConnectorIdentity = 'auto' | 'service-principal' | 'managed'

/** The inputs the connector reads, beside the common ones. */
export interface ConnectorInputs {
  /** A name (install, remove) or a glob over names (sweep). */
  connectorName: string
  /** Normalized region; undefined: the cluster's. */
  location?: string
  aciResourceGroup?: string
  chartUrl: string
  /** The chart's SHA-256, checked before helm sees it. */
  chartSha256?: string
  imageTag?: string
  /** The sign-in: the connector may run as its service principal. */
  signIn: SignIn
  connectorIdentity: ConnectorIdentity
  connectorClientId?: string
  connectorClientSecret?: string
}
