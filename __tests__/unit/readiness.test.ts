import { describe, expect, it } from 'vitest'
import type { V1Node, V1Pod } from '@kubernetes/client-node'
import { connectorLogHint, describePod, newestPod, nodeIsReady, podFailureReason, podIsReady } from '../../src/readiness.js'

const ctx = { aciResourceGroup: 'MC_rg_aks_eastus', subscriptionId: 'sub-1', identity: 'service principal cid', identityId: 'cid' }

function pod(status: V1Pod['status'], deleting = false): V1Pod {
  return { metadata: { name: 'p', namespace: 'ns', ...(deleting ? { deletionTimestamp: new Date() } : {}) }, status }
}

describe('node readiness', () => {
  it('is Ready only with the Ready condition True', () => {
    const node = (status: string): V1Node => ({ status: { conditions: [{ type: 'Ready', status }] } }) as V1Node
    expect(nodeIsReady(node('True'))).toBe(true)
    expect(nodeIsReady(node('Unknown'))).toBe(false)
    expect(nodeIsReady(undefined)).toBe(false)
  })
})

describe('connector pod health', () => {
  const crash = pod({
    phase: 'Running',
    containerStatuses: [
      { name: 'vk', ready: false, restartCount: 3, image: 'i', imageID: '', state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } }, lastState: { terminated: { exitCode: 1, reason: 'Error' } } }
    ]
  })
  it('fails fast on CrashLoopBackOff, with exit code and restarts', () => {
    expect(podFailureReason(crash)).toBe('container vk is CrashLoopBackOff (last exit code 1, Error, 3 restarts): back-off 40s')
  })
  it('fails fast on image pull back-off', () => {
    expect(podFailureReason(pod({ phase: 'Pending', containerStatuses: [{ name: 'vk', ready: false, restartCount: 0, image: 'i', imageID: '', state: { waiting: { reason: 'ImagePullBackOff' } } }] }))).toMatch(/ImagePullBackOff/)
  })
  it('keeps waiting while a container is only creating or pulling for the first time', () => {
    expect(podFailureReason(pod({ phase: 'Pending', containerStatuses: [{ name: 'vk', ready: false, restartCount: 0, image: 'i', imageID: '', state: { waiting: { reason: 'ContainerCreating' } } }] }))).toBeUndefined()
    expect(podFailureReason(pod({ phase: 'Pending', containerStatuses: [{ name: 'vk', ready: false, restartCount: 0, image: 'i', imageID: '', state: { waiting: { reason: 'ErrImagePull' } } }] }))).toBeUndefined()
  })
  it('ignores a pod that is being deleted (a rollout replaces it)', () => {
    expect(podFailureReason({ ...crash, metadata: { ...crash.metadata, deletionTimestamp: new Date() } })).toBeUndefined()
  })
  it('counts a pod ready when running with every container ready', () => {
    expect(podIsReady(pod({ phase: 'Running', containerStatuses: [{ name: 'vk', ready: true, restartCount: 0, image: 'i', imageID: '' }] }))).toBe(true)
    expect(podIsReady(crash)).toBe(false)
  })
  it('judges a rollout by its newest pod, ignoring pods being deleted', () => {
    const at = (name: string, t: string, deleting = false): V1Pod => ({ metadata: { name, creationTimestamp: new Date(t), ...(deleting ? { deletionTimestamp: new Date() } : {}) } })
    expect(newestPod([at('old', '2026-01-01T00:00:00Z'), at('new', '2026-01-01T00:01:00Z'), at('newer-but-going', '2026-01-01T00:02:00Z', true)])?.metadata?.name).toBe('new')
    expect(newestPod([])).toBeUndefined()
  })
  it('describes a pod for a failure message', () => {
    expect(describePod(crash)).toBe('pod p: phase Running [vk: waiting (CrashLoopBackOff), ready=false, restarts=3]')
  })
})

describe('connector log hints', () => {
  it('names the role and scope for a 403 AuthorizationFailed', () => {
    const hint = connectorLogHint("StatusCode=403 Code=\"AuthorizationFailed\" Message=\"The client 'cid' ... does not have authorization\"", ctx)
    expect(hint).toContain('az role assignment create --assignee cid --role Contributor --scope /subscriptions/sub-1/resourceGroups/MC_rg_aks_eastus')
  })
  it.each([
    ['AADSTS7000222: The provided client secret keys are expired', /expired/],
    ['AADSTS7000215: Invalid client secret provided', /secret is wrong/],
    ['Code="ResourceGroupNotFound"', /does not exist/],
    ['ContainerGroupQuotaReached: quota exceeded', /capacity or quota/],
    ['MissingSubscriptionRegistration', /az provider register/]
  ])('%s', (log, hint) => expect(connectorLogHint(log, ctx)).toMatch(hint))
  it('says nothing when the log has no known cause', () => {
    expect(connectorLogHint('level=info msg="starting"', ctx)).toBeUndefined()
  })
})
