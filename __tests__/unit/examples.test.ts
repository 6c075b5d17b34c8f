// The README's workflows are the files under examples/, and those use only what action.yml
// declares. `npm run lint:examples` runs actionlint over the same files; this checks the
// same contract without Go, on every OS the unit tests run on.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { PUBLISHED_USES, readExamples, type Example } from '../lint-examples.js'

const ROOT = join(import.meta.dirname, '..', '..')
const action = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { required?: boolean }>
  outputs: Record<string, unknown>
}
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')

interface Step {
  id?: string
  uses?: string
  with?: Record<string, unknown>
}

/** What an example asks of this action that action.yml does not declare. */
function mismatches(example: Example): string[] {
  const doc = parse(example.text) as { jobs: Record<string, { steps: Step[] }> }
  const problems: string[] = []
  for (const job of Object.values(doc.jobs)) {
    const ours = job.steps.filter(s => typeof s.uses === 'string' && PUBLISHED_USES.test(`uses: ${s.uses}`))
    for (const step of ours) {
      const given = Object.keys(step.with ?? {})
      for (const key of given) if (!(key in action.inputs)) problems.push(`input ${key} is not in action.yml`)
      for (const [key, spec] of Object.entries(action.inputs)) if (spec.required && !given.includes(key)) problems.push(`required input ${key} is missing`)
    }
    const ids = new Set(ours.map(s => s.id).filter(Boolean))
    for (const m of example.text.matchAll(/steps\.([\w-]+)\.outputs\.([\w-]+)/g)) {
      if (ids.has(m[1]) && !(m[2] in action.outputs)) problems.push(`output ${m[2]} is not in action.yml`)
    }
  }
  return problems
}

describe('examples/', () => {
  const examples = readExamples()

  it('holds the workflows the README shows, each verbatim', () => {
    expect(examples.length).toBeGreaterThanOrEqual(5)
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```\n/g)].map(m => m[1])
    for (const e of examples) expect(blocks, e.name).toContain(e.text)
    // And every README workflow that uses the action is one of them.
    const usingAction = blocks.filter(b => PUBLISHED_USES.test(b))
    expect(usingAction.filter(b => !examples.some(e => e.text === b))).toEqual([])
  })

  it("uses only action.yml's inputs and outputs, and every required input", () => {
    for (const e of examples) expect(mismatches(e), e.name).toEqual([])
  })

  it('catches a renamed input, a dropped required input and an unknown output', () => {
    const ci = examples.find(e => e.name === 'ci-step.yml')
    expect(ci).toBeDefined()
    const broken = {
      name: ci!.name,
      text: ci!.text.replace('os-type:', 'os-types:').replace('cluster-name:', '# cluster-name:').replace('outputs.placement', 'outputs.placements')
    }
    expect(mismatches(broken)).toEqual([
      'input os-types is not in action.yml',
      'required input cluster-name is missing',
      'output placements is not in action.yml'
    ])
  })
})
