// AKS's virtual-node add-on as a kind of virtual node (kind.ts): Linux from AKS's own
// `virtual-node` add-on, enabled over ARM as `az aks enable-addons --addons virtual-node
// --subnet-name` does it (azure-cli acs addonconfiguration.py update_addons: the cluster's
// addonProfiles.aciConnectorLinux = { enabled: true, config: { SubnetName } }, PUT with the
// whole cluster; custom.py then, on a cluster whose VNet is the user's own, assigns the
// add-on's identity Contributor on that VNet: add_virtual_node_role_assignment). The node
// virtual-node-aci-linux is waited for; teardown.ts takes it away only when this action
// enabled it.
import { SUBNET_JOIN } from '../../azure/network.js'
import * as core from '@actions/core'
import { contributorRole, grantRoleAt, principalMay } from '../../azure/role-assignments.js'
import { BUILT_IN_GRANT, checkMayGrant } from '../../azure/role-definitions.js'
import { getCluster, updateManagedCluster, VIRTUAL_NODE_ADDON_KEY, waitClusterSucceeded, type VirtualNodeAddon } from '../../kubernetes/cluster.js'
import {
  outsideGivenLocation,
  type CommonInputs,
  type KindContext,
  type KindFactory,
  type KindModule,
  type KindProbe,
  type KindRecord,
  type KindTeardown,
  type PlannedNode,
  type SampleTarget,
  type VirtualNodeKind
} from '../kind.js'
import { currentRun, useVerdict, letGo, readInstalls, recordUse } from '../installs.js'
import { globToRegExp } from '../../util/glob.js'
import { clusterLabel } from '../naming.js'
import { failedItemsError, logItems, type InstallItemKind, type NodeStatus, type TeardownItem } from '../report.js'
import { waitForNodes } from '../wait.js'
import { DEFAULT_ADDON_SUBNET, type AddonInputs } from './inputs.js'
import { ADDON_NODE, addonPlacement } from './placement.js'
import { judgeAddonPrerequisites, readAddonFacts, type AddonFacts } from './prerequisites.js'
import { ADDON_KIND, ADDON_NOT_READY_GRACE_MS, ADDON_RECORD_KEY, addonGrantDescription, findAddon, provenOurs, removeAddon } from './teardown.js'

type Ctx = KindContext<CommonInputs & AddonInputs>

/** What the post step's cleanup looks at: this action's add-on, which this run enabled (or reused); the install record decides (installs.ts). */
interface AddonRecord {
  /** This run enabled it. */
  enabled: boolean
}

/** What a VNet must let the add-on do: put its container groups into the subnet (Contributor, what az assigns, allows it). */
/** The add-on's connector runs in kube-system as `aci-connector-linux-*` (azure-aci docs/UPGRADE-README.md). */
const ADDON_NAMESPACE = 'kube-system'
const ADDON_POD_PREFIX = 'aci-connector-linux'

class AddonKind implements Omit<VirtualNodeKind, 'name' | 'label'> {
  readonly installs: InstallItemKind[] = ['add-on']
  private facts?: AddonFacts
  private subnetName = DEFAULT_ADDON_SUBNET
  /** The add-on as the install found it: enabled already (then whose), or to be enabled. */
  private found?: { addon?: VirtualNodeAddon; ours: boolean }
  private touched = false

  constructor(
    private readonly ctx: Ctx,
    private readonly record: KindRecord<AddonRecord>
  ) {}

  async checkPrerequisites(): Promise<void> {
    const { ctx } = this
    const addon = ctx.cluster.virtualNodeAddon?.enabled ? ctx.cluster.virtualNodeAddon : undefined
    const given = ctx.inputs.subnetName
    this.subnetName = given ?? addon?.subnetName ?? DEFAULT_ADDON_SUBNET
    const [facts, installs] = await ctx.phase('Virtual-node add-on prerequisites', () =>
      Promise.all([readAddonFacts(ctx.arm, ctx.cluster), readInstalls(ctx.kube)])
    )
    this.facts = facts
    const verdict = judgeAddonPrerequisites(facts, this.subnetName)
    if (addon && given && addon.subnetName && addon.subnetName !== given)
      verdict.problems.push(
        `AKS's virtual-node add-on is already enabled with subnet ${addon.subnetName}; subnet-name is ${given}. Set subnet-name: ${addon.subnetName} (or leave it empty), ` +
          `or disable the add-on first: \`az aks disable-addons -g ${ctx.cluster.resourceGroup} -n ${ctx.cluster.name} --addons virtual-node\`.`
      )
    if (verdict.problems.length > 0)
      throw new Error(
        `Cluster ${ctx.cluster.name} does not meet the virtual-node add-on's prerequisites; nothing was changed:\n${verdict.problems.map(p => `- ${p}`).join('\n')}`
      )
    // The add-on's identity is known only once AKS has made it: whether it will need a grant on a VNet of the user's own cannot be
    // read before the PUT, so the sign-in identity's right to grant there is checked now, before any write.
    if (ctx.inputs.grantConnectorRole && facts.ownVnet && facts.vnet) await checkMayGrant(ctx.arm, facts.vnet.id, BUILT_IN_GRANT)
    this.found = { addon, ours: provenOurs(addon, installs.get(ADDON_RECORD_KEY)) }

    core.info(
      addon
        ? `AKS's virtual-node add-on is enabled already (subnet ${addon.subnetName ?? '?'})${this.found.ours ? ', by this action' : ", not by this action: it is used as it is, and this action's teardown leaves it"}.`
        : `Virtual-node add-on prerequisites met; it will be enabled with subnet ${this.subnetName} of VNet ${verdict.vnet?.name ?? '?'}.`
    )
  }

  planned(): PlannedNode[] {
    return [{ os: 'Linux', node: ADDON_NODE }]
  }

  async install(): Promise<void> {
    const { ctx } = this
    await ctx.phase('Enable the virtual-node add-on', async () => {
      const run = { run: currentRun(), cleanup: ctx.inputs.cleanup }
      const enable = !this.found?.addon
      if (!enable) {
        // Someone's add-on is used, never owned; this action's own gains this run as a user (its cleanup lets go of it).
        if (this.found?.ours) {
          await recordUse(ctx.kube, { kind: ADDON_KIND, name: VIRTUAL_NODE_ADDON_KEY }, run)
          this.record.set({ enabled: false })
        }
        return
      }
      // Recorded before the PUT: a teardown proves the add-on this action's by this record.
      this.touched = true
      await recordUse(ctx.kube, { kind: ADDON_KIND, name: VIRTUAL_NODE_ADDON_KEY }, run, { created: true })
      this.record.set({ enabled: true })
      core.info(`Enabling AKS's virtual-node add-on with subnet ${this.subnetName} (a PUT of the cluster, as az aks enable-addons sends it).`)
      await updateManagedCluster(ctx.arm, ctx.cluster.resourceGroup, ctx.cluster.name, p => {
        p.addonProfiles = { ...(p.addonProfiles ?? {}), [VIRTUAL_NODE_ADDON_KEY]: { enabled: true, config: { SubnetName: this.subnetName } } }
      })
      await waitClusterSucceeded(ctx.arm, ctx.cluster.resourceGroup, ctx.cluster.name, ctx.deadline.at)
      const addon = (await getCluster(ctx.arm, ctx.cluster.resourceGroup, ctx.cluster.name)).virtualNodeAddon
      const identity = addon?.identity?.objectId
      if (identity) await recordUse(ctx.kube, { kind: ADDON_KIND, name: VIRTUAL_NODE_ADDON_KEY, identity }, run)
      await this.ensureVnetRole(identity)
    })
  }

  /**
   * On a cluster whose VNet is the user's own, az assigns the add-on's identity Contributor
   * on that VNet; AKS does it itself for the VNet it made (azure-cli acs custom.py: "the
   * permission is already granted in AKS RP"). Checked; granted with grant-connector-role.
   */
  private async ensureVnetRole(identity: string | undefined): Promise<void> {
    const { ctx } = this
    const vnet = this.facts?.ownVnet ? this.facts.vnet : undefined
    if (!vnet || !identity) return
    let allowed: boolean
    try {
      allowed = await principalMay(ctx.arm, vnet.id, identity, SUBNET_JOIN)
    } catch (err) {
      core.warning(`Could not check the add-on identity's role on VNet ${vnet.name} (${err instanceof Error ? err.message : String(err)}).`)
      return
    }
    if (allowed) return
    if (ctx.inputs.grantConnectorRole) {
      // Contributor, as az assigns it: the add-on's connector does more with the VNet than join its subnet (azure-aci v1.6.4
      // init-validation reads the subnet and delegates it to ACI: virtualNetworks/subnets/read and write), so the
      // least-privilege role of the other kinds does not suffice here.
      const role = await grantRoleAt(ctx.arm, vnet.id, contributorRole(ctx.arm), identity, 'ServicePrincipal', addonGrantDescription(clusterLabel(ctx.inputs)))
      ctx.report.roles = [...(ctx.report.roles ?? []), { ...role, removedWith: 'the add-on (a remove of it)' }]
      core.info(`Assigned Contributor on VNet ${vnet.name} to the add-on's identity ${identity} (grant-connector-role), as az aks enable-addons does.`)
      return
    }
    throw new Error(
      `The virtual-node add-on is enabled, but its identity ${identity} may not use VNet ${vnet.name} (it needs ${SUBNET_JOIN} there): its pods would not start. ` +
        `Assign it Contributor there, as az aks enable-addons does: \`az role assignment create --assignee-object-id ${identity} --assignee-principal-type ServicePrincipal --role Contributor --scope ${vnet.id}\`, ` +
        'or set grant-connector-role: true; then re-run this step (it converges). To take the add-on away instead, run the action with command: remove.'
    )
  }

  waitReady(): Promise<NodeStatus[]> {
    return waitForNodes(
      this.ctx.kube,
      {
        kind: ADDON_KIND,
        label: "AKS's virtual-node add-on",
        nodeNoun: 'add-on node',
        names: [ADDON_NODE],
        agent: { namespace: ADDON_NAMESPACE, nodeOf: pod => (pod.startsWith(ADDON_POD_PREFIX) ? ADDON_NODE : undefined) },
        stays: 'The add-on stays enabled: fix the cause and re-run this step (it converges), or run the action with command: remove.'
      },
      this.ctx.deadline.left()
    )
  }

  samples(): SampleTarget[] {
    return [{ os: 'Linux', node: ADDON_NODE, placement: addonPlacement() }]
  }

  sampleHint(): string | undefined {
    return undefined
  }

  placement(): Record<string, unknown> {
    return { linux: { node: ADDON_NODE, kind: ADDON_KIND, ...addonPlacement() } }
  }

  installedSoFar(): string[] {
    return this.touched ? [`AKS's virtual-node add-on (${VIRTUAL_NODE_ADDON_KEY}, subnet ${this.subnetName}, enabled by this run)`] : []
  }

  remove(): Promise<KindTeardown> {
    return this.teardown('remove')
  }

  sweep(): Promise<KindTeardown> {
    return this.teardown('sweep')
  }

  cleanup(): Promise<KindTeardown> {
    return this.teardown('cleanup')
  }

  private async teardown(op: 'remove' | 'sweep' | 'cleanup'): Promise<KindTeardown> {
    const { ctx } = this
    if (op === 'cleanup' && !this.record.get()) return { items: [], removals: [], problems: [] }
    if (op === 'cleanup') await letGo(ctx.kube, ADDON_KIND, [VIRTUAL_NODE_ADDON_KEY])
    if (op !== 'cleanup' && outsideGivenLocation(ctx.inputs, ctx.cluster, "AKS's virtual-node add-on")) return { items: [], removals: [], problems: [] }
    const dry = op !== 'cleanup' && ctx.inputs.dryRun
    const installs = await readInstalls(ctx.kube)
    const record = installs.get(ADDON_RECORD_KEY)
    const { target, left } = await ctx.phase('Find the virtual-node add-on', () => findAddon(ctx.arm, ctx.cluster, ctx.kube, record))
    if (left.length > 0) core.warning(`AKS's virtual-node add-on was not enabled by this action; it is left as it is: ${left.map(i => i.detail).join('; ')}`)
    const verdict = target && record ? useVerdict(record, op) : undefined
    const kept: TeardownItem | undefined =
      verdict && !verdict.take ? { kind: 'add-on', name: VIRTUAL_NODE_ADDON_KEY, detail: verdict.why, outcome: 'kept' } : undefined
    const skip =
      !target ||
      kept ||
      (op === 'sweep' && !(this.deadLongEnough(target.node?.notReadySince) && globToRegExp(ctx.inputs.connectorName).test(VIRTUAL_NODE_ADDON_KEY)))
    const items = skip ? [...left, ...(kept ? [kept] : [])] : [...(await this.removeFound(target, dry)), ...left]
    logItems(items)
    const error = failedItemsError(
      items,
      op === 'sweep' ? 'Re-run the sweep: it finds them again.' : 'Re-run the removal: it finds what is left from the cluster and Azure.'
    )
    return { items, removals: [], problems: error ? [error] : [] }
  }

  private deadLongEnough(since: Date | undefined): boolean {
    return since !== undefined && Date.now() - since.getTime() >= ADDON_NOT_READY_GRACE_MS
  }

  private removeFound(target: NonNullable<Awaited<ReturnType<typeof findAddon>>['target']>, dryRun: boolean): Promise<TeardownItem[]> {
    const { ctx } = this
    const vnetId = ctx.cluster.network.agentPools.find(p => p.vnetSubnetId)?.vnetSubnetId?.replace(/\/subnets\/[^/]+$/i, '')
    return ctx.phase(dryRun ? 'Dry run: what removing the virtual-node add-on would take' : 'Remove the virtual-node add-on', () =>
      removeAddon(ctx.kube, ctx.arm, ctx.cluster, target, { dryRun, deadline: ctx.deadline.at, clusterLabel: clusterLabel(ctx.inputs), vnetId })
    )
  }
}

export const addonKind: KindFactory<CommonInputs & AddonInputs> = (ctx, _os, record) => new AddonKind(ctx, record as KindRecord<AddonRecord>)

/** For virtual-node-kind auto: the add-on enabled already, or what enabling it needs. Reads only. */
async function probeAddon(ctx: Ctx): Promise<KindProbe> {
  const enabled = ctx.cluster.virtualNodeAddon?.enabled ? ctx.cluster.virtualNodeAddon : undefined
  if (enabled) return { installed: `the add-on is enabled with subnet ${enabled.subnetName ?? '?'}`, problems: [] }
  const facts = await readAddonFacts(ctx.arm, ctx.cluster)
  return { problems: judgeAddonPrerequisites(facts, ctx.inputs.subnetName ?? DEFAULT_ADDON_SUBNET).problems }
}

export const addon: KindModule<CommonInputs & AddonInputs> = { create: addonKind, probe: probeAddon }
