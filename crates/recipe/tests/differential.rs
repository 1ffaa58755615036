//! The differential render test: for every real recipe in the fixtures and many
//! `COMPOSE_FILE` combinations, cooper's loaded stack must equal what Docker's own loader
//! (`docker stack config`, docker CLI 28) prints, after both are turned into JSON.
//!
//! Documented deviation: Docker prints `configs.*.file`, `secrets.*.file` and relative bind
//! sources as absolute paths on the machine it runs on; cooper keeps them relative to the
//! recipe root (a deploy reads them from the recipe at its version, not from a local path).
//! The test strips Docker's directory prefix before comparing.

use std::path::{Path, PathBuf};
use std::process::Command;

use cooper_recipe::envfile::EnvFile;
use cooper_recipe::repo::RecipeFiles;
use cooper_recipe::stack;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/recipes")
        .canonicalize()
        .expect("fixtures exist")
}

/// A docker CLI that has `docker stack config`. The machine's docker CLI 28 has it; Debian's
/// 20.10 does not. Set COOPER_DOCKER_CLI to point at another one.
fn docker_cli() -> PathBuf {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("COOPER_DOCKER_CLI") {
        candidates.push(p.into());
    }
    candidates.push("/usr/local/bin/docker".into());
    candidates.push("docker".into());
    for c in candidates {
        let ok = Command::new(&c)
            .args(["stack", "config", "--help"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return c;
        }
    }
    panic!(
        "no docker CLI with `docker stack config` found (need docker CLI >= 26; \
         set COOPER_DOCKER_CLI): the differential test cannot run without its oracle"
    );
}

fn strip_prefix(value: &mut serde_json::Value, prefix: &str) {
    match value {
        serde_json::Value::String(s) => {
            if let Some(rest) = s.strip_prefix(prefix) {
                *s = rest.to_string();
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|v| strip_prefix(v, prefix)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|v| strip_prefix(v, prefix)),
        _ => {}
    }
}

fn docker_render(
    cli: &Path,
    dir: &Path,
    files: &[String],
    env: &indexmap::IndexMap<String, String>,
) -> Result<serde_json::Value, String> {
    let mut cmd = Command::new(cli);
    cmd.env_clear().current_dir(dir).args(["stack", "config"]);
    for f in files {
        cmd.arg("-c").arg(dir.join(f));
    }
    cmd.envs(env);
    let out = cmd.output().expect("run docker stack config");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let yaml: serde_json::Value =
        serde_norway::from_slice(&out.stdout).expect("docker prints YAML");
    let mut json = yaml;
    strip_prefix(&mut json, &format!("{}/", dir.display()));
    Ok(json)
}

struct Case {
    recipe: &'static str,
    files: Vec<String>,
}

fn overlays(recipe: &str) -> Vec<String> {
    let dir = fixtures().join(recipe);
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("compose.") && n.ends_with(".yml") && n != "compose.yml")
        .collect();
    out.sort();
    out
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for recipe in ["bonfire", "traefik", "llamenos", "gaseous"] {
        let base = vec!["compose.yml".to_string()];
        cases.push(Case {
            recipe,
            files: base.clone(),
        });
        let overlays = overlays(recipe);
        let prefix: Vec<String> = if recipe == "bonfire" {
            vec!["compose.yml".into(), "compose.postgres.yml".into()]
        } else {
            base.clone()
        };
        for o in &overlays {
            let mut files = prefix.clone();
            if !files.contains(o) {
                files.push(o.clone());
            }
            cases.push(Case { recipe, files });
        }
        if !overlays.is_empty() {
            let mut all = base.clone();
            all.extend(overlays.iter().cloned());
            cases.push(Case {
                recipe,
                files: all.clone(),
            });
            // Reverse order: merge results depend on order.
            let mut rev = base.clone();
            rev.extend(overlays.iter().rev().cloned());
            cases.push(Case { recipe, files: rev });
        }
        if recipe == "bonfire" {
            cases.push(Case {
                recipe,
                files: vec![
                    "compose.yml".into(),
                    "compose.postgres.yml".into(),
                    "postgres/compose.postgres.tune.yml".into(),
                ],
            });
        }
    }
    cases
}

fn app_env(recipe: &str, files: &[String], domain: &str) -> EnvFile {
    let sample = std::fs::read_to_string(fixtures().join(recipe).join(".env.sample")).unwrap();
    let text = format!(
        "{sample}\nDOMAIN={domain}\nCOMPOSE_FILE=\"{}\"\nEXTRA_DOMAINS=', `www.{domain}`'\nUPLOAD_LIMIT=4000\n",
        files.join(":")
    );
    EnvFile::parse(&text).unwrap()
}

#[test]
fn render_equals_docker_stack_config_for_every_fixture_recipe() {
    let cli = docker_cli();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut both_failed = 0;
    for case in cases() {
        let dir = fixtures().join(case.recipe);
        let recipe_files = RecipeFiles::from_dir(case.recipe, &dir).unwrap();
        let domain = format!("{}.test.example.org", case.recipe);
        let env = app_env(case.recipe, &case.files, &domain);
        let abra_sh = recipe_files
            .text("abra.sh")
            .map(|t| cooper_recipe::abrash::AbraSh::parse(&t));
        let deploy_env = stack::deploy_env(&domain, &env, abra_sh.as_ref());
        let ours = stack::load(&domain, &env, &recipe_files).map(|s| s.compose.to_json());
        let theirs = docker_render(&cli, &dir, &case.files, &deploy_env);
        let label = format!("{} [{}]", case.recipe, case.files.join(":"));
        match (ours, theirs) {
            (Ok(a), Ok(b)) => {
                compared += 1;
                if a != b {
                    failures.push(format!(
                        "{label}: differs\n--- cooper\n{}\n--- docker\n{}",
                        serde_json::to_string_pretty(&a).unwrap(),
                        serde_json::to_string_pretty(&b).unwrap()
                    ));
                }
            }
            (Err(_), Err(_)) => both_failed += 1,
            (Ok(_), Err(e)) => {
                failures.push(format!("{label}: docker failed but cooper did not: {e}"))
            }
            (Err(e), Ok(_)) => {
                failures.push(format!("{label}: cooper failed but docker did not: {e}"))
            }
        }
    }
    assert!(compared >= 40, "only {compared} cases compared");
    assert!(
        both_failed <= 2,
        "{both_failed} real-recipe cases failed on both sides"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases differ ({both_failed} failed on both sides):\n{}",
        failures.len(),
        compared + both_failed,
        failures.join("\n\n")
    );
}

/// Hand-written files that pin merge and parsing quirks (list appends, keyed merges, scalar
/// overrides that cannot switch a flag off, Windows-drive volume specs, version defaults).
#[test]
fn render_equals_docker_on_edge_cases() {
    let cli = docker_cli();
    let dir = fixtures().join("../compose-edge").canonicalize().unwrap();
    let files = RecipeFiles::from_dir("edge", &dir).unwrap();
    let cases: &[(&[&str], bool)] = &[
        (&["quirks.base.yml", "quirks.over.yml"], true),
        (&["long-forms.yml"], true),
        (&["keyed.base.yml", "keyed.over.yml"], true),
        (&["maps.base.yml", "maps.over.yml"], true),
        (&["no-version.yml"], true),
        (&["maps.base.yml", "no-version.yml"], false),
        (&["interpolated.yml"], true),
        (&["required.yml"], false),
        (&["scalars.yml"], true),
        (&["v3-13.yml"], true),
        (&["quirky-interpolation.yml"], true),
        (&["assorted.yml"], true),
        (&["null-service.yml"], false),
        (&["number-version.yml"], false),
    ];
    let envs: [&[(&str, &str)]; 2] = [
        &[],
        &[
            ("GRACE", "90s"),
            ("RO", "false"),
            ("PORT", "8000"),
            ("REPLICAS", "0"),
            ("PASS_THROUGH", "from-env"),
            ("EMPTY_FILLED", "filled"),
            ("RETRIES", "7"),
            ("TAG", ""),
            ("MUST_BE_SET", "x"),
        ],
    ];
    for (names, docker_accepts) in cases {
        for extra in envs {
            let mut text = String::from("DOMAIN=edge.example.org\n");
            text.push_str(&format!("COMPOSE_FILE={}\n", names.join(":")));
            for (k, v) in extra {
                text.push_str(&format!("{k}='{v}'\n"));
            }
            let env = EnvFile::parse(&text).unwrap();
            let deploy_env = stack::deploy_env("edge.example.org", &env, None);
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let theirs = docker_render(&cli, &dir, &names, &deploy_env);
            let ours = stack::load("edge.example.org", &env, &files).map(|s| s.compose.to_json());
            let label = format!("{names:?} with {extra:?}");
            match (ours, theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{label}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{label}: cooper {a:?}\ndocker {b:?}"),
            }
            if extra.is_empty() {
                let accepted = docker_render(&cli, &dir, &names, &deploy_env).is_ok();
                assert_eq!(
                    accepted, *docker_accepts,
                    "{label}: the case no longer tests what it says"
                );
            }
        }
    }
}
