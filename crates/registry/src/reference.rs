//! Image references as compose files write them (`nginx:1.27.2-alpine`,
//! `git.coopcloud.tech/coop-cloud/backup-bot-two:2.0.0@sha256:…`, `localhost:5000/app`),
//! normalised the way Docker does: Docker Hub is `registry-1.docker.io`, a one-part
//! repository there gets `library/`, the tag defaults to `latest`.

use std::fmt;

/// Docker Hub's API host.
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// The registry host (with port), `registry-1.docker.io` for Docker Hub.
    pub registry: String,
    /// The repository path (`library/nginx`, `coop-cloud/backup-bot-two`).
    pub repository: String,
    /// The tag as written; `None` when absent.
    pub tag: Option<String>,
    /// The `@sha256:…` pin, when written.
    pub digest: Option<String>,
}

/// An image reference that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reference:?} is not an image reference: {why}")]
pub struct RefError {
    pub reference: String,
    pub why: String,
}

impl ImageRef {
    /// Parses a reference.
    pub fn parse(text: &str) -> Result<ImageRef, RefError> {
        let err = |why: &str| RefError {
            reference: text.to_string(),
            why: why.to_string(),
        };
        let t = text.trim();
        if t.is_empty() || t.contains(char::is_whitespace) {
            return Err(err("empty or contains spaces"));
        }
        let (rest, digest) = match t.split_once('@') {
            Some((r, d)) => {
                if !d.starts_with("sha256:") || d.len() != 71 {
                    return Err(err("a digest is sha256: and 64 hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (t, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if tag.as_deref() == Some("") {
            return Err(err("empty tag"));
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let registry = if parts.len() > 1
            && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
        {
            let r = parts.remove(0);
            if r == "docker.io" || r == "index.docker.io" {
                DOCKER_HUB.to_string()
            } else {
                r.to_string()
            }
        } else {
            DOCKER_HUB.to_string()
        };
        if parts.is_empty() || parts.iter().any(|p| p.is_empty()) {
            return Err(err("empty repository path"));
        }
        let mut repository = parts.join("/");
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err("repository names are lower case"));
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The tag, or `latest`.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// Whether the registry is on this machine (spoken to over plain HTTP, as Docker does).
    pub fn is_loopback(&self) -> bool {
        let host = self.registry.split(':').next().unwrap_or_default();
        host == "localhost" || host == "127.0.0.1" || host == "[::1]"
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_defaults() {
        let r = ImageRef::parse("nginx:1.27.2-alpine").unwrap();
        assert_eq!(r.registry, DOCKER_HUB);
        assert_eq!(r.repository, "library/nginx");
        assert_eq!(r.tag.as_deref(), Some("1.27.2-alpine"));
        let r = ImageRef::parse("docker.io/bitnami/redis").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            (DOCKER_HUB, "bitnami/redis")
        );
        assert_eq!(r.tag_or_latest(), "latest");
    }

    #[test]
    fn hosts_ports_and_pins() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!(
            "git.coopcloud.tech/coop-cloud/backup-bot-two:2.0.0@{d}"
        ))
        .unwrap();
        assert_eq!(r.registry, "git.coopcloud.tech");
        assert_eq!(r.repository, "coop-cloud/backup-bot-two");
        assert_eq!(r.tag.as_deref(), Some("2.0.0"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        let r = ImageRef::parse("localhost:5000/app").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost:5000", "app")
        );
        assert!(r.is_loopback() && r.tag.is_none());
        assert_eq!(r.to_string(), "localhost:5000/app");
    }

    #[test]
    fn bad_references_say_why() {
        assert!(ImageRef::parse("nginx:")
            .unwrap_err()
            .why
            .contains("empty tag"));
        assert!(ImageRef::parse("Nginx")
            .unwrap_err()
            .why
            .contains("lower case"));
        assert!(ImageRef::parse("nginx@sha256:12")
            .unwrap_err()
            .why
            .contains("64 hex"));
    }
}
