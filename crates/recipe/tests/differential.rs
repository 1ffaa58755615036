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
        (&["duplicate-key.yml"], false),
        (&["merge-override.yml"], true),
        (&["gated.yml"], false),
        (&["unsupported-version.yml"], false),
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

/// Deterministic xorshift, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random overlays built from real service fields, merged onto real compose files: the merge
/// rules must agree with Docker's for every field in any combination.
#[test]
fn random_overlays_merge_like_docker() {
    let cli = docker_cli();
    let mut pool: Vec<(String, serde_json::Value)> = Vec::new();
    let mut bases: Vec<(String, String)> = Vec::new();
    for recipe in ["bonfire", "traefik", "llamenos", "gaseous"] {
        let dir = fixtures().join(recipe);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("compose") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let tree = cooper_recipe::yaml::parse(&text).unwrap().to_json();
            if let Some(services) = tree["services"].as_object() {
                for svc in services.values() {
                    for (k, v) in svc.as_object().into_iter().flatten() {
                        pool.push((k.clone(), v.clone()));
                    }
                }
            }
            if name == "compose.yml" {
                bases.push((recipe.to_string(), text));
            }
        }
    }
    // Fields from the hand-written edge cases widen the pool (ports, ulimits, logging, …).
    let edge = fixtures().join("../compose-edge");
    for entry in std::fs::read_dir(&edge).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let Ok(tree) = cooper_recipe::yaml::parse(&text) else {
            continue;
        };
        let tree = tree.to_json();
        for svc in tree["services"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            for (k, v) in svc.as_object().into_iter().flatten() {
                pool.push((k.clone(), v.clone()));
            }
        }
    }
    assert!(pool.len() > 100, "pool of {} fields", pool.len());
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().canonicalize().unwrap();
    // COOPER_FUZZ_SEED / COOPER_FUZZ_CASES explore further than the fixed CI run.
    let seed = std::env::var("COOPER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005e_edc0_0be4_u64);
    let cases: usize = std::env::var("COOPER_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut rng = Rng(seed);
    let mut compared = 0;
    for case in 0..cases {
        let (recipe, base_text) = &bases[rng.below(bases.len())];
        let base_tree = cooper_recipe::yaml::parse(base_text).unwrap().to_json();
        let base_services: Vec<String> = base_tree["services"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let mut overlays = Vec::new();
        for o in 0..1 + rng.below(2) {
            let mut services = serde_json::Map::new();
            for _ in 0..1 + rng.below(2) {
                let name = if rng.below(4) == 0 {
                    "extra".to_string()
                } else {
                    base_services[rng.below(base_services.len())].clone()
                };
                let mut svc = serde_json::Map::new();
                if name == "extra" {
                    svc.insert("image".into(), "busybox:1.36".into());
                }
                for _ in 0..1 + rng.below(5) {
                    let (k, v) = &pool[rng.below(pool.len())];
                    svc.insert(k.clone(), v.clone());
                }
                services.insert(name, serde_json::Value::Object(svc));
            }
            let doc = serde_json::json!({
                "version": base_tree["version"].clone(),
                "services": services,
            });
            let file = format!("overlay{o}.yml");
            std::fs::write(dir.join(&file), serde_norway::to_string(&doc).unwrap()).unwrap();
            overlays.push(file);
        }
        std::fs::write(dir.join("compose.yml"), base_text).unwrap();
        let mut files = vec!["compose.yml".to_string()];
        files.extend(overlays);
        let recipe_files = RecipeFiles::from_dir(recipe, &dir).unwrap();
        let domain = format!("case{case}.example.org");
        let env = EnvFile::parse(&format!(
            "DOMAIN={domain}\nCOMPOSE_FILE={}\nPG_BACKUP_VERSION=v1\nTRAEFIK_YML_VERSION=v1\n\
             FILE_PROVIDER_YML_VERSION=v1\nENTRYPOINT_VERSION=v1\n",
            files.join(":")
        ))
        .unwrap();
        let deploy_env = stack::deploy_env(&domain, &env, None);
        let theirs = docker_render(&cli, &dir, &files, &deploy_env);
        let ours = stack::load(&domain, &env, &recipe_files).map(|s| s.compose.to_json());
        let overlay_texts: Vec<String> = files[1..]
            .iter()
            .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
            .collect();
        match (ours, theirs) {
            (Ok(a), Ok(b)) => {
                compared += 1;
                assert_eq!(
                    a,
                    b,
                    "case {case} ({recipe} + overlays):\n{}",
                    overlay_texts.join("\n---\n")
                );
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!(
                "case {case} ({recipe}): cooper {a:?}\ndocker {b:?}\noverlays:\n{}",
                overlay_texts.join("\n---\n")
            ),
        }
        for f in &files[1..] {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
    }
    assert!(
        compared >= cases / 2,
        "only {compared} of {cases} random cases were accepted by both"
    );
}
