// The runner masks a registered secret only as the exact string. A tool may print the same
// secret in another form: a Kubernetes Secret's data is base64 (the azure-aci chart renders
// `clientSecret: {{ .Values.providers.azure.clientKey | b64enc }}`), a JSON body escapes it,
// a URL or form body percent-encodes it. Each form is registered too.
import * as core from '@actions/core'
import type { Inputs } from './inputs.js'

/** The forms a secret may be printed in: as it is, base64 (standard and URL-safe), JSON-escaped, percent-encoded. */
export function secretForms(secret: string): string[] {
  if (!secret) return []
  const bytes = Buffer.from(secret, 'utf8')
  const forms = [
    secret,
    bytes.toString('base64'),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    JSON.stringify(secret).slice(1, -1),
    encodeURIComponent(secret),
    // application/x-www-form-urlencoded (a token request body) writes a space as +.
    new URLSearchParams({ s: secret }).toString().slice(2)
  ]
  return [...new Set(forms)].filter(f => f.length > 0)
}

/** Masks a secret in every form it may be printed in. */
export function maskSecret(secret: string | undefined): void {
  if (!secret) return
  for (const form of secretForms(secret)) core.setSecret(form)
}

/** The secrets among the inputs, masked before anything is printed. */
export function maskInputSecrets(inputs: Inputs): void {
  if (inputs.signIn.kind === 'secret') maskSecret(inputs.signIn.clientSecret)
  maskSecret(inputs.connectorClientSecret)
}
