import { compareVersions, sameVersion } from '../../src/tools/versions.js'
import { promises as fs } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  azSatisfies,
  helmChecksumUrl,
  helmUrl,
  kubectlChecksumUrl,
  kubectlUrl,
  latestVersionUrl,
  parseAzVersion,
  parseChecksumFile,
  verifyChecksum
} from '../../src/tools/install.js'

describe('official download URLs', () => {
  it('lays kubectl out like dl.k8s.io for every OS and arch', () => {
    expect(kubectlUrl('https://dl.k8s.io/release', 'v1.34.4', { platform: 'linux', arch: 'amd64' })).toBe(
      'https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kubectl'
    )
    expect(kubectlUrl('https://dl.k8s.io/release', 'v1.34.4', { platform: 'darwin', arch: 'arm64' })).toBe(
      'https://dl.k8s.io/release/v1.34.4/bin/darwin/arm64/kubectl'
    )
    expect(kubectlChecksumUrl('https://dl.k8s.io/release', 'v1.34.4', { platform: 'windows', arch: 'amd64' })).toBe(
      'https://dl.k8s.io/release/v1.34.4/bin/windows/amd64/kubectl.exe.sha256'
    )
  })
  it('lays helm out like get.helm.sh (zip on Windows)', () => {
    expect(helmUrl('https://get.helm.sh', 'v4.3.1', { platform: 'linux', arch: 'arm64' })).toBe('https://get.helm.sh/helm-v4.3.1-linux-arm64.tar.gz')
    expect(helmUrl('https://get.helm.sh', 'v4.3.1', { platform: 'windows', arch: 'amd64' })).toBe('https://get.helm.sh/helm-v4.3.1-windows-amd64.zip')
    expect(helmChecksumUrl('https://get.helm.sh', 'v3.19.0', { platform: 'darwin', arch: 'amd64' })).toBe(
      'https://get.helm.sh/helm-v3.19.0-darwin-amd64.tar.gz.sha256sum'
    )
  })
  it('knows where each host publishes its latest version', () => {
    expect(latestVersionUrl('kubectl', 'https://dl.k8s.io/release')).toBe('https://dl.k8s.io/release/stable.txt')
    expect(latestVersionUrl('helm', 'https://get.helm.sh')).toBe('https://get.helm.sh/helm-latest-version')
  })
})

describe('checksums', () => {
  const digest = 'a'.repeat(64)
  it('reads kubectl (bare digest) and helm (digest + file name) checksum files', () => {
    expect(parseChecksumFile(`${digest}\n`)).toBe(digest)
    expect(parseChecksumFile(`${digest.toUpperCase()}  helm-v4.3.1-linux-amd64.tar.gz\n`)).toBe(digest)
  })
  it('refuses a checksum file without a SHA-256 digest (e.g. an HTML error page)', () => {
    expect(() => parseChecksumFile('<html>Not Found</html>')).toThrow(/does not hold a SHA-256 digest/)
  })
  it('accepts a matching file and deletes a mismatching one', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sum-'))
    const file = path.join(dir, 'kubectl')
    await fs.writeFile(file, 'binary')
    const good = createHash('sha256').update('binary').digest('hex')
    await expect(verifyChecksum(file, good, 'u')).resolves.toBeUndefined()
    await expect(verifyChecksum(file, 'b'.repeat(64), 'https://x/kubectl')).rejects.toThrow(/SHA-256 mismatch for https:\/\/x\/kubectl.*nothing was cached/s)
    await expect(fs.access(file)).rejects.toThrow()
    await fs.rm(dir, { recursive: true })
  })
})

describe('versions', () => {
  it('compares dotted versions numerically', () => {
    expect(compareVersions('2.45.0', '2.30.0')).toBe(1)
    expect(compareVersions('2.9.0', '2.30.0')).toBe(-1)
    expect(compareVersions('v1.34.4', '1.34.4')).toBe(0)
  })
  it('treats v-prefix and build metadata as the same version', () => {
    expect(sameVersion('v4.3.1+g1234', 'v4.3.1')).toBe(true)
    expect(sameVersion('v4.3.1', 'v4.3.0')).toBe(false)
  })
  it('takes any az >= 2.30.0 when none was asked for, else exactly the one asked for', () => {
    expect(azSatisfies('2.45.0', '')).toBe(true)
    expect(azSatisfies('2.29.9', '')).toBe(false)
    expect(azSatisfies('2.45.0', '2.67.0')).toBe(false)
    expect(azSatisfies('2.67.0', '2.67.0')).toBe(true)
  })
  it('reads the version from az version -o json', () => {
    expect(parseAzVersion('{"azure-cli": "2.45.0", "azure-cli-core": "2.45.0"}')).toBe('2.45.0')
    expect(parseAzVersion('garbage')).toBeUndefined()
  })
})
