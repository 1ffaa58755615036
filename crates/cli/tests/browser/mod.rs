//! What the browser tests share: `cooper serve` started as a person would, chromedriver and a
//! headless Chromium, waiting for what a page shows (bounded), axe-core, screenshots under
//! `target/dashboard-screenshots/`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, BufReader};

pub fn shots() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A release of the test app (`tests/fixtures/deploy/testapp/<version>`).
pub fn fixture(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/deploy/testapp")
        .join(version)
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The npm packages the browser tests use (scripts/setup-web-tools installs them).
pub fn web_tools() -> PathBuf {
    if let Ok(p) = std::env::var("COOPER_WEB_TOOLS") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-tools/node_modules")
}

pub fn axe_path() -> PathBuf {
    web_tools().join("axe-core/axe.min.js")
}

/// axe-core's script, or a panic that says how to install it.
pub fn axe_js() -> String {
    std::fs::read_to_string(axe_path()).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/setup-web-tools installs axe-core)",
            axe_path().display()
        )
    })
}

pub struct Serve {
    pub child: tokio::process::Child,
    pub base: String,
    pub token: Option<String>,
    pub lines: Vec<String>,
}

/// Starts `cooper serve` on a free port and reads what it prints until it listens.
pub async fn serve(abra: &Path) -> Serve {
    serve_with(abra, &[], &[]).await
}

/// `cooper serve` with more arguments and environment (the store, an OpenID provider).
pub async fn serve_with(abra: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cooper"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .env("ABRA_DIR", abra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = None;
    let mut token = None;
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(Ok(Some(line))) = tokio::time::timeout_at(deadline.into(), out.next_line()).await {
        lines.push(line.clone());
        if let Some(rest) = line.strip_prefix("cooper serve: listening on ") {
            base = Some(rest.trim_end_matches('/').to_string());
        }
        if line.starts_with("    ") && !line.trim().is_empty() {
            token = Some(line.trim().to_string());
        }
        if line.starts_with("cooper serve: ready") {
            break;
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    Serve {
        child,
        base: base
            .unwrap_or_else(|| panic!("cooper serve did not say where it listens: {lines:?}")),
        token,
        lines,
    }
}

pub struct Driver {
    pub _child: tokio::process::Child,
    pub port: u16,
}

pub async fn chromedriver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver (scripts/setup-swarm installs chromium-driver)");
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not answer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver {
        _child: child,
        port,
    }
}

pub async fn browser(d: &Driver) -> Client {
    cooper_registry::install_crypto();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,900", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]}),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("a Chromium session")
}

pub async fn shot(c: &Client, name: &str) {
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(shots().join(format!("{name}.png")), png);
    }
}

/// Waits (bounded) until `css` exists and its text contains `text`.
pub async fn wait_text(c: &Client, css: &str, text: &str, within: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if t.contains(text) {
                    return t;
                }
            }
        }
        if start.elapsed() > within {
            shot(c, "failure").await;
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let src = c.source().await.unwrap_or_default();
            panic!("no {css:?} with {text:?} within {within:?} at {url}:\n{src}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Loads `url` again and again (bounded) until `css` shows `text`: for pages without live
/// updates that change after something happened elsewhere.
pub async fn reload_until(
    c: &Client,
    url: &str,
    css: &str,
    text: &str,
    within: Duration,
) -> String {
    let start = Instant::now();
    loop {
        c.goto(url).await.unwrap();
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if t.contains(text) {
                    return t;
                }
            }
        }
        if start.elapsed() > within {
            return wait_text(c, css, text, Duration::ZERO).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn fill(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Runs axe-core on the page; returns its serious and critical violations.
pub async fn axe(c: &Client, axe_js: &str) -> Vec<String> {
    c.execute(axe_js, vec![]).await.expect("axe-core loads");
    let r = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(r => done(
               r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))
             )).catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(r).unwrap()
}

/// Selects the option with this value.
pub async fn choose(c: &Client, select: &str, value: &str) {
    c.find(Locator::Css(&format!("{select} option[value='{value}']")))
        .await
        .unwrap_or_else(|e| panic!("{select} has no option {value}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Selects the option whose text starts with `text`.
pub async fn choose_text(c: &Client, select: &str, text: &str) {
    for o in c
        .find_all(Locator::Css(&format!("{select} option")))
        .await
        .unwrap()
    {
        if o.text().await.unwrap_or_default().starts_with(text) {
            o.click().await.unwrap();
            return;
        }
    }
    panic!("{select} has no option {text:?}");
}

/// Fetches a path from the page (with its cookies): status, content type, body size.
pub async fn fetch_status(c: &Client, path: &str) -> (u16, String, u64) {
    let r = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => r.arrayBuffer().then(b =>
               done([r.status, r.headers.get('content-type') || '', b.byteLength])))
             .catch(e => done([0, String(e), 0]));",
            vec![serde_json::json!(path)],
        )
        .await
        .unwrap();
    (
        r[0].as_u64().unwrap_or(0) as u16,
        r[1].as_str().unwrap_or_default().to_string(),
        r[2].as_u64().unwrap_or(0),
    )
}

/// How far the page is wider than the window (0 or less: no sideways scrolling).
pub async fn sideways_overflow(c: &Client) -> i64 {
    c.execute(
        "return document.documentElement.scrollWidth - window.innerWidth",
        vec![],
    )
    .await
    .unwrap()
    .as_i64()
    .unwrap_or(1)
}

/// Opens each page in a phone-sized window (390×844), keeps a screenshot of it and asserts it
/// needs no sideways scrolling; the window is put back to its desktop size after.
pub async fn on_a_phone(c: &Client, base: &str, pages: &[(String, &str)]) {
    c.set_window_size(390, 844).await.unwrap();
    for (page, name) in pages {
        c.goto(&format!("{base}{page}")).await.unwrap();
        wait_text(c, "h1", "", Duration::from_secs(10)).await;
        let overflow = sideways_overflow(c).await;
        shot(c, name).await;
        assert!(
            overflow <= 0,
            "no sideways scrolling on a phone at {page}: {overflow}"
        );
    }
    c.set_window_size(1280, 900).await.unwrap();
}
