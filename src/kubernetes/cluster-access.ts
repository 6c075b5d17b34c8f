// Cluster access for the action's own Kubernetes and helm calls, and the kubeconfig it
// hands to later steps. A cluster with local accounts gives a kubeconfig with
// credentials in it. A cluster with Microsoft Entra ID integration gives one that runs
// kubelogin: the action then authenticates itself with an Entra token it refreshes
// (refreshing-token.ts), and converts the handed-out kubeconfig for kubelogin.
import * as path from 'node:path'
import * as core from '@actions/core'
import { promises as fs } from 'node:fs'
import type { ArmClient } from '../azure/arm.js'
import { tokenObjectId, type AzureSession, type SignIn } from '../azure/azure-login.js'
import { fetchKubeconfig, tokenFileKubeconfig, writeKubeconfig, type ClusterInfo } from './cluster.js'
import { RefreshingToken } from '../azure/refreshing-token.js'
import { kubeFromString, maskKubeconfig, type Kube } from './kube.js'
import { convertKubeconfig, installKubelogin, laterStepNeeds } from './kubelogin.js'
import { settleAll } from '../util/async.js'

export interface ClusterAccess {
  kube: Kube
  /** The kubeconfig helm runs with. */
  helmKubeconfig: string
  /** The kubeconfig-path output (deleted by the post step). */
  outputKubeconfig: string
  /** The kubeconfig as ARM gave it (its cluster, CA and, without Entra, credentials): the post step's own copy is made from it. */
  kubeconfigText: string
  /** Set on Entra ID clusters. */
  kubelogin?: string
  /** Stops the token refresh (Entra ID clusters). */
  close(): void
}

export interface AccessRequest {
  arm: ArmClient
  cluster: ClusterInfo
  admin: boolean
  signIn: SignIn
  session: AzureSession
  /** Deleted by the post step: the token file and helm's kubeconfig go here. */
  workDir: string
  /** Where the output kubeconfig goes (its own 0700 dir). */
  runnerTemp: string
  kubelogin: { version: string; baseUrl: string }
  /** What the command must be allowed in the cluster, checked up front on an Entra ID cluster. */
  need: KubernetesPermission
  /** Who signed in, for messages (never a secret). */
  signedInAs: string
  /** Told the output kubeconfig's path as soon as it is written (it holds credentials: the post step must know it even if a later call fails). */
  onKubeconfig?: (file: string) => void
}

/** One Kubernetes permission, as a SelfSubjectAccessReview asks it. */
export interface KubernetesPermission {
  verb: string
  group: string
  resource: string
}

/** An install creates the chart's ClusterRoleBinding; a removal deletes namespaces. Either needs cluster-wide admin rights. */
export const INSTALL_PERMISSION: KubernetesPermission = { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' }
export const REMOVE_PERMISSION: KubernetesPermission = { verb: 'delete', group: '', resource: 'namespaces' }

/**
 * On an Entra ID cluster the signed-in identity needs a Kubernetes role of its own (the
 * admin credential is not used); ask the API server whether it has one before changing
 * anything, so a missing role is one clear message, not a Forbidden half-way through.
 */
export async function checkKubernetesRole(
  kube: Kube,
  cluster: ClusterInfo,
  need: KubernetesPermission,
  who: string,
  objectId: string | undefined
): Promise<void> {
  const review = await kube.authz.createSelfSubjectAccessReview({
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { verb: need.verb, group: need.group, resource: need.resource } }
    }
  })
  if (review.status?.allowed) return
  const what = `${need.verb} ${need.resource}${need.group ? `.${need.group}` : ''}`
  const subject = objectId ? `object ID ${objectId}` : 'its object ID'
  throw new Error(
    `${who} has no Kubernetes role on cluster "${cluster.name}" that lets it ${what}, which the action needs. ` +
      (cluster.entra?.azureRbac
        ? `The cluster uses Azure RBAC: assign it "Azure Kubernetes Service RBAC Cluster Admin" on the cluster (${subject}).`
        : `Bind it a cluster-wide role, e.g. \`kubectl create clusterrolebinding aci-connector-deployer --clusterrole cluster-admin --user ${objectId ?? '<object ID>'}\` (${subject}); ` +
          'or, with Azure RBAC enabled on the cluster, assign it "Azure Kubernetes Service RBAC Cluster Admin".') +
      (review.status?.reason ? ` (API server: ${review.status.reason})` : '')
  )
}

/** Token file and helm kubeconfig names inside the work dir. */
const TOKEN_FILE = 'cluster-token'
const HELM_KUBECONFIG = 'helm-kubeconfig.json'
/** kubelogin's token cache for later steps (kubelogin.ts cacheDirVariable). */
const KUBELOGIN_CACHE = 'kubelogin-cache'

/** The AKS server application: the audience of every token an Entra ID cluster accepts. */
export const AKS_SERVER_APP_ID = '6dae42f8-4368-4678-94ff-3960e28e3630'

/** A 0600 file replaced atomically, so helm (which re-reads its token file) never sees half a token. */
export async function writePrivateFile(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`)
  await fs.writeFile(tmp, text, { mode: 0o600 })
  await fs.rename(tmp, file)
}

/**
 * The refreshing Entra token for the cluster, from the action's own sign-in (no az process
 * for a service principal), written to `<workDir>/cluster-token` on every refresh.
 */
export function clusterToken(session: AzureSession, workDir: string): RefreshingToken {
  const tokenFile = path.join(workDir, TOKEN_FILE)
  return new RefreshingToken(
    () => session.getToken(AKS_SERVER_APP_ID),
    t => writePrivateFile(tokenFile, t.token)
  )
}

/**
 * Access with the Entra token: a client that asks for the current token on every request,
 * and a helm kubeconfig naming the token file. Used by the main step and again by the post
 * step. `kubeconfigText` only supplies the cluster (server, CA).
 */
export async function entraAccess(kubeconfigText: string, token: RefreshingToken, workDir: string): Promise<{ kube: Kube; helmKubeconfig: string }> {
  await token.get()
  token.keepFresh()
  const helmKubeconfig = path.join(workDir, HELM_KUBECONFIG)
  const text = tokenFileKubeconfig(kubeconfigText, path.join(workDir, TOKEN_FILE))
  await writePrivateFile(helmKubeconfig, text)
  return { kube: kubeFromString(text, () => token.get()), helmKubeconfig }
}

export async function openClusterAccess(req: AccessRequest): Promise<ClusterAccess> {
  const { cluster } = req
  if (!cluster.entra || req.admin) {
    const text = await fetchKubeconfig(req.arm, cluster, req.admin)
    maskKubeconfig(text)
    const file = await writeKubeconfig(text, req.runnerTemp, cluster.name)
    req.onKubeconfig?.(file)
    return { kube: kubeFromString(text), helmKubeconfig: file, outputKubeconfig: file, kubeconfigText: text, close: () => undefined }
  }
  core.info(
    `Cluster ${cluster.name} uses Microsoft Entra ID${cluster.entra.azureRbac ? ' with Azure RBAC' : ''}${cluster.localAccountsDisabled ? ' and has local accounts disabled' : ''}: the action signs in to it with an Entra token.`
  )
  const token = clusterToken(req.session, req.workDir)
  try {
    // The user kubeconfig only names the cluster and kubelogin; the token comes from the action's sign-in.
    const [text, kubelogin] = await settleAll([
      fetchKubeconfig(req.arm, cluster, false),
      installKubelogin(req.kubelogin.version, req.kubelogin.baseUrl),
      token.get()
    ])
    const { kube, helmKubeconfig } = await entraAccess(text, token, req.workDir)
    await checkKubernetesRole(kube, cluster, req.need, req.signedInAs, tokenObjectId(await token.get()))
    const output = await writeKubeconfig(text, req.runnerTemp, cluster.name)
    req.onKubeconfig?.(output)
    await convertKubeconfig(
      kubelogin,
      output,
      req.signIn,
      { name: req.arm.access.cloudName, authority: req.arm.access.authority },
      path.join(req.workDir, KUBELOGIN_CACHE)
    )
    // The kubeconfig runs `kubelogin` by name, as kubelogin writes it.
    core.addPath(path.dirname(kubelogin))
    core.info(`kubeconfig-path runs kubelogin (${kubelogin}); a later step that uses it needs ${laterStepNeeds(req.signIn)}.`)
    return { kube, helmKubeconfig, outputKubeconfig: output, kubeconfigText: text, kubelogin, close: () => token.stop() }
  } catch (err) {
    token.stop()
    throw err
  }
}
