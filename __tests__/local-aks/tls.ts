// Certificates for the local AKS: a CA and leaf certificates signed by it, made with the
// openssl command line (nothing beyond Node built-ins and Debian's openssl). The cluster's
// PKI (API server, client users, kubelets) and the Azure double's (127.0.0.1 and Azure's
// public host names) both come from here.
//
// EC P-256 keys: a fraction of RSA's cost, accepted by Go, Node and Python. The
// extensions satisfy strict verifiers (Python 3.13's VERIFY_X509_STRICT wants the key
// identifiers and a critical CA constraint).
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runChecked } from './proc.js'

export interface CertPair {
  certPath: string
  keyPath: string
}

export interface CertOptions {
  cn: string
  org?: string
  usage: 'server' | 'client'
  ips?: string[]
  dns?: string[]
}

const OPENSSL_TIMEOUT_MS = 30_000

function openssl(args: string[]): Promise<string> {
  return runChecked('openssl', args, { timeoutMs: OPENSSL_TIMEOUT_MS })
}

async function genKey(path: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path])
}

/** A self-signed CA in `dir` (ca.crt, ca.key). */
export async function createCa(dir: string, cn: string): Promise<CertPair> {
  const pair = { certPath: join(dir, 'ca.crt'), keyPath: join(dir, 'ca.key') }
  await genKey(pair.keyPath)
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    pair.keyPath,
    '-out',
    pair.certPath,
    '-days',
    '30',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    '-addext',
    'subjectKeyIdentifier=hash'
  ])
  return pair
}

/** A leaf certificate `<name>.crt`/`<name>.key` in `dir`, signed by `ca`. */
export async function issueCert(dir: string, ca: CertPair, name: string, o: CertOptions): Promise<CertPair> {
  const pair = { certPath: join(dir, `${name}.crt`), keyPath: join(dir, `${name}.key`) }
  const csr = join(dir, `${name}.csr`)
  const ext = join(dir, `${name}.ext`)
  // A random serial per cert: -CAcreateserial races when certs are signed in parallel.
  const serial = `0x${randomBytes(8).toString('hex').replace(/^./, '1')}`
  await genKey(pair.keyPath)
  await openssl(['req', '-new', '-key', pair.keyPath, '-out', csr, '-subj', `/CN=${o.cn}${o.org ? `/O=${o.org}` : ''}`])
  const sans = [...(o.ips ?? []).map(i => `IP:${i}`), ...(o.dns ?? []).map(d => `DNS:${d}`)]
  writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${o.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : [])
    ].join('\n') + '\n'
  )
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.certPath,
    '-CAkey',
    ca.keyPath,
    '-set_serial',
    serial,
    '-out',
    pair.certPath,
    '-days',
    '30',
    '-sha256',
    '-extfile',
    ext
  ])
  return pair
}
