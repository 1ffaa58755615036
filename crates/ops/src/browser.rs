//! Browser steps of deployment tests: a real Chromium driven over WebDriver (Debian's
//! `chromium` + `chromedriver`), headless, one fresh session per step list. A failed step
//! leaves a screenshot next to the run's reports.

use std::path::Path;
use std::time::{Duration, Instant};

use cooper_checks::suite::{Browser, BrowserStep};
use cooper_checks::Outcome;
use fantoccini::{Client, ClientBuilder, Locator};

use crate::{OpsError, Result};

/// How long a step waits for its element or text.
const STEP_WAIT: Duration = Duration::from_secs(10);

/// A running chromedriver (stopped when dropped).
pub(crate) struct Driver {
    _child: tokio::process::Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver (`COOPER_CHROMEDRIVER`, default `chromedriver` on PATH) on a free
    /// loopback port and waits until it answers.
    pub(crate) async fn start() -> Result<Driver> {
        let bin = std::env::var("COOPER_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| OpsError::Failed(format!("finding a free port for chromedriver: {e}")))?;
        let child = tokio::process::Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                OpsError::Failed(format!(
                    "cannot start {bin}: {e}; browser steps need Chromium and chromedriver \
                     (Debian: apt-get install chromium chromium-driver)"
                ))
            })?;
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if start.elapsed() > Duration::from_secs(15) {
                return Err(OpsError::Failed(format!(
                    "{bin} did not answer on port {port} within 15 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Driver {
            _child: child,
            port,
        })
    }
}

/// `$COOPER_TEST_RUN` / `${COOPER_TEST_RUN}` in a step's text.
fn marked(text: &str, run: &str) -> String {
    text.replace("${COOPER_TEST_RUN}", run)
        .replace("$COOPER_TEST_RUN", run)
}

/// A path under the app's URL, or an absolute URL.
fn resolve(base: &str, target: &str) -> String {
    if target.contains("://") || target.starts_with("data:") {
        target.to_string()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            target.trim_start_matches('/')
        )
    }
}

/// Runs a browser action; on failure saves a screenshot at `shot` (PNG).
pub(crate) async fn run(
    driver: &Driver,
    base: &str,
    b: &Browser,
    run: &str,
    shot: &Path,
) -> Result<(Outcome, String)> {
    let mut caps = serde_json::Map::new();
    let mut chrome = serde_json::json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--window-size=1280,900"]
    });
    if let Ok(bin) = std::env::var("COOPER_CHROMIUM") {
        chrome["binary"] = serde_json::json!(bin);
    }
    caps.insert("goog:chromeOptions".into(), chrome);
    cooper_registry::install_crypto();
    let client = ClientBuilder::rustls()
        .map_err(|e| OpsError::Failed(format!("WebDriver client: {e}")))?
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .map_err(|e| OpsError::Failed(format!("starting a Chromium session: {e}")))?;
    let mut log = Vec::new();
    let mut steps = vec![BrowserStep {
        open: Some(b.open.clone()),
        ..Default::default()
    }];
    steps.extend(b.steps.iter().cloned());
    let mut outcome = Outcome::Passed;
    for (n, st) in steps.iter().enumerate() {
        let what = marked(&st.describe(), run);
        match step(&client, base, st, run, shot).await {
            Ok(note) => log.push(format!("ok {what}{note}")),
            Err(e) => {
                let saved = match client.screenshot().await {
                    Ok(png) => std::fs::write(shot, png)
                        .map(|_| format!("; screenshot {}", shot.display()))
                        .unwrap_or_default(),
                    Err(_) => String::new(),
                };
                let url = client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                log.push(format!("FAILED {what}: {e} (at {url})"));
                outcome = Outcome::Failed(format!(
                    "browser step {} ({what}) failed at {url}: {e}{saved}",
                    n
                ));
                break;
            }
        }
    }
    let _ = client.close().await;
    Ok((outcome, log.join("\n")))
}

async fn find(
    client: &Client,
    css: &str,
) -> std::result::Result<fantoccini::elements::Element, String> {
    client
        .wait()
        .at_most(STEP_WAIT)
        .for_element(Locator::Css(css))
        .await
        .map_err(|e| format!("no element {css} within {}s ({e})", STEP_WAIT.as_secs()))
}

async fn step(
    client: &Client,
    base: &str,
    st: &BrowserStep,
    run: &str,
    shot: &Path,
) -> std::result::Result<String, String> {
    if let Some(u) = &st.open {
        let url = resolve(base, &marked(u, run));
        client.goto(&url).await.map_err(|e| e.to_string())?;
        return Ok(String::new());
    }
    if let (Some(sel), Some(v)) = (&st.fill, &st.value) {
        let el = find(client, sel).await?;
        let _ = el.clear().await;
        el.send_keys(&marked(v, run))
            .await
            .map_err(|e| e.to_string())?;
        return Ok(String::new());
    }
    if let Some(sel) = &st.click {
        let el = find(client, sel).await?;
        el.click().await.map_err(|e| e.to_string())?;
        return Ok(String::new());
    }
    if let Some(sel) = &st.wait_for {
        find(client, sel).await?;
        return Ok(String::new());
    }
    if let Some(text) = &st.expect_text {
        let want = marked(text, run);
        let start = Instant::now();
        let mut seen = String::new();
        while start.elapsed() < STEP_WAIT {
            if let Ok(body) = client.find(Locator::Css("body")).await {
                seen = body.text().await.unwrap_or_default();
                if seen.contains(&want) {
                    return Ok(String::new());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let shown: String = seen.chars().take(200).collect();
        return Err(format!(
            "the page does not show {want:?} within {}s; it shows: {shown:?}",
            STEP_WAIT.as_secs()
        ));
    }
    if let Some(name) = &st.screenshot {
        let png = client.screenshot().await.map_err(|e| e.to_string())?;
        let path = shot.with_file_name(format!("{}.png", marked(name, run)));
        std::fs::write(&path, png).map_err(|e| e.to_string())?;
        return Ok(format!(" ({})", path.display()));
    }
    Err("a step with nothing to do".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_and_marks() {
        assert_eq!(
            super::resolve("https://a.org/", "/login"),
            "https://a.org/login"
        );
        assert_eq!(super::resolve("https://a.org", "http://x/y"), "http://x/y");
        assert_eq!(
            super::marked("u-${COOPER_TEST_RUN}-$COOPER_TEST_RUN", "ab"),
            "u-ab-ab"
        );
    }
}
