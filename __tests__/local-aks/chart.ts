// The real connector chart: the azure-aci module's charts/virtual-kubelet (the chart
// published as virtual-kubelet-azure-aci), packaged with the real `helm package`, so the
// action installs a .tgz like the one on the project's gh-pages branch: same file name,
// same chart name, version and templates.
import { execFile } from 'node:child_process'
import { mkdir } from 'node:fs/promises'

export const CHART_NAME = 'virtual-kubelet-azure-aci'
/** Where the project publishes its packaged charts (the action's default chart-url lives here). */
export const PUBLISHED_CHARTS_PATH = '/virtual-kubelet/azure-aci/raw/gh-pages/charts'

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // Bounded: a stuck helm must not hang the test setup.
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

/** `helm package <chartDir>` into outDir; returns the archive's path (virtual-kubelet-azure-aci-<version>.tgz). */
export async function packageChart(helm: string, chartDir: string, outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true })
  const out = await run(helm, ['package', chartDir, '--destination', outDir], 60_000)
  // helm prints "Successfully packaged chart and saved it to: <path>"
  const match = /saved it to:\s*(\S+\.tgz)/.exec(out)
  if (!match?.[1]) throw new Error(`helm package printed no archive path:\n${out}`)
  return match[1]
}

export function chartFileName(version: string): string {
  return `${CHART_NAME}-${version.replace(/^v/, '')}.tgz`
}
