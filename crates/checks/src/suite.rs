//! The suite format: TOML files in a recipe's `tests/` folder, read at the same version as the
//! deployed recipe. See `docs/recipe-tests.md` for the reference and examples.
//!
//! ```toml
//! name = "smoke"          # default: the file name
//! requires = [{ recipe = "keycloak", suite = "users" }]   # another app's suite around this one
//! prod = true             # safe against production (`app test --prod` runs only these)
//! timeout = 60            # seconds per step (default 60)
//!
//! [[setup]]
//! name = "make a test user"
//! exec = { service = "app", cmd = ["sh", "-c", "adduser cooper-test-$COOPER_TEST_RUN"] }
//!
//! [[test]]
//! name = "front page"
//! http = { service = "app", port = 8080, path = "/", status = 200, body = "Welcome" }
//!
//! [[cleanup]]
//! exec = { service = "app", cmd = ["sh", "-c", "deluser cooper-test-$COOPER_TEST_RUN"] }
//! ```
//!
//! Every step has exactly one action: `http`, `exec`, `health`, `command` or `browser`. Phases: `setup`,
//! `test`, `cleanup` (always runs), and `seed`/`check` (write recognisable data, later assert
//! it is there; the lifecycle tiers use them across backup/restore and upgrades).

use std::collections::BTreeMap;

use cooper_recipe::repo::RecipeFiles;
use serde::{Deserialize, Serialize};

/// The folder of a recipe that holds its test suites.
pub const TESTS_DIR: &str = "tests";

/// An error in a suite file, naming the file, the line and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct SuiteError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// One suite (one file).
#[derive(Debug, Clone, Serialize)]
pub struct Suite {
    pub name: String,
    /// The file it came from (`tests/smoke.toml`).
    pub file: String,
    pub prod: bool,
    pub timeout_secs: u64,
    /// Suites of other apps this one needs (e.g. the SSO provider's users): their setup runs
    /// before this suite's setup and their cleanup after this suite's cleanup.
    pub requires: Vec<Requirement>,
    pub setup: Vec<Step>,
    pub tests: Vec<Step>,
    pub seed: Vec<Step>,
    pub check: Vec<Step>,
    pub cleanup: Vec<Step>,
}

/// A suite of another app: the app deployed from `recipe` on the same server (or the app
/// `domain`, when given), and its suite `suite`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub recipe: String,
    pub suite: String,
    #[serde(default)]
    pub domain: Option<String>,
}

/// One step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub action: Action,
    /// Overrides the suite's timeout.
    pub timeout_secs: Option<u64>,
}

/// What a step does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Http(Http),
    Exec(Exec),
    Health(Health),
    Command(Command),
    Browser(Browser),
}

/// A real browser (Chromium through WebDriver) on a page of the app: `open` (a path under the
/// app's URL, or an absolute URL), then steps in order. A failed step leaves a screenshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Browser {
    #[serde(default = "slash")]
    pub open: String,
    #[serde(default)]
    pub steps: Vec<BrowserStep>,
}

/// One browser step: exactly one of `open`, `fill` (+ `value`), `click`, `wait_for`,
/// `expect_text`, `screenshot`. Selectors are CSS.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<String>,
}

impl BrowserStep {
    /// What the step does, for messages (`click #submit`).
    pub fn describe(&self) -> String {
        match self {
            BrowserStep { open: Some(u), .. } => format!("open {u}"),
            BrowserStep {
                fill: Some(f),
                value,
                ..
            } => {
                format!("fill {f} with {:?}", value.as_deref().unwrap_or_default())
            }
            BrowserStep { click: Some(c), .. } => format!("click {c}"),
            BrowserStep {
                wait_for: Some(w), ..
            } => format!("wait for {w}"),
            BrowserStep {
                expect_text: Some(t),
                ..
            } => format!("expect text {t:?}"),
            BrowserStep {
                screenshot: Some(n),
                ..
            } => format!("screenshot {n}"),
            _ => "nothing".into(),
        }
    }

    fn verbs(&self) -> usize {
        [
            self.open.is_some(),
            self.fill.is_some(),
            self.click.is_some(),
            self.wait_for.is_some(),
            self.expect_text.is_some(),
            self.screenshot.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }
}

/// An HTTP request to a service (over the network it shares with the `proxy` network) or to
/// an absolute URL, with what the answer must look like.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "slash")]
    pub path: String,
    /// An absolute URL instead of service/port/path.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The expected status (default 200).
    #[serde(default = "ok_status")]
    pub status: u16,
    /// A regular expression the body must match.
    #[serde(default)]
    pub body: Option<String>,
}

fn slash() -> String {
    "/".into()
}

fn ok_status() -> u16 {
    200
}

/// A command in a running container of a service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    pub service: String,
    pub cmd: Vec<String>,
    /// The expected exit code (default 0).
    #[serde(default)]
    pub exit: i64,
    /// A regular expression standard output must match.
    #[serde(default)]
    pub stdout: Option<String>,
}

/// A service must run all its replicas, healthy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub service: String,
}

/// An external command on the machine running cooper (a pytest or Playwright suite), given
/// the app's URL and env.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub run: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    name: Option<String>,
    #[serde(default)]
    prod: bool,
    timeout: Option<u64>,
    #[serde(default)]
    requires: Vec<Requirement>,
    #[serde(default)]
    setup: Vec<RawStep>,
    #[serde(default)]
    test: Vec<RawStep>,
    #[serde(default)]
    seed: Vec<RawStep>,
    #[serde(default)]
    check: Vec<RawStep>,
    #[serde(default)]
    cleanup: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Option<String>,
    timeout: Option<u64>,
    http: Option<Http>,
    exec: Option<Exec>,
    health: Option<Health>,
    command: Option<Command>,
    browser: Option<Browser>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses one suite file.
pub fn parse(file: &str, text: &str) -> Result<Suite, SuiteError> {
    let err = |line: Option<usize>, message: String| SuiteError {
        file: file.to_string(),
        line,
        message,
    };
    let raw: RawSuite = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        err(line, e.message().trim().to_string())
    })?;
    let stem = file
        .rsplit('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".toml")
        .to_string();
    let mut suite = Suite {
        name: raw.name.unwrap_or(stem),
        file: file.to_string(),
        prod: raw.prod,
        timeout_secs: raw.timeout.unwrap_or(60),
        requires: raw.requires,
        setup: Vec::new(),
        tests: Vec::new(),
        seed: Vec::new(),
        check: Vec::new(),
        cleanup: Vec::new(),
    };
    // Steps carry no spans after deserialising; find each phase's n-th `[[phase]]` header for
    // error lines.
    let header_line = |phase: &str, n: usize| -> Option<usize> {
        let header = format!("[[{phase}]]");
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with(&header))
            .nth(n)
            .map(|(i, _)| i + 1)
    };
    for (phase, raws, out) in [
        ("setup", raw.setup, &mut suite.setup),
        ("test", raw.test, &mut suite.tests),
        ("seed", raw.seed, &mut suite.seed),
        ("check", raw.check, &mut suite.check),
        ("cleanup", raw.cleanup, &mut suite.cleanup),
    ] {
        for (i, r) in raws.into_iter().enumerate() {
            let line = header_line(phase, i);
            let mut actions = Vec::new();
            if let Some(h) = r.http {
                if h.url.is_none() && (h.service.is_none() || h.port.is_none()) {
                    return Err(err(
                        line,
                        format!(
                            "[[{phase}]] #{}: http needs either url = \"https://…\" or service and \
                             port (e.g. http = {{ service = \"app\", port = 80, path = \"/\" }})",
                            i + 1
                        ),
                    ));
                }
                if let Some(b) = &h.body {
                    regex::Regex::new(b).map_err(|e| {
                        err(
                            line,
                            format!(
                                "[[{phase}]] #{}: body is not a valid regular expression: {e}",
                                i + 1
                            ),
                        )
                    })?;
                }
                actions.push(Action::Http(h));
            }
            if let Some(x) = r.exec {
                if x.cmd.is_empty() {
                    return Err(err(
                        line,
                        format!("[[{phase}]] #{}: exec.cmd is empty; give the command as a list, e.g. [\"sh\", \"-c\", \"…\"]", i + 1),
                    ));
                }
                if let Some(o) = &x.stdout {
                    regex::Regex::new(o).map_err(|e| {
                        err(
                            line,
                            format!(
                                "[[{phase}]] #{}: stdout is not a valid regular expression: {e}",
                                i + 1
                            ),
                        )
                    })?;
                }
                actions.push(Action::Exec(x));
            }
            if let Some(h) = r.health {
                actions.push(Action::Health(h));
            }
            if let Some(c) = r.command {
                if c.run.is_empty() {
                    return Err(err(
                        line,
                        format!("[[{phase}]] #{}: command.run is empty", i + 1),
                    ));
                }
                actions.push(Action::Command(c));
            }
            if let Some(b) = r.browser {
                for (n, st) in b.steps.iter().enumerate() {
                    if st.verbs() != 1 {
                        return Err(err(
                            line,
                            format!(
                                "[[{phase}]] #{}: browser step {} has {} verbs; give exactly one of \
                                 open, fill (with value), click, wait_for, expect_text, screenshot",
                                i + 1,
                                n + 1,
                                st.verbs()
                            ),
                        ));
                    }
                    if st.fill.is_some() != st.value.is_some() {
                        return Err(err(
                            line,
                            format!(
                                "[[{phase}]] #{}: browser step {}: fill needs value (and value \
                                 belongs to fill), e.g. {{ fill = \"#user\", value = \"alice\" }}",
                                i + 1,
                                n + 1
                            ),
                        ));
                    }
                }
                actions.push(Action::Browser(b));
            }
            if actions.len() != 1 {
                return Err(err(
                    line,
                    format!(
                        "[[{phase}]] #{} has {} actions; give exactly one of http, exec, health, command, browser",
                        i + 1,
                        actions.len()
                    ),
                ));
            }
            let action = actions.remove(0);
            out.push(Step {
                name: r
                    .name
                    .unwrap_or_else(|| format!("{phase} {}: {}", i + 1, describe(&action))),
                action,
                timeout_secs: r.timeout,
            });
        }
    }
    Ok(suite)
}

/// A short description of an action (default step names).
pub fn describe(a: &Action) -> String {
    match a {
        Action::Http(h) => match &h.url {
            Some(u) => format!("GET {u}"),
            None => format!(
                "GET {}:{}{}",
                h.service.as_deref().unwrap_or("?"),
                h.port.unwrap_or(0),
                h.path
            ),
        },
        Action::Exec(x) => format!("{}: {}", x.service, x.cmd.join(" ")),
        Action::Health(h) => format!("{} healthy", h.service),
        Action::Command(c) => c.run.join(" "),
        Action::Browser(b) => format!("browser {}", b.open),
    }
}

/// Every suite of a recipe at a version (files `tests/*.toml`, in name order).
pub fn load(files: &RecipeFiles) -> Result<Vec<Suite>, SuiteError> {
    let mut out = Vec::new();
    for path in files.paths() {
        let Some(rest) = path.strip_prefix(&format!("{TESTS_DIR}/")) else {
            continue;
        };
        if rest.contains('/') || !rest.ends_with(".toml") {
            continue;
        }
        let text = files.text(path).ok_or_else(|| SuiteError {
            file: path.to_string(),
            line: None,
            message: "not valid UTF-8 text".into(),
        })?;
        out.push(parse(path, &text)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
prod = true
[[test]]
name = "front page"
http = { service = "app", port = 8080, path = "/", body = "cooper" }

[[test]]
exec = { service = "db", cmd = ["test", "-s", "/run/secrets/db_password"] }

[[cleanup]]
health = { service = "app" }
"#;

    #[test]
    fn a_suite_parses_with_defaults() {
        let s = parse("tests/smoke.toml", GOOD).unwrap();
        assert_eq!(s.name, "smoke");
        assert!(s.prod);
        assert_eq!(s.timeout_secs, 60);
        assert_eq!(s.tests.len(), 2);
        assert_eq!(
            s.tests[1].name,
            "test 2: db: test -s /run/secrets/db_password"
        );
        match &s.tests[0].action {
            Action::Http(h) => assert_eq!(h.status, 200),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.cleanup.len(), 1);
    }

    #[test]
    fn errors_name_file_line_and_fix() {
        let e = parse(
            "tests/a.toml",
            "[[test]]\nhealth = { service = \"app\" }\n\n[[test]]\nhttp = { path = \"/\" }\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().starts_with("tests/a.toml:4: "), "{e}");
        assert!(e.to_string().contains("service and port"), "{e}");

        let e = parse(
            "tests/a.toml",
            "[[test]]\nbrowser = { steps = [{ click = \"#a\", fill = \"#b\" }] }\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("browser step 1 has 2 verbs"), "{e}");
        let e = parse(
            "tests/a.toml",
            "[[test]]\nbrowser = { steps = [{ fill = \"#b\" }] }\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("fill needs value"), "{e}");

        let e = parse("tests/a.toml", "[[test]]\nname = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("has 0 actions"), "{e}");

        let e = parse("tests/a.toml", "[[test]]\nhtpp = { url = \"x\" }\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("htpp"), "{e}");

        let e = parse(
            "tests/a.toml",
            "[[test]]\nexec = { service = \"a\", cmd = [\"x\"], stdout = \"(\" }\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("regular expression"), "{e}");
    }
}
