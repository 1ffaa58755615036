//! The terminal side of an operation: live progress (a bar per service on a terminal, plain
//! lines otherwise), the overview, and the confirmation prompt.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};

use cooper_engine::converge::ServiceProgress;
use cooper_ops::{Overview, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub struct CliReporter {
    tty: bool,
    no_input: bool,
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

impl CliReporter {
    pub fn new(tty: bool, no_input: bool) -> Self {
        CliReporter {
            tty,
            no_input,
            multi: tty.then(MultiProgress::new),
            bars: HashMap::new(),
        }
    }

    fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

fn describe(p: &ServiceProgress) -> String {
    let mut s = format!("{}/{} running", p.running, p.desired);
    if p.starting > 0 {
        s.push_str(&format!(", {} starting", p.starting));
    }
    if p.failed > 0 {
        s.push_str(&format!(", {} failed", p.failed));
    }
    if let Some(u) = &p.update_state {
        s.push_str(&format!(", update {u}"));
    }
    if p.converged {
        s.push_str(" ✓");
    } else if let Some(e) = &p.last_error {
        s.push_str(&format!(" (last error: {e})"));
    }
    s
}

impl Reporter for CliReporter {
    fn info(&mut self, line: &str) {
        self.line(line);
    }

    fn progress(&mut self, services: &[ServiceProgress]) {
        match &self.multi {
            Some(m) => {
                for p in services {
                    let bar = self.bars.entry(p.service.clone()).or_insert_with(|| {
                        let b = m.add(ProgressBar::new_spinner());
                        b.set_style(
                            ProgressStyle::with_template("{spinner} {prefix:30} {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        b.set_prefix(p.service.clone());
                        b.enable_steady_tick(std::time::Duration::from_millis(120));
                        b
                    });
                    bar.set_message(describe(p));
                    if p.converged {
                        bar.finish();
                    }
                }
            }
            None => {
                for p in services {
                    eprintln!("{}: {}", p.service, describe(p));
                }
            }
        }
    }

    fn confirm(&mut self, o: &Overview) -> bool {
        let version = match &o.current_version {
            Some(current) if !o.first_deploy => format!("{current} → {}", o.new_version),
            _ => format!("{} (first deploy)", o.new_version),
        };
        let mut text = format!(
            "\n  app      {}\n  server   {}\n  recipe   {}\n  version  {}\n  source   {}\n  files    {}\n  services {}\n  timeout  {}s\n",
            o.app,
            o.server,
            o.recipe,
            version,
            o.source,
            o.compose_files.join(":"),
            o.services.join(", "),
            o.timeout_secs
        );
        if o.chaos {
            text.push_str("  CHAOS: deploying uncommitted recipe files\n");
        }
        for n in &o.new_services {
            text.push_str(&format!("  new      {n}\n"));
        }
        for n in &o.removed_services {
            text.push_str(&format!("  removed  {n} (no longer in the stack)\n"));
        }
        for (svc, changes) in &o.env_changes {
            text.push_str(&format!("  env      {svc}: {}\n", changes.join(" ")));
        }
        for (v, notes) in &o.release_notes {
            text.push_str(&format!("\n  release notes {v}:\n"));
            for l in notes.lines() {
                text.push_str(&format!("    {l}\n"));
            }
        }
        self.ask(&text)
    }

    fn ask(&mut self, question: &str) -> bool {
        self.line(question);
        if self.no_input {
            return true;
        }
        if !self.tty || !std::io::stdin().is_terminal() {
            self.line("no terminal to ask on: pass -n/--no-input to go ahead without asking");
            return false;
        }
        eprint!("continue? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes")
    }
}

/// An error and its causes on one line, each saying what it adds: a cause whose text the
/// message already holds (a layer that quotes its source, as typed errors with `#[source]`
/// often do) is not repeated, so `{:#}`'s "a: b: b: b" becomes "a: b".
pub fn render_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || out.contains(text) {
            continue;
        }
        if out.is_empty() {
            out.push_str(text);
        } else if text.contains(out.as_str()) {
            // A cause that restates the whole message and more: keep the fuller one.
            out = text.to_string();
        } else {
            out.push_str(": ");
            out.push_str(text);
        }
    }
    out
}

#[cfg(test)]
mod render_tests {
    use super::render_error;

    /// A layer that quotes its source in its own message and also returns it as `source()`.
    #[derive(Debug)]
    struct Outer {
        path: String,
        source: Inner,
    }
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}: {}; fix the line", self.path, self.source)
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("line 3: expected KEY=value")
        }
    }
    impl std::error::Error for Inner {}

    #[test]
    fn a_cause_the_message_quotes_is_not_repeated() {
        let e = anyhow::Error::new(Outer {
            path: "a.env".into(),
            source: Inner,
        });
        assert_eq!(
            render_error(&e),
            "a.env: line 3: expected KEY=value; fix the line"
        );
        let e = e.context("loading app a");
        assert_eq!(
            render_error(&e),
            "loading app a: a.env: line 3: expected KEY=value; fix the line"
        );
    }
}
