//! End-to-end tests of the `cooper` binary over a real `$ABRA_DIR` with real git recipe
//! repositories (annotated tags, working-tree changes), no TTY and no stdin.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

struct Abra {
    dir: tempfile::TempDir,
}

fn git(dir: &Path, args: &[&str]) {
    cooper_testkit::git(dir, args).expect("git runs");
}

impl Abra {
    fn new() -> Abra {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("servers/default")).unwrap();
        std::fs::create_dir_all(dir.path().join("recipes")).unwrap();
        Abra { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Creates recipe `name` with one commit and annotated tag per (fixture dir, tag).
    fn recipe(&self, name: &str, versions: &[(&str, &str)]) -> PathBuf {
        let dir = self.path().join("recipes").join(name);
        let versions: Vec<(PathBuf, &str)> = versions
            .iter()
            .map(|(src, tag)| (fixture(src), *tag))
            .collect();
        cooper_testkit::recipe_repo(&dir, &versions).expect("fixture recipe repository");
        dir
    }

    fn cooper(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args(args)
            .env("ABRA_DIR", self.path())
            .env_remove("EDITOR")
            .env_remove("VISUAL")
            .stdin(Stdio::null())
            .output()
            .expect("cooper runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cooper(args);
        assert!(
            out.status.success(),
            "cooper {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.cooper(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "cooper {args:?}: stdout {}\nstderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

#[test]
fn app_new_then_render_a_real_recipe_at_its_tag() {
    let abra = Abra::new();
    abra.recipe(
        "bonfire",
        &[("recipes/bonfire", "2.0.1+1.0.6-social-amd64")],
    );
    let out = abra.ok(&[
        "app",
        "new",
        "bonfire",
        "-s",
        "default",
        "-D",
        "social.example.org",
        "-n",
    ]);
    assert!(out.contains("social.example.org.env"), "{out}");
    let env = std::fs::read_to_string(abra.path().join("servers/default/social.example.org.env"))
        .unwrap();
    assert!(
        env.starts_with("TYPE=bonfire:2.0.1+1.0.6-social-amd64\n"),
        "{env}"
    );
    assert!(env.contains("DOMAIN=social.example.org\n"));
    // Comments of the sample survive.
    assert!(env.contains("# DATABASE CONFIG"));

    let json: serde_json::Value =
        serde_json::from_str(&abra.ok(&["app", "render", "social.example.org", "-m"])).unwrap();
    assert_eq!(
        json["services"]["db"]["image"],
        "ghcr.io/baosystems/postgis:17-3.5"
    );
    assert_eq!(
        json["secrets"]["postgres_password"]["name"],
        "social_example_org_postgres_password_v1"
    );
    // The recipe's abra.sh export (v4) wins over the compose default (v3).
    assert_eq!(
        json["configs"]["app_entrypoint"]["name"],
        "social_example_org_app_entrypoint_v4"
    );
    let yaml = abra.ok(&["a", "render", "social.example.org"]);
    assert!(yaml.contains("coop-cloud.social_example_org.version: 2.0.1+1.0.6-social-amd64"));
}

#[test]
fn tags_are_read_from_git_objects_and_chaos_reads_the_working_tree() {
    let abra = Abra::new();
    let dir = abra.recipe(
        "clean",
        &[
            ("lint/clean", "1.0.0+1.27.2"),
            ("lint/clean", "1.0.1+1.27.2"),
        ],
    );
    abra.ok(&[
        "app",
        "new",
        "clean",
        "1.0.0+1.27.2",
        "-s",
        "default",
        "-D",
        "c.example.org",
    ]);
    // An uncommitted edit in the shared checkout.
    let compose = dir.join("compose.yml");
    let original = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(&compose, original.replace("nginx:1.27.2", "nginx:1.29.0")).unwrap();

    let at_tag = abra.ok(&["app", "render", "c.example.org", "-m"]);
    assert!(at_tag.contains("nginx:1.27.2"), "{at_tag}");
    let out = abra.cooper(&["app", "render", "c.example.org", "-m", "-C"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nginx:1.29.0"));
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("chaos") && note.contains("compose.yml"),
        "{note}"
    );
    // Nothing was checked out: the edit is still there and HEAD did not move.
    assert!(std::fs::read_to_string(&compose)
        .unwrap()
        .contains("nginx:1.29.0"));
    let head = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["describe", "--tags"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&head.stdout).trim(), "1.0.1+1.27.2");
}

#[test]
fn errors_name_the_file_and_the_fix() {
    let abra = Abra::new();
    abra.recipe("clean", &[("lint/clean", "1.0.0+1.27.2")]);
    let app = abra.path().join("servers/default/e.example.org.env");

    // An overlay that does not exist.
    std::fs::write(
        &app,
        "TYPE=clean\nDOMAIN=e.example.org\nCOMPOSE_FILE=compose.yml:compose.nope.yml\n",
    )
    .unwrap();
    let err = abra.fails(&["app", "render", "e.example.org"], 1);
    assert!(
        err.contains("compose.nope.yml") && err.contains("compose.yml"),
        "{err}"
    );
    assert!(err.contains("COMPOSE_FILE"), "{err}");

    // A missing recipe lists the ones there are.
    std::fs::write(&app, "TYPE=nosuch\nDOMAIN=e.example.org\n").unwrap();
    let err = abra.fails(&["app", "render", "e.example.org"], 1);
    assert!(
        err.contains("nosuch") && err.contains("known recipes: clean"),
        "{err}"
    );

    // An unknown version lists the versions.
    std::fs::write(&app, "TYPE=clean:9.9.9+1\nDOMAIN=e.example.org\n").unwrap();
    let err = abra.fails(&["app", "render", "e.example.org"], 1);
    assert!(
        err.contains("9.9.9+1") && err.contains("1.0.0+1.27.2"),
        "{err}"
    );

    // A broken .env line.
    std::fs::write(&app, "TYPE=clean\nDOMAIN e.example.org\n").unwrap();
    let err = abra.fails(&["app", "render", "e.example.org"], 1);
    assert!(err.contains("e.example.org.env: line 2"), "{err}");
    assert_eq!(
        err.matches("expected KEY=value").count(),
        1,
        "each thing said once: {err}"
    );

    // An unknown app lists the apps.
    let err = abra.fails(&["app", "render", "x.example.org"], 1);
    assert!(err.contains("e.example.org"), "{err}");
}

#[test]
fn compose_errors_carry_file_line_and_column() {
    let abra = Abra::new();
    let dir = abra.recipe("clean", &[("lint/clean", "1.0.0+1.27.2")]);
    std::fs::write(
        abra.path().join("servers/default/y.example.org.env"),
        "TYPE=clean\nDOMAIN=y.example.org\nCOMPOSE_FILE=compose.yml:compose.bad.yml\n",
    )
    .unwrap();

    std::fs::write(
        dir.join("compose.bad.yml"),
        "version: \"3.8\"\nservices:\n  app:\n    image: [oops\n",
    )
    .unwrap();
    let err = abra.fails(&["app", "render", "y.example.org", "-C"], 1);
    assert!(
        err.contains("compose.bad.yml: invalid YAML at line"),
        "{err}"
    );
    assert_eq!(
        err.matches("at line").count(),
        1,
        "each thing said once: {err}"
    );
    // The same error through a chaos deploy (which fails before it changes anything).
    let err = abra.fails(&["app", "deploy", "y.example.org", "-C", "-n"], 1);
    assert!(
        err.contains("compose.bad.yml: invalid YAML at line"),
        "{err}"
    );
    assert_eq!(
        err.matches("at line").count(),
        1,
        "each thing said once: {err}"
    );

    std::fs::write(
        dir.join("compose.bad.yml"),
        "version: \"3.8\"\nservices:\n  app:\n    image: ${APP_IMAGE:?set APP_IMAGE to the image to run}\n",
    )
    .unwrap();
    let err = abra.fails(&["app", "render", "y.example.org", "-C"], 1);
    assert!(err.contains("compose.bad.yml:4:12"), "{err}");
    assert!(err.contains("set APP_IMAGE to the image to run"), "{err}");

    std::fs::write(
        dir.join("compose.bad.yml"),
        "version: \"3.8\"\nservices:\n  app:\n    imagee: nginx\n",
    )
    .unwrap();
    let err = abra.fails(&["app", "render", "y.example.org", "-C"], 1);
    assert!(err.contains("compose.bad.yml:4:5"), "{err}");
    assert!(err.contains("did you mean `image`"), "{err}");

    std::fs::write(
        dir.join("compose.bad.yml"),
        "version: \"3.8\"\nservices:\n  app:\n    stop_grace_period: ${GRACE:-soon}\n",
    )
    .unwrap();
    let err = abra.fails(&["app", "render", "y.example.org", "-C"], 1);
    assert!(
        err.contains("stop_grace_period") && err.contains("not a duration"),
        "{err}"
    );
}

#[test]
fn lint_passes_a_clean_recipe_and_fails_planted_defects() {
    let abra = Abra::new();
    abra.recipe("clean", &[("lint/clean", "1.0.0+1.27.2")]);
    let out = abra.ok(&["recipe", "lint", "clean", "-m", "--offline"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let failed: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "failed")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(failed.is_empty(), "clean recipe failed {failed:?}: {out}");

    let dir = abra.recipe(
        "defects",
        &[
            ("lint/defects-v1", "1.0.0+1"),
            ("lint/defects-v2", "1.1.0+1"),
        ],
    );
    // A lightweight tag too.
    git(&dir, &["tag", "1.1.1+1"]);
    let out = abra.cooper(&["recipe", "lint", "defects", "-m", "-o"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "failed")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in [
        "R002", "R003", "R004", "R007", "R009", "R010", "R014", "R015", "C001", "C002", "C003",
        "C004", "C005", "C007",
    ] {
        assert!(
            failed.contains(&rule),
            "{rule} not failed; failed: {failed:?}"
        );
    }
    assert!(!failed.contains(&"R012"), "abra.sh vendors CONF_VERSION");
    // Plain output without a TTY: one line per rule, no box drawing.
    let plain = abra.cooper(&["recipe", "lint", "defects", "-o"]);
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(text.lines().any(|l| l.starts_with("C003\t")), "{text}");
    assert!(!text.contains('│'));
}

/// An overlay switched on through its commented `.env.sample` block gets that block's
/// settings too, as an operator uncommenting the block would: a required setting in the
/// block loads; one documented in another block loads with a warning (C008) that names it;
/// one documented nowhere fails C006, naming the variable, the overlay and where to add it.
#[test]
fn lint_switches_on_an_overlays_commented_block() {
    let abra = Abra::new();
    let lint = |name: &str| {
        abra.recipe(name, &[(&format!("lint/{name}"), "1.0.0+1.27.2")]);
        let out = abra.cooper(&["recipe", "lint", name, "-m", "-o"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let finding = |rule: &str| {
            report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["rule"] == rule)
                .unwrap_or_else(|| panic!("{rule} missing: {report}"))
                .clone()
        };
        (out.status.code(), finding("C006"), finding("C008"))
    };

    let (code, c006, c008) = lint("overlay-block");
    assert_eq!(code, Some(0), "{c006}");
    assert_eq!(c006["status"], "ok", "{c006}");
    assert_eq!(c008["status"], "ok", "{c008}");

    let (code, c006, c008) = lint("overlay-elsewhere");
    assert_eq!(code, Some(0), "a warning only: {c008}");
    assert_eq!(c006["status"], "ok", "{c006}");
    assert_eq!(c008["status"], "failed");
    let why = c008["detail"][0].as_str().unwrap();
    for s in [
        "compose.sso.yml requires SSO_DOMAIN",
        "\"Identity provider (used by the single sign-on below)\"",
        "line 6",
    ] {
        assert!(why.contains(s), "{s:?} in {why}");
    }

    let (code, c006, _) = lint("overlay-nowhere");
    assert_eq!(code, Some(3), "{c006}");
    let why = c006["detail"][0].as_str().unwrap();
    for s in [
        "compose.yml:compose.sso.yml",
        "set SSO_DOMAIN to your identity provider",
        "SSO_DOMAIN is required by compose.sso.yml but documented nowhere in .env.sample",
        "add `#SSO_DOMAIN=…` to the block \"Single sign-on\" (line 5) of .env.sample",
    ] {
        assert!(why.contains(s), "{s:?} in {why}");
    }
    // The message says each thing once.
    assert_eq!(why.matches("SSO_DOMAIN is required").count(), 1, "{why}");
}

#[test]
fn listing_and_checking_apps() {
    let abra = Abra::new();
    abra.recipe("clean", &[("lint/clean", "1.0.0+1.27.2")]);
    std::fs::create_dir_all(abra.path().join("servers/other.example.net")).unwrap();
    abra.ok(&[
        "app",
        "new",
        "clean",
        "-s",
        "default",
        "-D",
        "a.example.org",
    ]);
    abra.ok(&[
        "app",
        "new",
        "clean",
        "-s",
        "other.example.net",
        "-D",
        "b.example.org",
    ]);

    let ls: serde_json::Value = serde_json::from_str(&abra.ok(&["app", "ls", "-m"])).unwrap();
    assert_eq!(ls["default"][0]["domain"], "a.example.org");
    assert_eq!(ls["other.example.net"][0]["version"], "1.0.0+1.27.2");
    let servers: serde_json::Value =
        serde_json::from_str(&abra.ok(&["server", "ls", "-m", "--no-probe"])).unwrap();
    assert_eq!(servers.as_array().unwrap().len(), 2);

    abra.ok(&["app", "check", "a.example.org"]);
    let path = abra.path().join("servers/default/a.example.org.env");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("LETS_ENCRYPT_ENV=production\n", "")).unwrap();
    let out = abra.cooper(&["app", "check", "a.example.org"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "LETS_ENCRYPT_ENV"
    );

    // A second app with the same domain is refused.
    let err = abra.fails(
        &[
            "app",
            "new",
            "clean",
            "-s",
            "default",
            "-D",
            "a.example.org",
        ],
        1,
    );
    assert!(err.contains("already exists"), "{err}");
    // An unknown server names the fix.
    let err = abra.fails(
        &["app", "new", "clean", "-s", "nope", "-D", "c.example.org"],
        1,
    );
    assert!(err.contains("cooper server add"), "{err}");
    // config needs an editor, which -n forbids.
    let err = abra.fails(&["app", "config", "a.example.org", "-n"], 1);
    assert!(err.contains("--no-input"), "{err}");
}

#[test]
fn app_config_runs_the_editor_and_rechecks_the_file() {
    let abra = Abra::new();
    abra.recipe("clean", &[("lint/clean", "1.0.0+1.27.2")]);
    abra.ok(&[
        "app",
        "new",
        "clean",
        "-s",
        "default",
        "-D",
        "a.example.org",
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_cooper"))
        .args(["app", "cfg", "a.example.org"])
        .env("ABRA_DIR", abra.path())
        .env("EDITOR", "sed -i s/production/staging/")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text =
        std::fs::read_to_string(abra.path().join("servers/default/a.example.org.env")).unwrap();
    assert!(text.contains("LETS_ENCRYPT_ENV=staging"));
}

#[test]
fn recipe_versions_new_and_completions() {
    let abra = Abra::new();
    abra.recipe(
        "clean",
        &[
            ("lint/clean", "1.0.0+1.27.2"),
            ("lint/clean", "1.0.1+1.27.2"),
        ],
    );
    let v: serde_json::Value =
        serde_json::from_str(&abra.ok(&["recipe", "versions", "clean", "-m"])).unwrap();
    assert_eq!(v[1]["1.0.1+1.27.2"]["app"]["tag"], "1.27.2");
    let plain = abra.ok(&["r", "v", "clean"]);
    assert!(
        plain.contains("1.0.0+1.27.2:\n - app (nginx:1.27.2)"),
        "{plain}"
    );

    let ls = abra.ok(&["recipe", "ls"]);
    assert!(ls.contains("clean\t-\t-\t1.0.1+1.27.2\t2\t-\tyes"), "{ls}");

    abra.ok(&["recipe", "new", "myapp"]);
    let out = abra.cooper(&["recipe", "lint", "myapp", "-o"]);
    // A new recipe has no release yet but no critical problem either.
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let script = abra.ok(&["autocomplete", "bash"]);
    assert!(script.contains("cooper"));
    let version = abra.ok(&["--version"]);
    assert!(version.starts_with("cooper "));
}

#[test]
fn backup_plan_of_a_real_recipe() {
    let abra = Abra::new();
    abra.recipe(
        "bonfire",
        &[("recipes/bonfire", "2.0.1+1.0.6-social-amd64")],
    );
    abra.ok(&[
        "app",
        "new",
        "bonfire",
        "-s",
        "default",
        "-D",
        "b.example.org",
    ]);
    let plan: serde_json::Value =
        serde_json::from_str(&abra.ok(&["app", "backup", "plan", "b.example.org", "-m"])).unwrap();
    let db = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "db")
        .unwrap();
    assert_eq!(db["pre_hook"], "/pg_backup.sh backup");
    assert_eq!(db["volumes"][0]["paths"][0], "backup.sql");
    let text = abra.ok(&["app", "backup", "plan", "b.example.org"]);
    assert!(
        text.contains(
            "volume db-data (b_example_org_db-data, at /var/lib/postgresql/data): paths backup.sql"
        ),
        "{text}"
    );
}
