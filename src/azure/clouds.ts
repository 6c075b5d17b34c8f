// The clouds the runner's az knows and their endpoints, read from az's own files without
// starting az: the three public clouds are built in; any other must be registered
// (`az cloud register`), which az records as one INI section per cloud in `clouds.config`
// in AZURE_CONFIG_DIR, else ~/.azure; the active one is `[cloud] name` in its `config`
// (azure-cli src/azure-cli-core/azure/cli/core/cloud.py: get_clouds, CLOUD_CONFIG_FILE).
import { promises as fs } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

/** Where az keeps its state for processes that do not set AZURE_CONFIG_DIR. */
export function azConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.AZURE_CONFIG_DIR || path.join(os.homedir(), '.azure')
}

/** What the action needs of a cloud: where ARM and Entra ID are, and ARM's token audience. */
export interface CloudEndpoints {
  name: string
  resourceManager: string
  /** Entra ID authority host (az's endpoints.activeDirectory). */
  authority: string
  /** The resource an ARM token is for (az's endpoints.activeDirectoryResourceId). */
  armResource: string
}

/** azure-cli src/azure-cli-core/azure/cli/core/cloud.py: AZURE_PUBLIC_CLOUD, AZURE_US_GOV_CLOUD, AZURE_CHINA_CLOUD. */
export const BUILT_IN_CLOUDS: readonly CloudEndpoints[] = [
  {
    name: 'AzureCloud',
    resourceManager: 'https://management.azure.com',
    authority: 'https://login.microsoftonline.com',
    armResource: 'https://management.core.windows.net/'
  },
  {
    name: 'AzureUSGovernment',
    resourceManager: 'https://management.usgovcloudapi.net',
    authority: 'https://login.microsoftonline.us',
    armResource: 'https://management.core.usgovcloudapi.net/'
  },
  {
    name: 'AzureChinaCloud',
    resourceManager: 'https://management.chinacloudapi.cn',
    authority: 'https://login.chinacloudapi.cn',
    armResource: 'https://management.core.chinacloudapi.cn/'
  }
]

/** The clouds in az's `clouds.config`: one INI section per registered cloud with `endpoint_*` keys (cloud.py get_clouds). */
export function parseCloudsConfig(text: string): CloudEndpoints[] {
  const clouds: CloudEndpoints[] = []
  for (const section of text.split(/^(?=\s*\[)/m)) {
    const name = /^\s*\[([^\]\r\n]+)\]/.exec(section)?.[1]?.trim()
    if (!name) continue
    const key = (k: string): string | undefined => new RegExp(`^\\s*${k}\\s*=\\s*(\\S+)\\s*$`, 'm').exec(section)?.[1]
    const resourceManager = key('endpoint_resource_manager')
    const authority = key('endpoint_active_directory')
    const armResource = key('endpoint_active_directory_resource_id')
    if (resourceManager && authority && armResource) {
      clouds.push({ name, resourceManager: resourceManager.replace(/\/+$/, ''), authority: authority.replace(/\/+$/, ''), armResource })
    }
  }
  return clouds
}

/** The endpoints of cloud `name` (case-insensitive, as az matches it). */
export async function cloudEndpoints(name: string, configDir = azConfigDir()): Promise<CloudEndpoints> {
  const registered = parseCloudsConfig(await fs.readFile(path.join(configDir, 'clouds.config'), 'utf8').catch(() => ''))
  const found = [...BUILT_IN_CLOUDS, ...registered].find(c => c.name.toLowerCase() === name.toLowerCase())
  if (!found)
    throw new Error(
      `The cloud "${name}" is neither a public Azure cloud nor registered with az on this runner (${configDir}); register it with \`az cloud register\` or set environment.`
    )
  return found
}

/** The cloud az has active in `configDir` (`[cloud] name` in its config; AzureCloud when unset). */
export async function activeCloudName(configDir = azConfigDir()): Promise<string> {
  const text = await fs.readFile(path.join(configDir, 'config'), 'utf8').catch(() => '')
  const section = text.split(/^(?=\s*\[)/m).find(s => /^\s*\[cloud\]/.test(s)) ?? ''
  return /^\s*name\s*=\s*(\S+)\s*$/m.exec(section)?.[1] ?? 'AzureCloud'
}

/**
 * Whether the action can sign in to cloud `name` on this runner: a public cloud, or one
 * registered with the endpoints the sign-in needs (the same lookup the sign-in does).
 */
export async function cloudIsKnown(name: string, configDir = azConfigDir()): Promise<boolean> {
  return cloudEndpoints(name, configDir).then(
    () => true,
    () => false
  )
}

/** `East US` -> `eastus`, the form ARM and the old CLI use for regions. */
export function normalizeLocation(location: string): string {
  return location.replace(/\s+/g, '').toLowerCase()
}
