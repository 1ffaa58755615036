//! `abra.sh`: read, never executed.
//!
//! Recipes vendor config versions as `export NAME_VERSION=v3` lines, which join the deploy
//! environment, and define shell functions that `app cmd` runs inside a container.

use indexmap::IndexMap;

/// What cooper takes from an `abra.sh`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbraSh {
    /// `export KEY=value` lines, in order (later lines win).
    pub exports: IndexMap<String, String>,
    /// Names of shell functions (`name() {` or `function name {`).
    pub functions: Vec<String>,
}

impl AbraSh {
    pub fn parse(text: &str) -> AbraSh {
        let mut out = AbraSh::default();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("export ") {
                if let Some((key, value)) = rest.trim().split_once('=') {
                    let key = key.trim();
                    if !key.is_empty() && key.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
                    {
                        out.exports.insert(key.to_string(), unquote(value));
                    }
                }
                continue;
            }
            if let Some(name) = function_name(line) {
                out.functions.push(name.to_string());
            }
        }
        out
    }
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    let v = match v.find(" #") {
        Some(i) if !v.starts_with('"') && !v.starts_with('\'') => v[..i].trim_end(),
        _ => v,
    };
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

fn function_name(line: &str) -> Option<&str> {
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c == '_' || c == '-' || c.is_ascii_alphanumeric())
    };
    if let Some(rest) = line.strip_prefix("function ") {
        let name = rest
            .split(|c: char| c == '(' || c == '{' || c.is_whitespace())
            .next()?;
        return is_name(name).then_some(name);
    }
    let (name, rest) = line.split_once("()")?;
    let name = name.trim();
    let rest = rest.trim_start();
    (is_name(name) && (rest.is_empty() || rest.starts_with('{'))).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_and_functions() {
        let sh = AbraSh::parse(
            "#!/bin/bash\nexport APP_ENTRYPOINT_VERSION=v4\nexport PG_BACKUP_VERSION=\"v6\"\n\
             # export COMMENTED_VERSION=v1\nexport X='y' \nrun_migrations() {\n  echo\n}\n\
             function reset_password {\n}\nnot_a_function=1\n",
        );
        assert_eq!(sh.exports["APP_ENTRYPOINT_VERSION"], "v4");
        assert_eq!(sh.exports["PG_BACKUP_VERSION"], "v6");
        assert_eq!(sh.exports["X"], "y");
        assert!(!sh.exports.contains_key("COMMENTED_VERSION"));
        assert_eq!(sh.functions, vec!["run_migrations", "reset_password"]);
    }

    #[test]
    fn comment_only_file_is_empty() {
        assert_eq!(AbraSh::parse("# nothing here\n"), AbraSh::default());
    }
}
