// The agent node's container runtime: a local registry of the images this machine can
// run (each the real program, built from its Go module, laid out as its Dockerfile lays
// it out), and a container = that image's files plus the pod's volume files in a private
// root directory, started with `chroot` inside the pod's network namespace with exactly
// the environment the kubelet computed. Only the mount isolation differs from containerd:
// volume files are copied into the root instead of bind-mounted, and nothing is
// enforced (capabilities, read-only mounts); the programs here do not depend on either.
import { copyFileSync, cpSync, linkSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { spawnLogged, type ManagedProcess } from './proc.js'

const CHROOT = '/usr/sbin/chroot'

export interface ContainerImage {
  /** Registry and repository without the tag, e.g. mcr.microsoft.com/oss/virtual-kubelet/virtual-kubelet. */
  repository: string
  /** Tags this machine holds; any other tag cannot be pulled. */
  tags: string[]
  /** Path inside the image -> file on this machine. */
  files: Record<string, string>
  /** The image's ENTRYPOINT and CMD. */
  entrypoint: string[]
  cmd: string[]
  /** The image's ENV. */
  env: Record<string, string>
}

/** gcr.io/distroless/static's PATH and HOME (root user), the base of both azure-aci images. */
export const DISTROLESS_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' }

export function splitImage(image: string): { repository: string; tag: string } {
  const at = image.indexOf('@')
  const ref = at >= 0 ? image.slice(0, at) : image
  const colon = ref.lastIndexOf(':')
  if (colon > ref.lastIndexOf('/')) return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) }
  return { repository: ref, tag: 'latest' }
}

/**
 * The image for a reference, or containerd's error for one that cannot be pulled, as the
 * kubelet reports it in the ErrImagePull waiting message (containerd's resolver answers
 * `not found` for an unknown tag: containerd/core/remotes/docker/resolver.go).
 */
export function resolveImage(images: ContainerImage[], image: string): ContainerImage | { error: string } {
  const { repository, tag } = splitImage(image)
  const found = images.find(i => i.repository === repository && i.tags.includes(tag))
  if (found) return found
  return {
    error: `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference ` + `"${image}": ${image}: not found`
  }
}

/** A file or directory to place in the container's root at `path`. */
export interface Mount {
  path: string
  source: string
}

/** Builds the container's root: the image's files (hard links: the binaries are large), then the mounts. */
export function prepareRoot(root: string, image: ContainerImage, mounts: Mount[]): void {
  mkdirSync(join(root, 'tmp'), { recursive: true, mode: 0o1777 })
  mkdirSync(join(root, 'root'), { recursive: true })
  mkdirSync(join(root, 'etc'), { recursive: true })
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/sbin/nologin\n')
  for (const [inImage, host] of Object.entries(image.files)) {
    const target = join(root, inImage)
    mkdirSync(dirname(target), { recursive: true })
    try {
      linkSync(host, target)
    } catch {
      copyFileSync(host, target)
    }
  }
  for (const m of mounts) {
    const target = join(root, m.path)
    if (statSync(m.source).isDirectory()) {
      mkdirSync(target, { recursive: true })
      cpSync(m.source, target, { recursive: true })
    } else {
      mkdirSync(dirname(target), { recursive: true })
      copyFileSync(m.source, target)
    }
  }
}

/** `command`/`args` of the pod spec over the image's ENTRYPOINT/CMD, as Kubernetes defines it. */
export function containerArgv(image: ContainerImage, command: string[] | undefined, args: string[] | undefined): string[] {
  if (command && command.length > 0) return [...command, ...(args ?? [])]
  return [...image.entrypoint, ...(args ?? image.cmd)]
}

/**
 * Starts the container's process: in the pod's network namespace (`netnsExec`), rooted at
 * `root`, with only `env` (no variable of this machine leaks in). Output goes to `logPath`,
 * which the kubelet serves as the container log.
 */
export function startContainer(opts: {
  name: string
  netnsExec: string[]
  root: string
  argv: string[]
  env: Record<string, string>
  logPath: string
}): ManagedProcess {
  const [ip, ...netnsArgs] = opts.netnsExec
  return spawnLogged(opts.name, ip ?? '', [...netnsArgs, CHROOT, opts.root, ...opts.argv], opts.logPath, { env: opts.env, group: true })
}
