// ACI needs the Microsoft.ContainerInstance resource provider registered in the
// subscription (the first step of the 2019 Azure doc "Use Virtual Kubelet with AKS"). Registering is idempotent; the action only
// asks for it when it is not Registered and then waits for it to finish.
import * as core from '@actions/core'
import { pollUntil } from '../util/async.js'
import { ArmError, type ArmClient } from './arm.js'

export const ACI_PROVIDER = 'Microsoft.ContainerInstance'
const PROVIDERS_API = '2021-04-01'
const POLL_INTERVAL_MS = 5_000
const REGISTRATION_TIMEOUT_MS = 10 * 60_000

interface Provider {
  registrationState?: string
}

export type RegistrationOutcome = 'already-registered' | 'registered'

export async function ensureProviderRegistered(
  arm: ArmClient,
  options: { namespace?: string; pollMs?: number; timeoutMs?: number } = {}
): Promise<RegistrationOutcome> {
  const namespace = options.namespace ?? ACI_PROVIDER
  const path = arm.subscriptionPath(`/providers/${namespace}`)
  const state = (await arm.get<Provider>(path, PROVIDERS_API)).registrationState
  if (state === 'Registered') {
    core.info(`${namespace} is Registered`)
    return 'already-registered'
  }
  core.info(`${namespace} is ${state ?? 'unknown'}; registering it`)
  try {
    await arm.post(`${path}/register`, PROVIDERS_API)
  } catch (err) {
    if (!(err instanceof ArmError && err.status === 403)) throw err
    throw new Error(
      `${namespace} is not registered in the subscription, and this identity may not register it (that needs ` +
        `Microsoft.Resources/subscriptions/providers/register/action on the whole subscription, e.g. Contributor). ` +
        `Ask a subscription owner to run once: \`az provider register --namespace ${namespace} --wait\`.\n${err.message}`
    )
  }
  let latest: string | undefined
  const registered = await pollUntil(
    async () => {
      latest = (await arm.get<Provider>(path, PROVIDERS_API)).registrationState
      return latest === 'Registered' ? true : undefined
    },
    Date.now() + (options.timeoutMs ?? REGISTRATION_TIMEOUT_MS),
    options.pollMs ?? POLL_INTERVAL_MS
  )
  if (!registered) {
    throw new Error(
      `${namespace} is still ${latest ?? 'unregistered'} after waiting; registration can take several minutes. Re-run the step, or run ` +
        `\`az provider register --namespace ${namespace} --wait\` once for the subscription.`
    )
  }
  core.info(`${namespace} is Registered`)
  return 'registered'
}
