//! `cooper app backup …` and `cooper app restore` as a user runs them, on the real Swarm with
//! real restic: `kill -9` in the middle of a backup (the repository must still pass
//! `restic check` and the next backup must succeed), and the restic password, which must never
//! appear in any process's arguments, any container's inspect output, cooper's output or its
//! records; and `kill -9` of `cooper recipe test` followed by its cleanup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cooper_testkit::docker;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/backup/bkapp/1.0.0+1.0")
}

struct Setup {
    dir: tempfile::TempDir,
    domain: String,
    stack: String,
}

fn setup(name: &str) -> Setup {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let d = cooper_testkit::local_docker().await.unwrap();
        cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0"])
            .await
            .unwrap();
        cooper_testkit::ensure_restic_image(&d).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("servers/default")).unwrap();
    cooper_testkit::recipe_repo(
        &dir.path().join("recipes/bkapp"),
        &[(fixture(), "1.0.0+1.0")],
    )
    .unwrap();
    cooper_testkit::backup_settings(dir.path(), "default", &dir.path().join("repo")).unwrap();
    let domain = format!("{name}.cooper.test");
    let stack = domain.replace('.', "_");
    cooper_testkit::scrub_stack(&stack);
    let s = Setup { dir, domain, stack };
    s.ok(&["app", "new", "bkapp", "-s", "default", "-D", &s.domain]);
    s.ok(&["app", "deploy", &s.domain, "-n"]);
    s
}

impl Setup {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cooper"));
        c.args(args)
            .env("ABRA_DIR", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cooper {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn sh(&self, service: &str, script: &str) -> String {
        cooper_testkit::sh_in(&format!("{}_{service}", self.stack), script)
    }

    fn password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("cooper/backup/default.password"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn restic(&self, args: &[&str]) -> Output {
        cooper_testkit::restic(
            self.dir.path(),
            "default",
            &self.dir.path().join("repo"),
            args,
        )
    }

    fn records(&self) -> String {
        let dir = self.dir.path().join("cooper/records").join(&self.domain);
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        cooper_testkit::scrub_stack(&self.stack);
    }
}

/// Helper containers (of this test's app when `stack` is given: they mount its data volume).
fn helpers(running_only: bool, stack: Option<&str>) -> String {
    let volume = stack.map(|s| format!("volume={s}_data"));
    let mut args = vec!["ps", "-q", "--filter", "label=cooper.helper=restic"];
    if let Some(v) = &volume {
        args.push("--filter");
        args.push(v);
    }
    if !running_only {
        args.insert(1, "-a");
    }
    docker(&args)
}

#[test]
fn kill_9_mid_backup_leaves_a_checkable_repository_and_the_next_backup_succeeds() {
    let s = setup("c-bkill");
    // Enough data that restic is still reading when cooper dies.
    s.sh(
        "app",
        "head -c 400000000 /dev/urandom > /data/big && echo small > /data/small",
    );
    s.sh("db", "echo live > /var/lib/db/live.db");
    // The repository exists before the kill, so the check below checks a real repository.
    s.ok(&["app", "backup", "create", &s.domain]);
    s.sh("app", "head -c 400000000 /dev/urandom > /data/big2");

    let mut child = s
        .cmd(&["app", "backup", "create", &s.domain])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while helpers(true, Some(&s.stack)).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "restic never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(800));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // restic notices cooper is gone (its standard input closes) and stops cleanly; the promise
    // is that once the helper has stopped, it left no lock. Wait for exactly that (bounded).
    let start = Instant::now();
    while !helpers(true, Some(&s.stack)).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the helper kept running after cooper was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "the helper stopped {:.2}s after cooper was killed",
        start.elapsed().as_secs_f64()
    );
    let check = s.restic(&["check"]);
    assert!(
        check.status.success(),
        "restic check after kill -9: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let snaps: serde_json::Value =
        serde_json::from_slice(&s.restic(&["snapshots", "--json"]).stdout).unwrap();
    assert_eq!(
        snaps.as_array().unwrap().len(),
        1,
        "the interrupted backup left no snapshot"
    );

    // The next backup succeeds, and the dead run's helper container is cleaned up.
    let out = s.ok(&["app", "backup", "create", &s.domain]);
    assert!(out.contains("snapshot"), "{out}");
    assert!(
        helpers(false, Some(&s.stack)).is_empty(),
        "helper containers are removed"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&s.ok(&["app", "backup", "ls", &s.domain, "-m"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[test]
fn the_restic_password_never_shows() {
    let s = setup("c-bpw");
    s.sh(
        "app",
        "echo hello > /data/h && head -c 5000000 /dev/urandom > /data/r",
    );
    s.sh("db", "echo live > /var/lib/db/live.db");

    // Watch every process's arguments and every helper container's inspect output while the
    // commands run.
    let seen = Arc::new(Mutex::new(String::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let seen = seen.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
                let mut text = String::from_utf8_lossy(&ps.stdout).to_string();
                for id in helpers(true, None).lines() {
                    text.push_str(&docker(&["inspect", id]));
                }
                seen.lock().unwrap().push_str(&text);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut output = String::new();
    output.push_str(&s.ok(&["app", "backup", "create", &s.domain]));
    output.push_str(&s.ok(&["app", "backup", "verify", &s.domain]));
    output.push_str(&s.ok(&["app", "backup", "ls", &s.domain]));
    output.push_str(&s.ok(&["app", "backup", "ls", &s.domain, "-m"]));
    output.push_str(&s.ok(&[
        "app", "backup", "download", &s.domain, "--output", "snap.tar",
    ]));
    output.push_str(&s.ok(&["app", "restore", &s.domain, "-n"]));
    output.push_str(&s.ok(&["-d", "app", "backup", "create", &s.domain, "-m"]));
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();

    let pw = s.password();
    assert!(pw.len() >= 32);
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains("restic backup") && seen.contains("cooper.helper"),
        "the watcher saw restic run and a helper's inspect output"
    );
    assert!(
        !seen.contains(&pw),
        "the password showed in argv or docker inspect"
    );
    assert!(
        !output.contains(&pw),
        "the password showed in cooper's output"
    );
    assert!(!s.records().contains(&pw), "the password is in a record");
    assert!(output.contains("verified"), "{output}");
    let tar = std::fs::read(s.dir.path().join("snap.tar")).unwrap();
    assert!(tar.len() > 5_000_000);
    assert!(!String::from_utf8_lossy(&tar).contains(&pw));
    // The restore really ran (and said so) without a prompt thanks to -n.
    assert!(output.contains("restored from snapshot"), "{output}");
    assert_eq!(s.sh("app", "cat /data/h"), "hello");
}

/// `kill -9` of `cooper recipe test` in the middle of its tiers leaves a throwaway app
/// behind; `cooper recipe test --cleanup` finds it by its mark and removes all of it.
#[test]
fn kill_9_mid_recipe_test_then_cleanup_leaves_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let d = cooper_testkit::local_docker().await.unwrap();
        cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0"])
            .await
            .unwrap();
        cooper_testkit::ensure_restic_image(&d).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("servers/default")).unwrap();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/apptest/lifeapp");
    cooper_testkit::recipe_repo(
        &dir.path().join("recipes/lifeapp"),
        &[
            (fx.join("1.0.0+1.0"), "1.0.0+1.0"),
            (fx.join("1.1.0+1.1"), "1.1.0+1.1"),
        ],
    )
    .unwrap();
    cooper_testkit::backup_settings(dir.path(), "default", &dir.path().join("repo")).unwrap();
    let cmd = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cooper"));
        c.args(args)
            .env("ABRA_DIR", dir.path())
            .env("COOPER_PROBE_IMAGE", "cooper-test/web:1.0")
            .stdin(Stdio::null());
        c
    };
    let mut child = cmd(&["recipe", "test", "lifeapp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the throwaway app has data and a backup exists (the restore tier's wipe is
    // next), so services, volumes and snapshots are all there to leave behind.
    let start = Instant::now();
    let stack = loop {
        // This run's throwaway app, from this test's own $ABRA_DIR.
        let domain = std::fs::read_dir(dir.path().join("servers/default"))
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().to_string();
                n.strip_suffix(".env").map(str::to_string)
            })
            .find(|n| n.starts_with("cooper-test-"));
        let snaps = String::from_utf8_lossy(
            &cooper_testkit::restic(
                dir.path(),
                "default",
                &dir.path().join("repo"),
                &["snapshots", "--json"],
            )
            .stdout,
        )
        .to_string();
        if let Some(d) = domain {
            let stack = d.replace('.', "_");
            let services = docker(&[
                "service",
                "ls",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace={stack}"),
            ]);
            if !services.is_empty() && snaps.contains(&stack) {
                break stack;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "recipe test never got to its backup"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let envs = || {
        std::fs::read_dir(dir.path().join("servers/default"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        envs()
            .iter()
            .any(|n| n.starts_with("cooper-test-") && n.ends_with(".env")),
        "the throwaway .env is there after the kill: {:?}",
        envs()
    );

    let out = cmd(&["recipe", "test", "--cleanup"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("removed"), "{text}");
    assert_eq!(
        cooper_testkit::stack_leftovers(&stack),
        Vec::<String>::new(),
        "nothing of {stack} is left"
    );
    assert!(
        envs().is_empty(),
        "nothing left in the server folder: {:?}",
        envs()
    );
    let snaps = cooper_testkit::restic(
        dir.path(),
        "default",
        &dir.path().join("repo"),
        &["snapshots", "--json"],
    );
    assert_eq!(String::from_utf8_lossy(&snaps.stdout).trim(), "[]");
    let again = cmd(&["recipe", "test", "--cleanup"]).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("no leftovers"));
}

/// A helper image the server does not have and cannot pull (no registry here) is reported with
/// the ways out — pull it, build one, or point RESTIC_IMAGE elsewhere — and an upgrade whose
/// safety backup cannot run changes nothing.
#[test]
fn a_missing_helper_image_names_the_fix() {
    let s = setup("c-bimg");
    std::fs::write(
        s.dir.path().join(format!("cooper/backup/{}.env", s.domain)),
        "RESTIC_IMAGE=cooper-test/no-such-restic:9.9\n",
    )
    .unwrap();
    let out = s.run(&["app", "backup", "create", &s.domain]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "image cooper-test/no-such-restic:9.9 is not available",
        "`docker pull cooper-test/no-such-restic:9.9`",
        "build an image with restic and a POSIX sh",
        "RESTIC_IMAGE",
        "default.env",
    ] {
        assert!(err.contains(want), "{want:?} in {err}");
    }
    assert!(!err.contains("pre-hook"), "no hook ran: {err}");
    assert!(
        helpers(false, Some(&s.stack)).is_empty(),
        "no helper container was made"
    );
}
