// Which published Virtual Nodes v2 chart serves a cluster, by its Kubernetes minor, and how
// the action gets it: the chart repository https://microsoft.github.io/virtualnodesOnAzureContainerInstances/
// (github.com/microsoft/virtualnodesOnAzureContainerInstances, index.yaml at commit
// 089513172f2f8503b5a4ac9f0a309c1a487ac403) lists each version's .tgz (a GitHub release
// asset) with its SHA-256; Docs/VersionCompatibility.md says which AKS minors each chart
// series was verified with (the chart version encodes its Kubernetes binaries: "the MAJOR and
// MINOR versions of the build `1.3208` are encoding the K8s binary version ... `1.32.08`").
// No chart declares a kubeVersion, so the action checks the table itself.

export interface V2Chart {
  version: string
  url: string
  sha256: string
}

const release = (version: string, sha256: string): V2Chart => ({
  version,
  url: `https://github.com/microsoft/virtualnodesOnAzureContainerInstances/releases/download/virtualnode-${version}/virtualnode-${version}.tgz`,
  sha256
})

/**
 * The newest published chart of each series (index.yaml digests), newest first; the AKS
 * minors each serves come from its version (minorsOfChartVersion). A minor is served by the
 * newest chart that supports it.
 */
export const V2_CHARTS: V2Chart[] = [
  release('1.3409.26080501', '97b43376a6cfc01b6ac329605adbc4851ad72dc1ee8ac850834f6095a47f8c03'),
  release('1.3307.26033004', '0c1d7dc4b81df62dab258c655bf34f2fc960939cfa917c22fc159a3107093c0a'),
  release('1.3012.25080101', 'fea6abfc5839469808cd54c37e86b38feeefcae19477aee89f77a1595cead2de')
]

/** The Kubernetes minor of a version such as 1.34.4 or v1.33.2. */
export function kubernetesMinor(version: string): number | undefined {
  const m = /^v?1\.(\d+)(?:\.|$)/.exec(version.trim())
  return m ? Number(m[1]) : undefined
}

/**
 * The AKS minors Docs/VersionCompatibility.md verifies a chart version with, by its series
 * (1.<k8s minor><patch>.<build>; ✅ in the table, ❓ not taken): the 1.30 series 1.29–1.32,
 * the 1.33 series 1.32–1.33 and, from 1.3307.26033004, 1.34, the 1.34 series 1.33–1.34.
 */
export function minorsOfChartVersion(version: string): number[] {
  const m = /^1\.(\d\d)\d\d\./.exec(version)
  const series = m ? Number(m[1]) : undefined
  if (series === 34) return [33, 34]
  if (series === 33) return version >= '1.3307.26033004' ? [32, 33, 34] : [32, 33]
  if (series === 32) return [32]
  if (series === 30) return [29, 30, 31, 32]
  if (series === 29) return [29]
  return []
}

/** The published chart for the cluster's Kubernetes version, or why there is none (naming what there is). */
export function chartForCluster(kubernetesVersion: string): { chart: V2Chart } | { problem: string } {
  const minor = kubernetesMinor(kubernetesVersion)
  const found = V2_CHARTS.find(c => minor !== undefined && minorsOfChartVersion(c.version).includes(minor))
  if (found) return { chart: found }
  const supported = [...new Set(V2_CHARTS.flatMap(c => minorsOfChartVersion(c.version)))].sort((a, b) => a - b)
  return {
    problem:
      `the cluster runs Kubernetes ${kubernetesVersion}, and no published Virtual Nodes v2 chart is verified with it: the charts support AKS 1.${supported[0]} to 1.${supported[supported.length - 1]} ` +
      `(${V2_CHARTS.map(c => `${c.version}: 1.${minorsOfChartVersion(c.version).join(', 1.')}`).join('; ')}; Docs/VersionCompatibility.md of github.com/microsoft/virtualnodesOnAzureContainerInstances). ` +
      `Upgrade or choose a supported Kubernetes version (\`az aks get-upgrades\`), or give v2-chart-url for a chart that supports ${kubernetesVersion}`
  }
}
