// What the imitations of Azure's services share: one request and one reply shape, the
// JSON error bodies ARM and Microsoft Entra ID answer with, and the headers each family
// of hosts sends. Each service module (entra, arm, azure-rbac, aci, imds, oidc) is a set
// of pure handlers over these shapes; azure.ts puts them behind HTTPS servers and the
// outbound proxy.
import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'

export interface Reply {
  status: number
  /** Serialized as JSON; undefined = empty body. */
  body?: unknown
  headers?: Record<string, string>
}

export interface Req {
  method: string
  /** Full URL as the client asked for it (host included). */
  url: URL
  headers: IncomingHttpHeaders
  body: string
}

/** Who an ARM request comes from: the verified claims of its bearer token. */
export interface Caller {
  /** `appid` (v1 tokens) or `azp` (v2): the client ID. */
  appId: string
  /** `oid`: the object ID of the service principal or managed identity. */
  objectId: string
  tenantId: string
}

export type HostFamily = 'arm' | 'aad' | 'imds' | 'github'

/** ARM's error envelope: `{"error": {"code", "message"}}`. */
export function armError(status: number, code: string, message: string, headers?: Record<string, string>): Reply {
  return { status, body: { error: { code, message } }, headers }
}

/**
 * Microsoft Entra ID's OAuth error body (the shape MSAL and az parse, AADSTS code first
 * in `error_description`).
 */
export function aadError(status: number, error: string, code: number, description: string): Reply {
  const traceId = randomUUID()
  const correlationId = randomUUID()
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z')
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`
    }
  }
}

/** The response headers each family sends (request ids, caching), so clients see what they would. */
function familyHeaders(family: HostFamily): Record<string, string> {
  const requestId = randomUUID()
  switch (family) {
    case 'arm':
      return {
        'Cache-Control': 'no-cache',
        Pragma: 'no-cache',
        Expires: '-1',
        'x-ms-request-id': requestId,
        'x-ms-correlation-request-id': requestId,
        'x-ms-routing-request-id': `EASTUS:${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}Z:${requestId}`,
        'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
        'X-Content-Type-Options': 'nosniff'
      }
    case 'aad':
      return {
        'Cache-Control': 'no-store, no-cache',
        Pragma: 'no-cache',
        Expires: '-1',
        'x-ms-request-id': requestId,
        'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
        'X-Content-Type-Options': 'nosniff'
      }
    case 'imds':
      return { Server: 'IMDS/150.870.65.1325' }
    case 'github':
      return { 'x-github-request-id': requestId.slice(0, 18).toUpperCase() }
  }
}

export function send(res: ServerResponse, reply: Reply, family: HostFamily): void {
  const text = reply.body === undefined ? '' : JSON.stringify(reply.body)
  res.writeHead(reply.status, {
    ...familyHeaders(family),
    ...(text ? { 'Content-Type': 'application/json; charset=utf-8' } : {}),
    'Content-Length': String(Buffer.byteLength(text)),
    ...reply.headers
  })
  res.end(text)
}
