//! A client for the OCI distribution API (what Docker Hub, GHCR, Gitea/Forgejo and
//! `docker-registry` speak): list a repository's tags, resolve a tag to its digest (for
//! multi-arch indexes too, with each platform's manifest digest). Auth: anonymous, basic, and
//! bearer tokens fetched from the realm a registry names in its `WWW-Authenticate` challenge
//! (anonymously or with basic credentials), as Docker Hub, GHCR and Gitea do. Loopback
//! registries are spoken to over plain HTTP, as Docker does.
//!
//! Every request is counted ([`Client::round_trips`]) and each tag is resolved once per client
//! (a cache), so a catalogue of many recipes asks each registry only what it must.

pub mod reference;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

pub use reference::{ImageRef, RefError};

/// The manifest types asked for when resolving a tag.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Registry errors; messages name the registry, the repository and what to check.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] RefError),
    #[error("{registry}: {message}")]
    Http { registry: String, message: String },
    #[error("{registry}/{repository}: {what} not found")]
    NotFound {
        registry: String,
        repository: String,
        what: String,
    },
    #[error("{registry}: access denied to {repository} ({status}); check the credentials for {registry}")]
    Denied {
        registry: String,
        repository: String,
        status: u16,
    },
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// What a tag resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The digest of what the tag points at (the index for multi-arch images).
    pub digest: String,
    pub media_type: String,
    /// For an index: `(os/arch[/variant], manifest digest)` of each platform.
    pub platforms: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Basic credentials for a registry host.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ********)", self.username)
    }
}

/// A registry client (cheap to share; caches tokens and resolved tags).
pub struct Client {
    http: reqwest::Client,
    config: DockerConfig,
    /// Registry host → what a credential helper answered (asked once).
    from_helpers: tokio::sync::Mutex<HashMap<String, Option<Credentials>>>,
    /// `registry|scope` → `Authorization` header value.
    auth: Mutex<HashMap<String, String>>,
    resolved: Mutex<HashMap<String, Resolved>>,
    trips: AtomicUsize,
}

impl Default for Client {
    fn default() -> Self {
        Self::new(HashMap::new())
    }
}

/// What a Docker client config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`)
/// says about registry credentials: `auths` written by `docker login`, per-registry credential
/// helpers (`credHelpers`) and the default helper (`credsStore`).
#[derive(Debug, Default, Clone)]
pub struct DockerConfig {
    pub auths: HashMap<String, Credentials>,
    /// Registry host → helper name (`docker-credential-<name>`).
    pub helpers: HashMap<String, String>,
    pub store: Option<String>,
}

/// The registry host a config key names: `https://index.docker.io/v1/` → Docker Hub's API host.
fn config_host(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if host == "index.docker.io" || host == "docker.io" {
        reference::DOCKER_HUB.to_string()
    } else {
        host
    }
}

/// Reads a Docker client config (`path`, or the default place); missing or unreadable → empty.
pub fn docker_config(path: Option<&std::path::Path>) -> DockerConfig {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => std::path::PathBuf::from(d).join("config.json"),
            None => match std::env::var_os("HOME") {
                Some(h) => std::path::PathBuf::from(h)
                    .join(".docker")
                    .join("config.json"),
                None => return DockerConfig::default(),
            },
        },
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return DockerConfig::default();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return DockerConfig::default();
    };
    let mut out = DockerConfig::default();
    if let Some(auths) = v.get("auths").and_then(|a| a.as_object()) {
        for (key, entry) in auths {
            let Some(encoded) = entry.get("auth").and_then(|a| a.as_str()) else {
                continue;
            };
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
                continue;
            };
            let Some((user, pass)) = String::from_utf8_lossy(&decoded)
                .split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
            else {
                continue;
            };
            out.auths.insert(
                config_host(key),
                Credentials {
                    username: user,
                    password: pass,
                },
            );
        }
    }
    if let Some(helpers) = v.get("credHelpers").and_then(|a| a.as_object()) {
        for (key, helper) in helpers {
            if let Some(h) = helper.as_str() {
                out.helpers.insert(config_host(key), h.to_string());
            }
        }
    }
    out.store = v
        .get("credsStore")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    out
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Asks a credential helper (`docker-credential-<helper> get`, the server on stdin) for a
/// registry's credentials. `None` when it has none, cannot be run, or holds an identity token
/// (`<token>`), which registries only take through OAuth flows cooper does not speak.
async fn ask_helper(helper: &str, registry: &str) -> Option<Credentials> {
    use tokio::io::AsyncWriteExt;
    let server = if registry == reference::DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    };
    let mut child = tokio::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    stdin.write_all(server.as_bytes()).await.ok()?;
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .ok()?
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let a: HelperAnswer = serde_json::from_slice(&out.stdout).ok()?;
    (a.username != "<token>" && !a.secret.is_empty()).then_some(Credentials {
        username: a.username,
        password: a.secret,
    })
}

/// Selects rustls' crypto provider for the process (ring), once. Needed when more than one
/// provider is compiled in (reqwest brings ring, the WebDriver client aws-lc-rs), where rustls
/// cannot choose by itself; harmless otherwise.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// A client with basic credentials per registry host.
    pub fn new(credentials: HashMap<String, Credentials>) -> Client {
        Self::with_config(DockerConfig {
            auths: credentials,
            ..Default::default()
        })
    }

    /// A client with the credentials of a Docker client config: `auths` first, then the
    /// registry's credential helper, then the default store, each helper asked at most once.
    pub fn with_config(config: DockerConfig) -> Client {
        install_crypto();
        Client {
            http: reqwest::Client::builder()
                .user_agent(concat!("cooper/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            config,
            from_helpers: Default::default(),
            auth: Mutex::new(HashMap::new()),
            resolved: Mutex::new(HashMap::new()),
            trips: AtomicUsize::new(0),
        }
    }

    /// Credentials for a registry host, if any source has them.
    async fn credentials(&self, registry: &str) -> Option<Credentials> {
        if let Some(c) = self.config.auths.get(registry) {
            return Some(c.clone());
        }
        let helper = self
            .config
            .helpers
            .get(registry)
            .or(self.config.store.as_ref())?;
        let mut asked = self.from_helpers.lock().await;
        if let Some(hit) = asked.get(registry) {
            return hit.clone();
        }
        let answer = ask_helper(helper, registry).await;
        asked.insert(registry.to_string(), answer.clone());
        answer
    }

    /// How many HTTP requests this client has made.
    pub fn round_trips(&self) -> usize {
        self.trips.load(Ordering::Relaxed)
    }

    fn base(r: &ImageRef) -> String {
        let scheme = if r.is_loopback() { "http" } else { "https" };
        format!("{scheme}://{}/v2/{}", r.registry, r.repository)
    }

    fn http_err(r: &ImageRef, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Http {
            registry: r.registry.clone(),
            message: e.to_string(),
        }
    }

    /// Sends a request, answering an auth challenge once (basic, or a bearer token from the
    /// challenge's realm for `repository:<repo>:pull`).
    async fn send(
        &self,
        r: &ImageRef,
        method: Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response> {
        let key = format!("{}|{}", r.registry, r.repository);
        for attempt in 0..2 {
            let mut headers = HeaderMap::new();
            if let Some(a) = accept {
                headers.insert(
                    ACCEPT,
                    HeaderValue::from_str(a).map_err(|e| Self::http_err(r, e))?,
                );
            }
            if let Some(v) = self.auth.lock().ok().and_then(|m| m.get(&key).cloned()) {
                headers.insert(
                    AUTHORIZATION,
                    HeaderValue::from_str(&v).map_err(|e| Self::http_err(r, e))?,
                );
            }
            self.trips.fetch_add(1, Ordering::Relaxed);
            let resp = self
                .http
                .request(method.clone(), url)
                .headers(headers)
                .send()
                .await
                .map_err(|e| Self::http_err(r, format!("{url}: {e}")))?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return self.check(r, resp);
            }
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let value = self.answer(r, &challenge).await?;
            if let Ok(mut m) = self.auth.lock() {
                m.insert(key.clone(), value);
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn check(&self, r: &ImageRef, resp: reqwest::Response) -> Result<reqwest::Response> {
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RegistryError::Denied {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                status: resp.status().as_u16(),
            }),
            StatusCode::NOT_FOUND => Err(RegistryError::NotFound {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                what: resp
                    .url()
                    .path()
                    .rsplit('/')
                    .next()
                    .unwrap_or("it")
                    .to_string(),
            }),
            s => Err(Self::http_err(r, format!("{} answered {s}", resp.url()))),
        }
    }

    /// The `Authorization` value answering a challenge.
    async fn answer(&self, r: &ImageRef, challenge: &str) -> Result<String> {
        let creds = self.credentials(&r.registry).await;
        let creds = creds.as_ref();
        let basic = |c: &Credentials| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        };
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return creds.map(basic).ok_or_else(|| RegistryError::Denied {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                status: 401,
            });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Self::http_err(
                r,
                format!("unknown auth challenge {challenge:?}"),
            ));
        }
        let mut fields: HashMap<String, String> = HashMap::new();
        for part in split_params(params) {
            if let Some((k, v)) = part.split_once('=') {
                fields.insert(
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_string(),
                );
            }
        }
        let realm = fields
            .get("realm")
            .ok_or_else(|| Self::http_err(r, "a bearer challenge without a realm"))?;
        let mut query: Vec<(String, String)> = Vec::new();
        if let Some(s) = fields.get("service") {
            query.push(("service".into(), s.clone()));
        }
        query.push((
            "scope".into(),
            fields
                .get("scope")
                .cloned()
                .unwrap_or_else(|| format!("repository:{}:pull", r.repository)),
        ));
        let mut req = self.http.get(realm).query(&query);
        if let Some(c) = creds {
            req = req.header(AUTHORIZATION, basic(c));
        }
        self.trips.fetch_add(1, Ordering::Relaxed);
        let resp = req
            .send()
            .await
            .map_err(|e| Self::http_err(r, format!("token from {realm}: {e}")))?;
        let resp = self.check(r, resp)?;
        let answer: TokenAnswer = resp
            .json()
            .await
            .map_err(|e| Self::http_err(r, format!("token from {realm}: {e}")))?;
        let token = answer
            .token
            .or(answer.access_token)
            .ok_or_else(|| Self::http_err(r, format!("{realm} gave no token")))?;
        Ok(format!("Bearer {token}"))
    }

    /// Every tag of the repository (following `Link` pagination).
    pub async fn tags(&self, image: &ImageRef) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let base = Self::base(image);
        let mut url = format!("{base}/tags/list?n=1000");
        loop {
            let resp = self.send(image, Method::GET, &url, None).await?;
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(';').next())
                .map(|l| {
                    l.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                });
            let list: TagList = resp.json().await.map_err(|e| Self::http_err(image, e))?;
            out.extend(list.tags.unwrap_or_default());
            match next {
                Some(path) if path.starts_with('/') => {
                    let scheme = if image.is_loopback() { "http" } else { "https" };
                    url = format!("{scheme}://{}{path}", image.registry);
                }
                Some(full) if full.starts_with("http") => url = full,
                _ => break,
            }
        }
        Ok(out)
    }

    /// What a tag (or the reference's digest) points at; cached per client.
    pub async fn resolve(&self, image: &ImageRef) -> Result<Resolved> {
        let wanted = image
            .digest
            .clone()
            .unwrap_or_else(|| image.tag_or_latest().to_string());
        let key = format!("{}/{}:{wanted}", image.registry, image.repository);
        if let Some(hit) = self.resolved.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(hit);
        }
        let url = format!("{}/manifests/{wanted}", Self::base(image));
        let resp = self
            .send(image, Method::GET, &url, Some(MANIFEST_TYPES))
            .await?;
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let media_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        let body = resp.bytes().await.map_err(|e| Self::http_err(image, e))?;
        let digest = match header_digest {
            Some(d) => d,
            None => format!("sha256:{}", sha256_hex(&body)),
        };
        let platforms = if media_type.contains("index") || media_type.contains("manifest.list") {
            let index: Index =
                serde_json::from_slice(&body).map_err(|e| Self::http_err(image, e))?;
            index
                .manifests
                .into_iter()
                .map(|m| {
                    let p = m.platform.map(|p| {
                        let mut s = format!("{}/{}", p.os, p.architecture);
                        if let Some(v) = p.variant {
                            s.push('/');
                            s.push_str(&v);
                        }
                        s
                    });
                    (p.unwrap_or_else(|| "unknown".into()), m.digest)
                })
                .collect()
        } else {
            Vec::new()
        };
        let out = Resolved {
            digest,
            media_type,
            platforms,
        };
        if let Ok(mut m) = self.resolved.lock() {
            m.insert(key, out.clone());
        }
        Ok(out)
    }
}

/// Splits `a="x,y", b=z` at commas outside quotes.
fn split_params(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => {
                out.push(std::mem::take(&mut cur));
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// SHA-256 of bytes, as hex (for registries that send no `Docker-Content-Digest`).
fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    #[test]
    fn docker_login_credentials_are_read() {
        let dir = std::env::temp_dir().join(format!("cooper-dockercfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("config.json");
        std::fs::write(
            &cfg,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"Ym90OnNlY3JldA=="},"git.coopcloud.tech":{"auth":"dTpwOng="},"broken":{"auth":"!!"}}}"#,
        )
        .unwrap();
        let c = super::docker_config(Some(&cfg)).auths;
        assert_eq!(c.len(), 2);
        let hub = &c[super::reference::DOCKER_HUB];
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("bot", "secret")
        );
        assert_eq!(
            c["git.coopcloud.tech"].password, "p:x",
            "a password may hold colons"
        );
        assert!(super::docker_config(Some(&dir.join("missing.json")))
            .auths
            .is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn challenge_params_keep_quoted_commas() {
        let p = super::split_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#,
        );
        assert_eq!(p.len(), 3);
        assert!(p[2].contains("pull,push"));
    }
}
