// Real ARM answers, replayed through the action's own ARM code. Each fixture under
// __tests__/fixtures/arm-recordings is one interaction of a scenario test Microsoft recorded
// against real Azure (Azure/azure-cli and Azure/azure-cli-extensions, `tests/latest/recordings`),
// trimmed, naming its source file, commit and interaction (README.md there lists them, and the
// calls no recording covers). A server on 127.0.0.1 answers each request with the recorded
// response; the test checks the action asks for the resource az asked for (the path; the
// api-version may differ) and reads the answer as it should.
import { readFileSync } from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ArmClient, getArmAccess, type ArmAccess } from '../../src/azure/arm.js'
import type { AzureSession } from '../../src/azure/azure-login.js'
import { deleteContainerGroup, listContainerGroups } from '../../src/azure/container-groups.js'
import { listVirtualNetworks } from '../../src/azure/network.js'
import { ensureProviderRegistered } from '../../src/azure/provider-registration.js'
import { RefreshingToken } from '../../src/azure/refreshing-token.js'
import { contributorRole, grantedRolesAt, grantRoleAt, principalMay } from '../../src/azure/role-assignments.js'
import {
  ClusterNotFoundError,
  fetchKubeconfig,
  getCluster,
  updateManagedCluster,
  virtualNodeAddonOf,
  waitClusterSucceeded
} from '../../src/kubernetes/cluster.js'
import { openClusterAccess } from '../../src/kubernetes/cluster-access.js'
import { deleteExtension, getExtension, listV2Extensions, putExtension, toExtension, waitForProvisioning } from '../../src/virtual-nodes/v2/extension.js'
import { ensureAciSubnet, readV2Facts } from '../../src/virtual-nodes/v2/prerequisites.js'

const DIR = join(__dirname, '..', 'fixtures', 'arm-recordings')
const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000'

interface Recording {
  source: { repo: string; path: string; commit: string; interaction: number }
  call: string
  request: { method: string; uri: string; body: unknown }
  response: { status: number; headers: Record<string, string>; body: unknown }
}

function recording(name: string): Recording {
  return JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as Recording
}

/** The recorded request's path, without host or query. */
const recordedPath = (r: Recording): string => new URL(r.request.uri).pathname

/** A request this server answers: a method and a path (exact, or a pattern), with one recording or several in turn (the last repeats). */
interface Route {
  method: string
  path: string | RegExp
  replies: Recording[]
}

interface Seen {
  method: string
  path: string
  body: unknown
}

let server: http.Server | undefined
afterEach(() => new Promise<void>(resolve => (server ? server.close(() => resolve()) : resolve())))

/** Serves the routes; anything else is a 404 that names the request (and fails the test's expectations on `unmatched`). */
async function replay(routes: Route[]): Promise<{ arm: ArmClient; seen: Seen[]; unmatched: string[] }> {
  const seen: Seen[] = []
  const unmatched: string[] = []
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      const text = Buffer.concat(chunks).toString('utf8')
      seen.push({ method: req.method ?? '', path: url.pathname, body: text ? (JSON.parse(text) as unknown) : undefined })
      const route = routes.find(
        r => r.method === req.method && (typeof r.path === 'string' ? r.path.toLowerCase() === url.pathname.toLowerCase() : r.path.test(url.pathname))
      )
      if (!route) {
        unmatched.push(`${req.method} ${url.pathname}`)
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NoRecording', message: url.pathname } }))
        return
      }
      const r = route.replies.length > 1 ? route.replies.shift()! : route.replies[0]!
      const body = r.response.body === null || r.response.body === undefined ? '' : JSON.stringify(r.response.body)
      res.writeHead(r.response.status, body ? { 'content-type': 'application/json; charset=utf-8' } : {}).end(body)
    })
  })
  await new Promise<void>(resolve => server?.listen(0, '127.0.0.1', resolve))
  const access: ArmAccess = {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    token: new RefreshingToken(async () => ({ token: 'replay', expiresOnMs: Date.now() + 3_600_000 })),
    subscriptionId: SUBSCRIPTION,
    tenantId: 't',
    cloudName: 'AzureCloud',
    authority: 'https://login.microsoftonline.com'
  }
  return { arm: new ArmClient(access, { sleep: async () => undefined }), seen, unmatched }
}

/** A route answering exactly the recorded request's method and path. */
const at = (r: Recording): Route => ({ method: r.request.method, path: recordedPath(r), replies: [r] })

/** RG and name of a managed cluster from a recorded request. */
function clusterOf(r: Recording): { resourceGroup: string; name: string } {
  const m = /\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/?]+)/i.exec(r.request.uri)
  return { resourceGroup: m![1]!, name: m![2]! }
}

describe('replayed: subscriptions and resource providers', () => {
  it('GET /subscriptions: with several enabled and none named, the sign-in is refused naming them', async () => {
    const list = recording('subscriptions_list')
    const { arm, unmatched } = await replay([{ method: 'GET', path: '/subscriptions', replies: [list] }])
    const session = {
      description: 'sp',
      tenantId: 't',
      cloud: { name: 'AzureCloud', resourceManager: arm.access.endpoint, armResource: 'x', authority: 'a' },
      getToken: async () => ({ token: 'replay', expiresOnMs: Date.now() + 3_600_000 })
    } as unknown as AzureSession
    const enabled = (list.response.body as { value: Array<{ subscriptionId: string; state: string }> }).value.filter(s => s.state === 'Enabled')
    const outcome = getArmAccess(session, { token: 'replay', expiresOnMs: Date.now() + 3_600_000 })
    if (enabled.length === 1) expect((await outcome).subscriptionId).toBe(enabled[0]!.subscriptionId)
    else await expect(outcome).rejects.toThrow(new RegExp(`can see ${enabled.length} subscriptions \\(${enabled[0]!.subscriptionId}`))
    expect(unmatched).toEqual([])
  })

  it('provider GET (NotRegistered), POST register (Registering), then GETs that still say Registering: registered is asked for once and waited on', async () => {
    const get = recording('provider_get_unregistered')
    const register = recording('provider_register')
    const namespace = /providers\/([^/?]+)/.exec(get.request.uri)![1]!
    // After the register the recorded GETs say Registering (the POST's own answer stands for them).
    const { arm, seen, unmatched } = await replay([{ method: 'GET', path: recordedPath(get), replies: [get, register] }, at(register)])
    await expect(ensureProviderRegistered(arm, { namespace, pollMs: 1, timeoutMs: 50 })).rejects.toThrow(`${namespace} is still Registering after waiting`)
    expect(seen.filter(s => s.method === 'POST').map(s => s.path)).toEqual([recordedPath(register)])
    expect(unmatched).toEqual([])
  })
})

describe('replayed: the managed cluster', () => {
  it('GET of a cluster with a kubelet identity, the OIDC issuer and workload identity reads every field the action uses', async () => {
    const get = recording('managedcluster_get_msi_workload_identity')
    const { arm, unmatched } = await replay([at(get)])
    const { resourceGroup, name } = clusterOf(get)
    const body = get.response.body as {
      location: string
      properties: Record<string, unknown> & { identityProfile: { kubeletidentity: { clientId: string; objectId: string } } }
    }
    const c = await getCluster(arm, resourceGroup, name)
    expect(c).toMatchObject({
      name,
      resourceGroup,
      location: body.location,
      nodeResourceGroup: body.properties.nodeResourceGroup,
      fqdn: body.properties.fqdn,
      kubernetesVersion: body.properties.kubernetesVersion,
      enableRBAC: true,
      kubeletIdentityClientId: body.properties.identityProfile.kubeletidentity.clientId,
      kubeletIdentityObjectId: body.properties.identityProfile.kubeletidentity.objectId
    })
    expect(c.network).toMatchObject({ networkPlugin: 'kubenet', workloadIdentity: true, authorizedIpRanges: [] })
    expect(c.network.agentPools).toEqual([{ name: 'nodepool1', vmSize: 'Standard_DS2_v2', osType: 'Linux', vnetSubnetId: undefined }])
    // No addonProfiles key at all (absent, not null): no add-on.
    expect(c.virtualNodeAddon).toBeUndefined()
    expect(unmatched).toEqual([])
  })

  it('GET of a cluster that is not there (404 ResourceNotFound) says which cluster and what to check', async () => {
    const missing = recording('managedcluster_get_404')
    const { arm } = await replay([at(missing)])
    const { resourceGroup, name } = clusterOf(missing)
    await expect(getCluster(arm, resourceGroup, name)).rejects.toThrow(ClusterNotFoundError)
  })

  it('enabling the add-on PUTs the whole cluster with aciConnectorLinux as az does, without the service principal profile, and waits for Succeeded', async () => {
    const put = recording('managedcluster_put_enable_virtual_node')
    const before = recording('managedcluster_get_msi_workload_identity')
    const { resourceGroup, name } = clusterOf(put)
    // The cluster as ARM has it, then (while the PUT runs) Updating, then Succeeded: the PUT's own answer stands for the Updating read.
    const { arm, seen, unmatched } = await replay([{ method: 'GET', path: recordedPath(put), replies: [before, put, before] }, at(put)])
    await updateManagedCluster(arm, resourceGroup, name, p => {
      p.addonProfiles = { ...(p.addonProfiles ?? {}), aciConnectorLinux: { enabled: true, config: { SubnetName: 'default' } } }
    })
    await waitClusterSucceeded(arm, resourceGroup, name, Date.now() + 30_000)
    const sent = seen.find(s => s.method === 'PUT')?.body as { properties: Record<string, unknown>; location: string }
    const recorded = put.request.body as { properties: { addonProfiles: unknown }; location: string }
    expect(sent.properties.addonProfiles).toEqual(recorded.properties.addonProfiles)
    expect(sent.properties).not.toHaveProperty('servicePrincipalProfile')
    expect(sent.location).toBe((before.response.body as { location: string }).location)
    // What the answer says of the add-on, as the action reads it.
    const answered = put.response.body as { properties: { addonProfiles: Parameters<typeof virtualNodeAddonOf>[0] } }
    expect(virtualNodeAddonOf(answered.properties.addonProfiles)).toMatchObject({ enabled: true, subnetName: 'default' })
    const disabled = recording('managedcluster_put_disable_virtual_node').response.body as {
      properties: { addonProfiles: Parameters<typeof virtualNodeAddonOf>[0] }
    }
    expect(virtualNodeAddonOf(disabled.properties.addonProfiles)).toMatchObject({ enabled: false })
    expect(unmatched).toEqual([])
  })

  it('listClusterUserCredential: the kubeconfig is decoded, and written 0600 with the post step told its path at once', async () => {
    const creds = recording('managedcluster_list_cluster_user_credential')
    // The recording's kubeconfig (a real test cluster's) is left out of the fixture; a stand-in of the same shape is served.
    const kubeconfig = [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{ name: c, cluster: { server: "https://127.0.0.1:9" } }]',
      'contexts: [{ name: c, context: { cluster: c, user: u } }]',
      'users: [{ name: u, user: { token: replay-stand-in } }]',
      'current-context: c',
      ''
    ].join('\n')
    const body = creds.response.body as { kubeconfigs: Array<{ name: string; value: string }> }
    const served: Recording = {
      ...creds,
      response: { ...creds.response, body: { kubeconfigs: body.kubeconfigs.map(k => ({ ...k, value: Buffer.from(kubeconfig).toString('base64') })) } }
    }
    const { arm, unmatched } = await replay([at(served)])
    const cluster = { ...clusterOf(creds), entra: undefined } as Parameters<typeof fetchKubeconfig>[1]
    expect(await fetchKubeconfig(arm, cluster, false)).toBe(kubeconfig)
    const dir = await mkdtemp(join(tmpdir(), 'replay-'))
    try {
      const told: string[] = []
      const access = await openClusterAccess({
        arm,
        cluster: cluster,
        admin: false,
        signIn: { kind: 'ambient' },
        session: {} as AzureSession,
        workDir: dir,
        runnerTemp: dir,
        kubelogin: { version: 'v0', baseUrl: 'http://127.0.0.1:9' },
        need: { verb: 'create', group: '', resource: 'namespaces' },
        signedInAs: 'replay',
        onKubeconfig: file => told.push(file)
      })
      expect(told).toEqual([access.outputKubeconfig])
      expect((await stat(access.outputKubeconfig)).mode & 0o777).toBe(0o600)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    expect(unmatched).toEqual([])
  })
})

describe('replayed: container groups', () => {
  it('the list is read with each group’s tags, and a DELETE (200 with the deleted group) succeeds', async () => {
    const list = recording('containergroups_list')
    const del = recording('containergroup_delete')
    const rg = /resourceGroups\/([^/]+)/.exec(list.request.uri)![1]!
    const { arm, seen, unmatched } = await replay([at(list), at(del)])
    const groups = await listContainerGroups(arm, rg)
    const recorded = (list.response.body as { value: Array<{ name: string; tags?: Record<string, string> }> }).value
    expect(groups.map(g => g.name)).toEqual(recorded.map(g => g.name))
    expect(groups[0]?.tags ?? {}).toEqual(recorded[0]?.tags ?? {})
    const name = recordedPath(del).split('/').pop()!
    await deleteContainerGroup(arm, rg, name)
    expect(seen.filter(s => s.method === 'DELETE').map(s => s.path)).toEqual([recordedPath(del)])
    expect(unmatched).toEqual([])
  })
})

describe('replayed: role assignments', () => {
  it("a principal's assignments and their role definitions answer whether it may act (Reader may read, not write)", async () => {
    const assignments = recording('role_assignment_list_principal_filter')
    const definitions = recording('role_definition_list_by_name')
    const scope = recordedPath(assignments).replace(/\/providers\/Microsoft\.Authorization\/roleAssignments$/, '')
    const a = (assignments.response.body as { value: Array<{ properties: { roleDefinitionId: string; principalId: string } }> }).value[0]!
    // No recording GETs a role definition by its id (az lists them by name): the listed definition of the
    // same shape is served for it, with the assignment's own role id and its permissions as ARM lists them for Reader.
    const reader = (definitions.response.body as { value: Array<Record<string, unknown>> }).value[0]!
    const byId: Recording = {
      ...definitions,
      response: {
        ...definitions.response,
        body: {
          ...reader,
          id: a.properties.roleDefinitionId,
          properties: { ...(reader.properties as object), permissions: [{ actions: ['*/read'], notActions: [] }] }
        }
      }
    }
    const { arm, seen, unmatched } = await replay([
      { method: 'GET', path: recordedPath(assignments), replies: [assignments] },
      { method: 'GET', path: new URL(`https://x${a.properties.roleDefinitionId}`).pathname, replies: [byId] }
    ])
    expect(await principalMay(arm, scope, a.properties.principalId, 'Microsoft.ContainerInstance/containerGroups/read')).toBe(true)
    expect(await principalMay(arm, scope, a.properties.principalId, 'Microsoft.ContainerInstance/containerGroups/write')).toBe(false)
    expect(seen[0]?.path).toBe(recordedPath(assignments))
    expect(unmatched).toEqual([])
  })

  it('a PUT answers 201 (assigned) or 409 RoleAssignmentExists (it already was): both are success', async () => {
    const created = recording('role_assignment_put_201')
    const exists = recording('role_assignment_put_409_exists')
    const { arm, unmatched } = await replay([
      { method: 'PUT', path: /\/cli_role_assign000001\/providers\/Microsoft\.Authorization\/roleAssignments\/[^/]+$/i, replies: [created] },
      { method: 'PUT', path: /\/virtualNetworks\/[^/]+\/providers\/Microsoft\.Authorization\/roleAssignments\/[^/]+$/i, replies: [exists] }
    ])
    const scopeOf = (r: Recording): string => recordedPath(r).replace(/\/providers\/Microsoft\.Authorization\/roleAssignments\/[^/]+$/, '')
    const principal = (created.request.body as { properties: { principalId: string } }).properties.principalId
    expect(await grantRoleAt(arm, scopeOf(created), contributorRole(arm), principal, 'ServicePrincipal')).toMatchObject({
      outcome: 'created',
      role: 'Contributor'
    })
    expect(await grantRoleAt(arm, scopeOf(exists), contributorRole(arm), principal, 'ServicePrincipal')).toMatchObject({ outcome: 'existed' })
    expect(unmatched).toEqual([])
  })

  it('atScope() lists the assignments at a scope; none carries this action’s description, so none is named as its grant', async () => {
    const list = recording('role_assignment_list_atscope')
    const scope = recordedPath(list).replace(/\/providers\/Microsoft\.Authorization\/roleAssignments$/, '')
    const { arm, unmatched } = await replay([at(list)])
    expect(await grantedRolesAt(arm, scope, 'Granted by aks-aci-connector-action (grant-connector-role) to the ACI connector of AKS cluster rg/aks')).toEqual(
      []
    )
    expect(unmatched).toEqual([])
  })
})

describe('replayed: cluster extensions (Microsoft.KubernetesConfiguration)', () => {
  // The recorded extensions sit on an Arc cluster or a Fleet hub (no recording has one on an AKS
  // cluster); the answer's shape is the same, so the extensions part of the path is matched.
  const extensions = /\/providers\/Microsoft\.KubernetesConfiguration\/extensions$/i
  const extension = /\/providers\/Microsoft\.KubernetesConfiguration\/extensions\/[^/]+$/i
  const cluster = { resourceGroup: 'rg', name: 'aks' }

  it('a list envelope with nextLink: null, an extension Creating with aksAssignedIdentity null, systemData read', async () => {
    const list = recording('k8s_extension_list')
    const creating = recording('k8s_extension_get_creating_identity_null')
    const empty = recording('k8s_extension_list_empty_after_delete')
    const { arm, unmatched } = await replay([
      { method: 'GET', path: extensions, replies: [list, empty] },
      { method: 'GET', path: extension, replies: [creating] }
    ])
    // Not microsoft.virtualnodes (dapr): read, and not taken for v2.
    expect(await listV2Extensions(arm, cluster)).toEqual([])
    const e = await getExtension(arm, cluster, 'dapr')
    expect(e).toMatchObject({ name: 'dapr', provisioningState: 'Creating', statuses: [], principalId: undefined })
    expect(toExtension((list.response.body as { value: Parameters<typeof toExtension>[0][] }).value[0]!).provisioningState).toBe('Creating')
    expect(await listV2Extensions(arm, cluster)).toEqual([])
    expect(unmatched).toEqual([])
  })

  it('a create is the body az k8s-extension create sends, in its shape, and its 201 Creating answer (identity null) is taken', async () => {
    const put = recording('k8s_extension_put_201')
    const { arm, seen, unmatched } = await replay([{ method: 'PUT', path: extension, replies: [put] }])
    await putExtension(arm, cluster, 'aci-virtual-nodes', 2)
    const sent = seen[0]?.body as { properties: Record<string, unknown> }
    const recorded = put.request.body as { properties: Record<string, unknown> }
    // Every property the action sends is one az sends, with the same shape.
    for (const [key, value] of Object.entries(sent.properties)) {
      expect(Object.keys(recorded.properties)).toContain(key)
      expect(typeof value).toBe(typeof recorded.properties[key])
    }
    expect(sent.properties).toMatchObject({
      extensionType: 'microsoft.virtualnodes',
      scope: { cluster: { releaseNamespace: 'vn-system' } },
      configurationSettings: { replicaCount: '2' }
    })
    expect(toExtension(put.response.body as Parameters<typeof toExtension>[0])).toMatchObject({ provisioningState: 'Creating', principalId: undefined })
    expect(unmatched).toEqual([])
  })

  it("a Failed extension's reason is read from statuses[] (it has no errorInfo) and said", async () => {
    const failed = recording('k8s_extension_get_failed')
    const { arm } = await replay([{ method: 'GET', path: extension, replies: [failed] }])
    const message = (failed.response.body as { properties: { statuses: Array<{ message: string }> } }).properties.statuses[0]!.message
    await expect(waitForProvisioning(arm, cluster, 'cli-test-flux', Date.now() + 30_000)).rejects.toThrow(message.trim())
    await expect(waitForProvisioning(arm, cluster, 'cli-test-flux', Date.now() + 30_000)).rejects.toThrow('InstallationFailed')
  })

  it('a DELETE answered 200 (no async headers), then gone: deleted', async () => {
    const del = recording('k8s_extension_delete_force')
    const creating = recording('k8s_extension_get_creating_identity_null')
    // The recordings re-list instead of reading the deleted extension: ARM's 404 for a resource that is not there stands for that read.
    const gone = recording('managedcluster_get_404')
    const { arm, seen } = await replay([
      {
        method: 'GET',
        path: extension,
        replies: [
          {
            ...creating,
            response: {
              ...creating.response,
              body: {
                ...(creating.response.body as object),
                properties: { ...(creating.response.body as { properties: object }).properties, provisioningState: 'Succeeded' }
              }
            }
          },
          gone
        ]
      },
      { method: 'DELETE', path: extension, replies: [del] }
    ])
    await deleteExtension(arm, cluster, 'dapr', Date.now() + 30_000)
    expect(seen.map(s => s.method)).toEqual(['GET', 'DELETE', 'GET'])
  })
})

describe('replayed: networks and VM sizes', () => {
  it("a resource group's VNets with their subnets, and a subnet PUT with the ACI delegation that goes Updating, then Succeeded", async () => {
    const vnets = recording('virtualnetworks_list_rg')
    const put = recording('subnet_put_delegation')
    const done = recording('subnet_get_succeeded')
    const rg = /resourceGroups\/([^/]+)/.exec(vnets.request.uri)![1]!
    // The action names its subnet virtualnodes-aci-subnet (VirtualNodes.py's name); the recorded one is another name in a VNet of the same shape.
    const { arm, seen, unmatched } = await replay([
      at(vnets),
      { method: 'PUT', path: /\/subnets\/[^/]+$/i, replies: [put] },
      { method: 'GET', path: /\/subnets\/[^/]+$/i, replies: [put, done] }
    ])
    const listed = await listVirtualNetworks(arm, rg)
    const recorded = (
      vnets.response.body as { value: Array<{ name: string; properties: { addressSpace: { addressPrefixes: string[] }; subnets: Array<{ name: string }> } }> }
    ).value
    expect(listed.map(v => v.name)).toEqual(recorded.map(v => v.name))
    expect(listed[0]?.addressPrefixes).toEqual(recorded[0]?.properties.addressSpace.addressPrefixes)
    expect(listed[0]?.subnets.map(s => s.name)).toEqual(recorded[0]?.properties.subnets.map(s => s.name))
    const vnetId = recordedPath(put).replace(/\/subnets\/[^/]+$/, '')
    await ensureAciSubnet(
      arm,
      {
        action: 'create',
        vnet: { id: vnetId, name: 'vent000003', resourceGroup: 'clitest.rg000001', addressPrefixes: [], subnets: [] },
        prefix: '10.0.0.0/24'
      },
      Date.now() + 30_000
    )
    const sent = seen.find(s => s.method === 'PUT')
    expect(sent?.path).toBe(`${vnetId}/subnets/virtualnodes-aci-subnet`)
    expect(
      (sent?.body as { properties: { delegations: Array<{ properties: { serviceName: string } }> } }).properties.delegations[0]?.properties.serviceName
    ).toBe('Microsoft.ContainerInstance/containerGroups')
    expect(unmatched).toEqual([])
  })

  it("a region's VM sizes and a provider's registration, as Virtual Nodes v2's prerequisites read them", async () => {
    const sizes = recording('compute_vmsizes_list')
    const provider = recording('provider_kubernetesconfiguration_get')
    const vnets = recording('virtualnetworks_list_rg')
    const location = /locations\/([^/]+)\/vmSizes/.exec(sizes.request.uri)![1]!
    const { arm, unmatched } = await replay([at(sizes), at(provider), { method: 'GET', path: /\/virtualNetworks$/i, replies: [vnets] }])
    const cluster = { name: 'aks', resourceGroup: 'rg', location, nodeResourceGroup: 'MC_rg', network: { agentPools: [] } } as unknown as Parameters<
      typeof readV2Facts
    >[1]
    const facts = await readV2Facts(arm, cluster)
    const recorded = (sizes.response.body as { value: Array<{ name: string; numberOfCores: number; memoryInMB: number }> }).value
    expect(facts.vmSizes.map(v => [v.name, v.numberOfCores, v.memoryInMB])).toEqual(recorded.map(v => [v.name, v.numberOfCores, v.memoryInMB]))
    expect(facts.providers['Microsoft.KubernetesConfiguration']).toBe((provider.response.body as { registrationState: string }).registrationState)
    expect(unmatched).toEqual([])
  })
})
