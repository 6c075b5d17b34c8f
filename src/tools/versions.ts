// Version comparison with semver (loose, so `v1.34.4` and `2.67.0` both parse).
import * as semver from 'semver'

/** Oldest az accepted for azure-cli-version (the runner's own session; older ones are refused before anything starts). */
export const MIN_AZURE_CLI_VERSION = '2.30.0'

/** Pinned kubelogin; its release publishes a .sha256 beside every zip (github.com/Azure/kubelogin .github/workflows/release.yml). */
export const DEFAULT_KUBELOGIN_VERSION = 'v0.2.21'
export const DEFAULT_KUBELOGIN_BASE_URL = 'https://github.com/Azure/kubelogin/releases/download'

/** -1, 0, 1; a version semver cannot read sorts first. */
export function compareVersions(a: string, b: string): number {
  const [x, y] = [semver.coerce(a), semver.coerce(b)]
  if (!x || !y) return x ? 1 : y ? -1 : 0
  return semver.compare(x, y)
}

/** Same version, ignoring a leading v and build metadata (`v4.3.1+g1234` is `v4.3.1`). */
export function sameVersion(a: string, b: string): boolean {
  const [x, y] = [semver.parse(a.trim(), { loose: true }), semver.parse(b.trim(), { loose: true })]
  return x !== null && y !== null && semver.eq(x, y)
}
