//! Results of a test run and their reports: JUnit XML (what CI systems read) and JSON.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde::{Deserialize, Serialize};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// One step's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub suite: String,
    /// `setup`, `test`, `seed`, `check` or `cleanup`.
    pub phase: String,
    pub name: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub millis: u64,
    /// What the step printed or received (secrets scrubbed, shortened).
    pub output: String,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub app: String,
    pub recipe: String,
    pub version: String,
    /// The mark of everything this run created (`COOPER_TEST_RUN`).
    pub run: String,
    pub started: String,
    pub millis: u64,
    pub results: Vec<StepResult>,
}

impl RunReport {
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .count()
    }

    pub fn skipped(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
            .count()
    }

    pub fn passed(&self) -> usize {
        self.results.len() - self.failed() - self.skipped()
    }

    /// The failed steps, one line each (`name: first line of the reason`).
    pub fn failures(&self) -> String {
        self.results
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Failed(w) => Some(format!(
                    "{}: {}",
                    r.name,
                    w.lines().next().unwrap_or_default()
                )),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The suites in first-seen order.
    fn suites(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.results {
            if !out.contains(&r.suite.as_str()) {
                out.push(&r.suite);
            }
        }
        out
    }

    /// The report as JUnit XML: one `<testsuite>` per suite, one `<testcase>` per step
    /// (classname `<recipe>.<suite>.<phase>`).
    pub fn junit(&self) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        let mut root = BytesStart::new("testsuites");
        root.push_attribute(("name", format!("{} {}", self.app, self.version).as_str()));
        root.push_attribute(("tests", self.results.len().to_string().as_str()));
        root.push_attribute(("failures", self.failed().to_string().as_str()));
        root.push_attribute(("errors", "0"));
        root.push_attribute(("skipped", self.skipped().to_string().as_str()));
        root.push_attribute(("time", secs(self.millis).as_str()));
        let _ = w.write_event(Event::Start(root));
        for (i, suite) in self.suites().into_iter().enumerate() {
            let cases: Vec<&StepResult> =
                self.results.iter().filter(|r| r.suite == suite).collect();
            let failures = cases
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
                .count();
            let skipped = cases
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
                .count();
            let mut s = BytesStart::new("testsuite");
            s.push_attribute(("name", suite));
            s.push_attribute(("id", i.to_string().as_str()));
            s.push_attribute(("package", self.recipe.as_str()));
            s.push_attribute(("hostname", self.app.as_str()));
            s.push_attribute(("timestamp", self.started.trim_end_matches('Z')));
            s.push_attribute(("tests", cases.len().to_string().as_str()));
            s.push_attribute(("failures", failures.to_string().as_str()));
            s.push_attribute(("errors", "0"));
            s.push_attribute(("skipped", skipped.to_string().as_str()));
            s.push_attribute(("time", secs(cases.iter().map(|c| c.millis).sum()).as_str()));
            let _ = w.write_event(Event::Start(s));
            let _ = w.write_event(Event::Start(BytesStart::new("properties")));
            for (k, v) in [
                ("recipe", self.recipe.as_str()),
                ("version", self.version.as_str()),
                ("run", self.run.as_str()),
            ] {
                let mut p = BytesStart::new("property");
                p.push_attribute(("name", k));
                p.push_attribute(("value", v));
                let _ = w.write_event(Event::Empty(p));
            }
            let _ = w.write_event(Event::End(BytesEnd::new("properties")));
            for c in cases {
                let mut t = BytesStart::new("testcase");
                t.push_attribute(("name", c.name.as_str()));
                t.push_attribute((
                    "classname",
                    format!("{}.{}.{}", self.recipe, c.suite, c.phase).as_str(),
                ));
                t.push_attribute(("time", secs(c.millis).as_str()));
                let _ = w.write_event(Event::Start(t));
                match &c.outcome {
                    Outcome::Passed => {}
                    Outcome::Failed(why) => {
                        let mut f = BytesStart::new("failure");
                        f.push_attribute(("message", first_line(why)));
                        f.push_attribute(("type", c.phase.as_str()));
                        let _ = w.write_event(Event::Start(f));
                        let _ = w.write_event(Event::Text(BytesText::new(why)));
                        let _ = w.write_event(Event::End(BytesEnd::new("failure")));
                    }
                    Outcome::Skipped(why) => {
                        let mut f = BytesStart::new("skipped");
                        f.push_attribute(("message", first_line(why)));
                        let _ = w.write_event(Event::Empty(f));
                    }
                }
                if !c.output.is_empty() {
                    let _ = w.write_event(Event::Start(BytesStart::new("system-out")));
                    let _ = w.write_event(Event::Text(BytesText::new(&c.output)));
                    let _ = w.write_event(Event::End(BytesEnd::new("system-out")));
                }
                let _ = w.write_event(Event::End(BytesEnd::new("testcase")));
            }
            let _ = w.write_event(Event::End(BytesEnd::new("testsuite")));
        }
        let _ = w.write_event(Event::End(BytesEnd::new("testsuites")));
        let mut out = String::from_utf8_lossy(&w.into_inner()).into_owned();
        out.push('\n');
        out
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> RunReport {
        RunReport {
            app: "a.example.org".into(),
            recipe: "testapp".into(),
            version: "1.0.0+1.0".into(),
            run: "r1".into(),
            started: "2026-11-25T12:00:00Z".into(),
            millis: 1500,
            results: vec![
                StepResult {
                    suite: "smoke".into(),
                    phase: "test".into(),
                    name: "front page <ok> & \"quoted\"".into(),
                    outcome: Outcome::Passed,
                    millis: 120,
                    output: "HTTP/1.1 200 OK".into(),
                },
                StepResult {
                    suite: "smoke".into(),
                    phase: "test".into(),
                    name: "db".into(),
                    outcome: Outcome::Failed("exit 1, expected 0\nmore".into()),
                    millis: 80,
                    output: String::new(),
                },
                StepResult {
                    suite: "sso".into(),
                    phase: "setup".into(),
                    name: "login".into(),
                    outcome: Outcome::Skipped("not safe for production".into()),
                    millis: 0,
                    output: String::new(),
                },
            ],
        }
    }

    #[test]
    fn junit_counts_and_escapes() {
        let x = sample().junit();
        assert!(x.contains(r#"<testsuites name="a.example.org 1.0.0+1.0" tests="3" failures="1" errors="0" skipped="1""#), "{x}");
        assert!(
            x.contains("front page &lt;ok&gt; &amp; &quot;quoted&quot;"),
            "{x}"
        );
        assert!(
            x.contains(r#"<failure message="exit 1, expected 0" type="test">"#),
            "{x}"
        );
        assert!(x.contains(r#"classname="testapp.sso.setup""#), "{x}");
        assert_eq!(x.matches("<testsuite ").count(), 2);
    }

    /// The report validates against the JUnit XML schema CI systems use (Jenkins' / Ant's
    /// `junit-10.xsd` layout, kept in `tests/fixtures/junit/junit.xsd`), with `xmllint`.
    #[test]
    fn junit_validates_against_the_schema() {
        let dir = std::env::temp_dir().join(format!("cooper-junit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let xml = dir.join("report.xml");
        std::fs::write(&xml, sample().junit()).unwrap();
        let xsd = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/junit/junit.xsd");
        let out = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .arg(&xml)
            .output()
            .expect("xmllint runs (Debian libxml2-utils; scripts/setup-swarm installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
