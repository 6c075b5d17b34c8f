// What this action installed in a cluster, and who uses it: a record in the cluster itself
// (kubernetes/record.ts), one entry per installation a kind cannot otherwise prove its own
// (an AKS extension, an add-on, a connector other jobs may share). A teardown takes such an
// installation only when the record names it and the live object is the one recorded (the
// identity Azure gave it, when it has one); the post step's cleanup takes it only when no
// other run still uses it.
import type { Kube } from '../kubernetes/kube.js'
import { readRecord, updateRecord, type RecordRef } from '../kubernetes/record.js'
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './naming.js'

export const INSTALL_RECORD: RecordRef = {
  namespace: 'default',
  name: 'aks-aci-connector-action-installs',
  labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE }
}

/**
 * How long a run that asked for cleanup counts as using an installation: a job on a
 * GitHub-hosted runner runs 6 hours at most (jobs.<job_id>.timeout-minutes, default and
 * limit 360, https://docs.github.com/actions/reference/limits). A run that never cleaned up
 * (its runner died) stops holding the installation after that.
 */
export const RUN_LIFETIME_MS = 6 * 3_600_000

/** One run that installed or reused an installation. */
export interface InstallUser {
  /** GitHub's run, attempt and job (currentRun). */
  run: string
  since: string
  /** The run asked for cleanup: it lets go at its end. Without, it keeps the installation until a remove. */
  cleanup: boolean
}

export interface InstallRecord {
  /** The kind of virtual node (kinds.ts). */
  kind: string
  /** The installation's own name (the extension's, the add-on profile's, the release's). */
  name: string
  /** The identity Azure gave the installation (an extension's or add-on's principal): a later one of the same name has another. */
  identity?: string
  installedAt: string
  users: InstallUser[]
  /**
   * Made by a run that asked for cleanup: the post step of its last user takes it. An
   * installation made by a run without cleanup, or there before any run used it, is kept
   * by every cleanup (a remove or sweep takes it).
   */
  removeWhenUnused?: boolean
  /** This action made the installation (the run that first used it found none); false or missing: it was there before. */
  created?: boolean
}

const isInstallRecord = (v: unknown): v is InstallRecord =>
  typeof v === 'object' && v !== null && typeof (v as InstallRecord).kind === 'string' && Array.isArray((v as InstallRecord).users)

/** The ConfigMap key of an installation (keys hold letters, digits, `-`, `_` and `.`). */
export function installKey(kind: string, name: string): string {
  return `${kind}.${name}`.replace(/[^-._a-zA-Z0-9]/g, '_')
}

/** This run, as GitHub names it (a local run outside Actions: this process). */
export function currentRun(env: NodeJS.ProcessEnv = process.env): string {
  if (!env.GITHUB_RUN_ID) return `local-${process.pid}`
  return `${env.GITHUB_REPOSITORY ?? ''}/${env.GITHUB_RUN_ID}/${env.GITHUB_RUN_ATTEMPT ?? '1'}/${env.GITHUB_JOB ?? ''}`
}

export async function readInstalls(kube: Kube): Promise<Map<string, InstallRecord>> {
  return readRecord(kube, INSTALL_RECORD, isInstallRecord)
}

/**
 * Records that `run` installed (`created`) or reuses the installation, before the change
 * that installs it; `identity` when Azure has given it one. A new installation starts a new
 * record: whoever used one of the same name before used something that is gone.
 */
export async function recordUse(
  kube: Kube,
  install: { kind: string; name: string; identity?: string },
  user: { run: string; cleanup: boolean },
  opts: { created?: boolean; now?: Date } = {}
): Promise<void> {
  const now = opts.now ?? new Date()
  await updateRecord(kube, INSTALL_RECORD, isInstallRecord, entries => {
    const key = installKey(install.kind, install.name)
    entries.set(key, withUse(entries.get(key), install, user, opts.created === true, now))
  })
}

/** The record after `user` installed (`created`) or reused the installation. */
export function withUse(
  old: InstallRecord | undefined,
  install: { kind: string; name: string; identity?: string },
  user: { run: string; cleanup: boolean },
  created: boolean,
  now: Date
): InstallRecord {
  const previous = created ? undefined : old
  return {
    kind: install.kind,
    name: install.name,
    identity: install.identity ?? previous?.identity,
    installedAt: previous?.installedAt ?? now.toISOString(),
    users: [...(previous?.users ?? []).filter(u => u.run !== user.run), { run: user.run, since: now.toISOString(), cleanup: user.cleanup }],
    removeWhenUnused: previous ? previous.removeWhenUnused === true : created && user.cleanup,
    created: previous ? previous.created === true : created
  }
}

/** Drops `run` as a user; returns the record as written (undefined when there is none). */
export async function releaseUse(kube: Kube, kind: string, name: string, run: string): Promise<InstallRecord | undefined> {
  let after: InstallRecord | undefined
  await updateRecord(kube, INSTALL_RECORD, isInstallRecord, entries => {
    const record = entries.get(installKey(kind, name))
    if (!record) return
    record.users = record.users.filter(u => u.run !== run)
    after = { ...record, users: [...record.users] }
  })
  return after
}

/**
 * A cleanup lets go of this run's use first, before it reads anything: a cleanup that fails
 * afterwards (Azure refuses a read, say) must not leave its run holding the installation.
 */
export async function letGo(kube: Kube, kind: string, names: string[]): Promise<void> {
  for (const name of names) await releaseUse(kube, kind, name, currentRun())
}

/** Forgets the installation (once it is gone). */
export async function forgetInstall(kube: Kube, kind: string, name: string): Promise<void> {
  await updateRecord(kube, INSTALL_RECORD, isInstallRecord, entries => void entries.delete(installKey(kind, name)))
}

/** The users that hold an installation now: every run that keeps it, and runs with cleanup that may still be going (RUN_LIFETIME_MS). */
export function holders(record: InstallRecord, now = Date.now()): InstallUser[] {
  return record.users.filter(u => !u.cleanup || now - new Date(u.since).getTime() < RUN_LIFETIME_MS)
}

/** Whether a teardown takes a recorded installation, and when not, why. */
export type UseVerdict = { take: true } | { take: false; why: string; usedByOthers: boolean }

/**
 * Whether this teardown takes a recorded installation (pure). A cleanup has let go of its
 * run's use (letGo) before it read `record`, so reads and writes are serialized: of two jobs
 * ending at once, the later sees no other user and takes it. Then any other holder (a run that
 * keeps it, a run with cleanup still going) keeps it, and so does its not having been made by
 * a run that cleans up. A remove or sweep is how installations kept by runs without cleanup
 * go, so only runs with cleanup still going keep it then.
 */
export function useVerdict(record: InstallRecord, op: 'remove' | 'sweep' | 'cleanup', run = currentRun(), now = Date.now()): UseVerdict {
  const others = holders(record, now).filter(u => u.run !== run)
  const users = op === 'cleanup' ? others : others.filter(u => u.cleanup)
  if (users.length > 0) return { take: false, why: `still used by ${describeUsers(users)}; it goes when the last of them is done`, usedByOthers: true }
  if (op === 'cleanup' && record.removeWhenUnused !== true)
    return {
      take: false,
      why: 'not made by a run that cleans up (a run without cleanup: true installed it, or it was there before): a remove or sweep takes it',
      usedByOthers: false
    }
  return { take: true }
}

/** "run X (since T, cleans up at its end)" for a message. */
export function describeUsers(users: InstallUser[]): string {
  return users.map(u => `run ${u.run} (since ${u.since}${u.cleanup ? ', removes it at its end' : ', keeps it'})`).join(', ')
}
