// Names of everything the connector creates, kept as the old `az aks install-connector`
// made them so that users migrating from it find their releases and nodes where they
// expect them (Azure CLI 2.0.21-2.11, azure-cli `src/command_modules/azure-cli-acs/azure/cli/command_modules/acs/custom.py`,
// k8s_install_connector: release `<connector-name>-<linux|windows>-<location>`, node `virtual-kubelet-<release>`).

import { normalizeLocation } from '../../azure/clouds.js'
import type { OsType } from '../naming.js'

/** Helm keeps the connector's release records here, as the old CLI did (the chart makes its own namespace). */
export const RELEASE_NAMESPACE = 'default'
/**
 * Release statuses an install takes away and installs afresh (an interrupted first install,
 * an interrupted uninstall): a run that finds one creates the connector, so its cleanup removes it.
 */
export const REINSTALLED_STATUSES = ['pending-install', 'uninstalling']

/** Helm's own limit on release names. */
export const MAX_RELEASE_NAME = 53
/** The node name is also the value of the `kubernetes.io/hostname` label: 63 at most. */
export const MAX_LABEL_VALUE = 63
/** `virtual-kubelet-` is prepended to the release to make the node name. */
export const NODE_NAME_PREFIX = 'virtual-kubelet-'
/** The longest release whose node name is still a valid label value. */
export const MAX_CONNECTOR_RELEASE = MAX_LABEL_VALUE - NODE_NAME_PREFIX.length

/** The old CLI's check for --connector-name. */
export const CONNECTOR_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/

/** `<connector>-<linux|windows>-<location>`: the Helm release of one OS. */
export function releaseName(connector: string, os: OsType, location: string): string {
  return `${connector}-${os.toLowerCase()}-${normalizeLocation(location)}`
}

/** `virtual-kubelet-<release>`: the virtual node the connector registers. */
export function nodeName(release: string): string {
  return `${NODE_NAME_PREFIX}${release}`
}

/**
 * The namespace the chart's templated Namespace object gets. It must differ per
 * release: two releases with the same `namespace` value conflict (Helm will not adopt a
 * Namespace owned by another release), so `Both` would fail on the second install.
 * The release name is unique per OS and location and is a valid namespace name.
 */
export function connectorNamespace(release: string): string {
  return release
}

export interface ConnectorNames {
  os: OsType
  release: string
  node: string
  namespace: string
  /** Where Helm keeps the release record, when not the action's own (a sweep finds releases anywhere). */
  helmNamespace?: string
}

export function connectorNames(connector: string, os: OsType, location: string): ConnectorNames {
  const release = releaseName(connector, os, location)
  return { os, release, node: nodeName(release), namespace: connectorNamespace(release) }
}

/**
 * Why a connector name cannot be used in this location, or undefined when it can.
 * The longest derived name is the Windows release, so that one is checked.
 */
export function connectorNameProblem(connector: string, location: string): string | undefined {
  if (!CONNECTOR_NAME_PATTERN.test(connector)) {
    return 'it must be lower-case letters, digits and hyphens, starting and ending with a letter or digit'
  }
  const longest = releaseName(connector, 'Windows', location)
  if (longest.length > MAX_CONNECTOR_RELEASE) {
    return (
      `the derived release name "${longest}" has ${longest.length} characters; with the node name ` +
      `"${nodeName(longest)}" it must stay within ${MAX_CONNECTOR_RELEASE} (node names are label values of ` +
      `at most ${MAX_LABEL_VALUE}). Use a connector name of at most ` +
      `${Math.max(1, connector.length - (longest.length - MAX_CONNECTOR_RELEASE))} characters here`
    )
  }
  return undefined
}

/**
 * The chart's Deployment (and container) name: its `vk.fullname`, `<release>-<chart name>`
 * cut to 63 characters without a trailing hyphen
 * (https://github.com/virtual-kubelet/azure-aci/blob/v1.6.4/charts/virtual-kubelet/templates/_helpers.tpl).
 */
export function connectorDeploymentName(release: string): string {
  return `${release}-virtual-kubelet-azure-aci`.slice(0, 63).replace(/-+$/, '')
}
