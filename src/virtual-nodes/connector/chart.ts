// The chart helm installs, checked first when it is pinned (the default chart always is, to
// its published digest; a chart of the user's own with `chart-sha256`): the action fetches an https:// (or http://) chart itself, or reads a local .tgz, compares its
// SHA-256 and hands helm the verified file, so helm never sees bytes that were not checked.
// The chart runs the connector with a cluster-admin binding: what it is matters.
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import * as tc from '@actions/tool-cache'
import { errorText, withTimeout } from '../../util/async.js'
import { sha256File } from '../../tools/install.js'
import { DEFAULT_CHART_SHA256, DEFAULT_CHART_URL } from './inputs.js'

/** A chart is a few hundred kB; a download that has not finished in this time has stalled. */
const CHART_DOWNLOAD_TIMEOUT_MS = 2 * 60_000

/** A warning for a chart fetched over plain HTTP, or undefined. */
export function insecureChartWarning(chartUrl: string, sha256: string | undefined): string | undefined {
  if (!/^http:\/\//i.test(chartUrl) || sha256) return undefined
  return `chart-url ${chartUrl} is plain http://: anyone on the network path can change the chart, and the chart's connector runs with a cluster-admin binding. Use https://, or pin it with chart-sha256.`
}

/** What helm installs: `chartUrl` itself, or with `sha256` the verified chart file in `workDir`. */
export async function verifiedChart(chartUrl: string, sha256: string | undefined, workDir: string): Promise<string> {
  if (!sha256) return chartUrl
  const expected = sha256.toLowerCase()
  let file = chartUrl
  if (/^https?:\/\//i.test(chartUrl)) {
    const dir = await fs.mkdtemp(path.join(workDir, 'chart-'))
    const name = path.basename(new URL(chartUrl).pathname) || 'chart.tgz'
    file = path.join(dir, name)
    await withTimeout(tc.downloadTool(chartUrl, file), CHART_DOWNLOAD_TIMEOUT_MS).catch((err: unknown) => {
      throw new Error(`Could not download the chart from ${chartUrl}: ${errorText(err)}. Check chart-url and the runner's network.`)
    })
  } else if ((await fs.stat(file)).isDirectory()) {
    throw new Error(
      `chart-sha256 is set, but chart-url ${chartUrl} is a directory, which has no single digest; package it with \`helm package\` and point chart-url at the .tgz.`
    )
  }
  const actual = await sha256File(file)
  if (actual !== expected && chartUrl === DEFAULT_CHART_URL && expected === DEFAULT_CHART_SHA256) {
    throw new Error(
      `The default chart ${chartUrl} has SHA-256 ${actual}, not ${expected}, the digest of the file the azure-aci project published (its gh-pages charts/index.yaml). ` +
        'Nothing was installed. Something on the way from github.com changed it (a proxy, a mirror): find out what, or set chart-url and chart-sha256 to a chart you trust.'
    )
  }
  if (actual !== expected) {
    throw new Error(
      `chart-sha256 does not match: ${chartUrl} has SHA-256 ${actual}, chart-sha256 is ${expected}. Nothing was installed. ` +
        'If the chart changed on purpose, put its new digest in chart-sha256 (`sha256sum <chart>.tgz`); otherwise find out who changed it.'
    )
  }
  core.info(`Chart ${chartUrl} matches ${expected === DEFAULT_CHART_SHA256 ? 'its published digest' : 'chart-sha256'} (${actual}).`)
  return file
}
