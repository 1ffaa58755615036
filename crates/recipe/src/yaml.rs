//! YAML documents as trees that remember where every node came from.
//!
//! Recipes are read the way Docker's stack loader reads them (go-yaml v3 scalar rules: `0555`
//! is octal, `yes`/`on` are plain strings), with anchors, aliases and `<<` merge keys resolved. Every node keeps its line and column so later stages (interpolation, validation,
//! lint) can point at the exact place in the file.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in a source file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        Pos {
            line: m.line() as u32,
            col: m.col() as u32 + 1,
        }
    }
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// The value of a node, with YAML 1.1 scalar resolution applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Mapping),
}

/// A mapping that keeps key order and key positions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping {
    pub entries: Vec<(Key, Node)>,
}

/// A mapping key (always a string in compose files) and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

impl Mapping {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// Inserts or replaces (keeping the original slot) a key.
    pub fn insert(&mut self, key: Key, node: Node) {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| k.name == key.name) {
            *slot = (key, node);
        } else {
            self.entries.push((key, node));
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let idx = self.entries.iter().position(|(k, _)| k.name == key)?;
        Some(self.entries.remove(idx).1)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.name.as_str())
    }
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Mapping> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// A short name for the node's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "mapping",
        }
    }

    /// The scalar as text the way Go's `fmt.Sprint` would print the decoded value.
    pub fn scalar_text(&self) -> Option<String> {
        Some(match &self.value {
            Value::Null => return None,
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => go_float(*f),
            Value::Str(s) => s.clone(),
            Value::Seq(_) | Value::Map(_) => return None,
        })
    }

    /// Converts to JSON, dropping positions.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(go_float(*f))),
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(m) => m
                .entries
                .iter()
                .map(|(k, v)| (k.name.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

/// Formats a float like Go's `%v` does for the values recipes use.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if f == f.trunc() && f.abs() < 1e21 {
        format!("{}", f as i128)
    } else {
        format!("{f}")
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {}, column {}: {message}", pos.line, pos.col)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML document (an empty document yields `Null`).
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| YamlError {
        pos: (*e.marker()).into(),
        message: e.info().to_string(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        pos: Pos { line: 1, col: 1 },
    }))
}

enum Frame {
    Seq {
        anchor: usize,
        pos: Pos,
        items: Vec<Node>,
    },
    Map {
        anchor: usize,
        pos: Pos,
        map: Mapping,
        pending_key: Option<Node>,
        /// Keys that came from `<<` merges (an explicit key may override those, but not
        /// another explicit key).
        merged: Vec<String>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                pos,
                message: message.into(),
            });
        }
    }

    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                map,
                pending_key,
                merged,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    let pos = key.pos;
                    let result = insert_entry(map, merged, key, node);
                    if let Err(msg) = result {
                        self.fail(pos, msg);
                    }
                }
            },
        }
    }
}

fn insert_entry(
    map: &mut Mapping,
    merged: &mut Vec<String>,
    key: Node,
    value: Node,
) -> Result<(), String> {
    let name = match &key.value {
        Value::Str(s) => s.clone(),
        _ => {
            return Err(format!(
                "mapping key {} is a {}, not a string; quote it",
                key.scalar_text().unwrap_or_else(|| "null".into()),
                key.kind()
            ))
        }
    };
    if name == "<<" {
        let before: Vec<String> = map.keys().map(str::to_string).collect();
        merge_into(map, value)?;
        merged.extend(
            map.keys()
                .filter(|k| !before.iter().any(|b| b == k))
                .map(str::to_string),
        );
        return Ok(());
    }
    if let Some(i) = merged.iter().position(|m| *m == name) {
        merged.remove(i);
    } else if let Some((first, _)) = map.entries.iter().find(|(k, _)| k.name == name) {
        return Err(format!(
            "mapping key {name:?} already defined at line {}; remove one of them",
            first.pos.line
        ));
    }
    map.insert(Key { name, pos: key.pos }, value);
    Ok(())
}

/// Applies a `<<` merge key: a mapping, or a list of mappings where earlier ones win.
fn merge_into(map: &mut Mapping, value: Node) -> Result<(), String> {
    match value.value {
        Value::Map(m) => {
            for (k, v) in m.entries {
                map.insert(k, v);
            }
            Ok(())
        }
        Value::Seq(items) => {
            for item in items.into_iter().rev() {
                match item.value {
                    Value::Map(m) => {
                        for (k, v) in m.entries {
                            map.insert(k, v);
                        }
                    }
                    _ => return Err("a `<<` merge list may only hold mappings".into()),
                }
            }
            Ok(())
        }
        _ => Err("the value of a `<<` merge key must be a mapping or a list of mappings".into()),
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos: Pos = mark.into();
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let value = if style == TScalarStyle::Plain && tag.is_none() {
                    resolve_plain(&text)
                } else if let Some(tag) = tag.filter(|t| t.handle == "!!") {
                    match tag.suffix.as_str() {
                        "str" => Value::Str(text),
                        "int" => text
                            .parse()
                            .map(Value::Int)
                            .unwrap_or_else(|_| Value::Str(text)),
                        "bool" => resolve_plain(&text),
                        _ => Value::Str(text),
                    }
                } else {
                    Value::Str(text)
                };
                let node = Node { value, pos };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                anchor,
                pos,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                anchor,
                pos,
                map: Mapping::default(),
                pending_key: None,
                merged: Vec::new(),
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (anchor, node) = match self.stack.pop() {
                    Some(Frame::Seq { anchor, pos, items }) => (
                        anchor,
                        Node {
                            value: Value::Seq(items),
                            pos,
                        },
                    ),
                    Some(Frame::Map {
                        anchor, pos, map, ..
                    }) => (
                        anchor,
                        Node {
                            value: Value::Map(map),
                            pos,
                        },
                    ),
                    None => return,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let mut node = node.clone();
                    node.pos = pos;
                    self.push_value(node);
                }
                None => self.fail(pos, "alias refers to an unknown anchor"),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Resolves a plain scalar as Docker's YAML decoder (go-yaml v3) does when decoding into an
/// untyped value: only `true`/`false` (any case style) are booleans, `yes`/`on`/`y` stay
/// strings; integers may be decimal, `0x` hex, `0b` binary, `0o` or leading-`0` octal.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Value::Str(text.to_string());
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(i) = parse_go_int(&plain) {
        return Value::Int(i);
    }
    if is_yaml_float(&plain) {
        if let Ok(f) = plain.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

/// `strconv.ParseInt(s, 0, 64)`: decimal, `0x` hex, `0b` binary, `0o` or leading-`0` octal.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, d)
    } else if let Some(d) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn is_yaml_float(s: &str) -> bool {
    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Value {
        resolve_plain(text)
    }

    #[test]
    fn scalars_resolve_like_dockers_decoder() {
        assert_eq!(scalar("0555"), Value::Int(365));
        assert_eq!(scalar("0o17"), Value::Int(15));
        assert_eq!(scalar("0x1F"), Value::Int(31));
        assert_eq!(scalar("1_000"), Value::Int(1000));
        assert_eq!(scalar("True"), Value::Bool(true));
        assert_eq!(scalar("FALSE"), Value::Bool(false));
        // Docker's decoder keeps YAML 1.1 words as strings (`read_only: yes` is then an error).
        assert_eq!(scalar("yes"), Value::Str("yes".into()));
        assert_eq!(scalar("Off"), Value::Str("Off".into()));
        assert_eq!(scalar("n"), Value::Str("n".into()));
        assert_eq!(scalar("08"), Value::Float(8.0));
        assert_eq!(scalar("~"), Value::Null);
        assert_eq!(scalar("1.5"), Value::Float(1.5));
        assert_eq!(scalar("3.8"), Value::Float(3.8));
        assert_eq!(scalar("8080:80"), Value::Str("8080:80".into()));
        assert_eq!(scalar("10s"), Value::Str("10s".into()));
        assert_eq!(scalar("1.2.3"), Value::Str("1.2.3".into()));
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let n = parse("a: '0555'\nb: \"true\"\n").unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m.get("a").unwrap().value, Value::Str("0555".into()));
        assert_eq!(m.get("b").unwrap().value, Value::Str("true".into()));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let text =
            "x: &base\n  A: 1\n  B: 2\none:\n  <<: *base\n  B: 3\ntwo:\n  C: 0\n  <<: [*base]\n";
        let n = parse(text).unwrap();
        let y = n.as_map().unwrap().get("one").unwrap().as_map().unwrap();
        assert_eq!(y.get("A").unwrap().value, Value::Int(1));
        assert_eq!(y.get("B").unwrap().value, Value::Int(3));
        let z = n.as_map().unwrap().get("two").unwrap().as_map().unwrap();
        assert_eq!(z.get("A").unwrap().value, Value::Int(1));
        assert_eq!(z.get("C").unwrap().value, Value::Int(0));
    }

    #[test]
    fn positions_are_one_based() {
        let n = parse("a:\n  b: c\n").unwrap();
        let b = n.as_map().unwrap().get("a").unwrap().as_map().unwrap();
        assert_eq!(b.entries[0].0.pos, Pos { line: 2, col: 3 });
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse("a: [1\nb: 2").unwrap_err();
        assert_eq!(err.pos.line, 2);
    }

    #[test]
    fn non_string_key_is_an_error() {
        let err = parse("services:\n  80: x\n").unwrap_err();
        assert!(err.message.contains("not a string"), "{err}");
        assert_eq!(err.pos.line, 2);
    }

    #[test]
    fn duplicate_keys_are_an_error_but_merge_overrides_are_not() {
        let err = parse("app:\n  image: x\n  image: y\n").unwrap_err();
        assert_eq!(err.pos.line, 3);
        assert!(err.message.contains("already defined at line 2"), "{err}");
        let ok = parse("base: &b\n  k: 1\nx:\n  <<: *b\n  k: 2\n").unwrap();
        let x = ok.as_map().unwrap().get("x").unwrap().as_map().unwrap();
        assert_eq!(x.get("k").unwrap().value, Value::Int(2));
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(3.8), "3.8");
    }
}
