//! The recipe catalogue, `recipes.json` in abra's format: an object keyed by recipe name, each
//! with its README metadata (`features`), repository addresses and every release with each
//! service's image, tag and short digest. cooper adds `cooper_levels` (the lifecycle level of
//! each tested version); abra ignores fields it does not know, so the file stays abra's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lint::{self, split_image};
use crate::repo::RecipeFiles;

/// `recipes.json`: recipe name → entry.
pub type Catalogue = BTreeMap<String, RecipeMeta>;

/// One service of one release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceMeta {
    /// Short digest (8 hex digits, as abra prints it); empty when not looked up (offline).
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub tag: String,
}

/// Release → service → image.
pub type VersionEntry = BTreeMap<String, BTreeMap<String, ServiceMeta>>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMeta {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub rating: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    #[serde(default)]
    pub backups: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub healthcheck: String,
    #[serde(default)]
    pub image: ImageMeta,
    #[serde(default)]
    pub status: i64,
    #[serde(default)]
    pub tests: String,
    #[serde(default)]
    pub sso: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipeMeta {
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub default_branch: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub features: Features,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub repository: String,
    #[serde(default)]
    pub ssh_url: String,
    /// Oldest first; the last is the latest release.
    #[serde(default)]
    pub versions: Vec<VersionEntry>,
    #[serde(default)]
    pub website: String,
    /// cooper's lifecycle level per tested version (`cooper recipe test`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cooper_levels: BTreeMap<String, u8>,
}

impl RecipeMeta {
    /// Release names, oldest first.
    pub fn version_names(&self) -> Vec<&str> {
        self.versions
            .iter()
            .flat_map(|v| v.keys().map(String::as_str))
            .collect()
    }
}

/// What the README's `<!-- metadata -->` block and the line under its title say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadmeMeta {
    pub description: String,
    pub category: String,
    pub features: Features,
}

/// Reads a recipe README: the `> description` line and the metadata block
/// (`* **Category**: Apps`, `* **Status**: 3, stable`, `* **Image**: [`x`](url), 4, upstream`, …).
pub fn readme_meta(text: &str) -> ReadmeMeta {
    let mut m = ReadmeMeta::default();
    if let Some(d) = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix('>'))
    {
        m.description = d.trim().to_string();
    }
    let block = match (
        text.find("<!-- metadata -->"),
        text.find("<!-- endmetadata -->"),
    ) {
        (Some(a), Some(b)) if a < b => &text[a..b],
        _ => return m,
    };
    for line in block.lines() {
        let line = line.trim().trim_start_matches(['*', '-']).trim();
        let Some(rest) = line.strip_prefix("**") else {
            continue;
        };
        let Some((key, value)) = rest.split_once("**") else {
            continue;
        };
        let value = value.trim_start_matches(':').trim().to_string();
        let f = &mut m.features;
        match key
            .trim()
            .trim_end_matches(':')
            .to_ascii_lowercase()
            .as_str()
        {
            "category" => m.category = value,
            "status" => {
                f.status = value
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            }
            "image" => f.image = image_meta(&value),
            "healthcheck" => f.healthcheck = value,
            "backups" => f.backups = value,
            "email" => f.email = value,
            "tests" => f.tests = value,
            "sso" => f.sso = value,
            _ => {}
        }
    }
    m
}

/// `[`nginx`](https://hub.docker.com/_/nginx), 4, upstream`.
fn image_meta(value: &str) -> ImageMeta {
    let mut out = ImageMeta::default();
    let mut rest = value;
    if let Some(r) = value.strip_prefix('[') {
        if let Some((name, after)) = r.split_once(']') {
            out.image = name.trim_matches('`').to_string();
            rest = after;
            if let Some(u) = after.strip_prefix('(') {
                if let Some((url, after)) = u.split_once(')') {
                    out.url = url.to_string();
                    rest = after;
                }
            }
        }
    }
    let parts: Vec<&str> = rest
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if out.image.is_empty() {
        if let Some(first) = parts.first() {
            out.image = first.trim_matches('`').to_string();
        }
        out.rating = parts.get(1).map(|s| s.to_string()).unwrap_or_default();
        out.source = parts.get(2).map(|s| s.to_string()).unwrap_or_default();
    } else {
        out.rating = parts.first().map(|s| s.to_string()).unwrap_or_default();
        out.source = parts.get(1).map(|s| s.to_string()).unwrap_or_default();
    }
    out
}

/// One service image of a release, before its digest is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceImage {
    pub service: String,
    /// The image reference as interpolated (`nginx:1.27.2`, `x/y:1@sha256:…`).
    pub reference: String,
    pub image: String,
    pub tag: String,
    /// The pin written in the compose file, if any.
    pub pinned: Option<String>,
}

/// Every service's image at a release, over all overlay combinations (`.env.sample` defaults
/// interpolated). An error when no combination loads.
pub fn service_images(files: &RecipeFiles) -> Result<Vec<ServiceImage>, String> {
    let loaded = lint::load_combinations(files);
    let mut out: BTreeMap<String, ServiceImage> = BTreeMap::new();
    for (_, c) in loaded.stacks {
        for (name, svc) in c.services {
            if out.contains_key(&name) || svc.image.is_empty() {
                continue;
            }
            let (image, tag, digest) = split_image(&svc.image);
            out.insert(
                name.clone(),
                ServiceImage {
                    service: name,
                    reference: svc.image.clone(),
                    image: image.to_string(),
                    tag: tag.unwrap_or("latest").to_string(),
                    pinned: digest.map(str::to_string),
                },
            );
        }
    }
    if out.is_empty() {
        if let Some((_, e)) = loaded.failed.into_iter().next() {
            return Err(e);
        }
    }
    Ok(out.into_values().collect())
}

impl ServiceImage {
    /// The catalogue entry, with the pinned digest when there is one (else none yet).
    pub fn meta(&self) -> ServiceMeta {
        ServiceMeta {
            digest: self.pinned.as_deref().map(short_digest).unwrap_or_default(),
            image: self.image.clone(),
            tag: self.tag.clone(),
        }
    }
}

/// `sha256:0123456789ab…` → `01234567`.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_metadata() {
        let m = readme_meta(
            "# Bonfire\n\n> A coop-cloud recipe for deploying Bonfire\n\n<!-- metadata -->\n* **Category**: Apps\n* **Status**: 3, stable\n* **Image**: [`bonfirenetworks/bonfire`](https://hub.docker.com/r/bonfirenetworks/bonfire/tags), 4, upstream\n* **Healthcheck**: Yes\n* **Backups**: No\n* **Email**: 3\n* **Tests**: 2\n* **SSO**: N/A\n<!-- endmetadata -->\n",
        );
        assert_eq!(m.description, "A coop-cloud recipe for deploying Bonfire");
        assert_eq!(m.category, "Apps");
        assert_eq!(m.features.status, 3);
        assert_eq!(
            m.features.image,
            ImageMeta {
                image: "bonfirenetworks/bonfire".into(),
                rating: "4".into(),
                source: "upstream".into(),
                url: "https://hub.docker.com/r/bonfirenetworks/bonfire/tags".into()
            }
        );
        assert_eq!(
            (
                m.features.healthcheck.as_str(),
                m.features.backups.as_str(),
                m.features.email.as_str(),
                m.features.tests.as_str(),
                m.features.sso.as_str()
            ),
            ("Yes", "No", "3", "2", "N/A")
        );
        assert_eq!(readme_meta("# x\n"), ReadmeMeta::default());
        assert_eq!(short_digest("sha256:6244e9fc11aa"), "6244e9fc");
    }

    #[test]
    fn catalogue_entries_read_as_abra_writes_them() {
        let text = r#"{"bonfire": {"category": "Apps", "default_branch": "main", "description": "d",
          "features": {"backups": "", "email": "", "healthcheck": "", "image": {"image": "b", "rating": "4", "source": "upstream", "url": "u"}, "status": 1, "tests": "", "sso": ""},
          "icon": "", "name": "bonfire", "repository": "https://x/bonfire.git",
          "versions": [{"1.0.0+1.0.5": {"app": {"image": "b", "tag": "1.0.5", "digest": "6244e9fc"}}}],
          "website": "https://bonfirenetworks.org"}}"#;
        let c: Catalogue = serde_json::from_str(text).unwrap();
        assert_eq!(c["bonfire"].version_names(), vec!["1.0.0+1.0.5"]);
        assert_eq!(
            c["bonfire"].versions[0]["1.0.0+1.0.5"]["app"].digest,
            "6244e9fc"
        );
        let back = serde_json::to_value(&c).unwrap();
        assert!(back["bonfire"].get("cooper_levels").is_none());
        assert_eq!(back["bonfire"]["ssh_url"], "");
    }
}
