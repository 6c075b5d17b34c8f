import { describe, expect, it } from 'vitest'
import {
  connectorDeploymentName,
  connectorNameProblem,
  connectorNames,
  nodeName,
  releaseName,
  MAX_CONNECTOR_RELEASE
} from '../../src/virtual-nodes/connector/names.js'
import { normalizeLocation } from '../../src/azure/clouds.js'

describe('naming (as az aks install-connector named things)', () => {
  it('matches the 2019 Azure doc "Use Virtual Kubelet with AKS": connector virtual-kubelet in eastus', () => {
    expect(nodeName(releaseName('virtual-kubelet', 'Linux', 'eastus'))).toBe('virtual-kubelet-virtual-kubelet-linux-eastus')
    expect(nodeName(releaseName('virtual-kubelet', 'Windows', 'East US'))).toBe('virtual-kubelet-virtual-kubelet-windows-eastus')
  })

  it('gives each OS its own release, node and namespace', () => {
    const linux = connectorNames('aci-connector', 'Linux', 'westeurope')
    const windows = connectorNames('aci-connector', 'Windows', 'westeurope')
    expect(linux).toEqual({
      os: 'Linux',
      release: 'aci-connector-linux-westeurope',
      node: 'virtual-kubelet-aci-connector-linux-westeurope',
      namespace: 'aci-connector-linux-westeurope'
    })
    expect(windows.namespace).not.toBe(linux.namespace)
  })

  it('normalizes locations', () => {
    expect(normalizeLocation('West US 2')).toBe('westus2')
  })

  it('accepts names whose node name fits a label value, rejects longer ones', () => {
    const location = 'southeastasia'
    const longestOk = 'a'.repeat(MAX_CONNECTOR_RELEASE - '-windows-'.length - location.length)
    expect(connectorNameProblem(longestOk, location)).toBeUndefined()
    expect(nodeName(releaseName(longestOk, 'Windows', location)).length).toBe(63)
    expect(connectorNameProblem(`${longestOk}a`, location)).toMatch(/within 47/)
  })
})

describe('connectorDeploymentName', () => {
  it('is the chart fullname: <release>-virtual-kubelet-azure-aci cut to 63 without a trailing hyphen', () => {
    expect(connectorDeploymentName('aci-connector-linux-eastus')).toBe('aci-connector-linux-eastus-virtual-kubelet-azure-aci')
    // 40 characters: the cut lands right after "-azure-", and the hyphen goes too.
    const release = 'pr-1234567-ephemeral-linux-southeastasia'
    expect(release).toHaveLength(40)
    expect(connectorDeploymentName(release)).toBe(`${release}-virtual-kubelet-azure`)
  })
})
