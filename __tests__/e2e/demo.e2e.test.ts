// The README's first command, run as a newcomer runs it: `npm run demo` in its own process.
// It must install both virtual nodes, show them Ready to a later step's kubectl, show the
// samples running with their own IPs, and leave only the agent pool behind.
import { describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../local-aks/runner.js'
import { runCommand } from '../local-aks/proc.js'

const DEMO_TIMEOUT_MS = 8 * 60_000

/** Runs `npm run demo` (bounded, its own process group) and returns its exit code and everything it printed. */
async function runDemo(): Promise<{ code: number | null; output: string }> {
  const r = await runCommand('npm', ['run', 'demo'], { cwd: REPO_ROOT, env: { ...process.env, FORCE_COLOR: '0' }, timeoutMs: DEMO_TIMEOUT_MS })
  return { code: r.code, output: `${r.stdout}\n${r.stderr}` }
}

/** The text of one `== title ==` section of the demo's output. */
function section(output: string, title: string): string {
  const start = output.indexOf(`== ${title}`)
  if (start < 0) return ''
  const body = output.slice(output.indexOf('\n', start) + 1)
  const next = body.search(/^== /m)
  return next < 0 ? body : body.slice(0, next)
}

describe('the README demo', () => {
  it('`npm run demo` installs both virtual nodes, a later step sees them Ready and the samples running, and teardown leaves only the agent pool', async () => {
    const { code, output } = await runDemo()
    if (code !== 0) expect.fail(`npm run demo exited ${code}:\n${output.slice(-8000)}`)

    const nodes = section(output, 'A later step: kubectl get nodes')
    for (const os of ['linux', 'windows']) {
      expect(nodes, `the ${os} virtual node in kubectl get nodes`).toMatch(new RegExp(`^virtual-kubelet-aci-connector-${os}-eastus\\s+Ready\\s`, 'm'))
    }

    const pods = section(output, 'kubectl get pods -o wide')
    for (const name of ['aci-helloworld', 'nanoserver-iis']) {
      const line = pods.split('\n').find(l => l.startsWith(`${name}-`)) ?? ''
      expect(line, `${name} in kubectl get pods`).toMatch(/\sRunning\s/)
    }
    // The connector reports the group's IP as the pod IP for Linux only
    // (azure-aci v1.6.4 pkg/provider/containergroup_to_pod.go).
    expect(pods.split('\n').find(l => l.startsWith('aci-helloworld-'))).toMatch(/\s20\.\d+\.\d+\.\d+\s/)
    // Each sample is its own container group, each with its own IP.
    const groups = section(output, 'The container groups in ACI').trim().split('\n').filter(Boolean)
    expect(groups).toHaveLength(2)
    const ips = groups.map(g => /\s(\d+\.\d+\.\d+\.\d+)\s/.exec(g)?.[1])
    expect(ips.every(Boolean), 'every group has an IP').toBe(true)
    expect(new Set(ips).size, 'each container group has its own IP').toBe(2)

    const left = section(output, 'Nodes left (only the agent pool)').trim().split('\n').filter(Boolean)
    expect(left).toEqual(['aks-nodepool1-12345678-vmss000000'])
    expect(section(output, 'Container groups left').trim().split('\n')[0]).toBe('0')
  })
})
