// The inputs the connector reads, beside those every kind reads (kind.ts CommonInputs).
import type { SignIn } from '../../azure/azure-login.js'

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
