// CLI: `tsx __tests__/local-aks/setup.ts` - builds/installs everything the
// local AKS environment needs (run before the e2e tests and the demo), so the
// tests themselves never spend their timeouts compiling Kubernetes.
import { ensureBinaries, cacheRoot } from './binaries.js'
import { ensureAzCli } from './az-cli.js'

async function main(): Promise<void> {
  const t0 = Date.now()
  const stamp = (): string => `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s]`
  console.log(`local-aks setup: binaries cache ${cacheRoot()}`)
  const bins = await ensureBinaries(m => console.log(`${stamp()} ${m}`))
  console.log(`${stamp()} az CLI (Debian azure-cli when missing) ...`)
  const az = await ensureAzCli()
  for (const [name, path] of Object.entries({ ...bins, az })) console.log(`  ${name.padEnd(22)} ${path}`)
  console.log(`local-aks setup: ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`local-aks setup FAILED: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  }
)
