//! Past one machine, for real: Swarms of several nodes and several servers made on this machine
//! by `cooper_testkit::cluster` (network namespaces, one dockerd per node, a registry on the
//! cluster's bridge). Each test makes its own cluster and tears it down even when it fails,
//! then checks nothing is left (namespaces, links, daemons, data roots, the iptables rule).
//!
//! Everything waits for the state it asserts (bounded); nothing sleeps for a guess of time.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cooper_testkit::cluster::{self, Cluster, Layout};

/// One cluster at a time (two cores; each cluster is several daemons).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn fixture(recipe: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/multinode")
        .join(recipe)
        .join("1.0.0+1.0")
}

struct Abra {
    dir: tempfile::TempDir,
}

impl Abra {
    fn new(servers: &[(&str, String)]) -> Abra {
        let dir = tempfile::tempdir().unwrap();
        for (name, endpoint) in servers {
            let d = dir.path().join("servers").join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(".cooper-endpoint"), format!("{endpoint}\n")).unwrap();
        }
        for recipe in ["web", "pinned", "loose"] {
            cooper_testkit::recipe_repo(
                &dir.path().join("recipes").join(recipe),
                &[(fixture(recipe), "1.0.0+1.0")],
            )
            .unwrap();
        }
        Abra { dir }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cooper"));
        c.args(args)
            .env("ABRA_DIR", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "cooper {args:?}: {text}");
        text
    }

    /// A new app with `values` set in its `.env`.
    fn app(&self, recipe: &str, server: &str, domain: &str, values: &[(&str, &str)]) {
        self.ok(&["app", "new", recipe, "-s", server, "-D", domain]);
        self.set(server, domain, values);
    }

    fn set(&self, server: &str, domain: &str, values: &[(&str, &str)]) {
        let path = self
            .dir
            .path()
            .join(format!("servers/{server}/{domain}.env"));
        let mut env = std::fs::read_to_string(&path).unwrap();
        for (k, v) in values {
            let line = env
                .lines()
                .find(|l| l.starts_with(&format!("{k}=")))
                .map(str::to_string);
            match line {
                Some(l) => env = env.replace(&l, &format!("{k}={v}")),
                None => env.push_str(&format!("{k}={v}\n")),
            }
        }
        std::fs::write(&path, env).unwrap();
    }

    /// Waits (polling, at most `limit`) until `cooper args` prints something `ready` accepts;
    /// returns that output.
    fn wait_output(
        &self,
        args: &[&str],
        limit: Duration,
        what: &str,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let out = self.run(args);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if ready(&text) {
                return text;
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not so within {} s; `cooper {}` printed:\n{text}{}",
                limit.as_secs(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// `app ls -S` rows as (domain, status), read from its JSON.
fn statuses(json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
    let mut out = Vec::new();
    if let Some(servers) = v.as_object() {
        for apps in servers.values() {
            for a in apps.as_array().into_iter().flatten() {
                out.push((
                    a["domain"].as_str().unwrap_or_default().to_string(),
                    a["status"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    out
}

fn status_of(json: &str, domain: &str) -> String {
    statuses(json)
        .into_iter()
        .find(|(d, _)| d == domain)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

/// `app ps -m` rows as (service, node, state) of tasks meant to run.
fn tasks(json: &str) -> Vec<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["desired"] == "running")
        .map(|t| {
            (
                t["service"].as_str().unwrap_or_default().to_string(),
                t["node"].as_str().unwrap_or_default().to_string(),
                t["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn nothing_left(tag: &str) {
    let left = cluster::leftovers(tag);
    assert!(left.is_empty(), "the cluster left things behind: {left:?}");
}

/// Waits (bounded) until the manager reports `host` in `state` (`down`, `ready`).
fn wait_node_state(c: &Cluster, host: &str, state: &str) {
    let start = Instant::now();
    loop {
        let states = c.node_states().unwrap();
        if states
            .iter()
            .any(|(h, s, _)| h == host && s.eq_ignore_ascii_case(state))
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{host} not {state} within 120 s: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `cooper app deploy -f DOMAIN --timeout 20` on a terminal (`script` gives it one): `between`
/// runs once the confirm prompt shows (the preflight is behind it), then the deploy is
/// confirmed. Its output and exit code.
fn deploy_when(abra: &Abra, domain: &str, between: impl FnOnce()) -> (String, Option<i32>) {
    use std::io::{Read, Write};
    let mut child = Command::new("script")
        .args([
            "-qefc",
            &format!(
                "{} app deploy -f {domain} --timeout 20",
                env!("CARGO_BIN_EXE_cooper")
            ),
            "/dev/null",
        ])
        .env("ABRA_DIR", abra.dir.path())
        .current_dir(abra.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let start = Instant::now();
    while !shown.lock().unwrap().contains("continue? [y/N]") {
        assert!(
            start.elapsed() < Duration::from_secs(120) && child.try_wait().unwrap().is_none(),
            "no confirm prompt: {}",
            shown.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    between();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"y\n").unwrap();
    stdin.flush().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the deploy did not end: {}",
            shown.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(stdin);
    reader.join().unwrap();
    let out = shown.lock().unwrap().clone();
    (out, status.code())
}

#[test]
fn a_swarm_of_three_nodes_places_reports_loses_and_drains() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    cooper_testkit::ensure_test_images_blocking().unwrap();
    let c = Cluster::start(Layout::Swarm { workers: 2 }).expect("the cluster starts");
    let tag = c.tag.clone();
    let (w1, w2) = (c.nodes[1].name.clone(), c.nodes[2].name.clone());
    let registry_image = c
        .publish("cooper-test/web:1.0", "cooper-test/web:1.0")
        .unwrap();
    // An image only the manager has (built there, never pushed).
    c.load_image(0, "cooper-test/web:1.0").unwrap();
    c.docker(
        0,
        &["tag", "cooper-test/web:1.0", "cooper-test/local-only:1.0"],
    )
    .unwrap();
    let abra = Abra::new(&[("multi", c.nodes[0].endpoint())]);

    // 1. An image the workers cannot get is reported before anything changes.
    abra.app(
        "web",
        "multi",
        "web.cooper.test",
        &[("WEB_IMAGE", "cooper-test/local-only:1.0")],
    );
    let out = abra.run(&["app", "deploy", "web.cooper.test", "-n"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "the deploy should be refused");
    assert!(
        text.contains("cooper-test/local-only:1.0")
            && text.contains("no registry gives it")
            && text.contains(&w1)
            && text.contains(&w2),
        "{text}"
    );
    assert_eq!(
        c.docker(0, &["service", "ls", "-q"]).unwrap(),
        "",
        "nothing may change"
    );

    // 2. From the registry: the stateless app on the workers, the pinned one on w2, the agent
    //    everywhere.
    abra.set(
        "multi",
        "web.cooper.test",
        &[("WEB_IMAGE", &registry_image)],
    );
    abra.ok(&["app", "deploy", "web.cooper.test", "-n"]);
    abra.app(
        "pinned",
        "multi",
        "pinned.cooper.test",
        &[("WEB_IMAGE", &registry_image), ("DB_NODE", &w2)],
    );
    abra.ok(&["app", "deploy", "pinned.cooper.test", "-n"]);
    let web = tasks(&abra.ok(&["app", "ps", "web.cooper.test", "-m"]));
    assert_eq!(web.len(), 2, "{web:?}");
    assert!(
        web.iter()
            .all(|(_, n, s)| (n == &w1 || n == &w2) && s == "running"),
        "the web app runs on workers only: {web:?}"
    );
    let pinned = tasks(&abra.ok(&["app", "ps", "pinned.cooper.test", "-m"]));
    assert!(
        pinned
            .iter()
            .any(|(s, n, st)| s.ends_with("_db") && n == &w2 && st == "running"),
        "{pinned:?}"
    );
    let agents: std::collections::BTreeSet<&str> = pinned
        .iter()
        .filter(|(s, _, st)| s.ends_with("_agent") && st == "running")
        .map(|(_, n, _)| n.as_str())
        .collect();
    assert_eq!(
        agents.len(),
        3,
        "a global service runs on every node: {pinned:?}"
    );
    let table = abra.ok(&["app", "ps", "pinned.cooper.test"]);
    assert!(table.contains("NODE") && table.contains(&w2), "{table}");

    // 3. w2 is cut off: the pinned app waits for it, the stateless one moves to w1 and is
    //    deployed again.
    c.partition(2).unwrap();
    let json = abra.wait_output(
        &["app", "ls", "-S", "-m"],
        Duration::from_secs(120),
        "the lost node reported",
        |j| {
            status_of(j, "pinned.cooper.test").starts_with(&format!("waiting for node {w2} (down)"))
                && status_of(j, "web.cooper.test") == "deployed 2/2"
        },
    );
    assert!(
        !status_of(&json, "pinned.cooper.test").contains("rolled back"),
        "{json}"
    );
    let ps = abra.ok(&["app", "ps", "pinned.cooper.test"]);
    assert!(ps.contains(&format!("{w2} (down)")), "{ps}");
    // A deploy now would leave the db pending until its timeout and then roll back to a spec
    // that waits for the same node: it is refused before anything changes, naming the node.
    let db_version = || {
        c.docker(
            0,
            &[
                "service",
                "inspect",
                "pinned_cooper_test_db",
                "--format",
                "{{.Version.Index}}",
            ],
        )
        .unwrap()
    };
    let before = db_version();
    let out = abra.run(&["app", "deploy", "-f", "pinned.cooper.test", "-n"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("nothing was changed")
            && text.contains(&format!(
                "service db has no node to run on: it can only run on {w2} (down)"
            ))
            && text.contains("cooper server nodes multi"),
        "{text}"
    );
    let after = db_version();
    assert_eq!(before, after, "the refused deploy changed the service");
    let web = tasks(&abra.ok(&["app", "ps", "web.cooper.test", "-m"]));
    assert!(
        web.iter()
            .filter(|(_, _, s)| s == "running")
            .all(|(_, n, _)| n == &w1),
        "{web:?}"
    );

    // 4. It comes back: everything converges again.
    c.heal(2).unwrap();
    abra.wait_output(
        &["app", "ls", "-S", "-m"],
        Duration::from_secs(120),
        "converged after the node came back",
        |j| {
            status_of(j, "pinned.cooper.test") == "deployed 4/4"
                && status_of(j, "web.cooper.test") == "deployed 2/2"
        },
    );

    // 4b. w2 is lost while a deploy waits: the db cannot start until w2 is back, and the spec
    //     before waits for w2 too, so the deploy ends saying so, without a rollback. (The
    //     prompt comes after the preflight: it is answered once the manager sees w2 down, so
    //     the node is lost between the preflight and the apply.)
    abra.set("multi", "pinned.cooper.test", &[("MARK", "1")]);
    let (out, code) = deploy_when(&abra, "pinned.cooper.test", || {
        c.partition(2).unwrap();
        wait_node_state(&c, &w2, "down");
    });
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains(&format!(
            "service pinned_cooper_test_db waits for {w2} (down)"
        )) && out.contains("not rolled back"),
        "{out}"
    );
    let mark = || {
        c.docker(
            0,
            &[
                "service",
                "inspect",
                "pinned_cooper_test_db",
                "--format",
                "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
            ],
        )
        .unwrap()
    };
    assert!(mark().contains("MARK=1"), "the new spec stays: {}", mark());
    c.heal(2).unwrap();
    abra.wait_output(
        &["app", "ls", "-S", "-m"],
        Duration::from_secs(120),
        "the waiting db started when its node came back",
        |j| {
            status_of(j, "pinned.cooper.test") == "deployed 4/4"
                && status_of(j, "web.cooper.test") == "deployed 2/2"
        },
    );
    assert!(mark().contains("MARK=1"), "{}", mark());

    // 5. Drain w1: its tasks move to w2 and cooper waits for that.
    let out = abra.ok(&["server", "drain", "multi", &w1, "--timeout", "120"]);
    assert!(out.contains(&format!("{w1} drained")), "{out}");
    let left = c
        .docker(
            0,
            &["node", "ps", &w1, "--filter", "desired-state=running", "-q"],
        )
        .unwrap();
    assert_eq!(left, "", "nothing is meant to run on a drained node");
    let raw = abra.ok(&["app", "ps", "web.cooper.test", "-m"]);
    let web = tasks(&raw);
    assert!(
        web.iter().filter(|(_, _, s)| s == "running").count() == 2
            && web.iter().all(|(_, n, _)| n == &w2),
        "{web:?} from {raw}"
    );
    let nodes = abra.ok(&["server", "nodes", "multi"]);
    assert!(nodes.contains("drain"), "{nodes}");
    abra.ok(&["server", "activate", "multi", &w1]);
    let nodes = abra.ok(&["server", "nodes", "multi", "-m"]);
    assert!(!nodes.contains("\"drain\""), "{nodes}");

    // 6. The db's data lives on w2: backups and restores run their helper there, and nothing
    //    is made on the manager.
    for i in [0, 2] {
        c.load_image(i, cooper_testkit::RESTIC_IMAGE).unwrap();
    }
    std::fs::write(
        abra.dir.path().join("servers/multi/.cooper-nodes"),
        format!(
            "# how cooper reaches the workers' engines\n{w1} {}\n{w2} {}\n",
            c.nodes[1].endpoint(),
            c.nodes[2].endpoint()
        ),
    )
    .unwrap();
    cooper_testkit::backup_settings(abra.dir.path(), "multi", &abra.dir.path().join("repo"))
        .unwrap();
    let db = |script: &str| {
        let id = c
            .docker(
                2,
                &[
                    "ps",
                    "-q",
                    "--filter",
                    "label=com.docker.swarm.service.name=pinned_cooper_test_db",
                ],
            )
            .unwrap();
        let id = id.lines().next().expect("the db runs on w2").to_string();
        c.docker(2, &["exec", &id, "sh", "-c", script]).unwrap()
    };
    db("echo precious > /var/lib/db/data.txt");
    let out = abra.ok(&["app", "backup", "create", "pinned.cooper.test"]);
    assert!(out.contains(&format!("on node {w2}")), "{out}");
    db("echo ruined > /var/lib/db/data.txt");
    let out = abra.ok(&["app", "restore", "pinned.cooper.test", "-n"]);
    assert!(out.contains(&format!("on node {w2}")), "{out}");
    assert_eq!(db("cat /var/lib/db/data.txt"), "precious");
    let volumes = c.docker(0, &["volume", "ls", "-q"]).unwrap();
    assert!(
        !volumes.contains("pinned_cooper_test_data"),
        "no volume is made on the manager: {volumes}"
    );

    // 7. Data nothing pins, moved by a drain: it is split across two nodes, and cooper says
    //    so instead of backing up one node's part as if it were all.
    abra.app(
        "loose",
        "multi",
        "loose.cooper.test",
        &[("WEB_IMAGE", &registry_image)],
    );
    abra.ok(&["app", "deploy", "loose.cooper.test", "-n"]);
    let first = tasks(&abra.ok(&["app", "ps", "loose.cooper.test", "-m"]));
    let (_, from, _) = first
        .iter()
        .find(|(_, _, s)| s == "running")
        .cloned()
        .expect("the loose db runs");
    abra.ok(&["server", "drain", "multi", &from, "--timeout", "120"]);
    let out = abra.run(&["app", "backup", "create", "loose.cooper.test"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a split backup must be refused");
    assert!(
        text.contains("split across nodes") && text.contains(&w1) && text.contains(&w2),
        "{text}"
    );
    abra.ok(&["server", "activate", "multi", &from]);

    drop(c);
    nothing_left(&tag);
}

#[test]
fn many_servers_are_asked_at_once_and_a_silent_one_delays_nothing() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    cooper_testkit::ensure_test_images_blocking().unwrap();
    let c = Cluster::start(Layout::Servers(3)).expect("the servers start");
    let tag = c.tag.clone();
    let names = ["one", "two", "three"];
    let servers: Vec<(&str, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, c.nodes[i].endpoint()))
        .collect();
    let abra = Abra::new(&servers);
    for (i, name) in names.iter().enumerate() {
        c.load_image(i, "cooper-test/web:1.0").unwrap();
        let domain = format!("web.{name}.test");
        abra.app(
            "web",
            name,
            &domain,
            &[
                ("WEB_IMAGE", "cooper-test/web:1.0"),
                ("WEB_ROLE", "manager"),
            ],
        );
        abra.ok(&["app", "deploy", &domain, "-n"]);
    }
    let json = abra.ok(&["app", "ls", "-S", "-m"]);
    for name in names {
        assert_eq!(
            status_of(&json, &format!("web.{name}.test")),
            "deployed 2/2",
            "{json}"
        );
    }

    // Server two hangs (its engine is frozen: the socket accepts, nothing answers).
    c.freeze(1).unwrap();
    let t = Instant::now();
    let json = abra.ok(&["app", "ls", "-S", "-m", "--timeout", "3"]);
    let took = t.elapsed();
    assert_eq!(
        status_of(&json, "web.two.test"),
        "unreachable: no answer within 3 s",
        "{json}"
    );
    assert_eq!(status_of(&json, "web.one.test"), "deployed 2/2", "{json}");
    assert_eq!(status_of(&json, "web.three.test"), "deployed 2/2", "{json}");
    // Correctness, not speed: the servers were asked at once, so the silent one costs its
    // timeout once, not once per server and not the engine's own two-minute request limit.
    assert!(
        took < Duration::from_secs(30),
        "app ls -S waited {took:?} with a 3 s timeout"
    );
    let table = abra.ok(&["app", "ls", "-S", "--timeout", "3"]);
    assert!(
        table.contains("unreachable: no answer within 3 s"),
        "{table}"
    );
    let ls = abra.ok(&["server", "ls", "-m", "--timeout", "3"]);
    let v: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let reach: Vec<(String, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s["reachable"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert!(reach.contains(&("two".into(), false)), "{ls}");
    assert!(reach.contains(&("one".into(), true)), "{ls}");
    assert!(reach.contains(&("three".into(), true)), "{ls}");

    // It answers again: so does cooper.
    c.thaw(1).unwrap();
    abra.wait_output(
        &["app", "ls", "-S", "-m", "--timeout", "10"],
        Duration::from_secs(60),
        "the thawed server answers",
        |j| status_of(j, "web.two.test") == "deployed 2/2",
    );

    drop(c);
    nothing_left(&tag);
}
