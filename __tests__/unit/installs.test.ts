// Who holds an installation jobs share, and when a teardown may take it (installs.ts).
import { describe, expect, it } from 'vitest'
import { currentRun, RUN_LIFETIME_MS, useVerdict, withUse, type InstallRecord } from '../../src/virtual-nodes/installs.js'

const EXTENSION = { kind: 'v2', name: 'aci-virtual-nodes' }
const T0 = new Date('2026-12-05T10:00:00Z')
const later = (ms: number): Date => new Date(T0.getTime() + ms)

describe('recording the runs that use an installation', () => {
  it('a run that creates it with cleanup makes it go with its last user; one without cleanup keeps it for a remove', () => {
    expect(withUse(undefined, EXTENSION, { run: 'a', cleanup: true }, true, T0).removeWhenUnused).toBe(true)
    expect(withUse(undefined, EXTENSION, { run: 'a', cleanup: false }, true, T0).removeWhenUnused).toBe(false)
    // Found there (not created) with no record: whoever made it did not ask for cleanup.
    expect(withUse(undefined, EXTENSION, { run: 'a', cleanup: true }, false, T0).removeWhenUnused).toBe(false)
  })

  it('remembers whether this action made the installation, whoever uses it later', () => {
    const made = withUse(undefined, EXTENSION, { run: 'a', cleanup: false }, true, T0)
    expect(made.created).toBe(true)
    expect(withUse(made, EXTENSION, { run: 'b', cleanup: false }, false, later(1000)).created).toBe(true)
    // Found there with no record: someone else's, adopted; never proven this action's.
    const found = withUse(undefined, EXTENSION, { run: 'a', cleanup: false }, false, T0)
    expect(found.created).toBe(false)
    expect(withUse(found, EXTENSION, { run: 'b', cleanup: false }, false, later(1000)).created).toBe(false)
  })

  it('a later run adds itself and keeps what the creator decided; a new installation of the same name starts over', () => {
    const first = withUse(undefined, EXTENSION, { run: 'a', cleanup: true }, true, T0)
    const shared = withUse(first, { ...EXTENSION, identity: 'p-1' }, { run: 'b', cleanup: false }, false, later(1000))
    expect(shared.users.map(u => u.run)).toEqual(['a', 'b'])
    expect(shared.removeWhenUnused).toBe(true)
    expect(shared.installedAt).toBe(T0.toISOString())
    expect(shared.identity).toBe('p-1')
    // The same run again is one user, not two.
    expect(withUse(shared, EXTENSION, { run: 'b', cleanup: true }, false, later(2000)).users.map(u => `${u.run}:${u.cleanup}`)).toEqual(['a:true', 'b:true'])
    const again = withUse(shared, EXTENSION, { run: 'c', cleanup: false }, true, later(3000))
    expect(again.users.map(u => u.run)).toEqual(['c'])
    expect(again.removeWhenUnused).toBe(false)
    expect(again.identity).toBeUndefined()
  })
})

describe('whether a teardown takes it', () => {
  const record = (users: Array<[string, boolean, Date]>, removeWhenUnused = true): InstallRecord => ({
    ...EXTENSION,
    installedAt: T0.toISOString(),
    users: users.map(([run, cleanup, since]) => ({ run, cleanup, since: since.toISOString() })),
    removeWhenUnused
  })

  it("a cleanup keeps it while any other run holds it, and takes it as the last user's", () => {
    const shared = record([
      ['a', true, T0],
      ['b', true, T0]
    ])
    const verdict = useVerdict(shared, 'cleanup', 'a', T0.getTime())
    expect(verdict.take).toBe(false)
    expect(!verdict.take && verdict.why).toContain('still used by run b')
    expect(useVerdict(record([['a', true, T0]]), 'cleanup', 'a', T0.getTime())).toEqual({ take: true })
  })

  it('a cleanup keeps what a run without cleanup made, even as its last user', () => {
    const verdict = useVerdict(record([['a', true, T0]], false), 'cleanup', 'a', T0.getTime())
    expect(verdict.take).toBe(false)
    expect(!verdict.take && verdict.why).toContain('a remove or sweep takes it')
  })

  it('a remove or sweep is kept only by a run with cleanup still going, never by one that keeps it', () => {
    const keeper = record([['a', false, T0]])
    expect(useVerdict(keeper, 'remove', 'x', T0.getTime())).toEqual({ take: true })
    const live = record([['a', true, T0]])
    expect(useVerdict(live, 'sweep', 'x', later(1000).getTime()).take).toBe(false)
    // A run with cleanup whose runner died stops holding it once no job can still be running.
    expect(useVerdict(live, 'sweep', 'x', later(RUN_LIFETIME_MS + 1).getTime())).toEqual({ take: true })
    // The run's own remove is not held up by its own use.
    expect(useVerdict(live, 'remove', 'a', later(1000).getTime())).toEqual({ take: true })
  })

  it("a run is named by GitHub's repository, run, attempt and job", () => {
    expect(currentRun({ GITHUB_REPOSITORY: 'o/r', GITHUB_RUN_ID: '7', GITHUB_RUN_ATTEMPT: '2', GITHUB_JOB: 'e2e' })).toBe('o/r/7/2/e2e')
    expect(currentRun({})).toMatch(/^local-\d+$/)
  })
})
