//! `cooper recipe autoupgrade` unattended (no TTY) on the real Swarm, with images from a real
//! local registry: a candidate whose new image cannot start fails the upgrade tier — no tag,
//! no branch, the checkout and files as they were, the failing tier and its reason in the
//! JUnit and Markdown reports, exit code 3; a good candidate passes every tier and is
//! released on its branch, pushed with its annotated tag to the remote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cooper_testkit::LocalRegistry;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/autoupgrade/upapp")
}

fn copy(from: &Path, to: &Path, host: &str) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &target, host);
        } else {
            let text = std::fs::read_to_string(e.path()).unwrap();
            std::fs::write(target, text.replace("@REGISTRY@", host)).unwrap();
        }
    }
}

#[test]
fn a_failing_candidate_makes_no_release_and_a_passing_one_is_released_on_a_branch() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(cooper_testkit::ensure_test_images()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reg = LocalRegistry::start(dir.path(), &dir.path().join("storage"), None).unwrap();
    let host = reg.host();
    reg.push("cooper/up", &["1.0"]).unwrap();
    // 1.1: an image with no shell, so the service's command cannot start.
    let ctx = dir.path().join("broken");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY marker /marker\n",
    )
    .unwrap();
    std::fs::write(ctx.join("marker"), "no shell here\n").unwrap();
    cooper_testkit::docker(&[
        "build",
        "-q",
        "-t",
        "cooper-test/noshell:1",
        ctx.to_str().unwrap(),
    ]);
    reg.push_image("cooper-test/noshell:1", "cooper/up", &["1.1"])
        .unwrap();

    let abra = dir.path().join("abra");
    std::fs::create_dir_all(abra.join("servers/default")).unwrap();
    cooper_testkit::backup_settings(&abra, "default", &dir.path().join("restic-repo")).unwrap();
    let src = dir.path().join("src");
    copy(&fixture(), &src, &host);
    let recipe = abra.join("recipes/upapp");
    cooper_testkit::recipe_repo(&recipe, &[(src, "1.0.0+1.0")]).unwrap();
    cooper_testkit::git(dir.path(), &["init", "-q", "--bare", "remote.git"]).unwrap();
    let remote = dir.path().join("remote.git");
    cooper_testkit::git(
        &recipe,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    )
    .unwrap();
    let compose_before = std::fs::read_to_string(recipe.join("compose.yml")).unwrap();
    let head_before = cooper_testkit::git_output(&recipe, &["rev-parse", "HEAD"]);

    let results = dir.path().join("reports");
    let autoupgrade = || -> Output {
        Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args([
                "recipe",
                "autoupgrade",
                "upapp",
                "-y",
                "--publish",
                "-t",
                "60",
            ])
            .arg("--results")
            .arg(&results)
            .env("ABRA_DIR", &abra)
            .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
            .env("GIT_AUTHOR_NAME", "cooper bot")
            .env("GIT_AUTHOR_EMAIL", "bot@cooper.invalid")
            .env("GIT_COMMITTER_NAME", "cooper bot")
            .env("GIT_COMMITTER_EMAIL", "bot@cooper.invalid")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // Red: the upgrade tier fails; nothing is released.
    let out = autoupgrade();
    let text = format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert_eq!(
        cooper_testkit::git_output(&recipe, &["tag", "-l"]),
        "1.0.0+1.0",
        "no tag: {text}"
    );
    assert_eq!(
        cooper_testkit::git_output(&recipe, &["branch", "--format=%(refname:short)"]),
        "main"
    );
    assert_eq!(
        cooper_testkit::git_output(&recipe, &["rev-parse", "HEAD"]),
        head_before
    );
    assert_eq!(
        cooper_testkit::git_output(&recipe, &["status", "--porcelain"]),
        ""
    );
    assert_eq!(
        std::fs::read_to_string(recipe.join("compose.yml")).unwrap(),
        compose_before
    );
    assert_eq!(
        cooper_testkit::git_output(&remote, &["tag", "-l"]),
        "",
        "nothing pushed"
    );
    let runs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("autoupgrade.json")).unwrap())
            .unwrap();
    let run = &runs[0];
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["candidate"], "1.1.0+1.1");
    assert_eq!(run["failed_tier"], "upgrade", "{run}");
    assert!(run["edits"][0]["to"]
        .as_str()
        .unwrap()
        .ends_with("/cooper/up:1.1"));
    let summary = std::fs::read_to_string(results.join("summary.md")).unwrap();
    eprintln!("{summary}");
    assert!(
        summary
            .contains("| upapp | ❌ tier **upgrade** failed; no release | 1.0.0+1.0 | 1.1.0+1.1 |"),
        "{summary}"
    );
    assert!(summary.contains("tier install: passed"), "{summary}");
    let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap();
    assert!(junit.contains("<testcase name=\"upgrade\""), "{junit}");
    assert!(junit.contains("<failure"), "{junit}");

    // Green: a good 1.2 passes every tier and is released on its branch, and published.
    reg.push("cooper/up", &["1.2"]).unwrap();
    let out = autoupgrade();
    let text = format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{text}\n{}",
        std::fs::read_to_string(results.join("summary.md")).unwrap_or_default()
    );
    let runs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("autoupgrade.json")).unwrap())
            .unwrap();
    assert_eq!(runs[0]["status"], "released", "{}", runs[0]);
    assert_eq!(runs[0]["branch"], "cooper/upgrade-1.1.0+1.2");
    let level = runs[0]["level"].as_u64().unwrap();
    assert!(
        level >= 6,
        "install, seed, upgrade, backup, restore, custom, teardown: {}",
        runs[0]
    );
    assert_eq!(
        cooper_testkit::git_output(&recipe, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "main",
        "checkout restored"
    );
    assert_eq!(
        cooper_testkit::git_output(&recipe, &["cat-file", "-t", "1.1.0+1.2"]),
        "tag"
    );
    let released = cooper_testkit::git_output(&recipe, &["show", "1.1.0+1.2:compose.yml"]);
    assert!(
        released.contains(&format!("image: {host}/cooper/up:1.2\n")),
        "{released}"
    );
    assert!(
        released.contains("coop-cloud.${STACK_NAME}.version=1.1.0+1.2\""),
        "{released}"
    );
    assert_eq!(
        cooper_testkit::git_output(&remote, &["rev-parse", "1.1.0+1.2^{commit}"]),
        cooper_testkit::git_output(&recipe, &["rev-parse", "cooper/upgrade-1.1.0+1.2"]),
        "the branch and tag are published"
    );
    let summary = std::fs::read_to_string(results.join("summary.md")).unwrap();
    assert!(
        summary.contains("✅ released on `cooper/upgrade-1.1.0+1.2`"),
        "{summary}"
    );

    // Again, before the release branch is merged: nothing new to test, nothing changed.
    let tags_before = cooper_testkit::git_output(&recipe, &["tag", "-l"]);
    let out = autoupgrade();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("autoupgrade.json")).unwrap())
            .unwrap();
    assert_eq!(runs[0]["status"], "pending", "{}", runs[0]);
    assert_eq!(
        cooper_testkit::git_output(&recipe, &["tag", "-l"]),
        tags_before
    );
    assert_eq!(
        cooper_testkit::git_output(&recipe, &["status", "--porcelain"]),
        ""
    );
    assert!(std::fs::read_to_string(results.join("summary.md"))
        .unwrap()
        .contains("⏳ released earlier on `cooper/upgrade-1.1.0+1.2`"));
}
