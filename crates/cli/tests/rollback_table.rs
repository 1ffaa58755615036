//! Deploys that tell the truth whoever rolls back: a table of Swarm's update settings
//! (`failure_action` rollback/pause/continue/unset × `order` start-first/stop-first × 1 or 3
//! replicas with parallelism 1) against the ways a release fails (never healthy, crash loop,
//! missing image) or is merely slow (healthy only after a long `start_period`: must succeed).
//!
//! Each row deploys the good release, writes a marker into the volume, runs
//! `cooper app upgrade` to the failing release and asserts, at the moment cooper exits: the exit
//! code, the message (who rolled back, which version runs), the image that runs, N/N tasks
//! running, and the marker. While Swarm rolls back by itself, `app ps` and `app ls -S` must say
//! "rolling back". Rows run a few at a time; every row runs even when one fails, and the
//! failures are listed together at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cooper_testkit::docker;

const GOOD: &str = "1.0.0+good";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Rollback,
    Pause,
    Continue,
    Unset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    NeverHealthy,
    CrashLoop,
    MissingImage,
    SlowStart,
}

impl Failure {
    fn release(self) -> &'static str {
        match self {
            Failure::NeverHealthy => "2.0.0+never",
            Failure::CrashLoop => "2.1.0+crash",
            Failure::MissingImage => "2.2.0+missing",
            Failure::SlowStart => "2.3.0+slow",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Failure::NeverHealthy => "nh",
            Failure::CrashLoop => "cl",
            Failure::MissingImage => "mi",
            Failure::SlowStart => "ss",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Case {
    action: Action,
    start_first: bool,
    replicas: usize,
    failure: Failure,
}

impl Case {
    fn domain(&self) -> String {
        let a = match self.action {
            Action::Rollback => "rb",
            Action::Pause => "pa",
            Action::Continue => "co",
            Action::Unset => "un",
        };
        let o = if self.start_first { "sf" } else { "st" };
        format!(
            "rt-{a}-{o}-{}-{}.cooper.test",
            self.replicas,
            self.failure.short()
        )
    }

    fn env(&self) -> String {
        let mut env = format!(
            "TYPE=rollapp:{GOOD}\nDOMAIN={}\nREPLICAS={}\nORDER={}\n",
            self.domain(),
            self.replicas,
            if self.start_first {
                "start-first"
            } else {
                "stop-first"
            }
        );
        let action = match self.action {
            Action::Rollback => Some("rollback"),
            Action::Pause => Some("pause"),
            Action::Continue => Some("continue"),
            Action::Unset => None,
        };
        if let Some(a) = action {
            env.push_str(&format!(
                "COMPOSE_FILE=compose.yml:compose.action.yml\nFAILURE_ACTION={a}\n"
            ));
        }
        if self.swarm_rolls_back() {
            // The good release takes 3 s to become healthy, so Swarm's rollback lasts long
            // enough for `app ps` and `app ls -S` to be asked during it.
            env.push_str("READY_AFTER=3\n");
        }
        env
    }

    /// Swarm rolls this one back itself.
    fn swarm_rolls_back(&self) -> bool {
        self.action == Action::Rollback
            && matches!(self.failure, Failure::NeverHealthy | Failure::CrashLoop)
    }
}

fn fixture(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/deploy/rollapp")
        .join(version)
}

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cooper"));
        c.args(args)
            .env("ABRA_DIR", self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Images of the tasks that are running now and meant to (Swarm reports a task running only
/// once its healthcheck passes).
fn running_images(stack: &str) -> Vec<String> {
    docker(&[
        "service",
        "ps",
        &format!("{stack}_app"),
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Image}}|{{.CurrentState}}",
    ])
    .lines()
    .filter(|l| l.contains("|Running"))
    .map(|l| l.split('|').next().unwrap_or_default().to_string())
    .collect()
}

fn marker(stack: &str) -> String {
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{stack}_data:/data"),
        "cooper-test/roll:1.0",
        "cat",
        "/data/marker",
    ])
}

/// Runs one row; `Err` lists what did not hold.
fn run_case(w: &World, case: Case) -> Result<String, String> {
    let domain = case.domain();
    let stack = domain.replace('.', "_");
    cooper_testkit::scrub_stack(&stack);
    std::fs::write(
        w.dir
            .path()
            .join("servers/default")
            .join(format!("{domain}.env")),
        case.env(),
    )
    .unwrap();
    let result = check_case(w, case, &domain, &stack);
    let _ = w.run(&["app", "undeploy", &domain, "-n"]);
    cooper_testkit::scrub_stack(&stack);
    result
}

fn check_case(w: &World, case: Case, domain: &str, stack: &str) -> Result<String, String> {
    let out = w.run(&["app", "deploy", domain, "-n"]);
    if !out.status.success() {
        return Err(format!("the good release did not deploy:\n{}", text(&out)));
    }
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{stack}_data:/data"),
        "cooper-test/roll:1.0",
        "sh",
        "-c",
        "echo precious > /data/marker",
    ]);

    let release = case.failure.release();
    let started = Instant::now();
    let mut child = w
        .cmd(&["app", "upgrade", domain, release, "-n", "--no-backup"])
        .spawn()
        .unwrap();
    // While it runs: what `app ps` and `app ls -S` say during a Swarm rollback.
    let (mut ps_said, mut ls_said) = (false, false);
    let mut ps_wrong = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if case.swarm_rolls_back() {
            let state = docker(&[
                "service",
                "inspect",
                &format!("{stack}_app"),
                "--format",
                "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
            ]);
            if state.starts_with("rollback") {
                // The UPDATE column (tab-separated off a terminal) never says anything but
                // that a rollback is under way or done.
                let ps = text(&w.run(&["app", "ps", domain]));
                let column = ps
                    .lines()
                    .next()
                    .and_then(|h| h.split('\t').position(|c| c == "UPDATE"))
                    .unwrap_or(usize::MAX);
                for row in ps.lines().skip(1) {
                    match row.split('\t').nth(column) {
                        Some("rolling back") => ps_said = true,
                        Some("rolled back") => {}
                        other => ps_wrong.push(format!("{other:?} in {row:?}")),
                    }
                }
                let ls = text(&w.run(&["app", "ls", "-S"]));
                ls_said |= ls
                    .lines()
                    .any(|l| l.contains(domain) && l.contains("rolling back"));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    // The truth at the moment cooper exits.
    let images = running_images(stack);
    let said = text(&output);
    let code = status.code().unwrap_or(-1);
    let data = marker(stack);
    let elapsed = started.elapsed().as_secs_f64();

    let mut wrong = Vec::new();
    let expect_image = match case.failure {
        Failure::SlowStart => "cooper-test/roll:2.0",
        _ => "cooper-test/roll:1.0",
    };
    if images.len() != case.replicas || images.iter().any(|i| i != expect_image) {
        wrong.push(format!(
            "expected {} task(s) of {expect_image} running, found {images:?}",
            case.replicas
        ));
    }
    if data != "precious" {
        wrong.push(format!("the volume marker is {data:?}"));
    }
    let expected_code = if case.failure == Failure::SlowStart {
        0
    } else {
        1
    };
    if code != expected_code {
        wrong.push(format!("exit code {code}, expected {expected_code}"));
    }
    let must_say: Vec<String> = match case.failure {
        Failure::SlowStart => vec![format!("runs rollapp {release}")],
        Failure::MissingImage => vec![
            "cooper-test/no-such-image:9.9 is not available".into(),
            "nothing was changed".into(),
        ],
        Failure::NeverHealthy | Failure::CrashLoop => {
            let mut v = vec![
                format!("upgrade of {domain} to {release} failed"),
                format!(
                    "{GOOD} runs again ({n}/{n} tasks running",
                    n = case.replicas
                ),
            ];
            v.push(if case.swarm_rolls_back() {
                "Swarm rolled back".into()
            } else {
                "rolled back: the previous version runs again".into()
            });
            v.push(if case.failure == Failure::NeverHealthy {
                "last healthcheck output: wget: server returned error: HTTP/1.1 404".into()
            } else {
                "cannot start: missing configuration".into()
            });
            v
        }
    };
    for s in &must_say {
        if !said.contains(s.as_str()) {
            wrong.push(format!("the output does not say {s:?}"));
        }
    }
    for s in ["DID NOT CONVERGE", "panicked"] {
        if said.contains(s) {
            wrong.push(format!("the output says {s:?}"));
        }
    }
    if case.swarm_rolls_back() {
        if !ps_said {
            wrong.push("`app ps` never said \"rolling back\" during Swarm's rollback".into());
        }
        if !ls_said {
            wrong.push("`app ls -S` never said \"rolling back\" during Swarm's rollback".into());
        }
        if let Some(row) = ps_wrong.first() {
            wrong.push(format!(
                "`app ps` showed an UPDATE other than a rollback during Swarm's rollback: {row}"
            ));
        }
    }
    if wrong.is_empty() {
        if std::env::var_os("COOPER_ROLLBACK_SHOW").is_some() {
            eprintln!("{said}");
        }
        Ok(format!("exit {code} in {elapsed:.1}s"))
    } else {
        Err(format!("{}\n--- cooper said:\n{said}", wrong.join("\n")))
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for action in [
        Action::Rollback,
        Action::Pause,
        Action::Continue,
        Action::Unset,
    ] {
        for start_first in [false, true] {
            for replicas in [1, 3] {
                for failure in [
                    Failure::NeverHealthy,
                    Failure::CrashLoop,
                    Failure::MissingImage,
                    Failure::SlowStart,
                ] {
                    out.push(Case {
                        action,
                        start_first,
                        replicas,
                        failure,
                    });
                }
            }
        }
    }
    // `COOPER_ROLLBACK_ROWS=rb-st-1` runs only the rows whose domain contains it.
    if let Ok(only) = std::env::var("COOPER_ROLLBACK_ROWS") {
        out.retain(|c| only.split(',').any(|o| c.domain().contains(o)));
    }
    out
}

#[test]
fn upgrades_tell_the_truth_whoever_rolls_back() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let d = cooper_testkit::local_docker().await.unwrap();
        cooper_testkit::ensure_images(&d, &["cooper-test/roll:1.0", "cooper-test/roll:2.0"])
            .await
            .unwrap();
    });
    let w = World {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::create_dir_all(w.dir.path().join("servers/default")).unwrap();
    cooper_testkit::recipe_repo(
        &w.dir.path().join("recipes/rollapp"),
        &[
            GOOD,
            "2.0.0+never",
            "2.1.0+crash",
            "2.2.0+missing",
            "2.3.0+slow",
        ]
        .map(|v| (fixture(v), v)),
    )
    .unwrap();

    let queue = Mutex::new(cases());
    let results = Mutex::new(Vec::new());
    // Six rows at a time keep two cores busy without starving the healthchecks.
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| loop {
                let Some(case) = queue.lock().unwrap().pop() else {
                    break;
                };
                let r = run_case(&w, case);
                results.lock().unwrap().push((case, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(c, _)| c.domain());
    let mut failed = Vec::new();
    for (case, r) in &results {
        match r {
            Ok(how) => eprintln!("ok     {:<32} {how}", case.domain()),
            Err(why) => {
                eprintln!("FAILED {:<32}", case.domain());
                failed.push(format!("{} ({case:?}):\n{why}", case.domain()));
            }
        }
    }
    assert!(!results.is_empty(), "no rows ran");
    assert!(
        failed.is_empty(),
        "{} of {} rows failed:\n\n{}",
        failed.len(),
        results.len(),
        failed.join("\n\n")
    );
}
