// The chart helm installs, checked first when it is pinned (a kind's default chart always is,
// to the digest its publisher lists; a chart of the user's own with its sha256 input): the
// action fetches an https:// (or http://) chart itself, or reads a local .tgz, compares its
// SHA-256 and hands helm the verified file, so helm never sees bytes that were not checked.
// The charts run their agents with a cluster-admin binding: what they are matters.
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import * as core from '@actions/core'
import * as tc from '@actions/tool-cache'
import { errorText, withTimeout } from '../util/async.js'
import { sha256File } from '../tools/install.js'

/** A chart is a few hundred kB; a download that has not finished in this time has stalled. */
const CHART_DOWNLOAD_TIMEOUT_MS = 2 * 60_000

/** Which inputs name a chart and its digest (chart-url / chart-sha256, v2-chart-url / v2-chart-sha256), and the default chart's published digest. */
export interface ChartPin {
  url: string
  sha256?: string
  urlInput: string
  shaInput: string
  /** The default chart: the digest its publisher lists, and where (for the message when it does not match). */
  published?: { url: string; sha256: string; where: string }
}

/** A warning for a chart fetched over plain HTTP, or undefined. */
export function insecureChartWarning(pin: Pick<ChartPin, 'url' | 'sha256' | 'urlInput' | 'shaInput'>): string | undefined {
  if (!/^http:\/\//i.test(pin.url) || pin.sha256) return undefined
  return `${pin.urlInput} ${pin.url} is plain http://: anyone on the network path can change the chart, and the chart's agent runs with a cluster-admin binding. Use https://, or pin it with ${pin.shaInput}.`
}

/** What helm installs: the chart reference itself, or when pinned the verified chart file in `workDir`. */
export async function verifiedChart(pin: ChartPin, workDir: string): Promise<string> {
  if (!pin.sha256) return pin.url
  const expected = pin.sha256.toLowerCase()
  let file = pin.url
  if (/^https?:\/\//i.test(pin.url)) {
    const dir = await fs.mkdtemp(path.join(workDir, 'chart-'))
    file = path.join(dir, path.basename(new URL(pin.url).pathname) || 'chart.tgz')
    await withTimeout(tc.downloadTool(pin.url, file), CHART_DOWNLOAD_TIMEOUT_MS).catch((err: unknown) => {
      throw new Error(`Could not download the chart from ${pin.url}: ${errorText(err)}. Check ${pin.urlInput} and the runner's network.`)
    })
  } else if ((await fs.stat(file)).isDirectory()) {
    throw new Error(
      `${pin.shaInput} is set, but ${pin.urlInput} ${pin.url} is a directory, which has no single digest; package it with \`helm package\` and point ${pin.urlInput} at the .tgz.`
    )
  }
  const actual = await sha256File(file)
  const published = pin.published?.url === pin.url && pin.published.sha256 === expected ? pin.published : undefined
  if (actual !== expected && published)
    throw new Error(
      `The default chart ${pin.url} has SHA-256 ${actual}, not ${expected}, the digest of the file its publisher lists (${published.where}). ` +
        `Nothing was installed. Something on the way changed it (a proxy, a mirror): find out what, or set ${pin.urlInput} and ${pin.shaInput} to a chart you trust.`
    )
  if (actual !== expected)
    throw new Error(
      `${pin.shaInput} does not match: ${pin.url} has SHA-256 ${actual}, ${pin.shaInput} is ${expected}. Nothing was installed. ` +
        `If the chart changed on purpose, put its new digest in ${pin.shaInput} (\`sha256sum <chart>.tgz\`); otherwise find out who changed it.`
    )
  core.info(`Chart ${pin.url} matches ${published ? 'its published digest' : pin.shaInput} (${actual}).`)
  return file
}
