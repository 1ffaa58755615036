//! Test support: container images built locally (no registry is reachable here) from Debian's
//! static busybox, and git recipe repositories made from fixture folders.
//!
//! The image is `FROM scratch` plus `/bin/busybox` and its applets (`sh`, `httpd`, `wget`, …),
//! `/www/index.html`, `/data` and `/tmp`. Every tag names the same content; recipes give it
//! its behaviour through `command`, `healthcheck` and configs.

pub mod cluster;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use bollard::query_parameters::{BuildImageOptionsBuilder, TagImageOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;

/// Where Debian's `busybox-static` puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets linked into the image.
const APPLETS: &[&str] = &[
    "sh",
    "httpd",
    "wget",
    "echo",
    "cat",
    "sleep",
    "test",
    "[",
    "mkdir",
    "touch",
    "ls",
    "env",
    "true",
    "false",
    "date",
    "rm",
    "cp",
    "mv",
    "grep",
    "sed",
    "head",
    "tail",
    "wc",
    "sha256sum",
    "md5sum",
    "tar",
    "gzip",
    "find",
    "kill",
    "ps",
    "id",
    "hostname",
    "nc",
    "printf",
    "seq",
    "stat",
    "chmod",
    "chown",
    "sync",
    "du",
    "df",
    "xargs",
    "tr",
    "cut",
    "sort",
    "uniq",
    "expr",
    "yes",
    "timeout",
];

/// The base test image every test tag points at.
pub const BASE_IMAGE: &str = "cooper-test/busybox:base";

/// The restic test image: the base image's files plus Debian's `restic` and the libraries it
/// links (real deployments use the upstream restic image, which is Alpine plus restic).
pub const RESTIC_IMAGE: &str = "cooper-test/restic:base";

/// Where Debian's `restic` puts the binary.
pub const RESTIC: &str = "/usr/bin/restic";

/// The shared libraries a host binary needs, from `ldd`.
fn linked_libraries(binary: &str) -> anyhow::Result<Vec<String>> {
    let out = Command::new("ldd").arg(binary).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect())
}

fn rootfs_tar() -> anyhow::Result<Vec<u8>> {
    rootfs_tar_with(&[])
}

/// The base root file system plus `extra` host files (copied to the same paths).
fn rootfs_tar_with(extra: &[String]) -> anyhow::Result<Vec<u8>> {
    let busybox = std::fs::read(BUSYBOX)
        .with_context(|| format!("{BUSYBOX} is missing: install Debian's busybox-static"))?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut add_file = |path: &str, data: &[u8], mode: u32| -> anyhow::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, data)?;
        Ok(())
    };
    add_file(
        "Dockerfile",
        b"FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/bin:/bin\nCMD [\"sh\"]\n",
        0o644,
    )?;
    add_file("rootfs/bin/busybox", &busybox, 0o755)?;
    for path in extra {
        let data = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        add_file(&format!("rootfs{path}"), &data, 0o755)?;
    }
    add_file("rootfs/www/index.html", b"cooper test image\n", 0o644)?;
    add_file("rootfs/etc/passwd", b"root:x:0:0:root:/:/bin/sh\n", 0o644)?;
    add_file("rootfs/etc/group", b"root:x:0:\n", 0o644)?;
    for dir in ["rootfs/data/", "rootfs/tmp/"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o1777);
        h.set_size(0);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, dir, std::io::empty())?;
    }
    for applet in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_link(&mut h, format!("rootfs/bin/{applet}"), "busybox")?;
    }
    Ok(tar.into_inner()?)
}

/// Connects to the local engine.
pub async fn local_docker() -> anyhow::Result<Docker> {
    let d = Docker::connect_with_unix_defaults().context("connecting to the local engine")?;
    Ok(d.negotiate_version().await?)
}

/// Builds the base image once and points every tag at it.
pub async fn ensure_images(docker: &Docker, tags: &[&str]) -> anyhow::Result<()> {
    if docker.inspect_image(BASE_IMAGE).await.is_err() {
        build(docker, BASE_IMAGE, rootfs_tar()?).await?;
    }
    for tag in tags {
        let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
        docker
            .tag_image(
                BASE_IMAGE,
                Some(TagImageOptionsBuilder::default().repo(repo).tag(t).build()),
            )
            .await
            .with_context(|| format!("tagging {tag}"))?;
    }
    Ok(())
}

/// The images most tests use: the busybox image as `cooper-test/web:1.0` and the restic image.
pub async fn ensure_test_images() -> anyhow::Result<()> {
    let d = local_docker().await?;
    ensure_images(&d, &["cooper-test/web:1.0"]).await?;
    ensure_restic_image(&d).await
}

/// [`ensure_test_images`] from synchronous code (a runtime of its own).
pub fn ensure_test_images_blocking() -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(ensure_test_images())
}

/// Builds the restic test image when it is missing.
pub async fn ensure_restic_image(docker: &Docker) -> anyhow::Result<()> {
    if docker.inspect_image(RESTIC_IMAGE).await.is_ok() {
        return Ok(());
    }
    if !Path::new(RESTIC).exists() {
        bail!("{RESTIC} is missing: install Debian's restic");
    }
    let mut files = vec![RESTIC.to_string()];
    files.extend(linked_libraries(RESTIC)?);
    build(docker, RESTIC_IMAGE, rootfs_tar_with(&files)?).await
}

async fn build(docker: &Docker, tag: &str, context: Vec<u8>) -> anyhow::Result<()> {
    let opts = BuildImageOptionsBuilder::default()
        .t(tag)
        .dockerfile("Dockerfile")
        .rm(true)
        .build();
    let mut stream = docker.build_image(opts, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.with_context(|| format!("building {tag}"))?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            bail!("building {tag}: {e}");
        }
    }
    Ok(())
}

/// Runs git in `dir` as a fixed test author.
pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "cooper tests")
        .env("GIT_AUTHOR_EMAIL", "tests@cooper.invalid")
        .env("GIT_COMMITTER_NAME", "cooper tests")
        .env("GIT_COMMITTER_EMAIL", "tests@cooper.invalid")
        .output()?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The first running container of a Swarm service (`<stack>_<service>`); panics when none runs.
pub fn service_container(service: &str) -> String {
    let ids = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ]);
    ids.lines()
        .next()
        .unwrap_or_else(|| panic!("no running container of {service}"))
        .to_string()
}

/// Runs a shell script in a service's running container; its output.
pub fn sh_in(service: &str, script: &str) -> String {
    docker(&["exec", &service_container(service), "sh", "-c", script])
}

/// `git -C dir args…`'s standard output, trimmed; panics with git's error when it fails.
pub fn git_output(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Makes a git recipe repository at `dir` with one commit and one annotated tag per
/// `(folder, tag)`, in order; each folder's files replace the previous ones.
pub fn recipe_repo(dir: &Path, versions: &[(PathBuf, &str)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    git(dir, &["init", "-q", "-b", "main"])?;
    for (src, tag) in versions {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name() == ".git" {
                continue;
            }
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        copy_dir(src, dir)?;
        git(dir, &["add", "-A"])?;
        git(
            dir,
            &[
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("release {tag}"),
            ],
        )?;
        git(
            dir,
            &[
                "tag",
                "-a",
                tag,
                "-m",
                &format!("chore: publish {tag} release"),
            ],
        )?;
    }
    Ok(())
}

/// Runs the docker CLI and returns its trimmed standard output (tests use it to look at the
/// engine independently of cooper).
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What is left of a stack on the engine: services, networks, configs and secrets labelled
/// with it (Docker's stack label, or cooper's own on secrets) and volumes named after it, as
/// `kind id` lines; empty when nothing is left.
pub fn stack_leftovers(stack: &str) -> Vec<String> {
    let namespace = format!("label=com.docker.stack.namespace={stack}");
    let cooper = format!("label=cooper.stack={stack}");
    let volume = format!("name={stack}");
    let mut left = Vec::new();
    for (kind, filter) in [
        ("service", &namespace),
        ("network", &namespace),
        ("config", &namespace),
        ("secret", &namespace),
        ("secret", &cooper),
        ("volume", &volume),
    ] {
        left.extend(
            docker(&[kind, "ls", "-q", "--filter", filter])
                .lines()
                .map(|id| format!("{kind} {id}")),
        );
    }
    left
}

/// Removes whatever an earlier test run left of a stack: services (waiting for their
/// containers), networks, configs, secrets and volumes.
pub fn scrub_stack(stack: &str) {
    let label = format!("label=com.docker.stack.namespace={stack}");
    for s in docker(&["service", "ls", "-q", "--filter", &label]).lines() {
        docker(&["service", "rm", s]);
    }
    for _ in 0..150 {
        if docker(&["ps", "-aq", "--filter", &label]).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for kind in ["network", "config", "secret", "volume"] {
        for id in docker(&[kind, "ls", "-q", "--filter", &format!("name={stack}_")]).lines() {
            docker(&[kind, "rm", id]);
        }
    }
}

/// Points an `$ABRA_DIR`'s backups for `server` at the local restic image and a repository
/// directory (on this machine, which is the server in tests).
pub fn backup_settings(abra_root: &Path, server: &str, repository: &Path) -> anyhow::Result<()> {
    let dir = abra_root.join("cooper").join("backup");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join(format!("{server}.env")),
        format!(
            "RESTIC_IMAGE={RESTIC_IMAGE}\nRESTIC_REPOSITORY={}\n",
            repository.display()
        ),
    )?;
    Ok(())
}

/// Runs the host's restic against a test repository made by cooper with
/// [`backup_settings`] (the password file cooper generated under `abra_root`).
pub fn restic(
    abra_root: &Path,
    server: &str,
    repository: &Path,
    args: &[&str],
) -> std::process::Output {
    Command::new("restic")
        .arg("-r")
        .arg(repository)
        .args(args)
        .env(
            "RESTIC_PASSWORD_FILE",
            abra_root
                .join("cooper")
                .join("backup")
                .join(format!("{server}.password")),
        )
        .env("RESTIC_CACHE_DIR", abra_root.join(".restic-cache"))
        .output()
        .expect("restic runs")
}

/// A real image registry on loopback (Debian's `docker-registry`), stopped when dropped.
pub struct LocalRegistry {
    child: std::process::Child,
    pub port: u16,
}

impl LocalRegistry {
    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts a registry storing under `storage`, with basic auth when `htpasswd` is given
    /// (a bcrypt htpasswd file); its config goes to `dir`.
    pub fn start(dir: &Path, storage: &Path, htpasswd: Option<&Path>) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let auth = htpasswd
            .map(|p| {
                format!(
                    "auth:\n  htpasswd:\n    realm: cooper-test\n    path: {}\n",
                    p.display()
                )
            })
            .unwrap_or_default();
        let config = dir.join(format!("registry-{port}.yml"));
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                storage.display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting docker-registry (Debian's docker-registry; scripts/setup-swarm installs it)")?;
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > std::time::Duration::from_secs(20) {
                bail!("docker-registry did not listen on {port} within 20 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(LocalRegistry { child, port })
    }

    /// Tags the test image as `<host>/<repo>:<tag>` for each tag and pushes it.
    pub fn push(&self, repo: &str, tags: &[&str]) -> anyhow::Result<()> {
        self.push_image(BASE_IMAGE, repo, tags)
    }

    /// Tags a local image as `<host>/<repo>:<tag>` for each tag and pushes it.
    pub fn push_image(&self, image: &str, repo: &str, tags: &[&str]) -> anyhow::Result<()> {
        for t in tags {
            let name = format!("{}/{repo}:{t}", self.host());
            docker(&["tag", image, &name]);
            let out = Command::new("docker").args(["push", &name]).output()?;
            if !out.status.success() {
                bail!(
                    "docker push {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(())
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real DNS server on loopback (Debian's dnsmasq, installed by scripts/setup-swarm) that
/// answers only the names it is given (`--address=/name/ip`, `--host-record=name,ip`); stopped
/// when dropped.
pub struct Dnsmasq {
    child: std::process::Child,
    pub at: std::net::SocketAddr,
}

impl Dnsmasq {
    /// Starts dnsmasq on a free port and returns once it listens. A port taken between
    /// choosing it and dnsmasq binding it (by a test running beside this one) makes dnsmasq
    /// exit at once: then another port is tried.
    pub fn start(records: &[&str]) -> Dnsmasq {
        let bin = ["/usr/sbin/dnsmasq", "dnsmasq"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok())
            .expect("dnsmasq (scripts/setup-swarm installs dnsmasq-base)");
        for _ in 0..10 {
            let mut d = Self::spawn(bin, records);
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_secs(10) {
                if let Ok(Some(_)) = d.child.try_wait() {
                    break;
                }
                // dnsmasq opens its TCP socket with its UDP one: listening on one is both.
                if std::net::TcpStream::connect(d.at).is_ok() {
                    return d;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = d.child.kill();
            let _ = d.child.wait();
        }
        panic!("dnsmasq did not start listening on loopback (10 ports tried)");
    }

    fn spawn(bin: &str, records: &[&str]) -> Dnsmasq {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--user=root",
                "--pid-file=",
                &format!("--port={port}"),
            ])
            .args(records)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Dnsmasq {
            child,
            at: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
