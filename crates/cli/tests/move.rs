//! Moving an instance between two co-ops' servers on this machine, as their operators would:
//! the old co-op runs `cooper app export` (one archive: manifest, README, non-secret settings,
//! the data), the new co-op — its own `$ABRA_DIR`, server entry and restic repository — runs
//! `cooper app restore NEW --archive FILE --server SERVER`, which makes the app from the
//! archive's settings at its recipe version, deploys it, puts the data back (files, owners,
//! modes; the database loaded by its restore hook), tests it and backs it up in the new
//! repository. A damaged archive is refused before anything is made; an archive restored into
//! an app that exists replaces its data.
//!
//! Both server entries reach the local engine (`.cooper-endpoint`): two servers in cooper's
//! sense, with separate settings, secrets, repositories and stacks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cooper_testkit::docker;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/backup/bkapp/1.0.0+1.0")
}

/// One co-op: its own `$ABRA_DIR` with one server entry on the local engine.
struct Coop {
    dir: tempfile::TempDir,
    server: String,
}

impl Coop {
    fn new(server: &str) -> Coop {
        let dir = tempfile::tempdir().unwrap();
        let sdir = dir.path().join("servers").join(server);
        std::fs::create_dir_all(&sdir).unwrap();
        let local = match std::env::var("DOCKER_HOST") {
            Ok(h) if h.starts_with("unix://") => h,
            _ => "unix:///var/run/docker.sock".to_string(),
        };
        std::fs::write(sdir.join(".cooper-endpoint"), local).unwrap();
        cooper_testkit::recipe_repo(
            &dir.path().join("recipes/bkapp"),
            &[(fixture(), "1.0.0+1.0")],
        )
        .unwrap();
        cooper_testkit::backup_settings(dir.path(), server, &dir.path().join("repo")).unwrap();
        Coop {
            dir,
            server: server.to_string(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args(args)
            .env("ABRA_DIR", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "cooper {args:?}: {text}");
        text
    }

    fn env_path(&self, domain: &str) -> PathBuf {
        self.dir
            .path()
            .join("servers")
            .join(&self.server)
            .join(format!("{domain}.env"))
    }

    fn snapshots_of(&self, stack: &str) -> usize {
        let out = cooper_testkit::restic(
            self.dir.path(),
            &self.server,
            &self.dir.path().join("repo"),
            &["snapshots", "--json", "--host", stack],
        );
        assert!(
            out.status.success(),
            "restic snapshots: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
            .unwrap()
            .len()
    }
}

struct Scrub(Vec<String>);

impl Drop for Scrub {
    fn drop(&mut self) {
        for s in &self.0 {
            cooper_testkit::scrub_stack(s);
        }
    }
}

fn sh(stack: &str, service: &str, script: &str) -> String {
    cooper_testkit::sh_in(&format!("{stack}_{service}"), script)
}

/// The archive's members and the manifest.
fn members(archive: &Path) -> (Vec<String>, serde_json::Value, String) {
    let mut a = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let mut names = Vec::new();
    let mut manifest = serde_json::Value::Null;
    let mut settings = String::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().to_string();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        if name == "cooper-export.json" {
            manifest = serde_json::from_slice(&body).unwrap();
        }
        if name == "settings.env" {
            settings = String::from_utf8(body).unwrap();
        }
        names.push(name);
    }
    (names, manifest, settings)
}

#[test]
fn an_instance_moves_between_two_coops_servers_with_its_export() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let d = cooper_testkit::local_docker().await.unwrap();
        cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0"])
            .await
            .unwrap();
        cooper_testkit::ensure_restic_image(&d).await.unwrap();
    });
    let pid = std::process::id();
    let old_domain = format!("mv-old-{pid}.cooper.test");
    let new_domain = format!("mv-new-{pid}.cooper.test");
    let bad_domain = format!("mv-bad-{pid}.cooper.test");
    let (old_stack, new_stack, bad_stack) = (
        old_domain.replace('.', "_"),
        new_domain.replace('.', "_"),
        bad_domain.replace('.', "_"),
    );
    let _scrub = Scrub(vec![
        old_stack.clone(),
        new_stack.clone(),
        bad_stack.clone(),
    ]);
    for s in [&old_stack, &new_stack, &bad_stack] {
        cooper_testkit::scrub_stack(s);
    }

    // The old co-op's instance, with data in both backed-up volumes.
    let old = Coop::new("old-coop.test");
    old.ok(&["app", "new", "bkapp", "-s", &old.server, "-D", &old_domain]);
    old.ok(&["app", "deploy", &old_domain, "-n"]);
    sh(
        &old_stack,
        "app",
        "mkdir -p /data/photos && echo 'our garden, 2026' > /data/photos/garden.txt && \
         echo kept > /data/owned && chown 1234:2345 /data/owned && chmod 0640 /data/owned && \
         echo 'not backed up' > /cache/tmp",
    );
    sh(
        &old_stack,
        "db",
        "echo 'rows: 3 members' > /var/lib/db/live.db",
    );
    old.ok(&["app", "backup", "create", &old_domain]);

    // The export: one archive, manifest first, no secret value in it.
    let archive = old.dir.path().join("leaving.tar");
    let said = old.ok(&[
        "app",
        "export",
        &old_domain,
        "--output",
        archive.to_str().unwrap(),
    ]);
    assert!(said.contains("volume data:"), "{said}");
    assert!(
        said.contains("DB_PASSWORD"),
        "the left-out setting is named: {said}"
    );
    let (names, manifest, settings) = members(&archive);
    assert_eq!(
        names,
        [
            "cooper-export.json",
            "README.txt",
            "settings.env",
            "data.tar"
        ],
        "the manifest comes first"
    );
    assert_eq!(manifest["format"], "cooper-export/1");
    assert_eq!(manifest["recipe"], "bkapp");
    assert_eq!(manifest["version"], "1.0.0+1.0");
    assert_eq!(manifest["domain"], old_domain.as_str());
    let vols: Vec<(String, u64)> = manifest["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["key"].as_str().unwrap().to_string(),
                v["files"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        vols,
        [("data".to_string(), 2), ("db".to_string(), 1)],
        "data whole (2 files), the db's dump only; the cache is not backed up"
    );
    assert_eq!(
        manifest["settings"]["left_out"],
        serde_json::json!(["DB_PASSWORD"])
    );
    let raw = std::fs::read(&archive).unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains("change-me-db-password"),
        "a secret-looking value travelled"
    );
    assert!(settings.contains("TYPE=bkapp:1.0.0+1.0"), "{settings}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600,
        "the archive holds people's data: readable by its owner only"
    );
    // The old instance goes on changing after the export.
    sh(
        &old_stack,
        "app",
        "echo 'changed after the export' > /data/photos/garden.txt",
    );

    // A damaged copy is refused before anything is made.
    let new = Coop::new("new-coop.test");
    let bad = new.dir.path().join("damaged.tar");
    let mut bytes = raw.clone();
    let n = bytes.len();
    bytes[n - 2048] ^= 0x55;
    std::fs::write(&bad, &bytes).unwrap();
    let out = new.run(&[
        "app",
        "restore",
        &bad_domain,
        "--archive",
        bad.to_str().unwrap(),
        "--server",
        &new.server,
    ]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(err.contains("does not match its manifest"), "{err}");
    assert!(
        !new.env_path(&bad_domain).exists(),
        "nothing made for a damaged archive"
    );
    assert!(cooper_testkit::stack_leftovers(&bad_stack).is_empty());

    // Without --server, a domain that does not exist says how.
    let out = new.run(&[
        "app",
        "restore",
        &new_domain,
        "--archive",
        archive.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && err.contains("--server"), "{err}");

    // The move.
    let said = new.ok(&[
        "app",
        "restore",
        &new_domain,
        "--archive",
        archive.to_str().unwrap(),
        "--server",
        &new.server,
        "-n",
    ]);
    assert!(said.contains("restore:"), "the restore step ran: {said}");
    let env = std::fs::read_to_string(new.env_path(&new_domain)).unwrap();
    assert!(env.contains("TYPE=bkapp:1.0.0+1.0"), "{env}");
    assert!(env.contains(&format!("DOMAIN={new_domain}")), "{env}");
    assert_eq!(
        sh(&new_stack, "app", "cat /data/photos/garden.txt").trim(),
        "our garden, 2026",
        "the snapshot's state, not what the old instance did later"
    );
    assert_eq!(
        sh(&new_stack, "app", "stat -c '%u:%g %a' /data/owned").trim(),
        "1234:2345 640",
        "owners and modes travel"
    );
    assert_eq!(
        sh(&new_stack, "db", "cat /var/lib/db/live.db").trim(),
        "rows: 3 members",
        "the restore hook loaded the dump"
    );
    assert!(
        sh(&new_stack, "app", "ls /cache").trim().is_empty(),
        "what was never backed up does not appear"
    );
    assert!(
        new.snapshots_of(&new_stack) >= 1,
        "the moved instance's first backup is in the new co-op's repository"
    );
    assert_eq!(
        sh(&old_stack, "app", "cat /data/photos/garden.txt").trim(),
        "changed after the export",
        "the old instance is untouched"
    );

    // Into an app that exists: its data replaced by the archive's.
    sh(
        &new_stack,
        "app",
        "echo scribbled > /data/photos/garden.txt",
    );
    new.ok(&[
        "app",
        "restore",
        &new_domain,
        "--archive",
        archive.to_str().unwrap(),
        "-n",
    ]);
    assert_eq!(
        sh(&new_stack, "app", "cat /data/photos/garden.txt").trim(),
        "our garden, 2026"
    );
    let records = std::fs::read_dir(new.dir.path().join("cooper/records").join(&new_domain))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(records.contains("unpack export"), "the restore is recorded");
    let _ = docker(&["ps"]);
}
