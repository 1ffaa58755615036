//! `cooper recipe sync|release` on real git repositories: the next version follows what changed
//! (image → minor, new setting → major, other files → patch), a config whose file changed
//! without a version bump gets its abra.sh version counted up, a dry run changes no byte on
//! disk (the `.git` directory included), a release commits, writes an annotated tag with abra's
//! message, moves the notes and publishes to a bare remote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/release/relapp")
}

struct Setup {
    _dir: tempfile::TempDir,
    abra: PathBuf,
    recipe: PathBuf,
    remote: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let abra = dir.path().join("abra");
    let recipe = abra.join("recipes/relapp");
    std::fs::create_dir_all(abra.join("servers")).unwrap();
    cooper_testkit::recipe_repo(&recipe, &[(fixture(), "1.0.0+1.27.1-alpine")]).unwrap();
    let remote = dir.path().join("remote.git");
    cooper_testkit::git(dir.path(), &["init", "-q", "--bare", "remote.git"]).unwrap();
    cooper_testkit::git(
        &recipe,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    )
    .unwrap();
    Setup {
        _dir: dir,
        abra,
        recipe,
        remote,
    }
}

fn cooper(s: &Setup, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cooper"))
        .args(args)
        .env("ABRA_DIR", &s.abra)
        .env("GIT_AUTHOR_NAME", "cooper tests")
        .env("GIT_AUTHOR_EMAIL", "tests@cooper.invalid")
        .env("GIT_COMMITTER_NAME", "cooper tests")
        .env("GIT_COMMITTER_EMAIL", "tests@cooper.invalid")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under a directory (`.git` included) with its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(
                    e.path(),
                    (std::fs::read(e.path()).unwrap(), m.permissions().mode()),
                );
            }
        }
    }
    out
}

fn read(s: &Setup, path: &str) -> String {
    std::fs::read_to_string(s.recipe.join(path)).unwrap()
}

fn write(s: &Setup, path: &str, text: &str) {
    std::fs::write(s.recipe.join(path), text).unwrap();
}

#[test]
fn release_counts_up_changed_configs_and_a_dry_run_changes_nothing() {
    let s = setup();
    // An image upgrade and a config edited without touching its version.
    write(
        &s,
        "compose.yml",
        &read(&s, "compose.yml").replace("nginx:1.27.1-alpine", "nginx:1.28.0-alpine"),
    );
    write(
        &s,
        "nginx.conf",
        "server { listen 80; location / { return 204; } }\n",
    );
    write(
        &s,
        "release/next",
        "nginx 1.28; the default page answers 204\n",
    );

    let before = snapshot(s.abra.parent().unwrap());
    let out = ok(&cooper(&s, &["recipe", "release", "relapp", "--dry-run"]));
    assert!(
        out.contains("1.0.0+1.27.1-alpine → 1.1.0+1.28.0-alpine (minor step)"),
        "{out}"
    );
    assert!(
        out.contains("minor: service app: nginx:1.27.1-alpine → nginx:1.28.0-alpine"),
        "{out}"
    );
    assert!(
        out.contains("NGINX_CONF_VERSION v1 → v2 (config nginx_conf changed)"),
        "{out}"
    );
    assert!(
        out.contains("move release/next → release/1.1.0+1.28.0-alpine"),
        "{out}"
    );
    assert!(out.contains("annotated tag 1.1.0+1.28.0-alpine"), "{out}");
    let json: serde_json::Value = serde_json::from_slice(
        &cooper(&s, &["recipe", "release", "relapp", "-r", "-m", "-p"]).stdout,
    )
    .unwrap();
    assert_eq!(json["version"], "1.1.0+1.28.0-alpine");
    assert_eq!(json["step"], "minor");
    assert_eq!(json["config_bumps"][0]["variable"], "NGINX_CONF_VERSION");
    assert_eq!(json["config_bumps"][0]["to"], "v2");
    assert_eq!(json["push"], "origin main");
    assert_eq!(
        snapshot(s.abra.parent().unwrap()),
        before,
        "a dry run changes no byte on disk"
    );

    // Without a terminal and without -n, nothing happens either.
    let err = failed(&cooper(&s, &["recipe", "release", "relapp"]));
    assert!(err.contains("pass -n"), "{err}");

    let out = ok(&cooper(
        &s,
        &["-n", "recipe", "release", "relapp", "--publish"],
    ));
    assert!(
        out.contains("released 1.1.0+1.28.0-alpine and pushed it to origin main"),
        "{out}"
    );
    assert_eq!(
        read(&s, "abra.sh"),
        "# config versions, counted up by `cooper recipe release`\nexport NGINX_CONF_VERSION=v2\n"
    );
    let compose = read(&s, "compose.yml");
    assert!(compose.contains("- \"coop-cloud.${STACK_NAME}.version=1.1.0+1.28.0-alpine\"\n"));
    assert!(compose.contains("image: nginx:1.28.0-alpine   # upgraded by the tests\n"));
    assert!(!s.recipe.join("release/next").exists());
    assert_eq!(
        read(&s, "release/1.1.0+1.28.0-alpine"),
        "nginx 1.28; the default page answers 204\n"
    );
    assert_eq!(
        cooper_testkit::git_output(&s.recipe, &["status", "--porcelain"]),
        "",
        "all committed"
    );
    assert_eq!(
        cooper_testkit::git_output(&s.recipe, &["cat-file", "-t", "1.1.0+1.28.0-alpine"]),
        "tag",
        "annotated"
    );
    assert_eq!(
        cooper_testkit::git_output(
            &s.recipe,
            &[
                "tag",
                "-l",
                "--format=%(contents:subject)",
                "1.1.0+1.28.0-alpine"
            ]
        ),
        "chore: publish 1.1.0+1.28.0-alpine release"
    );
    assert_eq!(
        cooper_testkit::git_output(&s.remote, &["rev-parse", "1.1.0+1.28.0-alpine^{commit}"]),
        cooper_testkit::git_output(&s.recipe, &["rev-parse", "HEAD"]),
        "published"
    );
    // The release passes the config-version rule it was made to satisfy.
    let lint = cooper(&s, &["recipe", "lint", "relapp", "-m"]);
    let report: serde_json::Value = serde_json::from_slice(&lint.stdout).unwrap();
    let c003 = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "C003")
        .unwrap();
    assert_eq!(c003["status"], "ok", "{c003}");

    // Nothing changed since: refused, nothing written.
    let err = failed(&cooper(&s, &["-n", "recipe", "release", "relapp"]));
    assert!(
        err.contains("nothing changed since 1.1.0+1.28.0-alpine"),
        "{err}"
    );
}

#[test]
fn steps_follow_the_changes_and_sync_writes_only_the_label() {
    let s = setup();
    // A README edit: patch.
    write(
        &s,
        "README.md",
        &format!("{}\nMore words.\n", read(&s, "README.md")),
    );
    let out = ok(&cooper(&s, &["-n", "recipe", "sync", "relapp"]));
    assert!(out.contains("→ 1.0.1+1.27.1-alpine (patch step)"), "{out}");
    assert!(read(&s, "compose.yml").contains("version=1.0.1+1.27.1-alpine\""));
    assert_eq!(
        cooper_testkit::git_output(&s.recipe, &["tag", "-l"]),
        "1.0.0+1.27.1-alpine",
        "sync tags nothing"
    );

    // A new setting: major, whatever step is asked for (with a warning).
    write(
        &s,
        ".env.sample",
        &format!("{}SMTP_HOST=mail.example.com\n", read(&s, ".env.sample")),
    );
    let out = ok(&cooper(&s, &["recipe", "sync", "relapp", "-r", "-z"]));
    assert!(out.contains("1.0.1+1.27.1-alpine (patch step)"), "{out}");
    assert!(out.contains("warning: a patch step was asked for, but the changes call for a major step: setting SMTP_HOST added"), "{out}");
    let out = ok(&cooper(&s, &["recipe", "sync", "relapp", "-r"]));
    assert!(out.contains("→ 2.0.0+1.27.1-alpine (major step)"), "{out}");

    // A version that is not newer, or not a recipe version: refused with the fix.
    let err = failed(&cooper(
        &s,
        &["recipe", "release", "relapp", "0.9.0+1.27.1-alpine", "-r"],
    ));
    assert!(
        err.contains("is not newer than the last release 1.0.0+1.27.1-alpine"),
        "{err}"
    );
    let err = failed(&cooper(
        &s,
        &["recipe", "release", "relapp", "banana", "-r"],
    ));
    assert!(err.contains("not a recipe version"), "{err}");

    // A changed config whose name has no version variable: refused, naming the fix.
    write(
        &s,
        "compose.yml",
        &read(&s, "compose.yml").replace("_${NGINX_CONF_VERSION}", "_fixed"),
    );
    cooper_testkit::git(&s.recipe, &["commit", "-qam", "unversioned config"]).unwrap();
    cooper_testkit::git(&s.recipe, &["tag", "-a", "1.0.2+1.27.1-alpine", "-m", "x"]).unwrap();
    write(&s, "nginx.conf", "changed\n");
    let before = snapshot(&s.recipe);
    let err = failed(&cooper(&s, &["-n", "recipe", "release", "relapp"]));
    assert!(
        err.contains("config nginx_conf (nginx.conf) changed since 1.0.2+1.27.1-alpine"),
        "{err}"
    );
    assert!(err.contains("export NGINX_CONF_VERSION=v1"), "{err}");
    assert_eq!(
        snapshot(&s.recipe),
        before,
        "a refused release writes nothing"
    );
}

/// A dry run commits nothing, so it needs no git identity; the real release checks for one
/// before it changes anything, and says how to set it.
#[test]
fn a_dry_run_needs_no_git_identity_and_a_release_without_one_changes_nothing() {
    let s = setup();
    write(
        &s,
        "compose.yml",
        &read(&s, "compose.yml").replace("nginx:1.27.1-alpine", "nginx:1.28.0-alpine"),
    );
    // git refuses an empty name, whatever the machine's own configuration says.
    let anonymous = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args(args)
            .env("ABRA_DIR", &s.abra)
            .env("GIT_AUTHOR_NAME", "")
            .env("GIT_COMMITTER_NAME", "")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let before = snapshot(s.abra.parent().unwrap());
    let out = ok(&anonymous(&["recipe", "release", "relapp", "--dry-run"]));
    assert!(out.contains("annotated tag 1.1.0+1.28.0-alpine"), "{out}");
    let err = failed(&anonymous(&["-n", "recipe", "release", "relapp"]));
    assert!(
        err.contains("git has no identity") && err.contains("git config --global user.name"),
        "{err}"
    );
    assert_eq!(
        snapshot(s.abra.parent().unwrap()),
        before,
        "neither the dry run nor the refused release changed a byte"
    );
}
