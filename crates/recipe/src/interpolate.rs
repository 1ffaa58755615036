//! Variable substitution in compose values: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?message}`, `${VAR?message}` and `$$` for a literal dollar.
//!
//! The grammar is exactly Docker's (and so abra's), quirks included, because a rendered stack
//! must not change when an operator moves from abra to cooper:
//! - the operator is chosen by searching the whole expression, in the order `:-`, `-`, `:?`,
//!   `?`, so `${X:?must-be-set}` is a *default* of `be-set` for a variable named `X:?must`;
//! - an unbraced `$X` may carry an operator too, up to the next `}`: `$X-suffix` is `$X` with
//!   the default `suffix`, not `$X` followed by `-suffix`.
//!
//! `recipe lint` (rule C007) warns about both forms, which rarely mean what their author meant.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// Docker's template pattern (compose `template` package).
static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    let subst = r"[_a-z][_a-z0-9]*(?::?[-?][^}]*)?";
    Regex::new(&format!(
        r"\$(?i:(?P<escaped>\$)|(?P<named>{subst})|\{{(?P<braced>{subst})\}}|(?P<invalid>))"
    ))
    .expect("valid pattern")
});

/// Why a substitution failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubstError {
    /// `${X:?msg}` or `${X?msg}` with X unset (or empty, for `:?`).
    Required { name: String, message: String },
    /// A `$` not followed by a valid name, `{name...}` or `$`.
    Invalid { template: String },
}

impl fmt::Display for SubstError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubstError::Required { name, message } if message.is_empty() => {
                write!(f, "required variable {name} is missing a value")
            }
            SubstError::Required { name, message } => {
                write!(f, "required variable {name} is missing a value: {message}")
            }
            SubstError::Invalid { template } => write!(
                f,
                "invalid interpolation format in {template:?}; escape a literal $ as $$"
            ),
        }
    }
}

/// Substitutes variables in `template` using `lookup` (which returns `None` for unset).
pub fn substitute<'a, F>(template: &str, lookup: F) -> Result<String, SubstError>
where
    F: Fn(&str) -> Option<&'a str>,
{
    if !template.contains('$') {
        return Ok(template.to_string());
    }
    let mut error = None;
    let out = PATTERN.replace_all(template, |caps: &regex::Captures| {
        if error.is_some() {
            return String::new();
        }
        if caps.name("escaped").is_some() {
            return "$".to_string();
        }
        let Some(expr) = caps.name("named").or(caps.name("braced")) else {
            error = Some(SubstError::Invalid {
                template: template.to_string(),
            });
            return String::new();
        };
        match expand(expr.as_str(), &lookup) {
            Ok(v) => v,
            Err(e) => {
                error = Some(e);
                String::new()
            }
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok(out.into_owned()),
    }
}

/// Applies Docker's substitution functions in its order.
fn expand<'a, F>(expr: &str, lookup: &F) -> Result<String, SubstError>
where
    F: Fn(&str) -> Option<&'a str>,
{
    if let Some((name, default)) = expr.split_once(":-") {
        return Ok(match lookup(name) {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => default.to_string(),
        });
    }
    if let Some((name, default)) = expr.split_once('-') {
        return Ok(lookup(name).unwrap_or(default).to_string());
    }
    if let Some((name, message)) = expr.split_once(":?") {
        return match lookup(name) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(SubstError::Required {
                name: name.to_string(),
                message: message.to_string(),
            }),
        };
    }
    if let Some((name, message)) = expr.split_once('?') {
        return match lookup(name) {
            Some(v) => Ok(v.to_string()),
            None => Err(SubstError::Required {
                name: name.to_string(),
                message: message.to_string(),
            }),
        };
    }
    Ok(lookup(expr).unwrap_or("").to_string())
}

/// The variables a template refers to, in order (repeats included).
pub fn variables(template: &str) -> Vec<String> {
    let seen = std::cell::RefCell::new(Vec::new());
    let _ = substitute(template, |name| {
        seen.borrow_mut().push(name.to_string());
        Some("")
    });
    seen.into_inner()
}

/// Expressions whose meaning under Docker's grammar is probably not what was meant: a
/// required-variable message containing `-`, or an unbraced variable followed by an operator.
pub fn ambiguous_expressions(template: &str) -> Vec<String> {
    PATTERN
        .captures_iter(template)
        .filter_map(|caps| {
            if let Some(named) = caps.name("named") {
                let t = named.as_str();
                if t.contains(['-', '?']) {
                    return Some(format!("${t}"));
                }
            }
            if let Some(braced) = caps.name("braced") {
                let t = braced.as_str();
                let op = t.find([':', '-', '?']).map(|i| &t[i..]).unwrap_or("");
                if (op.starts_with(":?") || op.starts_with('?')) && op.contains('-') {
                    return Some(format!("${{{t}}}"));
                }
            }
            None
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn check(template: &str, expected: Result<&str, SubstError>) {
        let env: HashMap<&str, &str> = [("A", "alpha"), ("EMPTY", ""), ("N_1", "n")].into();
        let got = substitute(template, |k| env.get(k).copied());
        assert_eq!(got, expected.map(str::to_string), "template {template:?}");
    }

    #[test]
    fn forms() {
        check("plain", Ok("plain"));
        check("$A/${A}", Ok("alpha/alpha"));
        check("${MISSING}x", Ok("x"));
        check("$$A", Ok("$A"));
        check("$$$A", Ok("$alpha"));
        check("${MISSING:-d}", Ok("d"));
        check("${EMPTY:-d}", Ok("d"));
        check("${EMPTY-d}", Ok(""));
        check("${MISSING-d}", Ok("d"));
        check("${A:-d}", Ok("alpha"));
        check("${N_1}", Ok("n"));
        check("${MISSING:-a:b-c}", Ok("a:b-c"));
        check("${MISSING:-}", Ok(""));
        check("Host(`${A}`${MISSING})", Ok("Host(`alpha`)"));
    }

    #[test]
    fn required_variables_carry_their_message() {
        check(
            "${MISSING:?set it in the .env}",
            Err(SubstError::Required {
                name: "MISSING".into(),
                message: "set it in the .env".into(),
            }),
        );
        check("${EMPTY?x}", Ok(""));
        check(
            "${MISSING?}",
            Err(SubstError::Required {
                name: "MISSING".into(),
                message: String::new(),
            }),
        );
    }

    /// Docker's grammar, kept for compatibility (and flagged by lint rule C007).
    #[test]
    fn dockers_quirks_are_kept() {
        // The `-` inside the message makes this a default for a variable named `EMPTY:?must`.
        check("${EMPTY:?must-be-set}", Ok("be-set"));
        // An unbraced variable takes an operator up to the next `}`.
        check("$A-suffix", Ok("alpha"));
        check("$MISSING-fallback", Ok("fallback"));
        check("$A:x", Ok("alpha:x"));
        check("$A-${A}", Ok("alpha}"));
        assert_eq!(
            ambiguous_expressions("${X:?must-be-set} $A-b ${C:-d} $E"),
            vec!["${X:?must-be-set}", "$A-b ${C:-d"]
        );
    }

    #[test]
    fn malformed_templates_are_errors() {
        for t in ["$", "${", "${}", "${1A}", "${A B}", "$ x", "${A:x}"] {
            let got = substitute(t, |_| None);
            assert!(
                matches!(got, Err(SubstError::Invalid { .. })),
                "{t}: {got:?}"
            );
        }
    }
}
