//! Notifications against real receivers on loopback: an SMTP server (Python's aiosmtpd:
//! STARTTLS and AUTH required, a certificate made here with openssl) and a webhook receiver
//! that checks signatures with Python's own hmac and refuses the first tries. Asserts on what
//! they received: who got mail, that a burst arrived as one digest, that a person who switched
//! an event off heard nothing, that the same news queued twice went once, that the webhook was
//! retried with the same delivery id until it went, and that no secret travelled.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cooper_store::{testing, Store};
use cooper_web::notify::{Event, Notifier, SmtpConfig, BATCH_MS};
use tokio::io::{AsyncBufReadExt, BufReader};

const SMTP_PASSWORD: &str = "smtp-pass-5be1e0c2";

fn tools() -> PathBuf {
    match std::env::var("COOPER_WEB_TOOLS") {
        Ok(p) => PathBuf::from(p).parent().unwrap().to_path_buf(),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-tools"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(script: &str, env: &[(&str, String)]) -> tokio::process::Child {
    let python = tools().join("py/bin/python");
    assert!(
        python.exists(),
        "{}: missing (scripts/setup-web-tools installs aiosmtpd in a venv there)",
        python.display()
    );
    let mut child = tokio::process::Command::new(python)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(script),
        )
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), out.next_line())
        .await
        .expect("the receiver starts")
        .unwrap()
        .unwrap_or_default();
    assert!(line.starts_with("ready"), "{script}: {line}");
    child
}

/// A co-op's own CA and a server certificate for 127.0.0.1 signed by it (openssl, as an
/// operator would make them). Returns (CA, server certificate, server key).
fn certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test Co-op CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

async fn people(s: &Store) {
    let coop = s.add_coop("Autonomic").await.unwrap();
    let com = s.add_community("Radio", &coop.id).await.unwrap();
    s.set_server_owner("default", &coop.id).await.unwrap();
    s.set_instance_owner("radio.example.org", &com.id)
        .await
        .unwrap();
    s.add_person("ada@example.org", "Ada", None, true)
        .await
        .unwrap();
    let olga = s
        .add_person("olga@example.org", "Olga", None, false)
        .await
        .unwrap();
    s.add_membership(&olga.id, "coop", &coop.id, "operator")
        .await
        .unwrap();
    let bob = s
        .add_person("bob@example.org", "Bob", None, false)
        .await
        .unwrap();
    s.add_membership(&bob.id, "coop", &coop.id, "operator")
        .await
        .unwrap();
    s.set_notify_mode(&bob.id, "job.failed", "off")
        .await
        .unwrap();
    s.set_notify_mode(&bob.id, "upgrade.applied", "off")
        .await
        .unwrap();
    let carla = s
        .add_person("carla@example.org", "Carla", None, false)
        .await
        .unwrap();
    s.add_membership(&carla.id, "community", &com.id, "admin")
        .await
        .unwrap();
    let mo = s
        .add_person("mo@example.org", "Mo", None, false)
        .await
        .unwrap();
    s.add_membership(&mo.id, "community", &com.id, "member")
        .await
        .unwrap();
}

fn event(name: &'static str, title: &str, dedupe: Option<&str>) -> Event {
    Event {
        event: name,
        domain: Some("radio.example.org".into()),
        server: Some("default".into()),
        title: title.into(),
        detail: "what happened".into(),
        link: Some("/jobs/j1".into()),
        dedupe: dedupe.map(str::to_string),
    }
}

/// Reads every message the SMTP server received: (to, subject, whole text, login).
fn mails(dir: &Path) -> Vec<(String, String, String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let header = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_string()
            };
            let login = std::fs::read_to_string(p.with_extension("login")).unwrap_or_default();
            (header("To"), header("Subject"), text.clone(), login)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_and_webhooks_reach_real_receivers() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(dir.path());
    let out = dir.path().join("received");
    std::fs::create_dir_all(&out).unwrap();
    let smtp_port = free_port();
    let _smtp = start(
        "smtp_receiver.py",
        &[
            ("SMTP_PORT", smtp_port.to_string()),
            ("SMTP_CERT", cert.display().to_string()),
            ("SMTP_KEY", key.display().to_string()),
            ("SMTP_USER", "cooper".into()),
            ("SMTP_PASSWORD", SMTP_PASSWORD.into()),
            ("OUT_DIR", out.display().to_string()),
        ],
    )
    .await;

    let (_d, store) = testing::sqlite().await;
    people(&store).await;
    let hook = store
        .add_webhook(
            &format!("http://127.0.0.1:{}/hook", free_port()),
            &["job.failed".to_string()],
            "ada@example.org",
        )
        .await
        .unwrap();
    let hook_port: u16 = hook.url.split(':').nth(2).unwrap()[..5]
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let _receiver = start(
        "webhook_receiver.py",
        &[
            ("HOOK_PORT", hook_port.to_string()),
            ("HOOK_SECRET", hook.secret.clone()),
            ("FAIL_FIRST", "2".into()),
            ("OUT_DIR", out.display().to_string()),
        ],
    )
    .await;

    let smtp = SmtpConfig {
        host: "127.0.0.1".into(),
        port: smtp_port,
        tls: "starttls".into(),
        user: Some("cooper".into()),
        password: Some(SMTP_PASSWORD.into()),
        from: "cooper <dashboard@coop.example>".into(),
        ca_pem: Some(std::fs::read(&ca).unwrap()),
    };
    assert!(!format!("{smtp:?}").contains(SMTP_PASSWORD));
    let n = Notifier::new(
        store.clone(),
        Some(smtp),
        Some("https://dash.coop.example".into()),
    );

    // Operators' news: admins and the co-op's operators, not the community, not Bob (off).
    let q = n
        .emit(&event("job.failed", "backup of radio failed", None))
        .await
        .unwrap();
    assert_eq!(q, 3, "ada, olga, the webhook");
    // Everyone's news: the community admin too.
    assert_eq!(
        n.emit(&event("upgrade.applied", "radio was upgraded", None))
            .await
            .unwrap(),
        3,
        "ada, olga, carla (bob switched it off; the webhook did not ask)"
    );
    // The same news twice is one message.
    let offer = event(
        "upgrade.available",
        "An upgrade is available",
        Some("r|1.2"),
    );
    assert_eq!(n.emit(&offer).await.unwrap(), 3, "ada, olga, bob");
    assert_eq!(n.emit(&offer).await.unwrap(), 0);

    // Nothing goes before the batching minute, except the webhook (at once; it fails).
    let t0 = cooper_store::now_ms();
    let (sent, failed) = n.deliver(t0).await.unwrap();
    assert_eq!((sent, failed), (0, 1));
    // After the minute: one mail per person, the burst as a digest.
    let (sent, _) = n.deliver(t0 + BATCH_MS + 1).await.unwrap();
    assert_eq!(sent, 3 + 3 + 1 + 1, "every email row went");
    let got = mails(&out);
    let to: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(
        got.len(),
        4,
        "one mail each for ada, olga, bob, carla: {to:?}"
    );
    for (to, subject, text, login) in &got {
        assert_eq!(login, "cooper", "authenticated as the configured user");
        assert!(
            !text.contains(SMTP_PASSWORD),
            "the password is not in a mail"
        );
        if to.contains("carla") {
            assert_eq!(subject, "radio was upgraded");
            assert!(
                !text.contains("backup of radio failed"),
                "not operators' news"
            );
        } else if to.contains("bob") {
            assert_eq!(
                subject, "An upgrade is available",
                "the rest he switched off"
            );
        } else {
            assert!(subject.contains("3 things happened"), "{subject}");
            assert!(text.contains("backup of radio failed") && text.contains("radio was upgraded"));
            assert!(
                text.contains("https://dash.coop.example/jobs/j1"),
                "links are absolute"
            );
        }
    }
    assert!(
        !to.iter().any(|t| t.contains("mo@")),
        "members hear nothing: {to:?}"
    );

    // The webhook: tried again after its backoff, with the same delivery id, until it went.
    let mut at = t0;
    let start_wait = Instant::now();
    loop {
        let row = store
            .outbox(50)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.channel == "webhook")
            .unwrap();
        if row.state == "sent" {
            assert_eq!(row.attempts, 3);
            break;
        }
        assert!(start_wait.elapsed() < Duration::from_secs(30), "{row:?}");
        at = row.next_at.max(at);
        n.deliver(at).await.unwrap();
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("hooks.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["valid"] == true), "{lines:?}");
    assert!(lines.iter().all(|l| l["delivery"] == lines[0]["delivery"]));
    assert_eq!(lines[2]["answer"], 200);
    assert_eq!(lines[0]["event"], "job.failed");
    assert_eq!(lines[0]["body"]["domain"], "radio.example.org");
    assert!(!std::fs::read_to_string(out.join("hooks.jsonl"))
        .unwrap()
        .contains(&hook.secret));
}

#[tokio::test]
async fn a_refusing_server_keeps_the_mail_for_later() {
    let (_d, store) = testing::sqlite().await;
    people(&store).await;
    let n = Notifier::new(
        store.clone(),
        Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port: free_port(),
            tls: "none".into(),
            user: None,
            password: None,
            from: "cooper <dashboard@coop.example>".into(),
            ca_pem: None,
        }),
        None,
    );
    n.emit(&event("job.failed", "x failed", None))
        .await
        .unwrap();
    let t = cooper_store::now_ms() + BATCH_MS + 1;
    let (sent, failed) = n.deliver(t).await.unwrap();
    assert_eq!((sent, failed), (0, 2), "nobody listens on that port");
    let rows = store.outbox(10).await.unwrap();
    assert!(rows
        .iter()
        .all(|r| r.state == "pending" && r.attempts == 1 && r.next_at == t + 30_000));
    assert!(rows[0].last_error.as_deref().unwrap_or_default().len() > 3);
}
