// GitHub Actions' OIDC token service as a job sees it: ACTIONS_ID_TOKEN_REQUEST_URL (with
// `audience` appended by @actions/core's getIDToken) answers `{"value": <JWT>}` to the job's
// ACTIONS_ID_TOKEN_REQUEST_TOKEN. The token carries the claims GitHub documents
// (https://docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect#understanding-the-oidc-token)
// and lives 10 minutes; Entra ID checks it against a federated credential.
import { randomUUID, timingSafeEqual } from 'node:crypto'
import type { Reply, Req } from './azure-http.js'
import { jwk, newSigner, nowS, signJwt, verifyJwt, type Claims, type Signer } from './entra.js'

export const GITHUB_OIDC_ISSUER = 'https://token.actions.githubusercontent.com'
export const DEFAULT_OIDC_SUBJECT = 'repo:octo/repo:ref:refs/heads/main'
const TOKEN_LIFETIME_S = 600

export interface GithubOidc {
  readonly requestToken: string
  readonly signer: Signer
  verify(jwt: string): Claims | undefined
  handle(req: Req): Reply
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

export function createGithubOidc(): GithubOidc {
  const signer = newSigner()
  const requestToken = randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '')
  return {
    requestToken,
    signer,
    verify: jwt => verifyJwt(signer, jwt),
    handle(req: Req): Reply {
      if (req.url.pathname === '/.well-known/jwks') return { status: 200, body: { keys: [jwk(signer)] } }
      if (req.url.pathname !== '/_apis/idtoken') return { status: 404, body: { message: 'Not Found' } }
      // The auth scheme is case-insensitive (RFC 7235 section 2.1): @actions/core sends "Bearer",
      // kubelogin "bearer" (pkg/internal/token/githubactionscredential.go), and both work on GitHub.
      const [scheme, credential] = (req.headers.authorization ?? '').split(' ')
      if (scheme?.toLowerCase() !== 'bearer' || !safeEqual(credential ?? '', requestToken)) return { status: 401, body: { message: 'Unauthorized' } }
      const iat = nowS()
      const token = signJwt(signer, {
        jti: randomUUID(),
        sub: DEFAULT_OIDC_SUBJECT,
        aud: req.url.searchParams.get('audience') ?? 'https://github.com/octo',
        ref: 'refs/heads/main',
        sha: 'f'.repeat(40),
        repository: 'octo/repo',
        repository_owner: 'octo',
        run_id: '1',
        run_number: '1',
        run_attempt: '1',
        actor: 'octocat',
        workflow: 'ci',
        event_name: 'push',
        ref_type: 'branch',
        job_workflow_ref: 'octo/repo/.github/workflows/ci.yml@refs/heads/main',
        runner_environment: 'self-hosted',
        iss: GITHUB_OIDC_ISSUER,
        nbf: iat - 5,
        iat,
        exp: iat + TOKEN_LIFETIME_S
      })
      return { status: 200, body: { count: token.length, value: token } }
    }
  }
}
