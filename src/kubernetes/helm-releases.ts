// Helm's own records of a release, read from the cluster: Helm 3 and 4 keep each revision
// as a Secret of type helm.sh/release.v1 named sh.helm.release.v1.<release>.v<revision>,
// labelled owner=helm, name, status, version, holding base64 of gzipped JSON (helm
// pkg/storage/driver/secrets.go and util.go). Reading them costs one API call instead of
// a helm process, and tells whether an upgrade would change anything.
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { gunzipSync } from 'node:zlib'
import type { V1Secret } from '@kubernetes/client-node'
import type { Kube } from './kube.js'

export interface ReleaseRecord {
  chart?: string
  chartVersion?: string
  config?: Record<string, unknown>
  firstDeployed?: string
  status?: string
}

/** A release revision's record: base64 of gzipped JSON in the Secret's `release` key. */
export function decodeReleaseRecord(secret: V1Secret): ReleaseRecord | undefined {
  const raw = secret.data?.release
  if (!raw) return undefined
  try {
    let bytes = Buffer.from(Buffer.from(raw, 'base64').toString('utf8'), 'base64')
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes)
    const body = JSON.parse(bytes.toString('utf8')) as {
      chart?: { metadata?: { name?: string; version?: string } }
      config?: Record<string, unknown>
      info?: { first_deployed?: string; status?: string }
    }
    return {
      chart: body.chart?.metadata?.name,
      chartVersion: body.chart?.metadata?.version,
      config: body.config,
      firstDeployed: body.info?.first_deployed,
      status: body.info?.status
    }
  } catch {
    return undefined
  }
}

/** The newest revision of `release` in `namespace`, or undefined when Helm has none. */
export async function readRelease(kube: Kube, release: string, namespace: string): Promise<ReleaseRecord | undefined> {
  const list = await kube.core.listNamespacedSecret({ namespace, labelSelector: `owner=helm,name=${release}`, fieldSelector: 'type=helm.sh/release.v1' })
  const newest = list.items.sort((a, b) => Number(b.metadata?.labels?.version ?? 0) - Number(a.metadata?.labels?.version ?? 0))[0]
  if (!newest) return undefined
  // The status label is kept in step with the record; it survives a record that fails to decode.
  return decodeReleaseRecord(newest) ?? { status: newest.metadata?.labels?.status }
}

/** A chart's name and version. */
export interface ChartIdentity {
  name: string
  version: string
}

/**
 * The chart's name and version as the chart reference shows them: a packaged chart's
 * file name (`<name>-<version>.tgz`, as `helm package` names it) or a chart directory's
 * Chart.yaml. Undefined when the reference does not say (an OCI or repo reference).
 */
export async function chartIdentity(chartRef: string): Promise<ChartIdentity | undefined> {
  const file = /^([a-z0-9][a-z0-9-]*?)-(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?)\.tgz$/i.exec(path.basename(chartRef.split(/[?#]/)[0] ?? ''))
  if (file) return { name: file[1]!, version: file[2]! }
  const chartYaml = await fs.readFile(path.join(chartRef, 'Chart.yaml'), 'utf8').catch(() => undefined)
  const name = chartYaml && /^name:\s*['"]?([^'"\s]+)/m.exec(chartYaml)?.[1]
  const version = chartYaml && /^version:\s*['"]?([^'"\s]+)/m.exec(chartYaml)?.[1]
  return name && version ? { name, version } : undefined
}

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v
  )
}

/**
 * Why `helm upgrade` must run for this release, or undefined when it would change nothing:
 * deployed, same chart and version, same values.
 */
export function upgradeReason(record: ReleaseRecord | undefined, chart: ChartIdentity | undefined, values: Record<string, unknown>): string | undefined {
  if (!record) return 'not installed'
  if (record.status !== 'deployed') return `its last revision is ${record.status ?? 'unreadable'}`
  if (!chart) return 'the chart reference does not name its version'
  if (record.chart !== chart.name || record.chartVersion !== chart.version)
    return `chart ${record.chart ?? '?'} ${record.chartVersion ?? '?'} -> ${chart.name} ${chart.version}`
  if (canonical(record.config ?? {}) !== canonical(values)) return 'its values change'
  return undefined
}
