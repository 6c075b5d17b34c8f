// What the main step hands to the post step (GITHUB_STATE): enough to remove what this
// run installed with the saved kubeconfig, and to sign in again (never a token or secret:
// the post step reads those from the inputs) to sweep ACI afterwards.
import * as core from '@actions/core'
import type { ConnectorNames, OsType } from './naming.js'

export interface PostState {
  /** The kubeconfig-path output. */
  kubeconfig?: string
  /** Entra ID cluster: the post step signs in again for a cluster token (the kubeconfig runs kubelogin). */
  entra?: boolean
  helm?: string
  az?: string
  subscriptionId?: string
  workDir?: string
  aciResourceGroup?: string
  /** Connectors this run started to install (recorded before helm runs). */
  connectors: ConnectorNames[]
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
