//! Recipe maintenance: `cooper recipe upgrade` — newer image tags of the same shape for each
//! service image of a recipe's working tree, looked up in the images' registries, and the
//! rewrite of the `image:` lines (tag and `@sha256:` pin) with the rest of each file kept.

use std::collections::BTreeMap;

use cooper_recipe::abra_dir::{write_atomic, AbraDir};
use cooper_recipe::upgrade::{self, Bump, ImageEdit};
use cooper_registry::{Client, ImageRef};
use serde::Serialize;

use crate::{OpsError, Result};

/// What `recipe upgrade` proposes for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageProposal {
    /// The compose files the image appears in.
    pub files: Vec<String>,
    /// The image as written.
    pub image: String,
    /// Newer tags of the same shape: the newest patch, minor and major step.
    pub candidates: Vec<(Bump, String)>,
    /// The edit at the chosen level (none when nothing is newer within it).
    pub chosen: Option<ImageEdit>,
    /// Why an image is left alone (variables, no version in the tag, registry errors).
    pub note: Option<String>,
    /// Every tag the registry has for the image, versions in order (`recipe upgrade -a`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// The value of an `image:` line (quotes and comment removed).
fn image_value(line: &str) -> Option<String> {
    let t = line.trim_start();
    let rest = t
        .strip_prefix("image:")
        .or_else(|| t.strip_prefix("- image:"))?;
    let rest = rest.split(" #").next().unwrap_or_default().trim();
    let v = rest.trim_matches(|c| c == '"' || c == '\'');
    (!v.is_empty()).then(|| v.to_string())
}

/// Proposals for every image of the recipe's compose files (working tree), at `level`
/// (`Bump::Patch`: only patch steps; `Minor`: up to minor; `Major`: any).
pub async fn propose(
    abra: &AbraDir,
    recipe: &str,
    level: Bump,
    client: &Client,
) -> Result<Vec<ImageProposal>> {
    let repo = abra.recipe(recipe)?;
    let files = repo.worktree()?;
    let sample_keys: Vec<String> = files
        .text(".env.sample")
        .and_then(|t| cooper_recipe::envfile::EnvFile::parse(&t).ok())
        .map(|e| e.entries().map(|x| x.key.clone()).collect())
        .unwrap_or_default();
    let mut images: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in files
        .paths()
        .filter(|p| cooper_recipe::compose::is_compose_file(p))
    {
        let text = files.text(path).unwrap_or_default();
        for line in text.lines() {
            if let Some(v) = image_value(line) {
                images.entry(v).or_default().push(path.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for (image, mut in_files) in images {
        in_files.dedup();
        let mut p = ImageProposal {
            files: in_files,
            image: image.clone(),
            candidates: Vec::new(),
            tags: Vec::new(),
            chosen: None,
            note: None,
        };
        // An image written with variables is looked at through the defaults it gives them.
        let effective = if image.contains('$') {
            match effective_image(&image, &sample_keys) {
                Ok(e) => e,
                Err(why) => {
                    p.note = Some(why);
                    out.push(p);
                    continue;
                }
            }
        } else {
            image.clone()
        };
        let r = match ImageRef::parse(&effective) {
            Ok(r) => r,
            Err(e) => {
                p.note = Some(e.to_string());
                out.push(p);
                continue;
            }
        };
        let Some(tag) = r.tag.clone() else {
            p.note = Some("no tag; pin one first".into());
            out.push(p);
            continue;
        };
        if upgrade::TagShape::parse(&tag).is_none() {
            p.note = Some(format!("the tag {tag} holds no version; not upgraded"));
            out.push(p);
            continue;
        }
        let tags = match client.tags(&r).await {
            Ok(t) => t,
            Err(e) => {
                p.note = Some(e.to_string());
                out.push(p);
                continue;
            }
        };
        p.candidates = upgrade::candidates(&tag, &tags);
        p.tags = upgrade::sorted(tags);
        if let Some((_, new_tag)) = p.candidates.iter().rfind(|(b, _)| *b <= level) {
            if effective == image {
                p.chosen = Some(edit_for(client, &image, new_tag).await?);
            } else {
                match default_edit(&image, &tag, new_tag) {
                    Some(e) => p.chosen = Some(e),
                    None => {
                        p.note = Some(format!(
                            "{effective} → {new_tag}: the version is spread over several variables; change it by hand"
                        ))
                    }
                }
            }
        }
        out.push(p);
    }
    Ok(out)
}

/// The image an `image:` value with variables names when each variable takes the default the
/// compose file gives it. Refused when a variable is a setting of `.env.sample` (its value is
/// the operator's, not the recipe's), has no default, or the image is pinned by digest.
fn effective_image(image: &str, sample_keys: &[String]) -> std::result::Result<String, String> {
    let vars = cooper_recipe::interpolate::variables(image);
    if let Some(v) = vars.iter().find(|v| sample_keys.contains(v)) {
        return Err(format!(
            "set through {v}, a setting in .env.sample; change its value there"
        ));
    }
    if let Some(v) = vars
        .iter()
        .find(|v| !image.contains(&format!("${{{v}:-")) && !image.contains(&format!("${{{v}-")))
    {
        return Err(format!(
            "set through {v}, which has no default; not upgraded"
        ));
    }
    let e = cooper_recipe::interpolate::substitute(image, |_| None)
        .map_err(|e| format!("set through variables: {e}"))?;
    if e.is_empty() || e.contains('$') || e.contains('@') || e.ends_with(':') || e.contains(":-") {
        return Err("set through variables without usable defaults; not upgraded".into());
    }
    Ok(e)
}

/// The edit for an image written with variables: the tag (or, failing that, its version
/// numbers) must occur once in what is written, e.g. the default of `${APP_VERSION:-1.0.6}`.
fn default_edit(image: &str, old_tag: &str, new_tag: &str) -> Option<ImageEdit> {
    let replace = |old: &str, new: &str| {
        (!old.is_empty() && image.matches(old).count() == 1).then(|| image.replacen(old, new, 1))
    };
    let to = replace(old_tag, new_tag).or_else(|| {
        let (a, b) = (
            upgrade::TagShape::parse(old_tag)?,
            upgrade::TagShape::parse(new_tag)?,
        );
        let join = |s: &upgrade::TagShape| {
            s.numbers
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(".")
        };
        replace(&join(&a), &join(&b))
    })?;
    Some(ImageEdit {
        from: image.to_string(),
        to,
    })
}

/// The edit that moves `image` (as written) to `new_tag`: the tag replaced and, for an
/// `@sha256:` pin, the pin replaced by the new tag's digest from the registry.
pub async fn edit_for(client: &Client, image: &str, new_tag: &str) -> Result<ImageEdit> {
    let r = ImageRef::parse(image).map_err(|e| OpsError::Refused(e.to_string()))?;
    let tag = r
        .tag
        .clone()
        .ok_or_else(|| OpsError::Refused(format!("{image} has no tag to replace")))?;
    let mut to = image.replacen(&format!(":{tag}"), &format!(":{new_tag}"), 1);
    if let Some(old) = &r.digest {
        let mut pinned = r.clone();
        pinned.tag = Some(new_tag.to_string());
        pinned.digest = None;
        let resolved = client
            .resolve(&pinned)
            .await
            .map_err(|e| OpsError::Failed(format!("resolving {image} → {new_tag}: {e}")))?;
        to = to.replace(old.as_str(), &resolved.digest);
    }
    Ok(ImageEdit {
        from: image.to_string(),
        to,
    })
}

/// Writes the chosen edits into the recipe's compose files; returns the files changed.
pub fn apply(abra: &AbraDir, recipe: &str, proposals: &[ImageProposal]) -> Result<Vec<String>> {
    let repo = abra.recipe(recipe)?;
    let root = abra.recipes_dir().join(&repo.name);
    let edits: Vec<ImageEdit> = proposals.iter().filter_map(|p| p.chosen.clone()).collect();
    let mut files: Vec<&String> = proposals
        .iter()
        .filter(|p| p.chosen.is_some())
        .flat_map(|p| p.files.iter())
        .collect();
    files.sort();
    files.dedup();
    let mut changed = Vec::new();
    for f in files {
        let path = root.join(f);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| OpsError::Failed(format!("reading {}: {e}", path.display())))?;
        let (new, n) = upgrade::rewrite_images(&text, &edits);
        if n > 0 && new != text {
            write_atomic(&path, new.as_bytes())?;
            changed.push(f.clone());
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn images_with_variable_defaults() {
        let bonfire = "${CONTAINER_REGISTRY:-bonfirenetworks/bonfire}:${APP_VERSION:-1.0.6}-${APP_FLAVOUR:-social}-${APP_PLATFORM:-amd64}";
        assert_eq!(
            super::effective_image(bonfire, &[]).unwrap(),
            "bonfirenetworks/bonfire:1.0.6-social-amd64"
        );
        assert_eq!(
            super::default_edit(bonfire, "1.0.6-social-amd64", "1.0.7-social-amd64")
                .unwrap()
                .to,
            bonfire.replace("APP_VERSION:-1.0.6", "APP_VERSION:-1.0.7")
        );
        let postgis = "${DB_DOCKER_IMAGE:-ghcr.io/baosystems/postgis}:${DB_DOCKER_VERSION:-17-3.5}";
        assert_eq!(
            super::default_edit(postgis, "17-3.5", "18-3.5").unwrap().to,
            postgis.replace("17-3.5", "18-3.5")
        );
        let err = super::effective_image(bonfire, &["APP_VERSION".to_string()]).unwrap_err();
        assert!(
            err.contains("APP_VERSION, a setting in .env.sample"),
            "{err}"
        );
        assert!(super::effective_image("${IMAGE}:1.0", &[]).is_err());
        // 1.1 appears twice: ambiguous, left alone.
        assert!(super::default_edit("x/${A:-1.1}-1.1:1.1", "1.1", "1.2").is_none());
    }

    #[test]
    fn image_values() {
        assert_eq!(
            super::image_value("    image: \"nginx:1.2\"  # x").as_deref(),
            Some("nginx:1.2")
        );
        assert_eq!(
            super::image_value("  - image: a/b:1").as_deref(),
            Some("a/b:1")
        );
        assert_eq!(super::image_value("    command: image: x"), None);
    }
}
