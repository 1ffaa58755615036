//! Browser steps of `cooper app test` against a real Chromium (Debian's chromium +
//! chromedriver, headless) and a small HTML form app on the local Swarm: a login through the
//! form passes; a wrong password fails the step that expects a welcome, with a screenshot in
//! the results folder; a suite that requires another app's suite gets that suite's setup
//! before and its cleanup after. Needs `scripts/setup-swarm` (the test command runs it).

use std::path::Path;

use cooper_ops::test::{run, TestRequest};
use cooper_ops::{Collect, DeployKind, DeployRequest};
use cooper_recipe::abra_dir::AbraDir;

#[tokio::test(flavor = "multi_thread")]
async fn a_real_browser_logs_in_and_a_failure_leaves_a_screenshot() {
    let d = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0"])
        .await
        .unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/apptest/formapp/1.0.0+1.0");
    let dir = tempfile::tempdir().unwrap();
    let abra = AbraDir::new(dir.path());
    std::fs::create_dir_all(abra.servers_dir().join("default")).unwrap();
    cooper_testkit::recipe_repo(
        &abra.recipes_dir().join("formapp"),
        &[(fixture.clone(), "1.0.0+1.0")],
    )
    .unwrap();
    let domain = "t-browser.cooper.test";
    let stack = "t-browser_cooper_test";
    cooper_testkit::scrub_stack(stack);
    let port = 18431;
    std::fs::write(
        abra.servers_dir()
            .join("default")
            .join(format!("{domain}.env")),
        format!("TYPE=formapp:1.0.0+1.0\nDOMAIN={domain}\nFORM_PORT={port}\n"),
    )
    .unwrap();
    cooper_ops::deploy(
        &abra,
        &DeployRequest::new(domain, DeployKind::Deploy),
        &mut Collect::default(),
    )
    .await
    .unwrap();

    let request = |suite: &str, results: &Path| {
        let mut req = TestRequest::new(domain);
        req.suites = vec![suite.to_string()];
        req.results = Some(results.to_path_buf());
        req.base_url = Some(format!("http://127.0.0.1:{port}"));
        req
    };
    let green = dir.path().join("green");
    let out = run(&abra, &request("login", &green), &mut Collect::default())
        .await
        .unwrap();
    assert_eq!(out.report.failed(), 0, "{:#?}", out.report.results);
    assert!(
        green.join("logged-in.png").exists(),
        "the explicit screenshot step"
    );
    assert!(std::fs::read(green.join("logged-in.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));

    let red = dir.path().join("red");
    let out = run(&abra, &request("badlogin", &red), &mut Collect::default())
        .await
        .unwrap();
    assert_eq!(out.report.failed(), 1);
    let why = format!("{:?}", out.report.results[0].outcome);
    assert!(
        why.contains("Welcome") && why.contains("Wrong password"),
        "{why}"
    );
    let shots: Vec<_> = std::fs::read_dir(&red)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert_eq!(shots.len(), 1, "a screenshot of the failure: {shots:?}");

    // Dependencies between apps: the consumer suite requires another formapp's provider suite;
    // its setup runs first (same run mark), its cleanup last.
    let other = "t-browser2.cooper.test";
    let other_stack = "t-browser2_cooper_test";
    cooper_testkit::scrub_stack(other_stack);
    let unmet = run(
        &abra,
        &request("consumer", &dir.path().join("unmet")),
        &mut Collect::default(),
    )
    .await
    .unwrap();
    assert_eq!(unmet.report.failed(), 1, "{:#?}", unmet.report.results);
    assert!(format!("{:?}", unmet.report.results[0].outcome).contains("there is none"));
    std::fs::write(
        abra.servers_dir()
            .join("default")
            .join(format!("{other}.env")),
        format!(
            "TYPE=formapp:1.0.0+1.0\nDOMAIN={other}\nFORM_PORT={}\n",
            port + 1
        ),
    )
    .unwrap();
    cooper_ops::deploy(
        &abra,
        &DeployRequest::new(other, DeployKind::Deploy),
        &mut Collect::default(),
    )
    .await
    .unwrap();
    let out = run(
        &abra,
        &request("consumer", &dir.path().join("deps")),
        &mut Collect::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.report.failed(), 0, "{:#?}", out.report.results);
    let order: Vec<String> = out
        .report
        .results
        .iter()
        .map(|r| format!("{} {}", r.suite, r.phase))
        .collect();
    assert_eq!(
        order,
        [
            "formapp/provider setup",
            "consumer test",
            "formapp/provider cleanup"
        ]
    );
    let container = cooper_testkit::service_container(&format!("{other_stack}_app"));
    let tmp = cooper_testkit::docker(&["exec", &container, "ls", "/tmp"]);
    assert!(
        !tmp.contains("cooper-test-"),
        "the provider's cleanup ran: {tmp}"
    );

    for d in [domain, other] {
        cooper_ops::undeploy(&abra, d, &mut Collect::default())
            .await
            .unwrap();
    }
    cooper_testkit::scrub_stack(stack);
    cooper_testkit::scrub_stack(other_stack);
}
