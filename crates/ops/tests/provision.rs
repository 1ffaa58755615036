//! Provisioning on the real Swarm with real restic: a request with the mail option on becomes
//! a running instance (the answers in its `.env`, the given secret stored, the others
//! generated, its production-safe tests passed, a first snapshot), with the admin password
//! handed back once; a failure at each step — injected after the step ran, and a real one (the
//! mail option on without the password the recipe cannot generate) — leaves nothing
//! behind (no service, volume, secret, network, snapshot or `.env`) and names the step; a
//! failure kept for inspection leaves everything there; a domain that has a `.env` already
//! is refused without touching it.

use std::path::{Path, PathBuf};

use cooper_ops::app::NewApp;
use cooper_ops::provision::{provision, ProvisionRequest, Step};
use cooper_ops::Collect;
use cooper_recipe::abra_dir::AbraDir;
use cooper_recipe::secrets::SecretValue;
use cooper_recipe::wizard::Answers;
use cooper_testkit::docker;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(path)
}

async fn abra() -> (tempfile::TempDir, AbraDir) {
    let d = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0"])
        .await
        .unwrap();
    cooper_testkit::ensure_restic_image(&d).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let abra = AbraDir::new(dir.path());
    std::fs::create_dir_all(abra.servers_dir().join("default")).unwrap();
    cooper_testkit::recipe_repo(
        &abra.recipes_dir().join("provapp"),
        &[(fixture("provision/provapp/1.0.0+1.0"), "1.0.0+1.0")],
    )
    .unwrap();
    cooper_testkit::backup_settings(dir.path(), "default", &dir.path().join("repo")).unwrap();
    (dir, abra)
}

fn request(domain: &str, mail: bool) -> ProvisionRequest {
    let mut answers = Answers::default();
    let mut secrets = Vec::new();
    if mail {
        answers.options.insert("smtp".into());
        answers
            .values
            .insert("SMTP_HOST".into(), "mail.example.org".into());
        secrets.push((
            "smtp_password".to_string(),
            SecretValue::new("given-by-the-community-9f3"),
        ));
    }
    ProvisionRequest {
        app: NewApp {
            server: "default".into(),
            domain: domain.into(),
            recipe: "provapp".into(),
            version: Some("1.0.0+1.0".into()),
            chaos: false,
            answers: Some(answers),
            settings: None,
        },
        secrets,
        keep_on_failure: false,
        wait_lock: None,
        probe_image: "cooper-test/web:1.0".into(),
        fail_after: None,
        restore_from: None,
    }
}

/// What of a stack is still on the engine, and its `.env`, and its snapshots.
fn leftovers(abra: &AbraDir, domain: &str) -> Vec<String> {
    let stack = domain.replace('.', "_");
    let mut left = cooper_testkit::stack_leftovers(&stack);
    let env = abra
        .servers_dir()
        .join("default")
        .join(format!("{domain}.env"));
    if env.exists() {
        left.push(env.display().to_string());
    }
    left
}

/// The app's snapshots in the server's repository, counted by raw restic (snapshots carry
/// `--host <stack>`): independent of cooper and of whether the app's `.env` still exists.
fn snapshots(dir: &Path, domain: &str) -> usize {
    let out = cooper_testkit::restic(
        dir,
        "default",
        &dir.join("repo"),
        &["snapshots", "--json", "--host", &domain.replace('.', "_")],
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

#[tokio::test(flavor = "multi_thread")]
async fn a_request_becomes_a_running_instance_and_failures_leave_nothing() {
    let (dir, abra) = abra().await;
    let domains: Vec<String> = (0..9).map(|i| format!("t-prov{i}.cooper.test")).collect();
    for d in &domains {
        cooper_testkit::scrub_stack(&d.replace('.', "_"));
    }

    // The whole path, mail option on.
    let ok = &domains[0];
    let mut out = Collect::default();
    let p = provision(&abra, &request(ok, true), &mut out)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", out.lines.join("\n")));
    let steps: Vec<Step> = p.steps.iter().map(|s| s.step).collect();
    assert_eq!(steps, request(ok, true).steps(), "{:?}", p.steps);
    assert!(
        !steps.contains(&Step::Restore),
        "nothing to restore without an export"
    );
    assert_eq!(p.version, "1.0.0+1.0");
    let env =
        std::fs::read_to_string(abra.servers_dir().join(format!("default/{ok}.env"))).unwrap();
    assert!(env.contains("SMTP_HOST=mail.example.org"), "{env}");
    assert!(env.contains("compose.smtp.yml"), "{env}");
    assert!(env.contains(&format!("DOMAIN={ok}")), "{env}");
    assert!(
        !env.contains("given-by-the-community-9f3"),
        "a secret value is never written to the .env"
    );
    let stack = ok.replace('.', "_");
    let secrets = docker(&["secret", "ls", "--format", "{{.Name}}"]);
    for s in ["admin_password_v1", "db_password_v1", "smtp_password_v1"] {
        assert!(
            secrets.lines().any(|l| l == format!("{stack}_{s}")),
            "{s}: {secrets}"
        );
    }
    let running = docker(&[
        "service",
        "ls",
        "--filter",
        &format!("name={stack}_app"),
        "--format",
        "{{.Replicas}}",
    ]);
    assert_eq!(running, "1/1");
    assert!(
        p.steps[3].summary.contains("2 passed"),
        "the production-safe tests ran: {:?}",
        p.steps[3]
    );
    assert!(p.snapshot.is_some(), "a first backup: {:?}", p.steps[4]);
    assert_eq!(snapshots(dir.path(), ok), 1);
    assert_eq!(
        p.credentials
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        vec!["admin_password"],
        "the admin password is handed over, the database's is not"
    );
    assert_eq!(p.credentials[0].value.expose().len(), 20);
    assert!(
        !out.lines
            .join("\n")
            .contains(p.credentials[0].value.expose())
            && !out.lines.join("\n").contains("given-by-the-community-9f3"),
        "no secret value in what the run said"
    );
    let records = std::fs::read_dir(abra.root.join("cooper/records").join(ok))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        records >= 4,
        "each step keeps its record (secrets, deploy, test, backup): {records}"
    );

    // A failure after each step, then real failures, all at once on their own domains.
    let mut cases: Vec<(String, ProvisionRequest, Step)> = Vec::new();
    for (i, step) in request("x", true).steps().into_iter().enumerate() {
        let d = &domains[1 + i];
        let mut r = request(d, true);
        r.fail_after = Some(step);
        cases.push((d.clone(), r, step));
    }
    // The mail option on without its password: the recipe cannot generate it.
    let mut r = request(&domains[6], true);
    r.secrets.clear();
    cases.push((domains[6].clone(), r, Step::Secrets));
    let runs = cases.into_iter().map(|(d, r, step)| {
        let abra = abra.clone();
        async move {
            let mut out = Collect::default();
            let e = provision(&abra, &r, &mut out)
                .await
                .map(|_| ())
                .expect_err("the run fails");
            (d, step, e, out)
        }
    });
    for (d, step, e, out) in futures_util::future::join_all(runs).await {
        assert_eq!(e.step, step, "{d}: {e}\n{}", out.lines.join("\n"));
        assert!(!e.kept);
        assert!(e.left.is_empty(), "{d}: {e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("provisioning failed at step \"{}\"", step.id()))
                && msg.ends_with("nothing is left behind"),
            "{msg}"
        );
        assert_eq!(leftovers(&abra, &d), Vec::<String>::new(), "{d}: {msg}");
        assert_eq!(
            snapshots(dir.path(), &d),
            0,
            "{d}: its snapshot is forgotten"
        );
    }

    // Kept for inspection: everything stays, and says so.
    let kept = &domains[7];
    let mut r = request(kept, false);
    r.fail_after = Some(Step::Deploy);
    r.keep_on_failure = true;
    let e = provision(&abra, &r, &mut Collect::default())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(e.kept, "{e}");
    assert!(e.to_string().contains("kept for inspection"), "{e}");
    assert!(
        e.left.iter().any(|l| l.ends_with(".env"))
            && e.left.iter().any(|l| l.starts_with("service")),
        "{:?}",
        e.left
    );
    assert!(!leftovers(&abra, kept).is_empty());

    // A domain that is an app already: refused, its .env untouched.
    let taken = &domains[8];
    let path = abra.servers_dir().join(format!("default/{taken}.env"));
    std::fs::write(&path, "TYPE=provapp\nSOMETHING=of someone else\n").unwrap();
    let e = provision(&abra, &request(taken, false), &mut Collect::default())
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.step, Step::Env);
    assert!(e.error.contains("exists"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "TYPE=provapp\nSOMETHING=of someone else\n"
    );
    std::fs::remove_file(&path).unwrap();

    for d in [ok, kept] {
        let left = cooper_ops::lifecycle::teardown(&abra, d).await.unwrap();
        assert!(left.is_empty(), "{left:?}");
    }
}
