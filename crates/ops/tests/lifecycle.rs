//! `cooper recipe test` on the real Swarm with real restic: a recipe whose tiers all pass
//! (seeded data survives the upgrade and comes back after a wipe + restore) gets level 7, a
//! recipe whose new release is broken stops at the upgrade tier; teardown leaves nothing in
//! either case (services, volumes, secrets, networks, configs, snapshots, `.env`). A throwaway
//! app left by an interrupted run is found by its mark and removed by the cleanup.

use std::path::{Path, PathBuf};

use cooper_checks::Outcome;
use cooper_ops::lifecycle::{cleanup_leftovers, recipe_test, RecipeTestRequest};
use cooper_ops::Collect;
use cooper_recipe::abra_dir::AbraDir;
use cooper_testkit::docker;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(path)
}

async fn abra_with(recipe: &str, versions: &[(&str, &str)]) -> (tempfile::TempDir, AbraDir) {
    let d = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0"])
        .await
        .unwrap();
    cooper_testkit::ensure_restic_image(&d).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let abra = AbraDir::new(dir.path());
    std::fs::create_dir_all(abra.servers_dir().join("default")).unwrap();
    let list: Vec<(PathBuf, &str)> = versions.iter().map(|(p, t)| (fixture(p), *t)).collect();
    cooper_testkit::recipe_repo(&abra.recipes_dir().join(recipe), &list).unwrap();
    cooper_testkit::backup_settings(dir.path(), "default", &dir.path().join("repo")).unwrap();
    (dir, abra)
}

fn request(recipe: &str, results: &Path) -> RecipeTestRequest {
    RecipeTestRequest {
        recipe: recipe.into(),
        version: None,
        server: "default".into(),
        env: Vec::new(),
        results: Some(results.to_path_buf()),
        probe_image: "cooper-test/web:1.0".into(),
        base_url: None,
        timeout: Some(std::time::Duration::from_secs(60)),
    }
}

fn nothing_left(stack: &str) {
    let label = format!("label=com.docker.stack.namespace={stack}");
    for kind in ["service", "network", "config", "secret"] {
        assert_eq!(
            docker(&[kind, "ls", "-q", "--filter", &label]),
            "",
            "{kind}s of {stack}"
        );
    }
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", &format!("name={stack}")]),
        ""
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tier_passes_and_teardown_leaves_nothing() {
    let (dir, abra) = abra_with(
        "lifeapp",
        &[
            ("apptest/lifeapp/1.0.0+1.0", "1.0.0+1.0"),
            ("apptest/lifeapp/1.1.0+1.1", "1.1.0+1.1"),
        ],
    )
    .await;
    let results = dir.path().join("results");
    let r = recipe_test(
        &abra,
        &request("lifeapp", &results),
        &mut Collect::default(),
    )
    .await
    .unwrap();
    let names: Vec<(&str, &Outcome)> = r
        .tiers
        .iter()
        .map(|t| (t.tier.as_str(), &t.outcome))
        .collect();
    assert!(
        r.tiers.iter().all(|t| t.outcome == Outcome::Passed),
        "{names:#?}"
    );
    assert_eq!(
        names.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["install", "seed", "upgrade", "backup", "restore", "custom", "teardown"]
    );
    assert_eq!(r.level, 7);
    assert_eq!(r.installed_from, "1.0.0+1.0");
    assert!(r.leftovers.is_empty());
    nothing_left(&r.domain.replace('.', "_"));
    assert!(
        abra.apps().unwrap().is_empty(),
        "the throwaway .env is gone"
    );
    let snaps = cooper_testkit::restic(
        dir.path(),
        "default",
        &dir.path().join("repo"),
        &["snapshots", "--json"],
    );
    assert_eq!(
        String::from_utf8_lossy(&snaps.stdout).trim(),
        "[]",
        "its snapshots are forgotten"
    );
    // The level is stored with the version, and JUnit/JSON reports are written.
    let levels: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("cooper/levels/lifeapp.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(levels["1.1.0+1.1"]["level"], 7);
    assert!(std::fs::read_to_string(results.join("junit.xml"))
        .unwrap()
        .contains(r#"tests="7" failures="0""#));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_release_stops_at_upgrade_and_leftovers_are_cleaned() {
    let (dir, abra) = abra_with(
        "bkapp",
        &[
            ("backup/bkapp/1.0.0+1.0", "1.0.0+1.0"),
            ("backup/bkapp/1.1.0+1.1", "1.1.0+1.1"),
        ],
    )
    .await;
    let r = recipe_test(
        &abra,
        &request("bkapp", &dir.path().join("r")),
        &mut Collect::default(),
    )
    .await
    .unwrap();
    let upgrade = r.tiers.iter().find(|t| t.tier == "upgrade").unwrap();
    assert!(
        matches!(upgrade.outcome, Outcome::Failed(_)),
        "{:#?}",
        r.tiers
    );
    assert_eq!(
        r.level, 1,
        "install passed, seed skipped (no tests), upgrade failed"
    );
    let teardown = r.tiers.last().unwrap();
    assert_eq!(
        (teardown.tier.as_str(), &teardown.outcome),
        ("teardown", &Outcome::Passed)
    );
    nothing_left(&r.domain.replace('.', "_"));

    // A throwaway app an interrupted run left behind is found by its mark and removed.
    let domain = "cooper-test-0badf00d.test";
    std::fs::write(
        abra.servers_dir()
            .join("default")
            .join(format!("{domain}.env")),
        "# cooper recipe test 0badf00d\nTYPE=bkapp:1.0.0+1.0\nDOMAIN=cooper-test-0badf00d.test\n",
    )
    .unwrap();
    cooper_ops::deploy(
        &abra,
        &cooper_ops::DeployRequest::new(domain, cooper_ops::DeployKind::Deploy),
        &mut Collect::default(),
    )
    .await
    .unwrap();
    let done = cleanup_leftovers(&abra).await.unwrap();
    assert_eq!(done.len(), 1);
    assert!(done[0].1.as_ref().unwrap().is_empty(), "{done:?}");
    nothing_left("cooper-test-0badf00d_test");
    assert!(abra.apps().unwrap().is_empty());
}
