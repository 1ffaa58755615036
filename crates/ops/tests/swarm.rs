//! Deploys on the real local Swarm: the whole lifecycle, failure injection with automatic
//! rollback (the data marker in the volume must survive), patience with slow starts, and
//! preflight refusals that change nothing. Needs `scripts/setup-swarm` (the test command runs it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use cooper_ops::{Collect, DeployKind, DeployRequest, OpsError};
use cooper_recipe::abra_dir::AbraDir;

fn fixture(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/deploy/testapp")
        .join(version)
}

struct World {
    _dir: tempfile::TempDir,
    abra: AbraDir,
    domain: String,
    stack: String,
}

use cooper_testkit::docker;

/// Removes whatever an earlier run of the same test left (services, volumes, secrets).
fn scrub(stack: &str) {
    cooper_testkit::scrub_stack(stack);
}

async fn world(name: &str) -> World {
    let docker_api = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&docker_api, &["cooper-test/web:1.0", "cooper-test/web:1.1"])
        .await
        .unwrap();
    cooper_testkit::ensure_restic_image(&docker_api)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let abra = AbraDir::new(dir.path());
    std::fs::create_dir_all(abra.servers_dir().join("default")).unwrap();
    cooper_testkit::backup_settings(dir.path(), "default", &dir.path().join("restic-repo"))
        .unwrap();
    cooper_testkit::recipe_repo(
        &abra.recipes_dir().join("testapp"),
        &[
            (fixture("1.0.0+1.0"), "1.0.0+1.0"),
            (fixture("1.1.0+1.1"), "1.1.0+1.1"),
        ],
    )
    .unwrap();
    let domain = format!("{name}.cooper.test");
    let stack = domain.replace('.', "_");
    scrub(&stack);
    let sample = std::fs::read_to_string(fixture("1.0.0+1.0").join(".env.sample")).unwrap();
    let env = sample
        .replace("TYPE=testapp", "TYPE=testapp:1.0.0+1.0")
        .replace("DOMAIN=testapp.example.com", &format!("DOMAIN={domain}"));
    std::fs::write(
        abra.servers_dir()
            .join("default")
            .join(format!("{domain}.env")),
        env,
    )
    .unwrap();
    cooper_ops::secrets::generate(&abra, &domain, &[], None, &mut Collect::default())
        .await
        .unwrap();
    World {
        _dir: dir,
        abra,
        domain,
        stack,
    }
}

impl World {
    fn set_env(&self, key: &str, value: &str) {
        let mut app = self.abra.app(&self.domain).unwrap();
        app.env.set(key, value);
        app.save().unwrap();
    }

    fn marker(&self) -> String {
        docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}_data:/data", self.stack),
            "cooper-test/web:1.0",
            "cat",
            "/data/marker",
        ])
    }

    fn write_marker(&self, text: &str) {
        docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}_data:/data", self.stack),
            "cooper-test/web:1.0",
            "sh",
            "-c",
            &format!("echo {text} > /data/marker"),
        ]);
    }

    fn app_image(&self) -> String {
        docker(&[
            "service",
            "inspect",
            &format!("{}_app", self.stack),
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        ])
    }

    fn app_env(&self) -> String {
        docker(&[
            "service",
            "inspect",
            &format!("{}_app", self.stack),
            "--format",
            "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
        ])
    }

    fn running_tasks(&self, service: &str) -> usize {
        docker(&[
            "service",
            "ps",
            &format!("{}_{service}", self.stack),
            "--filter",
            "desired-state=running",
            "--format",
            "{{.CurrentState}}",
        ])
        .lines()
        .filter(|l| l.starts_with("Running"))
        .count()
    }

    async fn deploy(
        &self,
        kind: DeployKind,
        f: impl FnOnce(&mut DeployRequest),
    ) -> (Result<String, OpsError>, Collect) {
        let mut req = DeployRequest::new(&self.domain, kind);
        f(&mut req);
        let mut rep = Collect::default();
        let r = cooper_ops::deploy(&self.abra, &req, &mut rep).await;
        (r.map(|r| r.version), rep)
    }

    async fn cleanup(&self) {
        let mut rep = Collect::default();
        cooper_ops::undeploy(&self.abra, &self.domain, &mut rep)
            .await
            .unwrap();
        scrub(&self.stack);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_deploy_upgrade_rollback_undeploy() {
    let w = world("t-lifecycle").await;
    let (r, rep) = w.deploy(DeployKind::Deploy, |_| {}).await;
    assert_eq!(r.unwrap(), "1.0.0+1.0");
    assert!(rep.pictures > 0, "progress was reported");
    assert_eq!(w.running_tasks("app"), 1);
    assert_eq!(w.running_tasks("db"), 1);
    assert_eq!(w.marker(), "first");
    let app = w.abra.app(&w.domain).unwrap();
    assert_eq!(app.recipe.version.as_deref(), Some("1.0.0+1.0"));

    // A second plain deploy is refused and names the fix.
    let (r, _) = w.deploy(DeployKind::Deploy, |_| {}).await;
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains("already deployed") && err.contains("app upgrade"),
        "{err}"
    );

    // Upgrade crosses 1.1.0's release notes and records the version.
    let mut req = DeployRequest::new(&w.domain, DeployKind::Upgrade);
    req.max_task_failures = 3;
    let mut rep = Collect::default();
    let report = cooper_ops::deploy(&w.abra, &req, &mut rep).await.unwrap();
    assert_eq!(report.version, "1.1.0+1.1");
    // The upgrade took a safety backup first and says where the old data is.
    assert!(
        report
            .summary
            .iter()
            .any(|l| l.contains("before the upgrade is in snapshot")),
        "{:?}",
        report.summary
    );
    assert!(
        w.app_image().starts_with("cooper-test/web:1.1"),
        "{}",
        w.app_image()
    );
    assert_eq!(
        w.abra.app(&w.domain).unwrap().recipe.version.as_deref(),
        Some("1.1.0+1.1")
    );
    let notes = cooper_ops::deploy::release_notes(
        &w.abra.recipe("testapp").unwrap(),
        Some("1.0.0+1.0"),
        "1.1.0+1.1",
    );
    assert_eq!(notes.len(), 1);
    assert!(notes[0].1.contains("Moves the web image to 1.1"));

    // Nothing newer: upgrade says so.
    let (r, _) = w.deploy(DeployKind::Upgrade, |_| {}).await;
    assert!(r.unwrap_err().to_string().contains("newest release"));

    // Rollback goes to the previous release.
    let (r, _) = w.deploy(DeployKind::Rollback, |_| {}).await;
    assert_eq!(r.unwrap(), "1.0.0+1.0");
    assert!(w.app_image().starts_with("cooper-test/web:1.0"));
    assert_eq!(w.marker(), "first", "data survives upgrade and rollback");

    // Undeploy keeps volumes and secrets.
    let mut rep = Collect::default();
    cooper_ops::undeploy(&w.abra, &w.domain, &mut rep)
        .await
        .unwrap();
    assert!(docker(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={}", w.stack)
    ])
    .is_empty());
    assert!(!docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("name={}_data", w.stack)
    ])
    .is_empty());
    assert!(!docker(&[
        "secret",
        "ls",
        "-q",
        "--filter",
        &format!("name={}_db_password", w.stack)
    ])
    .is_empty());
    assert!(docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("name={}_internal", w.stack)
    ])
    .is_empty());
    // Records were left for each operation.
    let records = cooper_ops::record::list(&w.abra.root, &w.domain);
    let ops: Vec<&str> = records.iter().map(|r| r.operation.as_str()).collect();
    assert!(
        ops.contains(&"app deploy")
            && ops.contains(&"app upgrade")
            && ops.contains(&"app rollback")
            && ops.contains(&"app undeploy"),
        "{ops:?}"
    );
    w.cleanup().await;
}

fn running_task_ids(w: &World, service: &str) -> String {
    docker(&[
        "service",
        "ps",
        "-q",
        "--filter",
        "desired-state=running",
        &format!("{}_{service}", w.stack),
    ])
}

async fn expect_rolled_back(w: &World, overlay: &str, timeout: Option<u64>, expect: &[&str]) {
    w.set_env("COMPOSE_FILE", &format!("compose.yml:{overlay}"));
    let before_env = w.app_env();
    let db_before = running_task_ids(w, "db");
    let (r, _) = w
        .deploy(DeployKind::Deploy, |req| {
            req.force = true;
            req.timeout = timeout.map(Duration::from_secs);
        })
        .await;
    let err = r.expect_err("the broken deploy must fail").to_string();
    for e in expect {
        assert!(err.contains(e), "{overlay}: expected {e:?} in:\n{err}");
    }
    assert!(
        err.contains("rolled back: the previous version runs again"),
        "{overlay}: {err}"
    );
    w.set_env("COMPOSE_FILE", "compose.yml");
    assert_eq!(w.app_env(), before_env, "{overlay}: previous spec restored");
    assert_eq!(
        w.running_tasks("app"),
        1,
        "{overlay}: previous version runs"
    );
    assert_eq!(w.marker(), "precious", "{overlay}: data marker intact");
    assert_eq!(
        running_task_ids(w, "db"),
        db_before,
        "{overlay}: a service the deploy did not change is not restarted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_named_and_rolled_back_with_data_intact() {
    let w = world("t-failures").await;
    let (r, _) = w.deploy(DeployKind::Deploy, |_| {}).await;
    r.unwrap();
    w.write_marker("precious");
    expect_rolled_back(
        &w,
        "compose.exit.yml",
        None,
        &[
            "service t-failures_cooper_test_app",
            "non-zero exit (3)",
            "cannot start: missing configuration",
        ],
    )
    .await;
    expect_rolled_back(
        &w,
        "compose.unhealthy.yml",
        None,
        &[
            "unhealthy container",
            "last healthcheck output: wget: server returned error: HTTP/1.1 404",
        ],
    )
    .await;
    expect_rolled_back(
        &w,
        "compose.stuck.yml",
        Some(8),
        &["did not converge in time", "0/1 running after 8s"],
    )
    .await;
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_start_inside_start_period_converges() {
    let w = world("t-slow").await;
    w.set_env("COMPOSE_FILE", "compose.yml:compose.slow.yml");
    let started = std::time::Instant::now();
    let (r, _) = w.deploy(DeployKind::Deploy, |_| {}).await;
    assert_eq!(
        r.expect("a slow but healthy start must succeed"),
        "1.0.0+1.0"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(12),
        "waited for the app"
    );
    assert_eq!(w.running_tasks("app"), 1);
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_refuses_and_changes_nothing() {
    let w = world("t-preflight").await;
    let (r, _) = w.deploy(DeployKind::Deploy, |_| {}).await;
    r.unwrap();
    let before = docker(&[
        "service",
        "inspect",
        &format!("{}_app", w.stack),
        "--format",
        "{{.Version.Index}}",
    ]);
    for (overlay, expect) in [
        (
            "compose.extra-secret.yml",
            vec![
                "t-preflight_cooper_test_api_key_v1",
                "cooper app secret generate t-preflight.cooper.test --all",
            ],
        ),
        (
            "compose.missing-net.yml",
            vec![
                "cooper-test-no-such-network",
                "docker network create -d overlay --attachable cooper-test-no-such-network",
            ],
        ),
        (
            "compose.badimage.yml",
            vec!["image cooper-test/no-such-image:9.9 is not available"],
        ),
    ] {
        w.set_env("COMPOSE_FILE", &format!("compose.yml:{overlay}"));
        let (r, _) = w.deploy(DeployKind::Deploy, |req| req.force = true).await;
        let err = r.unwrap_err().to_string();
        for e in expect {
            assert!(err.contains(e), "{overlay}: expected {e:?} in {err}");
        }
        assert!(err.contains("nothing was changed"), "{err}");
    }
    let after = docker(&[
        "service",
        "inspect",
        &format!("{}_app", w.stack),
        "--format",
        "{{.Version.Index}}",
    ]);
    assert_eq!(before, after, "no service was touched");
    w.set_env("COMPOSE_FILE", "compose.yml");
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_operation_per_app_at_a_time() {
    let w = world("t-lock").await;
    let server_dir = w.abra.servers_dir().join("default");
    let held =
        cooper_ops::lock::AppLock::acquire(&server_dir, &w.domain, "app deploy", None).unwrap();
    let (r, _) = w.deploy(DeployKind::Deploy, |_| {}).await;
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains("is busy") && err.contains("app deploy"),
        "{err}"
    );
    drop(held);
    let (r, _) = w.deploy(DeployKind::Deploy, |_| {}).await;
    r.unwrap();
    w.cleanup().await;
}

/// `cooper app test`: the deployed version's suites run against the app (HTTP through the
/// proxy network, exec, health, an external command), the JUnit report validates against the
/// schema, `--prod` runs only suites marked safe, and cleanup runs and removes exactly what
/// the run marked — also after a failure, whose evidence lands in the results folder.
#[tokio::test(flavor = "multi_thread")]
async fn app_tests_run_report_and_clean_up_after_themselves() {
    use cooper_ops::test::{run, TestRequest};
    let w = world("t-apptest").await;
    let (r, _) = w.deploy(DeployKind::Deploy, |_| {}).await;
    r.unwrap();
    let data_files = || {
        docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}_data:/data", w.stack),
            "cooper-test/web:1.0",
            "ls",
            "/data",
        ])
    };
    let request = |suites: &[&str], results: &Path| {
        let mut req = TestRequest::new(&w.domain);
        req.suites = suites.iter().map(|s| s.to_string()).collect();
        req.results = Some(results.to_path_buf());
        req.probe_image = "cooper-test/web:1.0".into();
        req
    };

    let green = w._dir.path().join("results-green");
    let out = run(
        &w.abra,
        &request(&["smoke", "data"], &green),
        &mut Collect::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.report.failed(), 0, "{:#?}", out.report.results);
    assert_eq!(out.report.passed(), 8, "{:#?}", out.report.results);
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/junit/junit.xsd");
    let lint = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(green.join("junit.xml"))
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(green.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["results"].as_array().unwrap().len(), 8);
    assert!(!data_files().contains("cooper-test-"), "{}", data_files());
    assert_eq!(w.marker(), "first", "the app's own data is untouched");

    // Production: only suites marked prod = true run; the rest are reported skipped.
    let mut req = request(&[], &w._dir.path().join("results-prod"));
    req.prod = true;
    let out = run(&w.abra, &req, &mut Collect::default()).await.unwrap();
    assert_eq!(out.report.failed(), 0);
    assert_eq!(out.report.passed(), 5);
    assert_eq!(
        out.report.skipped(),
        9,
        "data, broken and slow: 3 steps each"
    );

    // A failing test: reported, with its evidence, and cleanup still removes the marked file.
    let red = w._dir.path().join("results-red");
    let out = run(
        &w.abra,
        &request(&["broken"], &red),
        &mut Collect::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.report.failed(), 1, "{:#?}", out.report.results);
    let cleanup = out
        .report
        .results
        .iter()
        .find(|r| r.phase == "cleanup")
        .unwrap();
    assert_eq!(cleanup.outcome, cooper_checks::Outcome::Passed);
    assert!(!data_files().contains("cooper-test-"), "{}", data_files());
    let junit = std::fs::read_to_string(red.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<failure") && junit.contains("answered 404"),
        "{junit}"
    );
    let logs: Vec<String> = std::fs::read_dir(&red)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    w.cleanup().await;
}

/// `docker stack rm` (an operator's reflex, and how other stack tools undeploy) deletes every
/// secret labelled with the stack namespace. cooper's secrets carry their own label, so they
/// outlive the stack and a deploy brings the app back with the same secrets; a secret that an
/// earlier cooper version labelled the old way is relabelled by the next deploy.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_outlive_docker_stack_rm() {
    let w = world("t-stackrm").await;
    let secret = format!("{}_db_password_v1", w.stack);
    let id_of = |name: &str| docker(&["secret", "inspect", name, "--format", "{{.ID}}"]);
    let labels_of = |name: &str| {
        docker(&[
            "secret",
            "inspect",
            name,
            "--format",
            "{{json .Spec.Labels}}",
        ])
    };
    assert!(
        labels_of(&secret).contains("\"cooper.stack\""),
        "{}",
        labels_of(&secret)
    );
    assert!(!labels_of(&secret).contains("com.docker.stack.namespace"));

    // A secret as an earlier cooper made it: Docker's stack label.
    let old = format!("{}_api_key_v1", w.stack);
    let created = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "printf old-secret | docker secret create --label com.docker.stack.namespace={} {old} -",
                w.stack
            ),
        ])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    w.set_env("COMPOSE_FILE", "compose.yml:compose.extra-secret.yml");
    let (r, _) = w.deploy(DeployKind::Deploy, |_| {}).await;
    r.unwrap();
    assert!(
        labels_of(&old).contains("\"cooper.stack\"") && !labels_of(&old).contains("namespace"),
        "the deploy relabelled the old secret: {}",
        labels_of(&old)
    );
    let ids = (id_of(&secret), id_of(&old));

    docker(&["stack", "rm", &w.stack]);
    // Wait for what `docker stack rm` removes (services, then their tasks' containers).
    let start = std::time::Instant::now();
    while !docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.docker.stack.namespace={}", w.stack),
    ])
    .is_empty()
        || !docker(&[
            "service",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.stack.namespace={}", w.stack),
        ])
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "docker stack rm did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        (id_of(&secret), id_of(&old)),
        ids,
        "the secrets are still there after docker stack rm"
    );

    let (r, _) = w.deploy(DeployKind::Deploy, |_| {}).await;
    assert_eq!(r.expect("the app comes back"), "1.0.0+1.0");
    assert_eq!(w.running_tasks("db"), 1, "db reads the same secret");
    assert_eq!((id_of(&secret), id_of(&old)), ids, "the same secrets");
    w.set_env("COMPOSE_FILE", "compose.yml");
    w.cleanup().await;
}

/// A deploy cancelled before its apply stops there, says so, records it, and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_deploy_changes_nothing() {
    let w = world("t-cancel").await;
    let cancel = cooper_ops::op::Cancel::new();
    cancel.cancel();
    let req = DeployRequest::new(&w.domain, DeployKind::Deploy);
    let err =
        cooper_ops::deploy::deploy_cancellable(&w.abra, &req, &mut Collect::default(), cancel)
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("cancelled; nothing was changed"), "{err}");
    assert!(docker(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={}", w.stack)
    ])
    .is_empty());
    let records = cooper_ops::record::list(&w.abra.root, &w.domain);
    assert!(
        records
            .iter()
            .any(|r| r.operation == "app deploy" && r.ok == Some(false)),
        "the cancelled deploy left a record"
    );
    scrub(&w.stack);
}
