// Azure clouds: where ARM and Microsoft Entra ID are, without starting az. The three public
// clouds are built in (the endpoints the Azure CLI hard-codes); any other name must be a
// cloud the runner's az has registered, read from az's own files: `clouds.config` (one INI
// section per registered cloud, options `endpoint_<name>`) and `config` (`[cloud] name`,
// the active cloud) in AZURE_CONFIG_DIR, else ~/.azure
// (azure-cli src/azure-cli-core/azure/cli/core/cloud.py: get_clouds, get_active_cloud_name).
import { promises as fs } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export interface Cloud {
  /** az's name for it: AzureCloud, AzureUSGovernment, AzureChinaCloud, or a registered name. */
  name: string
  /** ARM, e.g. https://management.azure.com */
  resourceManager: string
  /** The Entra ID authority host, e.g. https://login.microsoftonline.com (an ADFS authority ends in /adfs). */
  activeDirectory: string
  /** The resource ARM tokens are issued for, e.g. https://management.core.windows.net/ */
  activeDirectoryResourceId: string
}

/** azure-cli cloud.py AZURE_PUBLIC_CLOUD, AZURE_US_GOV_CLOUD, AZURE_CHINA_CLOUD. */
export const PUBLIC_CLOUDS: readonly Cloud[] = [
  { name: 'AzureCloud', resourceManager: 'https://management.azure.com', activeDirectory: 'https://login.microsoftonline.com', activeDirectoryResourceId: 'https://management.core.windows.net/' },
  { name: 'AzureUSGovernment', resourceManager: 'https://management.usgovcloudapi.net', activeDirectory: 'https://login.microsoftonline.us', activeDirectoryResourceId: 'https://management.core.usgovcloudapi.net/' },
  { name: 'AzureChinaCloud', resourceManager: 'https://management.chinacloudapi.cn', activeDirectory: 'https://login.chinacloudapi.cn', activeDirectoryResourceId: 'https://management.core.chinacloudapi.cn/' }
]

/** Where az keeps its state for processes that do not set AZURE_CONFIG_DIR. */
export function azConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.AZURE_CONFIG_DIR || path.join(os.homedir(), '.azure')
}

/** INI sections as az's configparser reads them: `[section]` then `key = value` lines. */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>()
  let current: Map<string, string> | undefined
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (!line || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header) {
      current = new Map()
      sections.set(header[1]!.trim(), current)
      continue
    }
    const eq = line.search(/[=:]/)
    if (current && eq > 0) current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim())
  }
  return sections
}

/** The clouds registered in a `clouds.config` text that have the endpoints the action needs. */
export function parseCloudsConfig(text: string): Cloud[] {
  const clouds: Cloud[] = []
  for (const [name, options] of parseIni(text)) {
    const resourceManager = options.get('endpoint_resource_manager')
    const activeDirectory = options.get('endpoint_active_directory')
    const activeDirectoryResourceId = options.get('endpoint_active_directory_resource_id')
    if (resourceManager && activeDirectory && activeDirectoryResourceId) {
      clouds.push({ name, resourceManager: resourceManager.replace(/\/+$/, ''), activeDirectory: activeDirectory.replace(/\/+$/, ''), activeDirectoryResourceId })
    }
  }
  return clouds
}

/** The clouds the runner's az knows: the public ones and the registered ones (registered settings win, as in az). */
export async function knownClouds(configDir = azConfigDir()): Promise<Cloud[]> {
  const text = await fs.readFile(path.join(configDir, 'clouds.config'), 'utf8').catch(() => '')
  const registered = parseCloudsConfig(text)
  const names = new Set(registered.map(c => c.name.toLowerCase()))
  return [...registered, ...PUBLIC_CLOUDS.filter(c => !names.has(c.name.toLowerCase()))]
}

/** az matches cloud names case-insensitively (cloud.py _get_cloud_name). */
export function findCloud(clouds: readonly Cloud[], name: string): Cloud | undefined {
  return clouds.find(c => c.name.toLowerCase() === name.toLowerCase())
}

/** The cloud the runner's az session is in: `[cloud] name` in az's config (AZURE_CLOUD_NAME overrides, as knack's config does), else AzureCloud. */
export async function activeCloudName(configDir = azConfigDir(), env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.AZURE_CLOUD_NAME) return env.AZURE_CLOUD_NAME
  const text = await fs.readFile(path.join(configDir, 'config'), 'utf8').catch(() => '')
  return parseIni(text).get('cloud')?.get('name') || 'AzureCloud'
}
