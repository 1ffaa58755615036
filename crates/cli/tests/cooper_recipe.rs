//! The `cooper` recipe in this repository (recipes/cooper: the dashboard deployed with cooper
//! itself) passes cooper's own lint with nothing to fix, with and without its Postgres overlay,
//! and its backup labels say what a consistent backup of the store needs.

use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn the_cooper_recipe_lints_clean_and_backs_up_its_store_consistently() {
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes/cooper");
    let dir = tempfile::tempdir().unwrap();
    cooper_testkit::recipe_repo(
        &dir.path().join("recipes/cooper"),
        &[(recipe.clone(), "0.1.0+0.1.0")],
    )
    .unwrap();
    let cooper = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args(args)
            .env("ABRA_DIR", dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let lint = cooper(&["recipe", "lint", "cooper", "-o"]);
    let out = String::from_utf8_lossy(&lint.stdout);
    assert!(
        lint.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&lint.stderr)
    );
    for line in out
        .lines()
        .filter(|l| l.starts_with('R') || l.starts_with('C'))
    {
        let status = line.split('\t').nth(3).unwrap_or_default();
        assert!(
            matches!(status, "ok" | "skipped" | "STATUS"),
            "lint finds something to fix: {line}"
        );
    }
    let compose = std::fs::read_to_string(recipe.join("compose.yml")).unwrap();
    assert!(compose.contains("backupbot.backup.pre-hook=sqlite3 /abra/cooper/cooper.db '.backup"));
    assert!(
        compose.contains("cooper/cooper.db.snapshot")
            && !compose.contains("path=cooper/cooper.db,"),
        "only the consistent copy of the store is backed up, never the live file"
    );
    // Both overlay combinations render.
    std::fs::create_dir_all(dir.path().join("servers/default")).unwrap();
    let new = cooper(&[
        "app",
        "new",
        "cooper",
        "0.1.0+0.1.0",
        "-s",
        "default",
        "-D",
        "dash.example.org",
        "-n",
    ]);
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    let env = dir.path().join("servers/default/dash.example.org.env");
    for files in ["compose.yml", "compose.yml:compose.postgres.yml"] {
        let text = std::fs::read_to_string(&env).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("COMPOSE_FILE=") && !l.starts_with("DATABASE_HOST="))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(
            &env,
            format!("{text}COMPOSE_FILE={files}\nDATABASE_HOST=db.example.org\n"),
        )
        .unwrap();
        let render = cooper(&["app", "render", "dash.example.org"]);
        let shown = String::from_utf8_lossy(&render.stdout);
        assert!(
            render.status.success(),
            "{files}: {}",
            String::from_utf8_lossy(&render.stderr)
        );
        assert!(shown.contains("/healthz"), "{files}: {shown}");
        if files.contains("postgres") {
            assert!(
                shown.contains("postgres://cooper@db.example.org/cooper"),
                "{shown}"
            );
            assert!(shown.contains("COOPER_DATABASE_PASSWORD_FILE"), "{shown}");
        }
    }
}
