// Which clouds the runner's az knows, without starting az: the three public clouds are
// built in; any other name must be registered (`az cloud register`), which az records as
// one INI section per cloud in `clouds.config` in AZURE_CONFIG_DIR, else ~/.azure
// (azure-cli src/azure-cli-core/azure/cli/core/cloud.py: get_clouds, CLOUD_CONFIG_FILE).
import { promises as fs } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

/** azure-cli cloud.py AZURE_PUBLIC_CLOUD, AZURE_US_GOV_CLOUD, AZURE_CHINA_CLOUD. */
export const PUBLIC_CLOUD_NAMES: readonly string[] = ['AzureCloud', 'AzureUSGovernment', 'AzureChinaCloud']

/** Where az keeps its state for processes that do not set AZURE_CONFIG_DIR. */
export function azConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.AZURE_CONFIG_DIR || path.join(os.homedir(), '.azure')
}

/** The cloud names in a `clouds.config` text: its `[section]` headers. */
export function registeredCloudNames(cloudsConfig: string): string[] {
  return [...cloudsConfig.matchAll(/^\s*\[([^\]\r\n]+)\]\s*$/gm)].map(m => m[1]!.trim())
}

/** Whether az on this runner knows `name`; az matches cloud names case-insensitively (cloud.py _get_cloud_name). */
export async function cloudIsKnown(name: string, configDir = azConfigDir()): Promise<boolean> {
  const text = await fs.readFile(path.join(configDir, 'clouds.config'), 'utf8').catch(() => '')
  return [...PUBLIC_CLOUD_NAMES, ...registeredCloudNames(text)].some(n => n.toLowerCase() === name.toLowerCase())
}
