//! `cooper app upgrade --rehearse` on the real Swarm with real restic: a green rehearsal
//! upgrades production (its data intact, staging gone); a rehearsal whose tests fail on staging
//! leaves production exactly as it was — the same service specs (same spec versions) and the
//! same data — and staging is torn down anyway.

use std::path::{Path, PathBuf};

use cooper_checks::Outcome;
use cooper_ops::rehearse::{rehearse, RehearseRequest};
use cooper_ops::{Collect, DeployKind, DeployRequest};
use cooper_recipe::abra_dir::AbraDir;
use cooper_testkit::docker;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/apptest")
        .join(path)
}

struct Prod {
    /// Keeps the $ABRA_DIR alive for the test's length.
    _dir: tempfile::TempDir,
    abra: AbraDir,
    domain: String,
    stack: String,
}

async fn production(name: &str, new_release: &str) -> Prod {
    let d = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0"])
        .await
        .unwrap();
    cooper_testkit::ensure_restic_image(&d).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let abra = AbraDir::new(dir.path());
    std::fs::create_dir_all(abra.servers_dir().join("default")).unwrap();
    cooper_testkit::recipe_repo(
        &abra.recipes_dir().join("lifeapp"),
        &[
            (fixture("lifeapp/1.0.0+1.0"), "1.0.0+1.0"),
            (fixture(new_release), "1.1.0+1.1"),
        ],
    )
    .unwrap();
    cooper_testkit::backup_settings(dir.path(), "default", &dir.path().join("repo")).unwrap();
    let domain = format!("{name}.cooper.test");
    let stack = domain.replace('.', "_");
    cooper_testkit::scrub_stack(&stack);
    std::fs::write(
        abra.servers_dir()
            .join("default")
            .join(format!("{domain}.env")),
        format!("TYPE=lifeapp:1.0.0+1.0\nDOMAIN={domain}\nDB_PASSWORD=prod-db-password\n"),
    )
    .unwrap();
    cooper_ops::deploy(
        &abra,
        &DeployRequest::new(&domain, DeployKind::Deploy),
        &mut Collect::default(),
    )
    .await
    .unwrap();
    let p = Prod {
        _dir: dir,
        abra,
        domain,
        stack,
    };
    p.sh("app", "echo precious > /data/precious");
    p.sh("db", "echo 'production rows' > /var/lib/db/live.db");
    p
}

impl Prod {
    fn sh(&self, service: &str, script: &str) -> String {
        cooper_testkit::sh_in(&format!("{}_{service}", self.stack), script)
    }

    fn specs(&self) -> String {
        ["app", "db"]
            .iter()
            .map(|s| {
                docker(&[
                    "service",
                    "inspect",
                    &format!("{}_{s}", self.stack),
                    "--format",
                    "{{.Version.Index}} {{json .Spec}}",
                ])
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn data(&self) -> String {
        format!(
            "{}|{}",
            self.sh("app", "cat /data/precious"),
            self.sh("db", "cat /var/lib/db/live.db")
        )
    }

    fn request(&self) -> RehearseRequest {
        RehearseRequest {
            domain: self.domain.clone(),
            version: None,
            probe_image: "cooper-test/web:1.0".into(),
            timeout: Some(std::time::Duration::from_secs(60)),
        }
    }

    /// Nothing of this rehearsal's staging app is left (other tests may run their own).
    fn no_staging_left(&self, staging: &str) {
        let stack = staging.replace('.', "_");
        assert_eq!(
            cooper_testkit::stack_leftovers(&stack),
            Vec::<String>::new(),
            "nothing of {stack} is left"
        );
        let apps: Vec<String> = self
            .abra
            .apps()
            .unwrap()
            .into_iter()
            .map(|a| a.domain)
            .collect();
        assert_eq!(
            apps,
            vec![self.domain.clone()],
            "only production's .env is left"
        );
    }

    async fn cleanup(&self) {
        let _ = cooper_ops::undeploy(&self.abra, &self.domain, &mut Collect::default()).await;
        cooper_testkit::scrub_stack(&self.stack);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_green_rehearsal_upgrades_production_with_its_data() {
    let p = production("t-reh-green", "lifeapp/1.1.0+1.1").await;
    let before = p.data();
    let r = rehearse(&p.abra, &p.request(), &mut Collect::default())
        .await
        .unwrap();
    assert!(r.upgraded, "{:#?}", r.steps);
    assert!(
        r.steps.iter().all(|s| s.outcome == Outcome::Passed),
        "{:#?}",
        r.steps
    );
    let names: Vec<&str> = r.steps.iter().map(|s| s.tier.as_str()).collect();
    assert_eq!(
        names,
        [
            "backup production (verified)",
            "staging copy of production",
            "upgrade staging",
            "staging tests",
            "tear staging down",
            "upgrade production",
            "production tests"
        ]
    );
    assert!(r.snapshot.is_some());
    assert!(p.specs().contains("1.1.0+1.1"));
    assert_eq!(p.data(), before);
    p.no_staging_left(&r.staging);
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rehearsal_that_fails_on_staging_never_touches_production() {
    let p = production("t-reh-red", "lifeapp-bad/1.1.0+1.1").await;
    let specs = p.specs();
    let data = p.data();
    let r = rehearse(&p.abra, &p.request(), &mut Collect::default())
        .await
        .unwrap();
    assert!(!r.upgraded);
    let staging_tests = r.steps.iter().find(|s| s.tier == "staging tests").unwrap();
    match &staging_tests.outcome {
        Outcome::Failed(w) => assert!(w.contains("feature flag"), "{w}"),
        other => panic!("{other:?}"),
    }
    assert!(
        !r.steps.iter().any(|s| [
            "upgrade production",
            "production tests",
            "roll production back"
        ]
        .contains(&s.tier.as_str())),
        "production was never upgraded: {:#?}",
        r.steps
    );
    assert_eq!(p.specs(), specs, "production's specs are unchanged");
    assert_eq!(p.data(), data, "production's data is unchanged");
    p.no_staging_left(&r.staging);
    p.cleanup().await;
}
