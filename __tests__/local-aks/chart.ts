// Packages the chart double (chart/virtual-kubelet-azure-aci) with the real
// `helm package`, so the action installs a .tgz exactly like the one published
// on gh-pages: same file name, same chart name and version.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CHART_NAME = 'virtual-kubelet-azure-aci'
export const CHART_VERSION = '1.6.4'

/** Source folder of the chart double. */
export const chartSourceDir = join(dirname(fileURLToPath(import.meta.url)), 'chart', CHART_NAME)

export interface PackagedChart {
  /** Absolute path of virtual-kubelet-azure-aci-<version>.tgz */
  path: string
  version: string
  /** Hex SHA-256 of the .tgz */
  sha256: string
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // Bounded: a stuck helm must not hang the test setup.
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

/** `helm package` the double into outDir; returns the archive and its checksum. */
export async function packageChart(helm: string, outDir: string): Promise<PackagedChart> {
  await mkdir(outDir, { recursive: true })
  const out = await run(helm, ['package', chartSourceDir, '--destination', outDir], 60_000)
  // helm prints "Successfully packaged chart and saved it to: <path>"
  const match = /saved it to:\s*(\S+\.tgz)/.exec(out)
  const path = match?.[1] ?? join(outDir, `${CHART_NAME}-${CHART_VERSION}.tgz`)
  const sha256 = createHash('sha256').update(await readFile(path)).digest('hex')
  return { path, version: CHART_VERSION, sha256 }
}
