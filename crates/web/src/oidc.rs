//! Optional OpenID Connect login (a co-op's Keycloak, Authentik, …), on the `openidconnect`
//! crate: authorization code flow with PKCE, a nonce and a state kept in the session, the ID
//! token's signature, issuer, audience, expiry and nonce checked by the crate, the access token
//! hash checked when the provider sends one. Claims missing from the ID token (many providers
//! put the email only in userinfo) are asked from the userinfo endpoint.
//!
//! Who gets in is decided by the caller (`pages::oidc_callback`): a person already linked to
//! this identity, or else the one person whose email the provider says is *verified*, who is
//! linked then. Nobody else: an OpenID login never creates an account (invitations do).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

/// How the provider is reached (from `cooper serve --oidc-*`).
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer URL (its `/.well-known/openid-configuration` is read).
    pub issuer: String,
    pub client_id: String,
    /// The client secret (from a file or the environment, never argv); `None` for a public
    /// client (PKCE only).
    pub client_secret: Option<String>,
    /// What the login button says ("Log in with …").
    pub label: String,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "(hidden)"),
            )
            .field("label", &self.label)
            .finish()
    }
}

/// What the session keeps between the redirect to the provider and the way back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub redirect: String,
    pub next: String,
    /// Milliseconds since the epoch: a login left half-way expires.
    pub at: i64,
}

/// How long a login may take at the provider.
pub const PENDING_FOR: Duration = Duration::from_secs(15 * 60);

/// Who the provider says logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `<issuer>#<sub>`: unique across providers.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// The provider's discovery document is read once and kept this long (its keys rotate).
const METADATA_FOR: Duration = Duration::from_secs(15 * 60);

pub struct Oidc {
    pub config: OidcConfig,
    http: openidconnect::reqwest::Client,
    metadata: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.config.fmt(f)
    }
}

impl Oidc {
    pub fn new(config: OidcConfig) -> anyhow::Result<Oidc> {
        IssuerUrl::new(config.issuer.clone()).with_context(|| {
            format!(
                "--oidc-issuer {:?} is not a URL: give the provider's issuer, e.g. https://id.example.org/realms/coop",
                config.issuer
            )
        })?;
        let http = openidconnect::reqwest::ClientBuilder::new()
            // The provider's endpoints answer directly; following redirects would let a
            // response send cooper elsewhere.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .context("an HTTP client for the OpenID provider")?;
        Ok(Oidc {
            config,
            http,
            metadata: tokio::sync::Mutex::new(None),
        })
    }

    async fn metadata(&self, fresh: bool) -> anyhow::Result<CoreProviderMetadata> {
        let mut kept = self.metadata.lock().await;
        if let Some((at, m)) = kept.as_ref() {
            if !fresh && at.elapsed() < METADATA_FOR {
                return Ok(m.clone());
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())?;
        let m = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                anyhow!(
                    "reading the OpenID provider's configuration at {}: {}",
                    self.config.issuer,
                    error_chain(&e)
                )
            })?;
        *kept = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    fn client(
        &self,
        m: CoreProviderMetadata,
        redirect: &str,
    ) -> anyhow::Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
    > {
        Ok(CoreClient::from_provider_metadata(
            m,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(redirect.to_string())?))
    }

    /// The provider's login address, and what to keep until the way back.
    pub async fn begin(&self, redirect: &str, next: &str) -> anyhow::Result<(String, Pending)> {
        let client = self.client(self.metadata(false).await?, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok((
            url.to_string(),
            Pending {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                verifier: verifier.secret().clone(),
                redirect: redirect.to_string(),
                next: next.to_string(),
                at: now_ms(),
            },
        ))
    }

    /// Trades the code for tokens and checks them. The caller has already compared the state.
    pub async fn finish(&self, p: Pending, code: String) -> anyhow::Result<Identity> {
        let m = self.metadata(false).await?;
        let mut client = self.client(m, &p.redirect)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .context("the provider names no token endpoint")?
            .set_pkce_verifier(PkceCodeVerifier::new(p.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| anyhow!("the provider refused the code: {}", error_chain(&e)))?;
        let id_token = token.id_token().ok_or_else(|| {
            anyhow!("the provider sent no ID token (is the openid scope allowed for this client?)")
        })?;
        let nonce = Nonce::new(p.nonce);
        let first = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .cloned();
        let claims = match first {
            Ok(c) => c,
            Err(first) => {
                // The keys may have rotated since discovery: read them again, once.
                client = self.client(self.metadata(true).await?, &p.redirect)?;
                id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map_err(|_| anyhow!("the ID token does not verify: {first}"))?
                    .clone()
            }
        };
        if let Some(expected) = claims.access_token_hash() {
            let verifier = client.id_token_verifier();
            let actual = AccessTokenHash::from_token(
                token.access_token(),
                id_token.signing_alg()?,
                id_token.signing_key(&verifier)?,
            )?;
            if actual != *expected {
                bail!("the access token does not match the ID token's at_hash");
            }
        }
        let mut identity = Identity {
            subject: format!("{}#{}", self.config.issuer, claims.subject().as_str()),
            email: claims.email().map(|e| e.as_str().to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
        };
        if identity.email.is_none() {
            if let Ok(req) =
                client.user_info(token.access_token().clone(), Some(claims.subject().clone()))
            {
                let info: CoreUserInfoClaims = req
                    .request_async(&self.http)
                    .await
                    .map_err(|e| anyhow!("asking the provider's userinfo: {}", error_chain(&e)))?;
                identity.email = info.email().map(|e| e.as_str().to_string());
                identity.email_verified = info.email_verified().unwrap_or(false);
                if identity.name.is_none() {
                    identity.name = info
                        .name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.as_str().to_string());
                }
            }
        }
        Ok(identity)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether a pending login is still young enough.
pub fn fresh(p: &Pending) -> bool {
    now_ms() - p.at < PENDING_FOR.as_millis() as i64
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
