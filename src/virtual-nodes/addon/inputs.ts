// The inputs AKS's virtual-node add-on reads, beside those every kind reads (kind.ts CommonInputs).

/**
 * The subnet AKS's docs create for the add-on and pass to `az aks enable-addons --addons
 * virtual-node --subnet-name` (MicrosoftDocs/azure-aks-docs articles/aks/virtual-nodes-cli.md:
 * myVirtualNodeSubnet, 10.241.0.0/16).
 */
export const DEFAULT_ADDON_SUBNET = 'myVirtualNodeSubnet'

export interface AddonInputs {
  /** subnet-name: undefined takes the subnet of an add-on already enabled, else DEFAULT_ADDON_SUBNET. */
  subnetName?: string
}
