// The connector's chart pin: chart-url and chart-sha256, and for the default chart the
// digest the azure-aci project published (connector/inputs.ts DEFAULT_CHART_SHA256).
import type { ChartPin } from '../../kubernetes/chart-file.js'
import { DEFAULT_CHART_SHA256, DEFAULT_CHART_URL } from './inputs.js'

export function connectorChartPin(chartUrl: string, chartSha256: string | undefined): ChartPin {
  return {
    url: chartUrl,
    sha256: chartSha256,
    urlInput: 'chart-url',
    shaInput: 'chart-sha256',
    published: { url: DEFAULT_CHART_URL, sha256: DEFAULT_CHART_SHA256, where: "the azure-aci project's gh-pages charts/index.yaml" }
  }
}
