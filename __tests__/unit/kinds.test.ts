// Which kind of virtual node serves which OS in a step (virtual-nodes/kinds.ts), as the inputs ask.
import { describe, expect, it } from 'vitest'
import { parseInputs } from '../../src/runner/inputs.js'
import { kindUses } from '../../src/virtual-nodes/kinds.js'

describe('inputs of the kinds of virtual node', () => {
  it('reads virtual-node-kind and virtual-nodes, refusing what does not fit', () => {
    const read = (extra: Record<string, string>) => (name: string) => ({ 'resource-group': 'rg', 'cluster-name': 'c', ...extra })[name] ?? ''
    expect(parseInputs(read({ 'virtual-node-kind': 'v2', 'virtual-nodes': '3' }))).toMatchObject({ virtualNodeKind: 'v2', v2NodeCount: 3 })
    // Not given: an install uses the connector; v2 keeps an extension's own node count (1 for a new one).
    expect(parseInputs(read({}))).toMatchObject({ virtualNodeKind: 'connector', virtualNodeKindGiven: false, v2NodeCount: undefined })
    expect(() => parseInputs(read({ 'virtual-node-kind': 'v3' }))).toThrow('virtual-node-kind: "v3" is not valid')
    expect(() => parseInputs(read({ 'virtual-node-kind': 'v2', 'virtual-nodes': '0' }))).toThrow('virtual-nodes: "0" is not valid; use a whole number')
    expect(() => parseInputs(read({ 'virtual-nodes': '2' }))).toThrow('it applies to virtual-node-kind: v2, v2-helm or auto only')
  })
})

describe('kinds of virtual node a step works with', () => {
  const read = (extra: Record<string, string>) => (name: string) => ({ 'resource-group': 'rg', 'cluster-name': 'c', ...extra })[name] ?? ''
  const kinds = (extra: Record<string, string>): string[] => kindUses(parseInputs(read(extra))).map(k => k.name)
  /** The OS the connector serves in that step. */
  const connectorOsTypes = (inputs: ReturnType<typeof parseInputs>): string[] | undefined => kindUses(inputs).find(u => u.name === 'connector')?.os ?? []

  it('install: v2 serves Linux and the connector the rest; the default is the connector alone', () => {
    expect(kinds({})).toEqual(['connector'])
    expect(connectorOsTypes(parseInputs(read({ 'virtual-node-kind': 'v2' })))).toEqual([])
    expect(kinds({ 'virtual-node-kind': 'v2' })).toEqual(['v2'])
    const both = parseInputs(read({ 'virtual-node-kind': 'v2', 'os-type': 'Both' }))
    expect(connectorOsTypes(both)).toEqual(['Windows'])
    expect(kinds({ 'virtual-node-kind': 'v2', 'os-type': 'Both' })).toEqual(['v2', 'connector'])
    expect(kinds({ 'virtual-node-kind': 'v2', 'os-type': 'Windows' })).toEqual(['connector'])
    expect(kinds({ 'virtual-node-kind': 'v2-helm', 'os-type': 'Both' })).toEqual(['v2-helm', 'connector'])
    // auto: none until the cluster has been looked at (virtual-nodes/choose.ts picks them).
    expect(kinds({ 'virtual-node-kind': 'auto' })).toEqual([])
  })

  it('remove and sweep not told the kind look for every kind; told, that kind (and the connector for the other OS); os-type narrows', () => {
    expect(kinds({ command: 'remove' })).toEqual(['v2', 'v2-helm', 'addon', 'connector'])
    expect(kinds({ command: 'remove', 'virtual-node-kind': 'auto' })).toEqual(['v2', 'v2-helm', 'addon', 'connector'])
    expect(kinds({ command: 'remove', 'virtual-node-kind': 'v2-helm' })).toEqual(['v2-helm', 'connector'])
    expect(kinds({ command: 'sweep', 'os-type': 'Windows' })).toEqual(['connector'])
    expect(kinds({ command: 'remove', 'virtual-node-kind': 'connector' })).toEqual(['connector'])
    expect(kinds({ command: 'remove', 'virtual-node-kind': 'addon', 'os-type': 'Both' })).toEqual(['addon', 'connector'])
    expect(kinds({ command: 'remove', 'virtual-node-kind': 'v2' })).toEqual(['v2', 'connector'])
    expect(kinds({ command: 'remove', 'virtual-node-kind': 'v2', 'os-type': 'Linux' })).toEqual(['v2'])
    expect(kinds({ command: 'sweep', 'virtual-node-kind': 'v2', 'os-type': 'Windows' })).toEqual(['connector'])
  })
})
