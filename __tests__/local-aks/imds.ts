// The Azure Instance Metadata Service's managed identity endpoint of the agent node's VM
// scale set (http://169.254.169.254/metadata/identity/oauth2/token): it hands tokens to the
// user-assigned identities of the VM, which on AKS is the kubelet identity. The request
// is the one azidentity v1.6.0 sends (managed_identity_client.go createIMDSAuthRequest:
// header Metadata: true, api-version 2018-02-01, resource, client_id); the answer is IMDS's
// (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http).
import { aadError, type Reply, type Req } from './azure-http.js'
import { ACCESS_TOKEN_LIFETIME_S, nowS, type Entra } from './entra.js'

export const IMDS_HOST = '169.254.169.254'

export function handleImds(req: Req, entra: Entra, vmIdentities: string[]): Reply {
  if (req.url.pathname !== '/metadata/identity/oauth2/token')
    return { status: 404, body: { error: 'not_found', error_description: 'The requested path is not found.' } }
  if (req.headers['metadata'] !== 'true') {
    return { status: 400, body: { error: 'invalid_request', error_description: 'Required metadata header not specified' } }
  }
  const resource = req.url.searchParams.get('resource') ?? ''
  if (!resource) return { status: 400, body: { error: 'invalid_request', error_description: "Required query variable 'resource' is missing" } }
  const clientId = req.url.searchParams.get('client_id') ?? (vmIdentities.length === 1 ? vmIdentities[0] : undefined)
  const identity = clientId && vmIdentities.some(id => id.toLowerCase() === clientId.toLowerCase()) ? entra.principal(clientId) : undefined
  if (!identity) return { status: 400, body: { error: 'invalid_request', error_description: 'Identity not found' } }
  if (identity.kind !== 'ManagedIdentity')
    return aadError(400, 'invalid_request', 700016, `Application ${clientId ?? ''} is not a managed identity of this VM.`)
  const now = nowS()
  return {
    status: 200,
    body: {
      access_token: entra.accessToken(identity, resource.replace(/\/\.default$/, ''), 'msi'),
      client_id: identity.clientId,
      expires_in: String(ACCESS_TOKEN_LIFETIME_S),
      expires_on: String(now + ACCESS_TOKEN_LIFETIME_S),
      ext_expires_in: String(ACCESS_TOKEN_LIFETIME_S),
      not_before: String(now),
      resource,
      token_type: 'Bearer'
    }
  }
}
