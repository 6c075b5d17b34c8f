import { describe, expect, it } from 'vitest'
import type { V1Node, V1Pod } from '@kubernetes/client-node'
import { aciVerdictFromLog, connectorLogHint, containerToLog, describePod, newestPod } from '../../src/virtual-nodes/connector/readiness.js'
import { nodeIsReady, podFailureReason, podIsReady } from '../../src/kubernetes/pods.js'

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
      {
        name: 'vk',
        ready: false,
        restartCount: 3,
        image: 'i',
        imageID: '',
        state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } },
        lastState: { terminated: { exitCode: 1, reason: 'Error' } }
      }
    ]
  })
  it('fails fast on CrashLoopBackOff, with exit code and restarts', () => {
    expect(podFailureReason(crash)).toBe('container vk is CrashLoopBackOff (last exit code 1, Error, 3 restarts): back-off 40s')
  })
  it('fails fast on image pull back-off', () => {
    expect(
      podFailureReason(
        pod({
          phase: 'Pending',
          containerStatuses: [{ name: 'vk', ready: false, restartCount: 0, image: 'i', imageID: '', state: { waiting: { reason: 'ImagePullBackOff' } } }]
        })
      )
    ).toMatch(/ImagePullBackOff/)
  })
  it('keeps waiting while a container is only creating or pulling for the first time', () => {
    expect(
      podFailureReason(
        pod({
          phase: 'Pending',
          containerStatuses: [{ name: 'vk', ready: false, restartCount: 0, image: 'i', imageID: '', state: { waiting: { reason: 'ContainerCreating' } } }]
        })
      )
    ).toBeUndefined()
    expect(
      podFailureReason(
        pod({
          phase: 'Pending',
          containerStatuses: [{ name: 'vk', ready: false, restartCount: 0, image: 'i', imageID: '', state: { waiting: { reason: 'ErrImagePull' } } }]
        })
      )
    ).toBeUndefined()
  })
  it('ignores a pod that is being deleted (a rollout replaces it)', () => {
    expect(podFailureReason({ ...crash, metadata: { ...crash.metadata, deletionTimestamp: new Date() } })).toBeUndefined()
  })
  it('counts a pod ready when running with every container ready', () => {
    expect(podIsReady(pod({ phase: 'Running', containerStatuses: [{ name: 'vk', ready: true, restartCount: 0, image: 'i', imageID: '' }] }))).toBe(true)
    expect(podIsReady(crash)).toBe(false)
  })
  it('judges a rollout by its newest pod, ignoring pods being deleted', () => {
    const at = (name: string, t: string, deleting = false): V1Pod => ({
      metadata: { name, creationTimestamp: new Date(t), ...(deleting ? { deletionTimestamp: new Date() } : {}) }
    })
    expect(
      newestPod([at('old', '2026-01-01T00:00:00Z'), at('new', '2026-01-01T00:01:00Z'), at('newer-but-going', '2026-01-01T00:02:00Z', true)])?.metadata?.name
    ).toBe('new')
    expect(newestPod([])).toBeUndefined()
  })
  it('describes a pod for a failure message', () => {
    expect(describePod(crash)).toBe('pod p: phase Running [vk: waiting (CrashLoopBackOff), ready=false, restarts=3]')
  })
})

describe('connector log hints', () => {
  it('names the role and scope for a 403 AuthorizationFailed', () => {
    const hint = connectorLogHint('StatusCode=403 Code="AuthorizationFailed" Message="The client \'cid\' ... does not have authorization"', ctx)
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

describe("a connector pod with the chart's init container", () => {
  const initFailing = pod({
    phase: 'Pending',
    initContainerStatuses: [
      {
        name: 'init-validation',
        ready: false,
        restartCount: 3,
        image: 'i',
        imageID: '',
        state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=init-validation' } },
        lastState: { terminated: { exitCode: 1, reason: 'Error' } }
      }
    ],
    containerStatuses: [{ name: 'virtual-kubelet', ready: false, restartCount: 0, image: 'v', imageID: '', state: { waiting: { reason: 'PodInitializing' } } }]
  })

  it('reports a failing init container', () => {
    expect(podFailureReason(initFailing)).toBe(
      'container init-validation is CrashLoopBackOff (last exit code 1, Error, 3 restarts): back-off 40s restarting failed container=init-validation'
    )
  })

  it('reads the log of the init container while it has not completed, else of the connector', () => {
    expect(containerToLog(initFailing)?.name).toBe('init-validation')
    const initDone = pod({
      phase: 'Running',
      initContainerStatuses: [
        { name: 'init-validation', ready: true, restartCount: 0, image: 'i', imageID: '', state: { terminated: { exitCode: 0, reason: 'Completed' } } }
      ],
      containerStatuses: [{ name: 'virtual-kubelet', ready: true, restartCount: 2, image: 'v', imageID: '', state: { running: {} } }]
    })
    expect(containerToLog(initDone)?.name).toBe('virtual-kubelet')
  })
})

describe("the connector's first ACI call, read from its log", () => {
  // Lines as azure-aci v1.6.4 (virtual-kubelet v1.11.0 node/podcontroller.go) prints them.
  const denied = String.raw`time="2026-12-02T01:38:31Z" level=error msg="failed to fetch the list of pods from the provider: GET https://management.azure.com/subscriptions/3f2e1d0c-5b4a-4c3d-9e8f-7a6b5c4d3e2f/resourceGroups/MC_rg-aks-local_aks-local_eastus/providers/Microsoft.ContainerInstance/containerGroups\n--------------------------------------------------------------------------------\nRESPONSE 403: 403 Forbidden\nERROR CODE: AuthorizationFailed\n--------------------------------------------------------------------------------\n{\n  \"error\": {\n    \"code\": \"AuthorizationFailed\",\n    \"message\": \"The client 'b1d2e3f4-5a6b-4c7d-8e9f-0a1b2c3d4e5f' with object id '848a5f6c-d7c6-4b2f-8e26-65c2e6f7e30d' does not have authorization to perform action 'Microsoft.ContainerInstance/containerGroups/read' over scope '/subscriptions/3f2e1d0c-5b4a-4c3d-9e8f-7a6b5c4d3e2f/resourceGroups/MC_rg-aks-local_aks-local_eastus/providers/Microsoft.ContainerInstance/containerGroups' or the scope is invalid. If access was recently granted, please refresh your credentials.\"\n  }\n}\n--------------------------------------------------------------------------------\n" method=deleteDanglingPods`
  const started = 'time="2026-12-02T01:38:31Z" level=info msg="starting workers"'

  it('is unknown until the pod controller starts its workers', () => {
    expect(aciVerdictFromLog('time="x" level=info msg="Pod cache in-sync"')).toBeUndefined()
    expect(aciVerdictFromLog(denied)).toBeUndefined()
  })

  it('is ok when the list went through', () => {
    expect(aciVerdictFromLog(['time="x" level=info msg="Pod cache in-sync"', started].join('\n'))).toBe('ok')
  })

  it('names the ARM status, code and message when the list was refused', () => {
    const verdict = aciVerdictFromLog([denied, started].join('\n'))
    expect(verdict).toEqual({
      failure:
        "the connector cannot list container groups in ACI (ARM answered 403: AuthorizationFailed: The client 'b1d2e3f4-5a6b-4c7d-8e9f-0a1b2c3d4e5f' with object id '848a5f6c-d7c6-4b2f-8e26-65c2e6f7e30d' does not have authorization to perform action 'Microsoft.ContainerInstance/containerGroups/read' over scope '/subscriptions/3f2e1d0c-5b4a-4c3d-9e8f-7a6b5c4d3e2f/resourceGroups/MC_rg-aks-local_aks-local_eastus/providers/Microsoft.ContainerInstance/containerGroups' or the scope is invalid. If access was recently granted, please refresh your credentials.)"
    })
    expect(connectorLogHint(denied, ctx)).toContain('az role assignment create --assignee cid --role Contributor')
  })
})
