// The shape src/ keeps (README "Code layout"): imports point down the layers (runner >
// virtual-nodes > kubernetes, azure > tools > util) and never in a circle, no kind of
// virtual node imports another kind's folder, and no function grows past 80 lines.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const SRC = resolve(import.meta.dirname, '..', '..', 'src')
const MAX_FUNCTION_LINES = 80
const LAYER: Record<string, number> = { 'index.ts': 6, runner: 5, 'virtual-nodes': 4, kubernetes: 3, azure: 3, tools: 2, util: 1 }

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap(f => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** file -> the files it imports (relative ESM specifiers, type-only imports included: a circle of types is still a circle). */
export function importGraph(files: string[]): Map<string, Set<string>> {
  const known = new Set(files)
  const graph = new Map<string, Set<string>>()
  for (const f of files) {
    const targets = new Set<string>()
    for (const m of readFileSync(f, 'utf8').matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) {
      const target = resolve(dirname(f), m[1]!.replace(/\.js$/, '.ts'))
      if (known.has(target)) targets.add(target)
    }
    graph.set(f, targets)
  }
  return graph
}

/** Every import circle (strongly connected components of more than one file, or a file importing itself), as relative paths. */
export function circles(graph: Map<string, Set<string>>): string[][] {
  let index = 0
  const order = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string): void => {
    order.set(v, index)
    low.set(v, index++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!order.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, order.get(w)!))
    }
    if (low.get(v) !== order.get(v)) return
    const component: string[] = []
    let w: string
    do {
      w = stack.pop()!
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.map(f => relative(SRC, f)).sort())
  }
  for (const v of graph.keys()) if (!order.has(v)) visit(v)
  return found
}

const layer = (file: string): number => LAYER[relative(SRC, file).split('/')[0] ?? ''] ?? 0
/** The folder of a kind of virtual node a file is in (virtual-nodes/<kind>/...), if any. */
const kindFolder = (file: string): string | undefined => /^virtual-nodes\/([^/]+)\//.exec(relative(SRC, file))?.[1]

describe('src/ layout', () => {
  const files = sourceFiles(SRC)
  const graph = importGraph(files)

  it('has no import circle', () => {
    expect(circles(graph)).toEqual([])
  })

  it('the check finds a circle and a self-import when there is one', () => {
    const g = new Map([
      ['/s/a.ts', new Set(['/s/b.ts'])],
      ['/s/b.ts', new Set(['/s/a.ts'])],
      ['/s/c.ts', new Set(['/s/c.ts'])],
      ['/s/d.ts', new Set(['/s/a.ts'])]
    ])
    expect(circles(g)).toHaveLength(2)
  })

  it('imports only from its own layer or below', () => {
    const upward = [...graph].flatMap(([f, targets]) => [...targets].filter(t => layer(t) > layer(f)).map(t => `${relative(SRC, f)} -> ${relative(SRC, t)}`))
    expect(upward).toEqual([])
  })

  it('no kind of virtual node imports from another kind’s folder', () => {
    const across = [...graph].flatMap(([f, targets]) => {
      const own = kindFolder(f)
      return [...targets].filter(t => own && kindFolder(t) && kindFolder(t) !== own).map(t => `${relative(SRC, f)} -> ${relative(SRC, t)}`)
    })
    expect(across).toEqual([])
  })

  it(`no function is longer than ${MAX_FUNCTION_LINES} lines`, () => {
    const long: string[] = []
    for (const f of files) {
      const sf = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true)
      const visit = (n: ts.Node): void => {
        if (ts.isFunctionLike(n) && 'body' in n && n.body) {
          const lines = sf.getLineAndCharacterOfPosition(n.getEnd()).line - sf.getLineAndCharacterOfPosition(n.getStart()).line + 1
          if (lines > MAX_FUNCTION_LINES) long.push(`${relative(SRC, f)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1} (${lines} lines)`)
        }
        ts.forEachChild(n, visit)
      }
      visit(sf)
    }
    expect(long).toEqual([])
  })

  it('no file is named after its folder (a catch-all): files say what they do', () => {
    const catchAll = files.filter(f => dirname(f) !== SRC && f.endsWith(`/${dirname(f).split('/').pop()}.ts`)).map(f => relative(SRC, f))
    expect(catchAll).toEqual([])
  })
})
