//! Variable substitution in compose values: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?message}`, `${VAR?message}` and `$$` for a literal dollar.
//!
//! The syntax is Docker's stack loader's, with one documented deviation: the operator is the
//! first one after the variable name. Docker picks an operator by searching the whole expression,
//! so `${X:?must-be-set}` is read there as a default of `be-set` for a variable called
//! `X:?must`; cooper reports the required-variable error the author meant.

use std::fmt;

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

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Substitutes variables in `template` using `lookup` (which returns `None` for unset).
pub fn substitute<'a, F>(template: &str, lookup: F) -> Result<String, SubstError>
where
    F: Fn(&str) -> Option<&'a str>,
{
    if !template.contains('$') {
        return Ok(template.to_string());
    }
    let invalid = || SubstError::Invalid {
        template: template.to_string(),
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        let after = &rest[idx + 1..];
        let mut chars = after.chars();
        match chars.next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('{') => {
                let body_end = after.find('}').ok_or_else(invalid)?;
                let body = &after[1..body_end];
                out.push_str(&expand_braced(body, &lookup).ok_or_else(invalid)??);
                rest = &after[body_end + 1..];
            }
            Some(c) if is_name_start(c) => {
                let len = after
                    .char_indices()
                    .find(|(_, c)| !is_name_char(*c))
                    .map_or(after.len(), |(i, _)| i);
                out.push_str(lookup(&after[..len]).unwrap_or(""));
                rest = &after[len..];
            }
            _ => return Err(invalid()),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands the inside of `${...}`. `None` means the body is malformed.
fn expand_braced<'a, F>(body: &str, lookup: &F) -> Option<Result<String, SubstError>>
where
    F: Fn(&str) -> Option<&'a str>,
{
    let first = body.chars().next()?;
    if !is_name_start(first) {
        return None;
    }
    let name_len = body
        .char_indices()
        .find(|(_, c)| !is_name_char(*c))
        .map_or(body.len(), |(i, _)| i);
    let (name, op) = body.split_at(name_len);
    let value = lookup(name);
    let result = if op.is_empty() {
        Ok(value.unwrap_or("").to_string())
    } else if let Some(default) = op.strip_prefix(":-") {
        Ok(match value {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => default.to_string(),
        })
    } else if let Some(default) = op.strip_prefix('-') {
        Ok(value.unwrap_or(default).to_string())
    } else if let Some(message) = op.strip_prefix(":?") {
        match value {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(SubstError::Required {
                name: name.to_string(),
                message: message.to_string(),
            }),
        }
    } else if let Some(message) = op.strip_prefix('?') {
        match value {
            Some(v) => Ok(v.to_string()),
            None => Err(SubstError::Required {
                name: name.to_string(),
                message: message.to_string(),
            }),
        }
    } else {
        return None;
    };
    Some(result)
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
        check("$A-${A}", Ok("alpha-alpha"));
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
        check(
            "${EMPTY:?must-be-set}",
            Err(SubstError::Required {
                name: "EMPTY".into(),
                message: "must-be-set".into(),
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
