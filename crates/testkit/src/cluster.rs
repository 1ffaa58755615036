//! Several Docker engines on this one machine, for tests of what crosses nodes and servers.
//!
//! Each node is a network namespace joined to a bridge of its own by a veth pair, with its own
//! hostname (a UTS namespace) and its own `dockerd` (data root, exec root, socket, cgroup
//! parent). The layout is either one Swarm (a manager and workers) or several independent
//! single-node Swarms (several cooper servers). A registry (Debian's `docker-registry`) listens
//! on the bridge's address so workers can pull what the tests push.
//!
//! Everything made is torn down when the [`Cluster`] is dropped (a failing test unwinds through
//! its drop), and [`Cluster::start`] first reaps what a killed test run left behind: every
//! cluster's state directory names the process that made it.
//!
//! Needs root (namespaces, links, iptables). Every `ip` command's status is checked before the
//! next runs, and every name is made here, unique to this process: the harness never touches an
//! interface it did not create.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Where clusters keep their state (one directory per cluster, named by its tag).
const STATE: &str = "/run/cooper-cluster";
/// Where the nodes' engines keep their data.
const DATA: &str = "/var/lib/cooper-cluster";
/// The registry's port on the bridge address.
pub const REGISTRY_PORT: u16 = 5000;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// How the nodes are arranged.
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    /// One Swarm: node 0 is the manager, the others join it as workers.
    Swarm { workers: usize },
    /// Independent single-node Swarms, one per node (several servers).
    Servers(usize),
}

/// One node: a namespace, its engine and its address.
#[derive(Debug)]
pub struct Node {
    /// The namespace's and the engine's host name (`cn<tag><i>`).
    pub name: String,
    /// Its address on the cluster's bridge.
    pub addr: String,
    /// The engine's socket.
    pub socket: PathBuf,
    /// The host end of its veth pair (down = the node is cut off).
    veth: String,
    exec_root: PathBuf,
    data_root: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// The endpoint cooper is given for this engine (`unix:///…`).
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

/// A running set of nodes (see the module's text).
pub struct Cluster {
    pub tag: String,
    pub nodes: Vec<Node>,
    /// The bridge's address, where the registry listens (`10.211.N.1`).
    pub gateway: String,
    bridge: String,
    registry: Option<Child>,
    state: PathBuf,
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A third octet for `10.211.N.0/24` that no interface here uses yet.
fn free_subnet(seed: u32) -> anyhow::Result<u8> {
    let used = run("ip", &["-4", "-o", "addr", "show"])?;
    for k in 0..250u32 {
        let n = ((seed + k) % 250 + 1) as u8;
        if !used.contains(&format!("10.211.{n}.")) {
            return Ok(n);
        }
    }
    bail!("no free 10.211.N.0/24 subnet for a test cluster")
}

impl Cluster {
    /// Makes the nodes and their engines, forms the Swarm(s) and starts the registry. Waits
    /// (bounded) until every engine answers and every Swarm sees all its nodes ready.
    pub fn start(layout: Layout) -> anyhow::Result<Cluster> {
        if uid() != 0 {
            bail!("the multi-node harness needs root (network namespaces, links, iptables)");
        }
        reap_leftovers();
        let k = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{:x}{}", pid, (b'a' + (k % 26) as u8) as char);
        let n = free_subnet(pid.wrapping_mul(7).wrapping_add(k))?;
        let state = PathBuf::from(STATE).join(&tag);
        std::fs::create_dir_all(&state)?;
        std::fs::write(state.join("owner"), pid.to_string())?;
        let mut c = Cluster {
            bridge: format!("cb{tag}"),
            gateway: format!("10.211.{n}.1"),
            tag,
            nodes: Vec::new(),
            registry: None,
            state,
        };
        let count = match layout {
            Layout::Swarm { workers } => workers + 1,
            Layout::Servers(k) => k,
        };
        c.build(n, count)?;
        match layout {
            Layout::Swarm { .. } => c.form_swarm()?,
            Layout::Servers(_) => {
                for i in 0..c.nodes.len() {
                    c.docker(i, &["swarm", "init", "--advertise-addr", &c.nodes[i].addr])?;
                }
            }
        }
        c.start_registry()?;
        Ok(c)
    }

    fn build(&mut self, n: u8, count: usize) -> anyhow::Result<()> {
        let bridge = self.bridge.clone();
        if link_exists(&bridge) {
            bail!("a link called {bridge} exists already; not touching it");
        }
        std::fs::write(self.state.join("bridge"), &bridge)?;
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", self.gateway),
                "dev",
                &bridge,
            ],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        // Docker's FORWARD policy drops bridged traffic (br_netfilter); let this bridge's pass.
        run(
            "iptables",
            &["-I", "FORWARD", "1", "-i", &bridge, "-j", "ACCEPT"],
        )?;
        for i in 0..count {
            let name = format!("cn{}{i}", self.tag);
            let veth = format!("cv{}{i}", self.tag);
            let inner = format!("ci{}{i}", self.tag);
            for l in [&veth, &inner] {
                if link_exists(l) {
                    bail!("a link called {l} exists already; not touching it");
                }
            }
            run("ip", &["netns", "add", &name])?;
            std::fs::write(self.state.join(format!("node{i}")), &name)?;
            run(
                "ip",
                &["link", "add", &veth, "type", "veth", "peer", "name", &inner],
            )?;
            run("ip", &["link", "set", &inner, "netns", &name])?;
            run("ip", &["link", "set", &veth, "master", &bridge, "up"])?;
            let addr = format!("10.211.{n}.{}", 10 + i);
            run(
                "ip",
                &[
                    "-n",
                    &name,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    &inner,
                ],
            )?;
            run("ip", &["-n", &name, "link", "set", &inner, "up"])?;
            run("ip", &["-n", &name, "link", "set", "lo", "up"])?;
            run(
                "ip",
                &["-n", &name, "route", "add", "default", "via", &self.gateway],
            )?;
            let exec_root = self.state.join(&name);
            let data_root = PathBuf::from(DATA).join(&self.tag).join(&name);
            std::fs::create_dir_all(&exec_root)?;
            std::fs::create_dir_all(&data_root)?;
            let socket = self.state.join(format!("{name}.sock"));
            let log = std::fs::File::create(self.state.join(format!("{name}.log")))?;
            let script = format!(
                "hostname {name} && exec dockerd --data-root {data} --exec-root {exec} \
                 -H unix://{sock} --pidfile {exec}/dockerd.pid --bridge none --iptables=false \
                 --cgroup-parent {name} --shutdown-timeout 2 \
                 --insecure-registry {gw}:{REGISTRY_PORT}",
                data = data_root.display(),
                exec = exec_root.display(),
                sock = socket.display(),
                gw = self.gateway,
            );
            // `ip netns exec` remounts /sys and hides the cgroups; nsenter does not.
            let child = Command::new("nsenter")
                .arg(format!("--net=/var/run/netns/{name}"))
                .args(["unshare", "--uts", "sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting a node's dockerd")?;
            self.nodes.push(Node {
                name,
                addr,
                socket,
                veth,
                exec_root,
                data_root,
                child: Some(child),
            });
        }
        for i in 0..self.nodes.len() {
            self.wait_engine(i)?;
        }
        Ok(())
    }

    fn wait_engine(&mut self, i: usize) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if self
                .docker(i, &["version", "--format", "{{.Server.Version}}"])
                .is_ok()
            {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.nodes[i].child.as_mut().map(|c| c.try_wait()) {
                bail!(
                    "the dockerd of {} exited ({status}); its log: {}",
                    self.nodes[i].name,
                    self.log_tail(i)
                );
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the dockerd of {} did not answer within 60 s; its log: {}",
                    self.nodes[i].name,
                    self.log_tail(i)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self, i: usize) -> String {
        let log = std::fs::read_to_string(self.state.join(format!("{}.log", self.nodes[i].name)))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    fn form_swarm(&mut self) -> anyhow::Result<()> {
        let manager = self.nodes[0].addr.clone();
        self.docker(0, &["swarm", "init", "--advertise-addr", &manager])?;
        let token = self.docker(0, &["swarm", "join-token", "-q", "worker"])?;
        for i in 1..self.nodes.len() {
            let addr = self.nodes[i].addr.clone();
            self.docker(
                i,
                &[
                    "swarm",
                    "join",
                    "--token",
                    &token,
                    "--advertise-addr",
                    &addr,
                    &format!("{manager}:2377"),
                ],
            )?;
        }
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        self.wait_for(
            Duration::from_secs(60),
            "every node ready in the Swarm",
            |c| {
                let ls = c.node_states()?;
                Ok(names
                    .iter()
                    .all(|n| ls.iter().any(|(h, s, _)| h == n && s == "ready")))
            },
        )
    }

    fn start_registry(&mut self) -> anyhow::Result<()> {
        let storage = self.state.join("registry");
        std::fs::create_dir_all(&storage)?;
        let config = self.state.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {}:{REGISTRY_PORT}\n",
                storage.display(),
                self.gateway
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry (scripts/setup-swarm installs it)")?;
        std::fs::write(self.state.join("registry.pid"), child.id().to_string())?;
        self.registry = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect((self.gateway.as_str(), REGISTRY_PORT)).is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("the cluster's registry did not listen within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Runs the docker CLI against node `i`; its standard output, trimmed.
    pub fn docker(&self, i: usize, args: &[&str]) -> anyhow::Result<String> {
        let mut full = vec!["-H".to_string(), self.nodes[i].endpoint()];
        full.extend(args.iter().map(|a| a.to_string()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        run("docker", &full)
    }

    /// The Swarm's nodes as (hostname, state, availability), asked of node 0.
    pub fn node_states(&self) -> anyhow::Result<Vec<(String, String, String)>> {
        let out = self.docker(
            0,
            &[
                "node",
                "ls",
                "--format",
                "{{.Hostname}} {{.Status}} {{.Availability}}",
            ],
        )?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((
                    w.next()?.to_string(),
                    w.next()?.to_lowercase(),
                    w.next()?.to_lowercase(),
                ))
            })
            .collect())
    }

    /// Copies an image of the host's engine into node `i` (`docker save | docker load`).
    pub fn load_image(&self, i: usize, image: &str) -> anyhow::Result<()> {
        let mut save = Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()?;
        let load = Command::new("docker")
            .args(["-H", &self.nodes[i].endpoint(), "load", "-q"])
            .stdin(save.stdout.take().expect("piped"))
            .output()?;
        let saved = save.wait()?;
        if !saved.success() || !load.status.success() {
            bail!(
                "copying {image} to {}: {}",
                self.nodes[i].name,
                String::from_utf8_lossy(&load.stderr)
            );
        }
        Ok(())
    }

    /// Puts a host image into the cluster's registry as `<gateway>:5000/<repo>` (through node
    /// 0, which trusts the registry) and returns that name; workers pull it from there.
    pub fn publish(&self, image: &str, repo: &str) -> anyhow::Result<String> {
        self.load_image(0, image)?;
        let name = format!("{}:{REGISTRY_PORT}/{repo}", self.gateway);
        self.docker(0, &["tag", image, &name])?;
        self.docker(0, &["push", &name])?;
        Ok(name)
    }

    /// Cuts node `i` off the others (its link goes down); the Swarm sees it as down.
    pub fn partition(&self, i: usize) -> anyhow::Result<()> {
        run("ip", &["link", "set", &self.nodes[i].veth, "down"]).map(|_| ())
    }

    /// Joins node `i` again after [`Cluster::partition`].
    pub fn heal(&self, i: usize) -> anyhow::Result<()> {
        run("ip", &["link", "set", &self.nodes[i].veth, "up"]).map(|_| ())
    }

    /// Freezes node `i`'s engine (SIGSTOP): its socket still accepts, nothing answers — a
    /// server that hangs rather than refuses.
    pub fn freeze(&self, i: usize) -> anyhow::Result<()> {
        self.signal_engine(i, "-STOP")
    }

    /// Lets node `i`'s engine go on after [`Cluster::freeze`].
    pub fn thaw(&self, i: usize) -> anyhow::Result<()> {
        self.signal_engine(i, "-CONT")
    }

    fn signal_engine(&self, i: usize, signal: &str) -> anyhow::Result<()> {
        let pid = std::fs::read_to_string(self.nodes[i].exec_root.join("dockerd.pid"))
            .context("reading the node's dockerd.pid")?;
        run("kill", &[signal, pid.trim()]).map(|_| ())
    }

    /// Waits (polling every 200 ms, at most `limit`) until `ready` says so.
    pub fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        mut ready: impl FnMut(&Cluster) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut last = None;
        loop {
            match ready(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last = Some(e.to_string()),
            }
            if start.elapsed() > limit {
                bail!(
                    "{what}: not so within {} s{}",
                    limit.as_secs(),
                    last.map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops and removes everything (also done on drop).
    pub fn teardown(&mut self) {
        if let Some(mut r) = self.registry.take() {
            let _ = r.kill();
            let _ = r.wait();
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                stop_engine(&mut child, &node.exec_root);
            }
        }
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let roots: Vec<PathBuf> = self
            .nodes
            .iter()
            .flat_map(|n| [n.exec_root.clone(), n.data_root.clone()])
            .collect();
        clean(&self.tag, &self.bridge, &names, &roots);
        self.nodes.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn uid() -> u32 {
    run("id", &["-u"])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Stops a node's dockerd (SIGTERM, then SIGKILL after 20 s), and whatever it started.
fn stop_engine(child: &mut Child, exec_root: &Path) {
    let pid = std::fs::read_to_string(exec_root.join("dockerd.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok());
    if let Some(pid) = pid {
        let _ = Command::new("kill")
            .args(["-CONT", &pid.to_string()])
            .status();
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let start = Instant::now();
        while alive(pid) && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(100));
            let _ = child.try_wait();
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Removes a cluster's processes, mounts, cgroups, namespaces, links, rule and directories.
fn clean(tag: &str, bridge: &str, nodes: &[String], roots: &[PathBuf]) {
    // Whatever still runs with the cluster's paths in its command line (containerd, shims).
    let _ = Command::new("pkill")
        .args(["-9", "-f", &format!("cooper-cluster/{tag}/")])
        .status();
    for name in nodes {
        for ctrl in cgroup_dirs(name) {
            kill_cgroup(&ctrl);
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut ours: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| roots.iter().any(|r| m.starts_with(&*r.to_string_lossy())))
        .collect();
    ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in ours {
        let _ = Command::new("umount").args(["-l", m]).status();
    }
    for name in nodes {
        for ctrl in cgroup_dirs(name) {
            remove_cgroup(&ctrl);
        }
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
    }
    // A namespace goes away only when nothing holds it any more; its veth pair with it. Delete
    // the host ends by name (which deletes both ends) and wait, bounded, until they are gone.
    let veths: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.strip_prefix("cn").map(|rest| format!("cv{rest}")))
        .collect();
    let start = Instant::now();
    while veths.iter().any(|v| link_exists(v)) && start.elapsed() < Duration::from_secs(10) {
        for v in &veths {
            if link_exists(v) {
                let _ = Command::new("ip")
                    .args(["link", "del", v])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if link_exists(bridge) {
        let _ = Command::new("ip").args(["link", "del", bridge]).status();
    }
    while Command::new("iptables")
        .args(["-D", "FORWARD", "-i", bridge, "-j", "ACCEPT"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {}
    for r in roots {
        let _ = std::fs::remove_dir_all(r);
    }
    let _ = std::fs::remove_dir_all(PathBuf::from(DATA).join(tag));
    let _ = std::fs::remove_dir_all(PathBuf::from(STATE).join(tag));
}

/// The cgroup directories a node's containers were put in (one per controller).
fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(ctrls) = std::fs::read_dir("/sys/fs/cgroup") {
        for c in ctrls.flatten() {
            let d = c.path().join(name);
            if d.is_dir() {
                out.push(d);
            }
        }
    }
    let unified = PathBuf::from("/sys/fs/cgroup").join(name);
    if unified.is_dir() && !out.contains(&unified) {
        out.push(unified);
    }
    out
}

fn kill_cgroup(dir: &Path) {
    for file in ["cgroup.procs", "tasks"] {
        walk(dir, &mut |d| {
            if let Ok(pids) = std::fs::read_to_string(d.join(file)) {
                for pid in pids.split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
        });
    }
}

fn remove_cgroup(dir: &Path) {
    let mut dirs = Vec::new();
    walk(dir, &mut |d| dirs.push(d.to_path_buf()));
    dirs.sort_by_key(|d| std::cmp::Reverse(d.as_os_str().len()));
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    f(dir);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), f);
            }
        }
    }
}

/// Tears down clusters whose maker is gone (a test run that was killed).
pub fn reap_leftovers() {
    let Ok(entries) = std::fs::read_dir(STATE) else {
        return;
    };
    for e in entries.flatten() {
        let dir = e.path();
        let owner = std::fs::read_to_string(dir.join("owner"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        if owner.is_some_and(alive) {
            continue;
        }
        let tag = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = std::fs::read_to_string(dir.join("registry.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let mut nodes = Vec::new();
        let mut roots = Vec::new();
        for i in 0..16 {
            if let Ok(name) = std::fs::read_to_string(dir.join(format!("node{i}"))) {
                let exec_root = dir.join(&name);
                if let Some(pid) = std::fs::read_to_string(exec_root.join("dockerd.pid"))
                    .ok()
                    .and_then(|p| p.trim().parse::<u32>().ok())
                {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
                roots.push(exec_root);
                roots.push(PathBuf::from(DATA).join(&tag).join(&name));
                nodes.push(name);
            }
        }
        let bridge = std::fs::read_to_string(dir.join("bridge")).unwrap_or_default();
        clean(&tag, bridge.trim(), &nodes, &roots);
    }
}

/// What a cluster of this process left on the machine (for the tests' "nothing left behind").
pub fn leftovers(tag: &str) -> Vec<String> {
    let mut out = Vec::new();
    if Path::new(STATE).join(tag).exists() {
        out.push(format!("{STATE}/{tag}"));
    }
    if Path::new(DATA).join(tag).exists() {
        out.push(format!("{DATA}/{tag}"));
    }
    if let Ok(ns) = run("ip", &["netns", "list"]) {
        out.extend(
            ns.lines()
                .filter(|l| l.starts_with(&format!("cn{tag}")))
                .map(|l| format!("netns {l}")),
        );
    }
    if let Ok(links) = run("ip", &["-o", "link", "show"]) {
        out.extend(
            links
                .lines()
                .filter(|l| l.contains(&format!("cb{tag}")) || l.contains(&format!("cv{tag}")))
                .map(|l| format!("link {}", l.split(':').nth(1).unwrap_or("").trim())),
        );
    }
    if let Ok(ps) = run("pgrep", &["-af", &format!("cooper-cluster/{tag}/")]) {
        out.extend(
            ps.lines()
                .filter(|l| !l.contains("pgrep"))
                .map(|l| format!("process {l}")),
        );
    }
    if let Ok(rules) = run("iptables", &["-S", "FORWARD"]) {
        out.extend(
            rules
                .lines()
                .filter(|l| l.contains(&format!("cb{tag}")))
                .map(|l| format!("iptables {l}")),
        );
    }
    out
}
