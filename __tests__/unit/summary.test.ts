import { describe, expect, it } from 'vitest'
import { renderSummary, type RunReport } from '../../src/runner/summary.js'

const base: RunReport = { command: 'install', cluster: 'rg/aks1', nodes: [], samples: [], removals: [], phases: [] }

describe('job summary', () => {
  it('shows nodes, samples and phase times of an install', () => {
    const md = renderSummary({
      ...base,
      signedInAs: 'service principal cid (client secret)',
      chart: 'https://x/chart.tgz',
      nodes: [
        {
          os: 'Linux',
          node: 'virtual-kubelet-a-linux-eastus',
          ready: true,
          waitedMs: 12_300,
          labels: {},
          taints: ['virtual-kubelet.io/provider=azure:NoSchedule']
        }
      ],
      samples: [
        {
          os: 'Linux',
          name: 'aci-helloworld',
          namespace: 'default',
          pods: [{ name: 'aci-helloworld-1', ip: '10.1.2.3', node: 'virtual-kubelet-a-linux-eastus', phase: 'Running' }]
        }
      ],
      phases: [
        { name: 'Tools', ms: 1000, ok: true },
        { name: 'Wait for virtual nodes', ms: 12_300, ok: true }
      ]
    })
    expect(md).toContain('## Virtual Kubelet ACI connector: install succeeded')
    expect(md).toContain('| Linux | ACI connector | `virtual-kubelet-a-linux-eastus` | ✅ Ready | 12.3 s | `virtual-kubelet.io/provider=azure:NoSchedule` |')
    expect(md).toContain('| aci-helloworld | default | aci-helloworld-1 | 10.1.2.3 | `virtual-kubelet-a-linux-eastus` |')
    expect(md).toContain('| **Total** | **13.3 s** |')
  })
  it('shows the error and what was left behind on failure', () => {
    const md = renderSummary({
      ...base,
      error: 'Virtual node x was not Ready\nline 2',
      leftBehind: 'Installed so far: release r',
      phases: [{ name: 'Wait', ms: 5, ok: false }]
    })
    expect(md).toContain('install failed')
    expect(md).toContain('> [!CAUTION]\n> Virtual node x was not Ready\n> line 2')
    expect(md).toContain('> [!WARNING]\n> Installed so far: release r')
    expect(md).toContain('| ❌ Wait |')
  })
  it('says what a removal found missing', () => {
    const md = renderSummary({
      ...base,
      command: 'remove',
      removals: [{ os: 'Windows', installedAs: 'r', node: 'n', installRemoved: false, nodeRemoved: true, podsEvicted: 2, podsForced: ['default/p'] }]
    })
    expect(md).toContain('| Windows | `r` | was not there | yes | 2 (1 forced) |')
  })

  it('lists every teardown item with its outcome, says a dry run changed nothing, and names a granted role with how to delete it', () => {
    const md = renderSummary({
      ...base,
      command: 'remove',
      dryRun: true,
      teardown: [
        { kind: 'release', name: 'default/a-linux-westus2', ageMs: 2 * 86_400_000, detail: 'Helm release of connector a', outcome: 'would remove' },
        { kind: 'container group', name: 'shared/default-x', detail: 'not attributable: tagged | for node n', outcome: 'left' },
        { kind: 'container group', name: 'MC_x/default-y', detail: 'tagged for node n', outcome: 'failed', error: 'DELETE 503\nmore' }
      ]
    })
    expect(md).toContain('Dry run: nothing was changed.')
    expect(md).toContain('| release | `default/a-linux-westus2` | 2 d 0 h | Helm release of connector a | would remove |')
    expect(md).toContain('| container group | `shared/default-x` | - | not attributable: tagged \\| for node n | left |')
    expect(md).toContain('| container group | `MC_x/default-y` | - | tagged for node n | ❌ failed: DELETE 503 |')
    expect(renderSummary({ ...base, command: 'remove', teardown: [] })).toContain('Nothing to remove')
    expect(renderSummary({ ...base, command: 'sweep', teardown: [] })).toContain('Nothing to sweep')
    const role = renderSummary({
      ...base,
      roles: [
        {
          id: '/subscriptions/s/resourceGroups/g/providers/Microsoft.Authorization/roleAssignments/r',
          scope: '/subscriptions/s/resourceGroups/g',
          principalId: 'p',
          role: 'Contributor',
          outcome: 'created'
        },
        {
          id: '/subscriptions/s/resourceGroups/MC_g/providers/Microsoft.Authorization/roleAssignments/v',
          scope: '/subscriptions/s/resourceGroups/MC_g',
          principalId: 'ext',
          role: 'aks-aci-connector-action virtual nodes (MC_g)',
          outcome: 'created',
          removedWith: 'the extension (a remove of it)'
        }
      ]
    })
    // The role's own name, and what a remove does with it.
    expect(role).toContain(
      '| aks-aci-connector-action virtual nodes (MC_g) | `/subscriptions/s/resourceGroups/MC_g` | `ext` | assigned (grant-connector-role) | no: it goes with the extension (a remove of it) |'
    )
    expect(role).toContain(
      '| Contributor | `/subscriptions/s/resourceGroups/g` | `p` | assigned (grant-connector-role) | yes; delete with `az role assignment delete --ids /subscriptions/s/resourceGroups/g/providers/Microsoft.Authorization/roleAssignments/r` |'
    )
  })
})
