//! What a backup of an app saves, read from its stack's backupbot labels exactly as recipes
//! write them (per service, as implementations read them in practice):
//!
//! - `backupbot.backup` — `true` (often `${ENABLE_BACKUPS:-true}`, already interpolated) backs the
//!   service's named volumes up; `false` is an explicit "no";
//! - `backupbot.backup.volumes.<volume>` — `false` leaves that volume out;
//! - `backupbot.backup.volumes.<volume>.path` — only these paths (comma-separated, relative to
//!   the volume root);
//! - `backupbot.backup.path` — the older form: absolute paths in the container, mapped onto the
//!   volumes mounted there;
//! - `backupbot.backup.pre-hook|post-hook`, `backupbot.restore.pre-hook|post-hook` — commands
//!   run in the service's running container;
//! - `cooper.backup.check` (cooper's own) — a command that checks restored data: `backup
//!   verify` runs it in a throwaway container of the service's image with the restored scratch
//!   volumes mounted where the service mounts its volumes; exit 0 means the data is good.
//!
//! Volumes that no label covers are reported, so a backup that silently skips a database cannot
//! happen unnoticed.

use serde::Serialize;

use crate::compose::Compose;

/// One volume in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumePlan {
    /// The compose key (`db-data`).
    pub volume: String,
    /// The engine's name (`<stack>_db-data`, or the volume's `name:`).
    pub swarm_name: String,
    /// Where the service mounts it.
    pub mounted_at: String,
    /// Paths relative to the volume root; empty means the whole volume.
    pub paths: Vec<String>,
    /// Left out by `backupbot.backup.volumes.<volume>=false`.
    pub excluded: bool,
}

/// One service's part of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePlan {
    pub service: String,
    /// `backupbot.backup` as written: `Some(true|false)`, or `None` when absent.
    pub enabled: Option<bool>,
    pub volumes: Vec<VolumePlan>,
    pub pre_hook: Option<String>,
    pub post_hook: Option<String>,
    pub restore_pre_hook: Option<String>,
    pub restore_post_hook: Option<String>,
    /// `cooper.backup.check`: the recipe's data check for restored volumes.
    pub check: Option<String>,
    /// The service's image (the data check runs in it).
    pub image: String,
}

/// The backup plan of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupPlan {
    pub stack: String,
    /// Services with `backupbot.backup=true`, in name order.
    pub services: Vec<ServicePlan>,
    /// Named volumes of services without any `backupbot.backup` label: nothing saves them.
    pub uncovered: Vec<(String, String)>,
    /// Everything else worth knowing (unknown labels, paths that match no volume, …).
    pub warnings: Vec<String>,
}

fn truthy(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// Reads the plan from a loaded stack.
pub fn plan(stack: &str, compose: &Compose) -> BackupPlan {
    let mut out = BackupPlan {
        stack: stack.to_string(),
        services: Vec::new(),
        uncovered: Vec::new(),
        warnings: Vec::new(),
    };
    for (name, svc) in &compose.services {
        let labels = &svc.deploy.labels;
        let named: Vec<&crate::compose::ServiceVolume> = svc
            .volumes
            .iter()
            .filter(|v| v.kind == "volume" && !v.source.is_empty())
            .collect();
        let enabled = match labels.get("backupbot.backup") {
            None => None,
            Some(v) => match truthy(v) {
                Some(b) => Some(b),
                None => {
                    out.warnings.push(format!(
                        "service {name}: backupbot.backup={v:?} is neither true nor false; treated as false"
                    ));
                    Some(false)
                }
            },
        };
        for key in labels.keys() {
            if key == "backupbot.backup.command" {
                out.warnings.push(format!(
                    "service {name}: backupbot.backup.command is not part of the backup labels and is \
                     ignored; use backupbot.backup.pre-hook"
                ));
            }
        }
        if enabled.is_none() {
            for v in &named {
                out.uncovered.push((name.clone(), v.source.clone()));
            }
            continue;
        }
        if enabled == Some(false) {
            continue;
        }
        let legacy: Vec<String> = labels
            .get("backupbot.backup.path")
            .map(|p| {
                p.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut volumes = Vec::new();
        for v in &named {
            let def = compose.volumes.get(&v.source);
            let swarm_name = match def {
                Some(d) if !d.name.is_empty() => d.name.clone(),
                _ => format!("{stack}_{}", v.source),
            };
            let excluded = labels
                .get(&format!("backupbot.backup.volumes.{}", v.source))
                .is_some_and(|x| truthy(x) == Some(false));
            let mut paths: Vec<String> = labels
                .get(&format!("backupbot.backup.volumes.{}.path", v.source))
                .map(|p| {
                    p.split(',')
                        .map(|s| s.trim().trim_start_matches('/').to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let target = v.target.trim_end_matches('/');
            for l in &legacy {
                if let Some(rest) = l.strip_prefix(target) {
                    if rest.is_empty() || rest.starts_with('/') {
                        let rel = rest.trim_start_matches('/');
                        if !rel.is_empty() {
                            paths.push(rel.to_string());
                        }
                    }
                }
            }
            volumes.push(VolumePlan {
                volume: v.source.clone(),
                swarm_name,
                mounted_at: v.target.clone(),
                paths,
                excluded,
            });
        }
        for l in &legacy {
            let covered = named.iter().any(|v| {
                let t = v.target.trim_end_matches('/');
                l.strip_prefix(t)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            });
            if !covered {
                out.warnings.push(format!(
                    "service {name}: backupbot.backup.path {l} is not inside a named volume; it cannot be saved"
                ));
            }
        }
        if named.is_empty() {
            out.warnings.push(format!(
                "service {name}: backupbot.backup is on but the service mounts no named volume"
            ));
        } else if volumes.iter().all(|v| v.excluded) {
            out.warnings.push(format!(
                "service {name}: backups are on but every volume is excluded"
            ));
        }
        let hook = |k: &str| labels.get(k).filter(|v| !v.trim().is_empty()).cloned();
        out.services.push(ServicePlan {
            service: name.clone(),
            enabled,
            volumes,
            pre_hook: hook("backupbot.backup.pre-hook"),
            post_hook: hook("backupbot.backup.post-hook"),
            restore_pre_hook: hook("backupbot.restore.pre-hook"),
            restore_post_hook: hook("backupbot.restore.post-hook"),
            check: hook("cooper.backup.check"),
            image: svc.image.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envfile::EnvFile;
    use crate::repo::RecipeFiles;
    use std::path::Path;

    fn load(recipe: &str, compose_file: &str) -> Compose {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/recipes")
            .join(recipe);
        let files = RecipeFiles::from_dir(recipe, &dir).unwrap();
        let env = EnvFile::parse(&format!(
            "DOMAIN=a.example.org\nCOMPOSE_FILE={compose_file}\nPG_BACKUP_VERSION=v1\n"
        ))
        .unwrap();
        crate::stack::load("a.example.org", &env, &files)
            .unwrap()
            .compose
    }

    #[test]
    fn bonfire_postgres_hooks_and_paths() {
        let p = plan(
            "a_example_org",
            &load("bonfire", "compose.yml:compose.postgres.yml"),
        );
        let db = p.services.iter().find(|s| s.service == "db").unwrap();
        assert_eq!(db.pre_hook.as_deref(), Some("/pg_backup.sh backup"));
        assert_eq!(
            db.restore_post_hook.as_deref(),
            Some("/pg_backup.sh restore")
        );
        assert_eq!(db.volumes[0].swarm_name, "a_example_org_db-data");
        assert_eq!(db.volumes[0].paths, vec!["backup.sql"]);
        let app = p.services.iter().find(|s| s.service == "app").unwrap();
        assert_eq!(app.volumes[0].volume, "upload-data");
        assert!(app.volumes[0].paths.is_empty(), "the whole volume");
        assert!(p.uncovered.is_empty());
    }

    #[test]
    fn uncovered_volumes_and_legacy_labels_are_reported() {
        let p = plan("g", &load("gaseous", "compose.yml"));
        assert!(p.services.is_empty());
        let uncovered: Vec<String> = p
            .uncovered
            .iter()
            .map(|(s, v)| format!("{s}:{v}"))
            .collect();
        assert_eq!(uncovered, vec!["app:gs", "db:gsdb"]);

        let p = plan("l", &load("llamenos", "compose.yml"));
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("backupbot.backup.command is not part")));
        assert!(p.warnings.iter().any(|w| w.contains(
            "service app: backupbot.backup is on but the service mounts no named volume"
        )));
        let minio = p.services.iter().find(|s| s.service == "minio").unwrap();
        assert_eq!(minio.volumes[0].volume, "minio-data");
        assert!(
            minio.volumes[0].paths.is_empty(),
            "backupbot.backup.path=/data is the whole volume"
        );
        let uncovered: Vec<&str> = p.uncovered.iter().map(|(s, _)| s.as_str()).collect();
        assert!(uncovered.contains(&"relay"), "{uncovered:?}");
    }
}
