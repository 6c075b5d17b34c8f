// What the main step hands to the post step (GITHUB_STATE): enough to remove what this
// run installed with the saved kubeconfig, and to sign in again (never a token or secret:
// the post step reads those from the inputs) to sweep ACI afterwards.
import * as os from 'node:os'
import * as core from '@actions/core'
import type { ClusterInfo } from '../kubernetes/cluster.js'
import type { KindRecord } from '../virtual-nodes/kind.js'
import type { OsType } from '../virtual-nodes/naming.js'

export interface PostState {
  /** The kubeconfig-path output (deleted by the post step). */
  kubeconfig?: string
  /**
   * The post step's own copy (0600, in workDir), taken when the main step wrote the output:
   * a later step may switch the output's context or delete it, never this copy.
   */
  cleanupKubeconfig?: string
  /** UID of the cluster's kube-system namespace: the post step checks it talks to the same cluster before changing anything. */
  clusterUid?: string
  /** Entra ID cluster: the post step signs in again for a cluster token (the kubeconfig runs kubelogin). */
  entra?: boolean
  helm?: string
  az?: string
  subscriptionId?: string
  workDir?: string
  /** The cluster as ARM described it to the main step (no secret in it): the post step may be unable to ask again. */
  cluster?: ClusterInfo
  /** Each kind of virtual node's own record of what this run installed (kinds.ts names the keys). */
  kinds: Record<string, unknown>
  /** Samples this run applied. */
  samples: Array<{ os: OsType; namespace: string }>
}

const KEY = {
  isPost: 'isPost',
  post: 'post'
}

export function markMainStarted(): void {
  core.saveState(KEY.isPost, 'true')
}

export function isPostStep(): boolean {
  return core.getState(KEY.isPost) === 'true'
}

export function savePostState(state: PostState): void {
  core.saveState(KEY.post, JSON.stringify(state))
}

export function loadPostState(): PostState | undefined {
  const text = core.getState(KEY.post)
  if (!text) return undefined
  return JSON.parse(text) as PostState
}

/** Where the action may write files that the runner removes after the job. */
export function runnerTemp(): string {
  return process.env.RUNNER_TEMP || os.tmpdir()
}

/** Each kind's own record in the post state, saved as soon as the kind sets it. */
export function kindRecords(post: PostState, save: (state: PostState) => void = savePostState): (kind: string) => KindRecord<unknown> {
  return kind => ({
    get: () => post.kinds[kind],
    set: value => {
      if (value === undefined) delete post.kinds[kind]
      else post.kinds[kind] = value
      save(post)
    }
  })
}
