//! The `cooper` binary against the real local Swarm: `kill -9` in the middle of a deploy and a
//! re-run, and generated secret values that must never show up again (not in output, `-m`
//! JSON, labels, records or process arguments).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn fixture(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/deploy/testapp")
        .join(version)
}

use cooper_testkit::docker;

fn scrub(stack: &str) {
    cooper_testkit::scrub_stack(stack);
}

struct Setup {
    dir: tempfile::TempDir,
    domain: String,
    stack: String,
}

fn setup(name: &str) -> Setup {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let d = cooper_testkit::local_docker().await.unwrap();
        cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0", "cooper-test/web:1.1"])
            .await
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("servers/default")).unwrap();
    cooper_testkit::recipe_repo(
        &dir.path().join("recipes/testapp"),
        &[
            (fixture("1.0.0+1.0"), "1.0.0+1.0"),
            (fixture("1.1.0+1.1"), "1.1.0+1.1"),
        ],
    )
    .unwrap();
    let domain = format!("{name}.cooper.test");
    let stack = domain.replace('.', "_");
    scrub(&stack);
    Setup { dir, domain, stack }
}

impl Setup {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cooper"));
        c.args(args)
            .env("ABRA_DIR", self.dir.path())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cooper {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        scrub(&self.stack);
    }
}

#[test]
fn kill_9_mid_deploy_then_rerun_converges_and_recovers_the_lock() {
    let s = setup("t-kill");
    s.ok(&["app", "new", "testapp", "-s", "default", "-D", &s.domain]);
    s.ok(&["app", "secret", "generate", &s.domain, "--all"]);
    // A slow start keeps the deploy in its convergence wait.
    let env_path = s
        .dir
        .path()
        .join(format!("servers/default/{}.env", s.domain));
    let env = std::fs::read_to_string(&env_path).unwrap();
    std::fs::write(
        &env_path,
        format!("{env}COMPOSE_FILE=compose.yml:compose.slow.yml\n"),
    )
    .unwrap();

    let mut child = s
        .cmd(&["app", "deploy", &s.domain, "-n"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let tasks = docker(&["service", "ps", "-q", &format!("{}_app", s.stack)]);
        if !tasks.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the deploy never created the service"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // kill -9: no destructor, no cleanup.
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    let lock = std::fs::read_to_string(
        s.dir
            .path()
            .join(format!("servers/default/.{}.lock", s.domain)),
    )
    .unwrap();
    assert!(
        lock.contains("\"finished\":false"),
        "the killed run left its holder record: {lock}"
    );

    let out = s.ok(&["app", "deploy", &s.domain, "-n", "-f"]);
    assert!(out.contains("ended without finishing"), "{out}");
    assert!(out.contains("runs testapp 1.1.0+1.1"), "{out}");
    let env = std::fs::read_to_string(&env_path).unwrap();
    assert!(env.starts_with("TYPE=testapp:1.1.0+1.1"), "{env}");
}

#[test]
fn generated_secret_values_never_appear_again() {
    let s = setup("t-secrets");
    s.ok(&["app", "new", "testapp", "-s", "default", "-D", &s.domain]);
    let gen = s.run(&["app", "secret", "generate", &s.domain, "--all", "-m"]);
    assert!(gen.status.success());
    let values: Vec<serde_json::Value> = serde_json::from_slice(&gen.stdout).unwrap();
    assert_eq!(values.len(), 1);
    let value = values[0]["value"].as_str().unwrap().to_string();
    assert_eq!(value.len(), 24, "length=24 modifier respected");

    // Deploy in the background and look at its argv while it runs.
    let child = s
        .cmd(&["app", "deploy", &s.domain, "-n"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&cmdline).contains(&value));
    let deploy = child.wait_with_output().unwrap();
    assert!(
        deploy.status.success(),
        "{}",
        String::from_utf8_lossy(&deploy.stderr)
    );

    let mut seen = String::new();
    seen.push_str(&String::from_utf8_lossy(&deploy.stdout));
    seen.push_str(&String::from_utf8_lossy(&deploy.stderr));
    for args in [
        vec!["app", "ps", &s.domain, "-m"],
        vec!["app", "labels", &s.domain, "-m"],
        vec!["app", "render", &s.domain, "-m"],
        vec!["app", "secret", "ls", &s.domain, "-m"],
        vec!["app", "errors", &s.domain, "-m"],
        vec!["-d", "app", "deploy", &s.domain, "-n", "-f"],
    ] {
        seen.push_str(&s.ok(&args));
    }
    // Everything cooper wrote to disk: records, the .env, the lock.
    fn walk(dir: &Path, out: &mut String) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == ".git") {
                    continue;
                }
                walk(&p, out);
            } else {
                out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(s.dir.path(), &mut seen);
    assert!(seen.contains("db_password"), "the outputs name the secret");
    assert!(!seen.contains(&value), "a secret value leaked");
    // The secret the service reads holds the value the operator was shown.
    let container = cooper_testkit::service_container(&format!("{}_db", s.stack));
    assert_eq!(
        docker(&["exec", &container, "cat", "/run/secrets/db_password"]),
        value
    );
    let listed = s.ok(&["app", "secret", "ls", &s.domain]);
    assert!(
        listed.contains("db_password") && listed.contains("yes"),
        "{listed}"
    );
}

#[test]
fn operating_a_deployed_app() {
    let s = setup("t-operate");
    let d = s.domain.clone();
    s.ok(&[
        "app",
        "new",
        "testapp",
        "1.0.0+1.0",
        "-s",
        "default",
        "-D",
        &d,
    ]);
    s.ok(&["app", "secret", "generate", &d, "--all"]);
    s.ok(&["app", "deploy", &d, "-n"]);

    let ps: serde_json::Value = serde_json::from_str(&s.ok(&["app", "ps", &d, "-m"])).unwrap();
    let running = ps
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "running")
        .count();
    assert_eq!(running, 2, "{ps}");

    assert_eq!(
        s.ok(&["app", "run", &d, "app", "cat", "/data/marker"])
            .trim(),
        "first"
    );
    // The recipe's own tests at the deployed version: green exits 0, a failing suite exits 1
    // and says where its reports are.
    let green = s.ok(&[
        "app",
        "test",
        &d,
        "-s",
        "smoke",
        "--probe-image",
        "cooper-test/web:1.0",
    ]);
    assert!(green.contains("5 passed, 0 failed"), "{green}");
    let out = s.run(&[
        "app",
        "test",
        &d,
        "-s",
        "broken",
        "--probe-image",
        "cooper-test/web:1.0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 failed") && text.contains("junit.xml"),
        "{text}"
    );

    // kill -9 in the middle of a test run leaves its marked file; --cleanup removes exactly it.
    let mut child = s
        .cmd(&[
            "app",
            "test",
            &d,
            "-s",
            "slow",
            "--probe-image",
            "cooper-test/web:1.0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ls = || s.ok(&["app", "run", &d, "app", "ls", "/data"]);
    let start = Instant::now();
    while !ls().contains("cooper-test-") {
        assert!(start.elapsed() < Duration::from_secs(60), "setup never ran");
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        ls().contains("cooper-test-"),
        "the killed run left its data"
    );
    let out = s.ok(&[
        "app",
        "test",
        &d,
        "--cleanup",
        "--probe-image",
        "cooper-test/web:1.0",
    ]);
    assert!(out.contains("1 cleanup step(s) passed, 0 failed"), "{out}");
    assert!(!ls().contains("cooper-test-"), "{}", ls());
    assert!(ls().contains("marker"), "the app's own data stays");
    let again = s.ok(&["app", "test", &d, "--cleanup"]);
    assert!(again.contains("no interrupted test runs"), "{again}");

    let out = s.run(&["app", "run", &d, "app", "sh", "-c", "exit 5"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "the command's exit code is cooper's"
    );
    let out = s.ok(&["app", "cmd", &d, "hello", "--", "operator"]);
    assert!(
        out.contains("hello operator from t-operate_cooper_test (marker first)"),
        "{out}"
    );
    let out = s.run(&["app", "cmd", &d, "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no function nope; it has: hello"));

    let labels = s.ok(&["app", "labels", &d, "-m"]);
    assert!(
        labels.contains("\"coop-cloud.t-operate_cooper_test.version\": \"1.0.0+1.0\""),
        "{labels}"
    );
    assert!(
        labels.contains("\"coop-cloud.t-operate_cooper_test.recipe\": \"testapp\""),
        "{labels}"
    );

    let ls: serde_json::Value = serde_json::from_str(&s.ok(&["app", "ls", "-S", "-m"])).unwrap();
    assert_eq!(ls["default"][0]["status"], "deployed 2/2", "{ls}");
    assert_eq!(ls["default"][0]["deployed_version"], "1.0.0+1.0");

    s.ok(&["app", "restart", &d, "app"]);
    s.ok(&["app", "logs", &d, "app", "--tail", "5"]);
    assert!(s
        .ok(&["app", "volume", "ls", &d])
        .contains("t-operate_cooper_test_data"));
    let errors = s.ok(&["app", "errors", &d]);
    assert!(errors.contains("no failed tasks"), "{errors}");

    // Volumes cannot go while deployed.
    let out = s.run(&["app", "volume", "rm", &d, "-n"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("undeploy it first"));
    s.ok(&["app", "undeploy", &d]);
    let ls: serde_json::Value = serde_json::from_str(&s.ok(&["app", "ls", "-S", "-m"])).unwrap();
    assert_eq!(ls["default"][0]["status"], "undeployed");
    assert!(s
        .ok(&["app", "volume", "rm", &d, "-n"])
        .contains("removed t-operate_cooper_test_data"));
    s.ok(&["app", "remove", &d, "--secrets", "-n"]);
    assert!(!s
        .dir
        .path()
        .join(format!("servers/default/{d}.env"))
        .exists());
}
