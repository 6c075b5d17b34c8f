// Where the azure-aci connector runs (the ACI connector kind, and AKS's virtual-node add-on,
// which runs the same program): it accepts only the regions in its own list and exits at
// start for any other, so the pod crash-loops (https://github.com/virtual-kubelet/azure-aci/blob/v1.6.4/pkg/provider/aci.go,
// validAciRegions and "Region ... is invalid"). Checked before anything is installed.
import { normalizeLocation } from '../azure/clouds.js'

/** azure-aci v1.6.4 pkg/provider/aci.go validAciRegions, in its order. */
export const CONNECTOR_REGIONS: readonly string[] = [
  'australiacentral',
  'australiacentral2',
  'australiaeast',
  'australiasoutheast',
  'brazilsouth',
  'canadacentral',
  'canadaeast',
  'centralindia',
  'centralus',
  'centraluseuap',
  'chinaeast2',
  'chinaeast3',
  'chinanorth3',
  'eastasia',
  'eastus',
  'eastus2',
  'eastus2euap',
  'francecentral',
  'francesouth',
  'germanynorth',
  'germanywestcentral',
  'japaneast',
  'japanwest',
  'jioindiawest',
  'israelcentral',
  'italynorth',
  'koreacentral',
  'koreasouth',
  'northcentralus',
  'northeurope',
  'norwayeast',
  'norwaywest',
  'polandcentral',
  'qatarcentral',
  'southafricanorth',
  'southafricawest',
  'southcentralus',
  'southindia',
  'southeastasia',
  'swedencentral',
  'swedensouth',
  'switzerlandnorth',
  'switzerlandwest',
  'uaenorth',
  'uksouth',
  'ukwest',
  'westcentralus',
  'westeurope',
  'westindia',
  'westus',
  'westus2',
  'westus3',
  'usgovvirginia',
  'usgovarizona'
]

/** Why the connector would refuse `location` (display or normalized name), or undefined. */
export function regionProblem(location: string): string | undefined {
  if (CONNECTOR_REGIONS.includes(normalizeLocation(location))) return undefined
  return `the azure-aci connector runs only in the regions where ACI is offered (${CONNECTOR_REGIONS.join(', ')}); it would exit at start for "${location}". Set location to one of them (the container groups go there; the cluster may be elsewhere)`
}
