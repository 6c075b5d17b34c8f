// Lints the workflows under examples/ (the ones the README shows) with actionlint as if
// they used this repository's action: each `uses: OWNER/aks-aci-connector-action@<ref>`
// becomes `uses: ./` in a scratch project holding this action.yml, so actionlint checks
// every `with:` key against action.yml's inputs (unknown and missing required ones) and
// every `steps.<id>.outputs.<name>` against its outputs. A renamed input or output then
// fails `npm test` instead of a user's workflow.
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..')
export const EXAMPLES_DIR = join(ROOT, 'examples')
/** How the README and examples name this action. */
export const PUBLISHED_USES = /uses:\s*OWNER\/aks-aci-connector-action@\S+/
const EVERY_PUBLISHED_USES = new RegExp(PUBLISHED_USES.source, 'g')
/** actionlint builds in well under a minute once Go's module cache is warm; a bound, not a goal. */
const ACTIONLINT_TIMEOUT_MS = 5 * 60_000

export interface Example {
  name: string
  text: string
}

export function readExamples(): Example[] {
  return readdirSync(EXAMPLES_DIR)
    .filter(f => f.endsWith('.yml'))
    .sort()
    .map(f => ({ name: f, text: readFileSync(join(EXAMPLES_DIR, f), 'utf8') }))
}

export function asLocalAction(text: string): string {
  return text.replace(EVERY_PUBLISHED_USES, 'uses: ./')
}

/** The actionlint command `npm run lint:workflows` runs, so both use one pinned version. */
function actionlintCommand(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  return pkg.scripts['lint:workflows'].split(/\s+/)
}

/** Runs actionlint over `examples` in a scratch project with this action.yml at its root. */
export async function lintExamples(examples: Example[]): Promise<{ ok: boolean; output: string }> {
  const project = mkdtempSync(join(tmpdir(), 'examples-lint-'))
  try {
    // actionlint takes the directory holding .git as the project root that `./` names.
    mkdirSync(join(project, '.git'))
    mkdirSync(join(project, '.github', 'workflows'), { recursive: true })
    cpSync(join(ROOT, 'action.yml'), join(project, 'action.yml'))
    // It also checks that the files the action's `runs` names exist.
    cpSync(join(ROOT, 'dist'), join(project, 'dist'), { recursive: true })
    const files = examples.map(e => {
      const path = join(project, '.github', 'workflows', basename(e.name))
      writeFileSync(path, asLocalAction(e.text))
      return path
    })
    const [cmd, ...args] = actionlintCommand()
    return await new Promise(done =>
      execFile(cmd, [...args, '-no-color', ...files], { cwd: ROOT, timeout: ACTIONLINT_TIMEOUT_MS, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
        done({ ok: !err, output: `${stdout}${stderr}`.split(`${project}/`).join('') })
      )
    )
  } finally {
    rmSync(project, { recursive: true, force: true })
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const examples = readExamples()
  const { ok, output } = await lintExamples(examples)
  if (output.trim()) console.log(output.trim())
  console.log(ok ? `actionlint: ${examples.length} examples pass against action.yml` : 'actionlint: the examples above do not match action.yml')
  process.exit(ok ? 0 : 1)
}
