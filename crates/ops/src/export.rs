//! `app export`: an app's data with everything another co-op needs to run it — one tar file
//! holding a manifest (`cooper-export.json`: the recipe and its version, the snapshot, each
//! volume's files and bytes, the data's SHA-256, the settings left out), a README for people,
//! the app's non-secret settings (`settings.env`, its `.env` with secret-looking values left
//! out) and the data itself (`data.tar`: the snapshot as `restic dump` writes it, paths as on
//! the server). `cooper app restore <domain> --archive FILE` reads it back: into an existing
//! app, or — with `--server` — into a new one, provisioned from the archive's settings at the
//! archive's recipe version (see [`crate::provision`]).
//!
//! Secrets are not in the archive (the engine never gives their values back); the manifest
//! names them, and the receiving side generates its own or is given them.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use cooper_recipe::abra_dir::AbraDir;
use cooper_recipe::envfile::EnvFile;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::op::{self, Envelope, Op};
use crate::{stack_of, OpsError, Reporter, Result};

/// The archive format this cooper writes and reads.
pub const FORMAT: &str = "cooper-export/1";
/// The manifest's name in the archive (its first member).
pub const MANIFEST: &str = "cooper-export.json";
/// The data's name in the archive.
pub const DATA: &str = "data.tar";
/// The settings' name in the archive.
pub const SETTINGS: &str = "settings.env";
const README: &str = "README.txt";

/// What an export holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    /// The app's domain where it was exported.
    pub domain: String,
    pub server: String,
    pub recipe: String,
    /// The recipe release its settings are for (none: an unreleased working tree).
    pub version: Option<String>,
    /// The stack name the data's paths carry (`/var/lib/docker/volumes/<stack>_<vol>/_data`).
    pub stack: String,
    pub snapshot: SnapshotInfo,
    pub volumes: Vec<VolumeInfo>,
    pub data: DataInfo,
    pub settings: SettingsInfo,
    /// The recipe's secrets by name; their values are not in the archive.
    pub secrets: Vec<String>,
    pub made_at: String,
    pub made_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub id: String,
    pub time: String,
}

/// One volume in the data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeInfo {
    /// The volume's key in the recipe's compose file (`data`).
    pub key: String,
    /// Its name on the server it came from (`<stack>_<key>`).
    pub name: String,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataInfo {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettingsInfo {
    pub file: String,
    /// Settings whose values were left out (they look secret); set them again after a move.
    pub left_out: Vec<String>,
}

/// Whether a `.env` key's value looks secret (and stays out of an export). Secret *versions*
/// (`SECRET_DB_PASSWORD_VERSION`) are not secret and travel.
pub fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    if k.ends_with("_VERSION") {
        return false;
    }
    [
        "PASSWORD", "PASSWD", "SECRET", "TOKEN", "PRIVATE", "API_KEY", "_KEY",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k == "KEY"
}

/// The `.env` text with secret-looking values left out (their lines commented, saying so),
/// and the keys left out.
pub fn non_secret_settings(env_text: &str) -> Result<(String, Vec<String>)> {
    let env =
        EnvFile::parse(env_text).map_err(|e| OpsError::Refused(format!("the app's .env: {e}")))?;
    let secret: Vec<String> = env
        .values()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| looks_secret(k))
        .collect();
    let mut out = String::new();
    for line in env_text.lines() {
        let key = line
            .trim_start()
            .strip_prefix("export ")
            .unwrap_or(line.trim_start())
            .split('=')
            .next()
            .unwrap_or("")
            .trim();
        if !line.trim_start().starts_with('#') && secret.iter().any(|s| s == key) {
            out.push_str(&format!(
                "# {key}= (left out of the export: it looks secret; set it again)\n"
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok((out, secret))
}

/// What `export` made.
#[derive(Debug, Clone)]
pub struct Exported {
    pub manifest: Manifest,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Writes the export of an app's newest (or the named) snapshot to `dest` (mode 0600, written
/// through a temporary file beside it, so a failure leaves no half archive).
pub async fn export(
    abra: &AbraDir,
    domain: &str,
    snapshot: Option<&str>,
    dest: &Path,
    reporter: &mut dyn Reporter,
) -> Result<Exported> {
    let envelope = Envelope::read("app export", domain);
    let dest = dest.to_path_buf();
    let done = op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        let t = std::time::Instant::now();
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| OpsError::Failed(format!("creating {}: {e}", dir.display())))?;
        let data = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| OpsError::Failed(format!("writing in {}: {e}", dir.display())))?;
        // Buffered: the helper's output arrives in small chunks, and each write to a tokio
        // file is a trip to the blocking pool.
        let mut file = tokio::io::BufWriter::with_capacity(
            4 << 20,
            tokio::fs::File::from_std(
                data.reopen()
                    .map_err(|e| OpsError::Failed(format!("writing in {}: {e}", dir.display())))?,
            ),
        );
        op.reporter.info(&format!(
            "reading {} of {domain} from its backups",
            snapshot.unwrap_or("the newest snapshot")
        ));
        let snap = crate::backup::download(abra, domain, snapshot, None, &mut file).await?;
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(|e| OpsError::Failed(format!("writing the data: {e}")))?;
        drop(file);
        op.record.step(
            "dump",
            format!("snapshot {} ({})", snap.short_id, snap.time),
            true,
            t,
        );
        let app = &op.app;
        let stack = stack_of(app);
        let env_text = std::fs::read_to_string(&app.at.path)
            .map_err(|e| OpsError::Failed(format!("reading {}: {e}", app.at.path.display())))?;
        let (settings, left_out) = non_secret_settings(&env_text)?;
        let secrets = crate::secrets::specs(abra, domain, false)
            .map(|(_, l)| l.into_iter().map(|s| s.key).collect())
            .unwrap_or_default();
        let head = Manifest {
            format: FORMAT.into(),
            domain: domain.into(),
            server: app.at.server.clone(),
            recipe: app.recipe.name.clone(),
            version: app.recipe.version.clone(),
            stack: stack.clone(),
            snapshot: SnapshotInfo {
                id: snap.id.clone(),
                time: snap.time.clone(),
            },
            volumes: Vec::new(),
            data: DataInfo {
                file: DATA.into(),
                bytes: 0,
                sha256: String::new(),
            },
            settings: SettingsInfo {
                file: SETTINGS.into(),
                left_out,
            },
            secrets,
            made_at: crate::record::now(),
            made_by: format!("cooper {}", env!("CARGO_PKG_VERSION")),
        };
        let t = std::time::Instant::now();
        let dest2 = dest.clone();
        let (manifest, bytes) = tokio::task::spawn_blocking(move || {
            let (volumes, bytes, sha256) = describe_data(data.path(), &stack)?;
            let manifest = Manifest {
                volumes,
                data: DataInfo {
                    bytes,
                    sha256,
                    ..head.data
                },
                ..head
            };
            let total = write_archive(&dest2, &manifest, &settings, data.path())?;
            Ok::<_, OpsError>((manifest, total))
        })
        .await
        .map_err(|e| OpsError::Failed(format!("writing the archive: {e}")))??;
        op.record.step(
            "archive",
            format!(
                "{} ({} bytes; {} volume(s))",
                dest.display(),
                bytes,
                manifest.volumes.len()
            ),
            true,
            t,
        );
        op.record
            .details
            .insert("snapshot".into(), serde_json::json!(manifest.snapshot.id));
        op.record
            .details
            .insert("sha256".into(), serde_json::json!(manifest.data.sha256));
        Ok(Exported {
            manifest,
            path: dest.clone(),
            bytes,
        })
    })
    .await?;
    Ok(done.value)
}

/// The volumes in a `restic dump` tar (files and bytes each), its size and SHA-256.
fn describe_data(path: &Path, stack: &str) -> Result<(Vec<VolumeInfo>, u64, String)> {
    let io = |e: std::io::Error| OpsError::Failed(format!("reading the dumped data: {e}"));
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(path).map_err(io)?;
    let bytes = std::io::copy(&mut f, &mut hasher).map_err(io)?;
    let sha256 = format!("{:x}", hasher.finalize());
    let mut per: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(path).map_err(io)?);
    for entry in archive.entries().map_err(io)? {
        let entry = entry.map_err(io)?;
        let p = entry.path().map_err(io)?.to_string_lossy().to_string();
        let Some(volume) = volume_of(&p) else {
            continue;
        };
        let e = per.entry(volume).or_default();
        if entry.header().entry_type().is_file() {
            e.0 += 1;
            e.1 += entry.header().size().unwrap_or(0);
        }
    }
    let prefix = format!("{stack}_");
    let volumes = per
        .into_iter()
        .map(|(name, (files, bytes))| VolumeInfo {
            key: name.strip_prefix(&prefix).unwrap_or(&name).to_string(),
            name,
            files,
            bytes,
        })
        .collect();
    Ok((volumes, bytes, sha256))
}

/// `var/lib/docker/volumes/<volume>/_data/…` → the volume.
fn volume_of(path: &str) -> Option<String> {
    let rest = path
        .trim_start_matches("./")
        .trim_start_matches('/')
        .strip_prefix("var/lib/docker/volumes/")?;
    let (volume, inner) = rest.split_once('/').unwrap_or((rest, ""));
    (inner == "_data" || inner.starts_with("_data/")).then(|| volume.to_string())
}

fn readme(m: &Manifest) -> String {
    let volumes: Vec<String> = m
        .volumes
        .iter()
        .map(|v| format!("  {} — {} files, {} bytes", v.key, v.files, v.bytes))
        .collect();
    format!(
        "This archive holds {domain}, a {recipe} instance, as it was at {time}.\n\n\
         Volumes:\n{volumes}\n\n\
         {settings} holds its settings (the .env) without secret values{left}.\n\
         {data} holds the data as the server keeps it; its SHA-256 is in {manifest}.\n\n\
         To run it elsewhere with cooper (or on a Co-op Cloud server with cooper installed):\n\
         \x20 cooper app restore NEW-DOMAIN --archive THIS-FILE --server SERVER\n\
         makes the app from these settings at recipe {recipe} {version}, generates new secrets,\n\
         deploys it and puts the data back. Into an app that exists already:\n\
         \x20 cooper app restore DOMAIN --archive THIS-FILE\n\n\
         The recipe's secrets ({secrets}) are not in this archive. If the data depends on one\n\
         (a database password), insert the old value first with `cooper app secret insert`.\n",
        domain = m.domain,
        recipe = m.recipe,
        time = m.snapshot.time,
        volumes = volumes.join("\n"),
        settings = SETTINGS,
        left = if m.settings.left_out.is_empty() {
            String::new()
        } else {
            format!(" (left out: {})", m.settings.left_out.join(", "))
        },
        data = DATA,
        manifest = MANIFEST,
        version = m.version.as_deref().unwrap_or("(unreleased)"),
        secrets = if m.secrets.is_empty() {
            "none".to_string()
        } else {
            m.secrets.join(", ")
        },
    )
}

/// Writes the outer archive: manifest first (so it can be read without the rest), README,
/// settings, data. Returns its size.
fn write_archive(dest: &Path, m: &Manifest, settings: &str, data: &Path) -> Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| OpsError::Failed(format!("writing {}: {e}", dest.display()));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    {
        let mut b = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
        let mtime = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let small = |b: &mut tar::Builder<_>, name: &str, body: &[u8]| -> std::io::Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o600);
            h.set_mtime(mtime);
            h.set_cksum();
            b.append_data(&mut h, name, body)
        };
        let json = serde_json::to_vec_pretty(m)
            .map_err(|e| OpsError::Failed(format!("writing the manifest: {e}")))?;
        small(&mut b, MANIFEST, &json).map_err(fail)?;
        small(&mut b, README, readme(m).as_bytes()).map_err(fail)?;
        small(&mut b, SETTINGS, settings.as_bytes()).map_err(fail)?;
        let mut f = std::fs::File::open(data).map_err(fail)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(f.metadata().map_err(fail)?.len());
        h.set_mode(0o600);
        h.set_mtime(mtime);
        h.set_cksum();
        b.append_data(&mut h, DATA, &mut f).map_err(fail)?;
        b.into_inner().map_err(fail)?.flush().map_err(fail)?;
    }
    tmp.as_file().sync_all().map_err(fail)?;
    let size = tmp.as_file().metadata().map_err(fail)?.len();
    tmp.persist(dest)
        .map_err(|e| OpsError::Failed(format!("writing {}: {}", dest.display(), e.error)))?;
    Ok(size)
}

/// An export opened for reading: its manifest, settings, and where the data lies in the file.
#[derive(Debug, Clone)]
pub struct Archive {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub settings: String,
    /// The data member's offset and length in the file.
    pub data_at: (u64, u64),
}

/// Opens an export: reads its manifest and settings, finds its data and checks the data's
/// SHA-256 against the manifest. A file that is not a cooper export says what it is missing.
pub fn open(path: &Path) -> Result<Archive> {
    let name = path.display().to_string();
    let bad = |why: String| {
        OpsError::Refused(format!(
            "{name} is not a cooper export ({why}); make one with `cooper app export DOMAIN`"
        ))
    };
    let file = std::fs::File::open(path)
        .map_err(|e| OpsError::Refused(format!("cannot read {name}: {e}")))?;
    let mut archive = tar::Archive::new(file);
    let mut manifest: Option<Manifest> = None;
    let mut settings = None;
    let mut data_at = None;
    for entry in archive
        .entries_with_seek()
        .map_err(|e| bad(e.to_string()))?
    {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let p = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .to_string();
        match p.as_str() {
            MANIFEST => {
                let mut text = String::new();
                entry
                    .read_to_string(&mut text)
                    .map_err(|e| bad(e.to_string()))?;
                let m: Manifest =
                    serde_json::from_str(&text).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
                if m.format != FORMAT {
                    return Err(OpsError::Refused(format!(
                        "{name} is a {} archive; this cooper reads {FORMAT}",
                        m.format
                    )));
                }
                manifest = Some(m);
            }
            SETTINGS => {
                let mut text = String::new();
                entry
                    .read_to_string(&mut text)
                    .map_err(|e| bad(e.to_string()))?;
                settings = Some(text);
            }
            DATA => data_at = Some((entry.raw_file_position(), entry.size())),
            _ => {}
        }
    }
    let manifest = manifest.ok_or_else(|| bad(format!("no {MANIFEST}")))?;
    let settings = settings.ok_or_else(|| bad(format!("no {SETTINGS}")))?;
    let data_at = data_at.ok_or_else(|| bad(format!("no {DATA}")))?;
    // The data must be what the manifest says, before anything is replaced with it.
    let mut f = std::fs::File::open(path)
        .map_err(|e| OpsError::Refused(format!("cannot read {name}: {e}")))?;
    f.seek(std::io::SeekFrom::Start(data_at.0))
        .map_err(|e| bad(e.to_string()))?;
    let mut hasher = Sha256::new();
    let n = std::io::copy(&mut f.take(data_at.1), &mut hasher).map_err(|e| bad(e.to_string()))?;
    let sum = format!("{:x}", hasher.finalize());
    if n != manifest.data.bytes || sum != manifest.data.sha256 {
        return Err(OpsError::Refused(format!(
            "{name}: its data does not match its manifest ({n} bytes, SHA-256 {sum}; the \
             manifest says {} bytes, {}): the archive is damaged or was changed; nothing was \
             restored",
            manifest.data.bytes, manifest.data.sha256
        )));
    }
    Ok(Archive {
        path: path.to_path_buf(),
        manifest,
        settings,
        data_at,
    })
}

impl Archive {
    /// The settings for an app at `domain` (the archive's DOMAIN replaced).
    pub fn settings_for(&self, domain: &str) -> Result<String> {
        let mut env = EnvFile::parse(&self.settings)
            .map_err(|e| OpsError::Refused(format!("{SETTINGS} in the archive: {e}")))?;
        env.set("DOMAIN", domain);
        Ok(env.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_keys() {
        for k in [
            "SMTP_PASSWORD",
            "SECRET_KEY_BASE",
            "API_TOKEN",
            "S3_SECRET",
            "OIDC_CLIENT_SECRET",
            "PRIVATE_KEY",
            "MAPS_API_KEY",
        ] {
            assert!(looks_secret(k), "{k}");
        }
        for k in [
            "DOMAIN",
            "TYPE",
            "SECRET_DB_PASSWORD_VERSION",
            "SMTP_HOST",
            "KEYCLOAK_URL",
            "LETS_ENCRYPT_ENV",
        ] {
            assert!(!looks_secret(k), "{k}");
        }
    }

    #[test]
    fn settings_leave_secrets_out_and_keep_the_rest() {
        let env = "TYPE=app:1.0.0+1.0\nDOMAIN=a.example\n# a comment\nSMTP_PASSWORD=hunter2\nSECRET_DB_PASSWORD_VERSION=v1\nexport API_TOKEN=\"x y\"\n";
        let (out, left) = non_secret_settings(env).unwrap();
        assert_eq!(left, vec!["SMTP_PASSWORD", "API_TOKEN"]);
        assert!(!out.contains("hunter2") && !out.contains("x y"), "{out}");
        assert!(out.contains("SECRET_DB_PASSWORD_VERSION=v1"));
        assert!(out.contains("# a comment"));
        let parsed = EnvFile::parse(&out).unwrap();
        assert_eq!(parsed.get("DOMAIN"), Some("a.example"));
        assert_eq!(parsed.get("SMTP_PASSWORD"), None);
    }

    #[test]
    fn volumes_from_dump_paths() {
        assert_eq!(
            volume_of("var/lib/docker/volumes/a_example_data/_data/x/y").as_deref(),
            Some("a_example_data")
        );
        assert_eq!(
            volume_of("/var/lib/docker/volumes/v/_data").as_deref(),
            Some("v")
        );
        assert_eq!(volume_of("var/lib/docker/volumes/v"), None);
        assert_eq!(volume_of("etc/passwd"), None);
    }

    #[test]
    fn a_changed_archive_is_refused_and_a_foreign_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d.tar");
        {
            let mut b = tar::Builder::new(std::fs::File::create(&data).unwrap());
            let body = b"hello";
            let mut h = tar::Header::new_gnu();
            h.set_size(5);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "var/lib/docker/volumes/s_data/_data/f", &body[..])
                .unwrap();
            b.finish().unwrap();
        }
        let (volumes, bytes, sha256) = describe_data(&data, "s").unwrap();
        assert_eq!(volumes.len(), 1);
        assert_eq!((volumes[0].key.as_str(), volumes[0].files), ("data", 1));
        let m = Manifest {
            format: FORMAT.into(),
            domain: "a.example".into(),
            server: "default".into(),
            recipe: "app".into(),
            version: Some("1.0.0+1.0".into()),
            stack: "s".into(),
            snapshot: SnapshotInfo {
                id: "abc".into(),
                time: "t".into(),
            },
            volumes,
            data: DataInfo {
                file: DATA.into(),
                bytes,
                sha256,
            },
            settings: SettingsInfo {
                file: SETTINGS.into(),
                left_out: vec![],
            },
            secrets: vec![],
            made_at: "now".into(),
            made_by: "test".into(),
        };
        let out = dir.path().join("x.tar");
        write_archive(&out, &m, "DOMAIN=a.example\n", &data).unwrap();
        let a = open(&out).unwrap();
        assert_eq!(a.manifest, m);
        assert!(a
            .settings_for("b.example")
            .unwrap()
            .contains("DOMAIN=b.example"));
        // One byte of the data changed: refused, naming the file.
        let mut bytes = std::fs::read(&out).unwrap();
        let at = a.data_at.0 as usize + 512;
        bytes[at] ^= 1;
        std::fs::write(&out, &bytes).unwrap();
        let e = open(&out).unwrap_err().to_string();
        assert!(
            e.contains("does not match its manifest") && e.contains("x.tar"),
            "{e}"
        );
        // Not an export at all.
        std::fs::write(&out, b"not a tar").unwrap();
        let e = open(&out).unwrap_err().to_string();
        assert!(e.contains("is not a cooper export"), "{e}");
    }
}
