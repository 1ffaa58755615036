//! Many servers (issue 16): `cooper app ls -S` over 1,000 apps on 5 servers (5 engines on this
//! machine, each a single-node Swarm in its own network namespace, made by
//! `cooper_testkit::cluster`), against the honest floor — each server's own `docker service
//! ls` — in the same run. Each server holds 200 stacks of one service (no replicas: what is
//! measured is asking the engines and reading their answers, not running 1,000 containers on
//! two cores). Prints a Markdown table; `scripts/bench-scale` runs it.
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
        timed(Command::new("docker").args([
            "-H",
            &c.nodes[i].endpoint(),
            "service",
            "ls",
        ]))
    };
    let cooper_ls = || {
        timed(
            Command::new(&cooper)
                .args(["app", "ls", "-S", "-m"])
                .env("ABRA_DIR", abra.path()),
        )
    };
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
    drop(c);
    Ok(())
}
