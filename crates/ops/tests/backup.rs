//! Backups on the real local Swarm with real restic (in the local restic image): a round trip
//! that replaces live state, hooks that fail the backup, a service that is not running,
//! excluded and uncovered volumes, verification that catches a tampered repository, and
//! retention. Needs `scripts/setup-swarm` (the test command runs it).

use std::path::{Path, PathBuf};

use cooper_ops::backup::{self, Keep, RestoreRequest};
use cooper_ops::{Collect, DeployKind, DeployRequest};
use cooper_recipe::abra_dir::AbraDir;
use cooper_testkit::docker;

fn fixture() -> PathBuf {
    fixture_at("1.0.0+1.0")
}

fn fixture_at(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/backup/bkapp")
        .join(version)
}

struct World {
    dir: tempfile::TempDir,
    abra: AbraDir,
    domain: String,
    stack: String,
}

impl World {
    async fn new(name: &str) -> World {
        let d = cooper_testkit::local_docker().await.unwrap();
        cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0"])
            .await
            .unwrap();
        cooper_testkit::ensure_restic_image(&d).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let abra = AbraDir::new(dir.path());
        std::fs::create_dir_all(abra.servers_dir().join("default")).unwrap();
        cooper_testkit::recipe_repo(
            &abra.recipes_dir().join("bkapp"),
            &[
                (fixture(), "1.0.0+1.0"),
                (fixture_at("1.1.0+1.1"), "1.1.0+1.1"),
            ],
        )
        .unwrap();
        cooper_testkit::backup_settings(dir.path(), "default", &dir.path().join("repo")).unwrap();
        let domain = format!("{name}.cooper.test");
        let stack = domain.replace('.', "_");
        cooper_testkit::scrub_stack(&stack);
        let env = std::fs::read_to_string(fixture().join(".env.sample"))
            .unwrap()
            .replace("TYPE=bkapp", "TYPE=bkapp:1.0.0+1.0")
            .replace("DOMAIN=bkapp.example.com", &format!("DOMAIN={domain}"));
        std::fs::write(
            abra.servers_dir()
                .join("default")
                .join(format!("{domain}.env")),
            env,
        )
        .unwrap();
        let w = World {
            dir,
            abra,
            domain,
            stack,
        };
        let mut rep = Collect::default();
        cooper_ops::deploy(
            &w.abra,
            &DeployRequest::new(&w.domain, DeployKind::Deploy),
            &mut rep,
        )
        .await
        .unwrap();
        w
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// Runs a shell command in the service's running container.
    fn sh(&self, service: &str, script: &str) -> String {
        cooper_testkit::sh_in(&format!("{}_{service}", self.stack), script)
    }

    /// `sha256sum` of every file in a volume (sorted), read through a throwaway container.
    fn sums(&self, volume: &str) -> String {
        docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}_{volume}:/v:ro", self.stack),
            "cooper-test/web:1.0",
            "sh",
            "-c",
            "cd /v && find . -type f | sort | xargs -r sha256sum",
        ])
    }

    /// Raw restic against the test repository (the server is this machine).
    fn restic(&self, args: &[&str]) -> std::process::Output {
        cooper_testkit::restic(self.dir.path(), "default", &self.repo(), args)
    }

    /// A pack file of the repository that holds only file data (no trees), from restic's index.
    fn data_pack(&self) -> PathBuf {
        let list = String::from_utf8(self.restic(&["list", "index"]).stdout).unwrap();
        for idx in list.lines() {
            let text = String::from_utf8(self.restic(&["cat", "index", idx]).stdout).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            for p in v["packs"].as_array().unwrap() {
                let blobs = p["blobs"].as_array().unwrap();
                if blobs.iter().all(|b| b["type"] == "data") {
                    let id = p["id"].as_str().unwrap();
                    return self.repo().join("data").join(&id[..2]).join(id);
                }
            }
        }
        panic!("no data-only pack in {list}");
    }

    async fn cleanup(&self) {
        let mut rep = Collect::default();
        let _ = cooper_ops::undeploy(&self.abra, &self.domain, &mut rep).await;
        cooper_testkit::scrub_stack(&self.stack);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_wipe_restore_gives_identical_data_and_no_live_state() {
    let w = World::new("b-roundtrip").await;
    w.sh(
        "app",
        "mkdir -p /data/sub && echo alpha > /data/a.txt && head -c 200000 /dev/urandom > /data/sub/blob && echo c > /cache/c",
    );
    w.sh("db", "echo 'row1,row2' > /var/lib/db/live.db");
    let data_before = w.sums("data");
    assert!(data_before.contains("a.txt") && data_before.contains("blob"));

    // Plan: the cache is excluded, the worker's volume is not covered.
    let mut rep = Collect::default();
    let r = backup::create(&w.abra, &w.domain, None, &mut rep)
        .await
        .unwrap();
    let id = r.snapshot.clone().expect("a snapshot");
    assert!(
        r.warnings
            .iter()
            .any(|x| x.contains("scratch") && x.contains("worker")),
        "{:?}",
        r.warnings
    );
    let ls = String::from_utf8(w.restic(&["ls", &id]).stdout).unwrap();
    assert!(
        ls.contains(&format!(
            "/var/lib/docker/volumes/{}_data/_data/a.txt",
            w.stack
        )),
        "{ls}"
    );
    assert!(
        ls.contains(&format!(
            "/var/lib/docker/volumes/{}_db/_data/dump.sql",
            w.stack
        )),
        "{ls}"
    );
    assert!(
        !ls.contains("live.db"),
        "only the dump of the db volume is saved: {ls}"
    );
    assert!(
        !ls.contains("_cache"),
        "the excluded volume is not in the snapshot: {ls}"
    );
    assert!(!ls.contains("_scratch"), "{ls}");
    // backup-bot-two's layout: host = stack, volume paths under /var/lib/docker/volumes.
    let snaps = String::from_utf8(w.restic(&["snapshots", "--json"]).stdout).unwrap();
    assert!(
        snaps.contains(&format!("\"hostname\":\"{}\"", w.stack)),
        "{snaps}"
    );
    // The post-hook ran.
    assert!(!w.sh("db", "cat /var/lib/db/post-hook-ran").is_empty());

    // The hook printed the DB password: the record keeps the output with it scrubbed.
    let records = std::fs::read_dir(w.dir.path().join("cooper/records").join(&w.domain))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        records.contains("dumping live.db (password ********)"),
        "{records}"
    );
    assert!(!records.contains("change-me-db-password"));
    let pw = std::fs::read_to_string(w.dir.path().join("cooper/backup/default.password")).unwrap();
    assert!(!records.contains(pw.trim()));

    // Verify proves it restores.
    let v = backup::verify(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert!(v.files >= 3, "{v:?}");
    assert!(
        v.checks.iter().any(|c| c.starts_with("db: passed")),
        "the recipe's data check ran: {:?}",
        v.checks
    );
    let listed = backup::list(&w.abra, &w.domain).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].verified.is_some() && listed[0].by_cooper);
    assert!(listed[0].summary.as_ref().unwrap().total_bytes_processed >= 200_000);
    // No scratch volume of this app's verify is left behind (other tests verify at the same
    // time: only this stack's, by the label verify puts on them).
    assert_eq!(
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=cooper.scratch={}", w.stack)
        ]),
        ""
    );

    // Change everything after the backup: new files, changed files, new live state.
    w.sh(
        "app",
        "echo changed > /data/a.txt && echo stray > /data/new.txt && rm /data/sub/blob",
    );
    w.sh(
        "db",
        "echo 'row1,row2,row3-after-backup' > /var/lib/db/live.db",
    );
    assert_ne!(w.sums("data"), data_before);

    let mut rep = Collect::default();
    let rr = backup::restore(
        &w.abra,
        &RestoreRequest {
            domain: w.domain.clone(),
            snapshot: Some(id[..8].to_string()),
            ..Default::default()
        },
        &mut rep,
    )
    .await
    .unwrap();
    assert!(rr.scaled_down.iter().any(|s| s.ends_with("_app")), "{rr:?}");
    assert_eq!(
        w.sums("data"),
        data_before,
        "the data volume is exactly the snapshot's"
    );
    assert_eq!(
        w.sh("db", "cat /var/lib/db/live.db"),
        "row1,row2",
        "the restore post-hook loaded the dump: no live state survives"
    );
    // The app runs again.
    let running = docker(&[
        "service",
        "ls",
        "--filter",
        &format!("name={}_app", w.stack),
        "--format",
        "{{.Replicas}}",
    ]);
    assert_eq!(running, "1/1");

    // Download gives the snapshot as a tar.
    let mut tar = Vec::new();
    backup::download(&w.abra, &w.domain, None, None, &mut tar)
        .await
        .unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert!(
        names.iter().any(|n| n.ends_with("_data/a.txt")),
        "{names:?}"
    );

    // Retention keeps at least the newest.
    backup::create(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap();
    let out = backup::prune(
        &w.abra,
        &w.domain,
        Keep {
            daily: 1,
            weekly: 0,
            monthly: 0,
        },
        None,
        &mut Collect::default(),
    )
    .await
    .unwrap();
    assert!(
        out.contains("remove 1 snapshots") || out.contains("remove 1 snapshot"),
        "{out}"
    );
    assert_eq!(backup::list(&w.abra, &w.domain).await.unwrap().len(), 1);
    assert!(w.restic(&["check"]).status.success());
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_that_fail_or_dump_nothing_fail_the_backup() {
    let w = World::new("b-hooks").await;
    w.sh("app", "echo x > /data/x");
    w.sh(
        "db",
        "echo live > /var/lib/db/live.db && echo fail > /var/lib/db/.hookmode",
    );
    let e = backup::create(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("FAILED") && e.contains("pre-hook of db exited with 3"),
        "{e}"
    );
    assert!(e.contains("the database restarted"), "{e}");
    assert!(
        !w.sh("db", "cat /var/lib/db/post-hook-ran").is_empty(),
        "post-hooks run after a failure"
    );
    let snaps = String::from_utf8(w.restic(&["snapshots", "--json"]).stdout).unwrap();
    assert!(
        !snaps.contains(&w.stack),
        "a failed backup leaves no snapshot: {snaps}"
    );

    w.sh("db", "echo empty > /var/lib/db/.hookmode");
    let e = backup::create(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty dump"), "{e}");
    let snaps = String::from_utf8(w.restic(&["snapshots", "--json"]).stdout).unwrap();
    assert!(
        !snaps.contains(&w.stack),
        "the empty dump's snapshot was forgotten: {snaps}"
    );
    assert!(
        backup::list(&w.abra, &w.domain).await.unwrap().is_empty(),
        "restore can never pick a failed backup"
    );

    // A backup of bad data succeeds, but the recipe's data check fails its verification.
    w.sh(
        "db",
        "echo ok > /var/lib/db/.hookmode && echo 'CORRUPT rows' > /var/lib/db/live.db",
    );
    backup::create(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap();
    let v = backup::verify(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap();
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("data check of db failed")),
        "{:?}",
        v.problems
    );

    // A service that is not running: a clear error, not the engine's 409.
    w.sh("db", "echo ok > /var/lib/db/.hookmode");
    docker(&["service", "scale", "-d", &format!("{}_db=0", w.stack)]);
    let e = backup::create(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("scaled to 0") && e.contains("db"), "{e}");
    assert!(!e.contains("409"), "{e}");
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_catches_a_tampered_or_incomplete_repository() {
    let w = World::new("b-tamper").await;
    w.sh(
        "app",
        "head -c 300000 /dev/urandom > /data/big && echo small > /data/small",
    );
    w.sh("db", "echo live > /var/lib/db/live.db");
    let r = backup::create(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap();
    let id = r.snapshot.unwrap();
    let ok = backup::verify(&w.abra, &w.domain, Some(&id), &mut Collect::default())
        .await
        .unwrap();
    assert!(ok.problems.is_empty(), "{:?}", ok.problems);

    // Flip bytes in the middle of a data pack: same size, wrong contents.
    let pack = w.data_pack();
    let original = std::fs::read(&pack).unwrap();
    let mut bytes = original.clone();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xff;
    }
    std::fs::write(&pack, bytes).unwrap();
    let bad = backup::verify(&w.abra, &w.domain, Some(&id), &mut Collect::default())
        .await
        .unwrap();
    assert!(
        bad.problems
            .iter()
            .any(|p| p.contains("ciphertext verification failed")),
        "tampering must be detected: {:?}",
        bad.problems
    );

    // Incomplete: the pack is gone.
    std::fs::remove_file(&pack).unwrap();
    let bad = backup::verify(&w.abra, &w.domain, Some(&id), &mut Collect::default())
        .await
        .unwrap();
    assert!(
        bad.problems.iter().any(|p| p.contains("does not exist")),
        "a missing pack must be detected: {:?}",
        bad.problems
    );

    // ls keeps the date of the passing verify and says the newest one failed.
    let listed = backup::list(&w.abra, &w.domain).await.unwrap();
    assert!(listed[0].verified.is_some());
    assert_eq!(listed[0].last_verify_ok, Some(false));
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_refuses_without_a_good_safety_backup_and_names_it_after_a_rollback() {
    let w = World::new("b-upgrade").await;
    w.sh("app", "echo precious > /data/p");
    w.sh(
        "db",
        "echo live > /var/lib/db/live.db && echo fail > /var/lib/db/.hookmode",
    );
    let version = || {
        docker(&[
            "service",
            "inspect",
            &format!("{}_app", w.stack),
            "--format",
            &format!(
                "{{{{index .Spec.Labels \"coop-cloud.{}.version\"}}}}",
                w.stack
            ),
        ])
    };
    let upgrade = |w: &World| {
        let mut req = DeployRequest::new(&w.domain, DeployKind::Upgrade);
        req.max_task_failures = 1;
        req.timeout = Some(std::time::Duration::from_secs(60));
        req
    };
    let e = cooper_ops::deploy(&w.abra, &upgrade(&w), &mut Collect::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("safety backup")
            && e.contains("nothing was changed")
            && e.contains("--no-backup"),
        "{e}"
    );
    assert_eq!(version(), "1.0.0+1.0");

    // With a working hook the backup is taken; 1.1 fails and is rolled back, and the error
    // names the snapshot that holds the data from before.
    w.sh("db", "echo ok > /var/lib/db/.hookmode");
    let e = cooper_ops::deploy(&w.abra, &upgrade(&w), &mut Collect::default())
        .await
        .unwrap_err()
        .to_string();
    let listed = backup::list(&w.abra, &w.domain).await.unwrap();
    assert_eq!(listed.len(), 1, "one safety snapshot");
    let id = &listed[0].snapshot.short_id;
    assert!(
        e.contains("rolled back")
            && e.contains(&format!("cooper app restore {} --snapshot {id}", w.domain)),
        "{e}"
    );
    assert_eq!(version(), "1.0.0+1.0");
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn via_backupbot_runs_the_bots_cli_and_its_failure_fails() {
    let w = World::new("b-viabot").await;
    // Without a bot: a clear refusal.
    let e = backup::create_via_backupbot(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no backup-bot-two is deployed"), "{e}");

    // A stand-in for backup-bot-two's container: its `backup` command records its arguments
    // (cooper's side of the protocol is what is under test here, not the bot).
    let d = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&d, &["cooper-test/backup-bot-two:2.0"])
        .await
        .unwrap();
    let bot = "botx_cooper_test";
    docker(&["service", "rm", &format!("{bot}_app")]);
    docker(&["config", "rm", "botx_backup_cli"]);
    let script = w.dir.path().join("backup");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$@\" >> /tmp/args\nif [ -e /tmp/fail ]; then echo 'restic: repository is already locked' >&2; exit 1; fi\necho 'backup finished'\n",
    )
    .unwrap();
    docker(&[
        "config",
        "create",
        "botx_backup_cli",
        script.to_str().unwrap(),
    ]);
    docker(&[
        "service",
        "create",
        "--name",
        &format!("{bot}_app"),
        "--label",
        &format!("com.docker.stack.namespace={bot}"),
        "--config",
        "source=botx_backup_cli,target=/usr/bin/backup,mode=0555",
        "cooper-test/backup-bot-two:2.0",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 1 & wait; done",
    ]);
    let out = backup::create_via_backupbot(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap();
    assert!(out.contains("backup finished"), "{out}");
    let bot_container = cooper_testkit::service_container(&format!("{bot}_app"));
    let args = docker(&["exec", &bot_container, "cat", "/tmp/args"]);
    assert_eq!(args, format!("--host {} create", w.stack));

    docker(&["exec", &bot_container, "touch", "/tmp/fail"]);
    let e = backup::create_via_backupbot(&w.abra, &w.domain, None, &mut Collect::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("FAILED") && e.contains("already locked"), "{e}");
    docker(&["service", "rm", &format!("{bot}_app")]);
    w.cleanup().await;
    for _ in 0..100 {
        if docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.swarm.service.name={bot}_app"),
        ])
        .is_empty()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    docker(&["config", "rm", "botx_backup_cli"]);
}
