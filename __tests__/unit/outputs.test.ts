import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { nodeOutputs, OUTPUT_NAMES } from '../../src/runner/outputs.js'
import { connectorNames } from '../../src/virtual-nodes/connector/names.js'

describe('outputs', () => {
  it('are exactly the ones action.yml declares', () => {
    const action = parse(readFileSync(join(import.meta.dirname, '..', '..', 'action.yml'), 'utf8')) as { outputs: Record<string, unknown> }
    expect([...OUTPUT_NAMES].sort()).toEqual(Object.keys(action.outputs).sort())
  })

  it('name releases and nodes; per-OS node names only for an install', () => {
    const both = (['Linux', 'Windows'] as const).map(os => connectorNames('aci-connector', os, 'eastus'))
    expect(nodeOutputs(both, true)).toEqual({
      'release-names': '["aci-connector-linux-eastus","aci-connector-windows-eastus"]',
      'node-names': '["virtual-kubelet-aci-connector-linux-eastus","virtual-kubelet-aci-connector-windows-eastus"]',
      'linux-node-name': 'virtual-kubelet-aci-connector-linux-eastus',
      'windows-node-name': 'virtual-kubelet-aci-connector-windows-eastus'
    })
    expect(Object.keys(nodeOutputs(both, false))).toEqual(['release-names', 'node-names'])
    expect(nodeOutputs([], true)).toEqual({})
    // One release serving several nodes (v2's chart with replicaCount 2): named once; the first node is the OS's.
    const v2 = ['aci-vn2-virtualnode-0', 'aci-vn2-virtualnode-1'].map(node => ({ os: 'Linux', node, release: 'aci-vn2' }))
    expect(nodeOutputs(v2, true)).toEqual({
      'release-names': '["aci-vn2"]',
      'node-names': '["aci-vn2-virtualnode-0","aci-vn2-virtualnode-1"]',
      'linux-node-name': 'aci-vn2-virtualnode-0'
    })
  })
})
