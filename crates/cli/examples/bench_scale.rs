//! Many servers (issue 16): `cooper app ls -S` over 1,000 apps on 5 servers (5 engines on this
//! machine, each a single-node Swarm in its own network namespace, made by
//! `cooper_testkit::cluster`), against the honest floor — each server's own `docker service
//! ls` — in the same run. Each server holds 200 stacks of one service (no replicas: what is
//! measured is asking the engines and reading their answers, not running 1,000 containers on
//! two cores). Then the dashboard's instance list with the live state of those 1,000 apps from
//! the five real engines (`bench_dashboard --abra`, the same router as `cooper serve`) under
//! `wrk`. Prints Markdown tables; `scripts/bench-scale` runs it.
//!
//! `cargo run --release -p cooper --example bench_scale -- [runs]`

use std::process::{Command, Stdio};
use std::time::Instant;

use cooper_testkit::cluster::{Cluster, Layout};

const SERVERS: usize = 5;
const APPS_PER_SERVER: usize = 200;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn timed(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.stdin(Stdio::null()).output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let cooper = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("cooper"))
        .expect("target dir");
    cooper_testkit::ensure_test_images_blocking()?;
    eprintln!("starting {SERVERS} engines");
    let c = Cluster::start(Layout::Servers(SERVERS))?;
    let abra = tempfile::tempdir()?;
    for i in 0..SERVERS {
        c.load_image(i, "cooper-test/web:1.0")?;
        let server = format!("server-{i}");
        let dir = abra.path().join("servers").join(&server);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join(".cooper-endpoint"),
            format!("{}\n", c.nodes[i].endpoint()),
        )?;
        eprintln!("{server}: {APPS_PER_SERVER} stacks");
        for k in 0..APPS_PER_SERVER {
            let domain = format!("app-{k}.s{i}.cooper.test");
            let stack = domain.replace('.', "_");
            std::fs::write(
                dir.join(format!("{domain}.env")),
                "TYPE=web:1.0.0+1.0\nWEB_IMAGE=cooper-test/web:1.0\n",
            )?;
            c.docker(
                i,
                &[
                    "service",
                    "create",
                    "-d",
                    "-q",
                    "--no-resolve-image",
                    "--replicas",
                    "0",
                    "--name",
                    &format!("{stack}_app"),
                    "--label",
                    &format!("com.docker.stack.namespace={stack}"),
                    "--label",
                    &format!("coop-cloud.{stack}.version=1.0.0+1.0"),
                    "cooper-test/web:1.0",
                ],
            )?;
        }
    }
    let docker_ls = |i: usize| {
        timed(Command::new("docker").args(["-H", &c.nodes[i].endpoint(), "service", "ls"]))
    };
    let cooper_ls = || {
        timed(
            Command::new(&cooper)
                .args(["app", "ls", "-S", "-m"])
                .env("ABRA_DIR", abra.path()),
        )
    };
    // What is timed must be right: every app is seen deployed on its server.
    let out = Command::new(&cooper)
        .args(["app", "ls", "-S", "-m"])
        .env("ABRA_DIR", abra.path())
        .output()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let deployed = json
        .as_object()
        .into_iter()
        .flat_map(|servers| servers.values())
        .flat_map(|apps| apps.as_array().cloned().unwrap_or_default())
        .filter(|a| {
            a["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("deployed"))
        })
        .count();
    assert_eq!(
        deployed,
        SERVERS * APPS_PER_SERVER,
        "app ls -S does not see every app deployed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Warm both (binaries and page cache), then alternate so both see the same machine.
    cooper_ls();
    for i in 0..SERVERS {
        docker_ls(i);
    }
    let mut per_server: Vec<Vec<f64>> = vec![Vec::new(); SERVERS];
    let mut ours = Vec::new();
    for _ in 0..runs {
        for (i, v) in per_server.iter_mut().enumerate() {
            v.push(docker_ls(i));
        }
        ours.push(cooper_ls());
    }
    let medians: Vec<f64> = per_server.into_iter().map(median).collect();
    let slowest = medians.iter().cloned().fold(0.0, f64::max);
    let all_docker: f64 = medians.iter().sum();
    let ours = median(ours);
    println!("| what | median ms ({runs} runs) |");
    println!("|---|---|");
    for (i, m) in medians.iter().enumerate() {
        println!("| `docker service ls` on server-{i} ({APPS_PER_SERVER} services) | {m:.0} |");
    }
    println!("| the five one after another | {all_docker:.0} |");
    println!(
        "| `cooper app ls -S` ({} apps, {SERVERS} servers at once) | {ours:.0} |",
        SERVERS * APPS_PER_SERVER
    );
    println!(
        "| ratio to the slowest single server (target ≤ 2) | {:.2} |",
        ours / slowest
    );
    dashboard(abra.path(), &cooper)?;
    drop(c);
    Ok(())
}

/// The instance list under load, its live state from the real engines (wrk, 1 thread, 16
/// connections, 15 s, pinned to core 1; the dashboard unpinned).
fn dashboard(abra: &std::path::Path, cooper: &std::path::Path) -> anyhow::Result<()> {
    use std::io::BufRead;
    let bench = cooper.with_file_name("examples").join("bench_dashboard");
    let mut child = Command::new(&bench)
        .args(["--abra", &abra.to_string_lossy()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| anyhow::anyhow!("{}: {e}", bench.display()))?;
    let mut url = String::new();
    let mut cookie = String::new();
    for line in std::io::BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        if let Some(u) = line.strip_prefix("URL ") {
            url = u.to_string();
        }
        if let Some(c) = line.strip_prefix("COOKIE ") {
            cookie = c.to_string();
        }
        if line.starts_with("PID ") {
            break;
        }
    }
    let header = format!("Cookie: {cookie}");
    // Warm: the app index read and every server's live state looked at once.
    for _ in 0..3 {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", &header])
            .arg(format!("{url}/instances"))
            .output()?;
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    }
    let page = Command::new("curl")
        .args(["-s", "-H", &header])
        .arg(format!("{url}/instances?page=3"))
        .output()?;
    let html = String::from_utf8_lossy(&page.stdout);
    let live_rows = html.matches("deployed").count();
    println!();
    println!("| page | live rows on the page | requests/s | p50 | p99 |");
    println!("|:---|---:|---:|---:|---:|");
    for path in [
        "/instances?page=3",
        "/instances?server=server-3&sort=state&page=2",
    ] {
        let out = Command::new("taskset")
            .args([
                "-c",
                "1",
                "wrk",
                "-t1",
                "-c16",
                "-d15s",
                "--latency",
                "-H",
                &header,
            ])
            .arg(format!("{url}{path}"))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |key: &str, n: usize| {
            text.lines()
                .find(|l| l.trim_start().starts_with(key))
                .and_then(|l| l.split_whitespace().nth(n).map(str::to_string))
                .unwrap_or_default()
        };
        println!(
            "| `{path}` | {live_rows} | {} | {} | {} |",
            field("Requests/sec", 1),
            field("50%", 1),
            field("99%", 1)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
