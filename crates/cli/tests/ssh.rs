//! The SSH path for real: an OpenSSH server on loopback (a free port, a generated host key and
//! client key), an SSH config that names it, and cooper reaching the local engine through it
//! exactly as it would reach a remote server (`ssh <host> docker system dial-stdio`).
//!
//! cooper runs the system `ssh`, which reads the user's own config; so that the test never
//! touches `~/.ssh`, it puts a wrapper `ssh` first on PATH that adds `-F <test config>`.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Sshd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(st.success());
}

fn which(bin: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn start_sshd() -> (Sshd, u16) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(&d.join("host_key"));
    keygen(&d.join("client_key"));
    std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port();
    std::fs::write(
        d.join("sshd_config"),
        format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n\
             PidFile {}\nAllowStreamLocalForwarding yes\n",
            d.join("host_key").display(),
            d.join("authorized_keys").display(),
            d.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(d.join("sshd_config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssh-server is installed (scripts/setup-swarm installs it)");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The client side: a config with a good and a bad host, and the PATH wrapper.
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    std::fs::write(
        d.join("ssh_config"),
        format!(
            "Host cooper-ssh-test\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n  StrictHostKeyChecking accept-new\n  UserKnownHostsFile {kh}\n  BatchMode yes\n\
             Host cooper-ssh-down\n  HostName 127.0.0.1\n  Port {down}\n  User {user}\n  IdentityFile {key}\n  BatchMode yes\n  ConnectTimeout 3\n",
            key = d.join("client_key").display(),
            kh = d.join("known_hosts").display(),
            down = free_port(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("bin")).unwrap();
    let wrapper = d.join("bin/ssh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} -F {} \"$@\"\n",
            which("ssh").display(),
            d.join("ssh_config").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (Sshd { child, dir }, port)
}

fn cooper(abra: &Path, sshd: &Sshd, args: &[&str]) -> std::process::Output {
    let path = format!(
        "{}:{}",
        sshd.dir.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_cooper"))
        .args(args)
        .env("ABRA_DIR", abra)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_server_reached_over_ssh() {
    let (sshd, _port) = start_sshd();
    let abra = tempfile::tempdir().unwrap();
    let out = cooper(abra.path(), &sshd, &["server", "add", "cooper-ssh-test"]);
    assert!(
        out.status.success(),
        "server add over SSH failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ssh://cooper-ssh-test"));
    assert!(abra.path().join("servers/cooper-ssh-test").is_dir());

    let out = cooper(abra.path(), &sshd, &["server", "ls", "-m"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["name"], "cooper-ssh-test");
    assert_eq!(list[0]["reachable"], true, "{list}");

    // An unreachable server is refused, says what to check, and leaves nothing behind.
    let out = cooper(abra.path(), &sshd, &["server", "add", "cooper-ssh-down"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach server cooper-ssh-down"), "{err}");
    assert!(err.contains("~/.ssh/config"), "{err}");
    assert!(!abra.path().join("servers/cooper-ssh-down").exists());

    let out = cooper(abra.path(), &sshd, &["server", "rm", "cooper-ssh-test"]);
    assert!(out.status.success());
    assert!(!abra.path().join("servers/cooper-ssh-test").exists());
}

#[test]
fn deploy_through_ssh() {
    let (sshd, _port) = start_sshd();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let d = cooper_testkit::local_docker().await.unwrap();
        cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0", "cooper-test/web:1.1"])
            .await
            .unwrap();
    });
    let abra = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/deploy/testapp");
    cooper_testkit::recipe_repo(
        &abra.path().join("recipes/testapp"),
        &[(root.join("1.0.0+1.0"), "1.0.0+1.0")],
    )
    .unwrap();
    let ok = |args: &[&str]| {
        let out = cooper(abra.path(), &sshd, args);
        assert!(
            out.status.success(),
            "cooper {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stack = "t-ssh_cooper_test";
    let _ = Command::new("docker")
        .args([
            "service",
            "rm",
            &format!("{stack}_app"),
            &format!("{stack}_db"),
        ])
        .output();
    ok(&["server", "add", "cooper-ssh-test"]);
    ok(&[
        "app",
        "new",
        "testapp",
        "-s",
        "cooper-ssh-test",
        "-D",
        "t-ssh.cooper.test",
    ]);
    ok(&["app", "secret", "generate", "t-ssh.cooper.test", "--all"]);
    let out = ok(&["app", "deploy", "t-ssh.cooper.test", "-n"]);
    assert!(out.contains("runs testapp 1.0.0+1.0"), "{out}");
    let ps = ok(&["app", "ps", "t-ssh.cooper.test", "-m"]);
    assert!(ps.contains("\"state\": \"running\""), "{ps}");
    ok(&["app", "undeploy", "t-ssh.cooper.test"]);
    ok(&[
        "app",
        "remove",
        "t-ssh.cooper.test",
        "--secrets",
        "--volumes",
        "-n",
    ]);
}
