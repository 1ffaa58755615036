//! From an interpolated YAML tree to the typed model, one file at a time.
//!
//! This is where short forms become canonical (`"8080:80"` → a port object, a `KEY=value` list
//! → a map, `healthcheck.test: "cmd"` → `[CMD-SHELL, cmd]`), following Docker's stack loader,
//! and where the schema is checked: unknown keys and wrong types are errors that name the file,
//! line, column and key path, with the closest known key suggested.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::duration::Duration;
use super::model::*;
use super::ComposeError;
use crate::yaml::{Mapping, Node, Pos, Value};

/// Looks up variables of the deploy environment (pass-through `environment` entries use it).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(crate) struct Ctx<'a> {
    pub file: &'a str,
    pub lookup: Lookup<'a>,
    /// Reads another file of the recipe (for `env_file`), relative to the recipe root.
    pub read: &'a dyn Fn(&str) -> Option<String>,
}

type R<T> = Result<T, ComposeError>;

const SERVICE_KEYS: &[&str] = &[
    "build",
    "cap_add",
    "cap_drop",
    "cgroupns_mode",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "credential_spec",
    "depends_on",
    "deploy",
    "devices",
    "dns",
    "dns_search",
    "domainname",
    "entrypoint",
    "environment",
    "env_file",
    "expose",
    "external_links",
    "extra_hosts",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "links",
    "logging",
    "mac_address",
    "network_mode",
    "networks",
    "oom_score_adj",
    "pid",
    "ports",
    "privileged",
    "read_only",
    "restart",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "userns_mode",
    "volumes",
    "working_dir",
];

/// Properties Docker refuses outright in stack files, with its reason.
const FORBIDDEN: &[(&str, &str)] = &[
    ("extends", "`extends` is not supported in stack files"),
    (
        "volume_driver",
        "define a volume in the top-level `volumes` section with a driver instead",
    ),
    (
        "volumes_from",
        "share a volume by defining it in the top-level `volumes` section",
    ),
    ("cpu_quota", "set resource limits under deploy.resources"),
    ("cpu_shares", "set resource limits under deploy.resources"),
    ("cpuset", "set resource limits under deploy.resources"),
    ("mem_limit", "set resource limits under deploy.resources"),
    (
        "memswap_limit",
        "set resource limits under deploy.resources",
    ),
];

impl Ctx<'_> {
    pub fn err(&self, pos: Pos, path: &str, message: impl std::fmt::Display) -> ComposeError {
        ComposeError::At {
            file: self.file.to_string(),
            pos,
            message: if path.is_empty() {
                message.to_string()
            } else {
                format!("{path}: {message}")
            },
        }
    }

    fn type_err(&self, node: &Node, path: &str, want: &str) -> ComposeError {
        self.err(
            node.pos,
            path,
            format!("must be {want}, found {}", describe(node)),
        )
    }

    /// A mapping; `null` counts as an empty one.
    fn map<'n>(&self, node: &'n Node, path: &str) -> R<Option<&'n Mapping>> {
        match &node.value {
            Value::Map(m) => Ok(Some(m)),
            Value::Null => Ok(None),
            _ => Err(self.type_err(node, path, "a mapping")),
        }
    }

    fn check_keys(&self, map: &Mapping, path: &str, allowed: &[&str]) -> R<()> {
        for (key, _) in &map.entries {
            if key.name.starts_with("x-") || allowed.contains(&key.name.as_str()) {
                continue;
            }
            let hint = allowed
                .iter()
                .map(|k| (strsim::levenshtein(k, &key.name), k))
                .filter(|(d, _)| *d <= 2)
                .min()
                .map(|(_, k)| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            return Err(self.err(key.pos, path, format!("unknown key `{}`{hint}", key.name)));
        }
        Ok(())
    }

    fn string(&self, node: &Node, path: &str) -> R<String> {
        match &node.value {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(self.type_err(node, path, "a string")),
        }
    }

    fn bool(&self, node: &Node, path: &str) -> R<bool> {
        match &node.value {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.type_err(node, path, "true or false")),
        }
    }

    fn uint(&self, node: &Node, path: &str) -> R<u64> {
        match &node.value {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            _ => Err(self.type_err(node, path, "a whole number")),
        }
    }

    fn int(&self, node: &Node, path: &str) -> R<i64> {
        match &node.value {
            Value::Int(i) => Ok(*i),
            _ => Err(self.type_err(node, path, "a whole number")),
        }
    }

    fn duration(&self, node: &Node, path: &str) -> R<Duration> {
        let text = self.string(node, path)?;
        Duration::parse(&text).map_err(|e| self.err(node.pos, path, e))
    }

    fn list<'n>(&self, node: &'n Node, path: &str) -> R<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Ok(items),
            _ => Err(self.type_err(node, path, "a list")),
        }
    }

    fn string_list(&self, node: &Node, path: &str) -> R<Vec<String>> {
        self.list(node, path)?
            .iter()
            .enumerate()
            .map(|(i, n)| self.string(n, &format!("{path}[{i}]")))
            .collect()
    }

    /// A string or a list of strings.
    fn string_or_list(&self, node: &Node, path: &str) -> R<Vec<String>> {
        match &node.value {
            Value::Str(s) => Ok(vec![s.clone()]),
            _ => self.string_list(node, path),
        }
    }

    /// A mapping or a `KEY<sep>value` list → map; `allow_nil` keeps value-less keys as `None`.
    fn mapping_or_list(
        &self,
        node: &Node,
        path: &str,
        sep: char,
        allow_nil: bool,
    ) -> R<BTreeMap<String, Option<String>>> {
        let mut out = BTreeMap::new();
        match &node.value {
            Value::Map(m) => {
                for (k, v) in &m.entries {
                    let value = match &v.value {
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(self.type_err(
                                v,
                                &format!("{path}.{}", k.name),
                                "a string, number or boolean",
                            ))
                        }
                        _ => v.scalar_text(),
                    };
                    let value = match value {
                        None if !allow_nil => Some(String::new()),
                        other => other,
                    };
                    out.insert(k.name.clone(), value);
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let text = self.string(item, &format!("{path}[{i}]"))?;
                    match text.split_once(sep) {
                        Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                        None if allow_nil => out.insert(text, None),
                        None => out.insert(text, Some(String::new())),
                    };
                }
            }
            Value::Null => {}
            _ => return Err(self.type_err(node, path, "a mapping or a list")),
        }
        Ok(out)
    }

    fn labels(&self, node: &Node, path: &str) -> R<BTreeMap<String, String>> {
        Ok(self
            .mapping_or_list(node, path, '=', false)?
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }

    fn string_map(&self, node: &Node, path: &str) -> R<BTreeMap<String, String>> {
        match &node.value {
            Value::Map(_) | Value::Null => self.labels(node, path),
            _ => Err(self.type_err(node, path, "a mapping")),
        }
    }

    fn extras(&self, map: &Mapping) -> BTreeMap<String, Json> {
        map.entries
            .iter()
            .filter(|(k, _)| k.name.starts_with("x-"))
            .map(|(k, v)| (k.name.clone(), v.to_json()))
            .collect()
    }
}

fn describe(node: &Node) -> String {
    match node.scalar_text() {
        Some(t) if matches!(node.value, Value::Str(_)) => format!("the string {t:?}"),
        Some(t) => format!("the {} {t}", node.kind()),
        None => format!("a {}", node.kind()),
    }
}

/// One compose file, loaded.
pub(crate) struct FileConfig {
    pub version: Option<(String, Pos)>,
    pub compose: Compose,
}

/// The newest compose file minor version Docker's loader knows (`3` means this one).
pub const LATEST_MINOR: u32 = 13;

/// Keys that need a newer compose file version than the oldest 3.x, with the minor version that
/// introduced them (measured against Docker's schemas). `*` matches any key, `[]` a list item.
const GATED: &[(&str, u32)] = &[
    ("services.*.healthcheck.start_interval", 12),
    ("services.*.oom_score_adj", 13),
    ("services.*.networks.*.driver_opts", 13),
    ("services.*.cgroupns_mode", 9),
    ("services.*.deploy.resources.limits.pids", 9),
    ("services.*.deploy.placement.max_replicas_per_node", 8),
    ("services.*.credential_spec.config", 8),
    ("services.*.init", 7),
    ("services.*.deploy.rollback_config", 7),
    ("services.*.volumes.[].tmpfs", 6),
    ("services.*.isolation", 5),
    (
        "services.*.deploy.resources.reservations.generic_resources",
        5,
    ),
    ("services.*.healthcheck.start_period", 4),
    ("services.*.deploy.update_config.order", 4),
    ("services.*.configs", 3),
    ("configs", 3),
    ("services.*.secrets", 1),
    ("secrets", 1),
];

/// The minor version of a `3.x` file version, as Docker accepts them.
pub fn schema_minor(version: &str) -> Option<u32> {
    match version {
        "3" => Some(LATEST_MINOR),
        v => v
            .strip_prefix("3.")
            .and_then(|m| m.parse::<u32>().ok())
            .filter(|m| *m <= LATEST_MINOR && !v.ends_with('.')),
    }
}

fn check_gates(ctx: &Ctx, node: &Node, path: &mut Vec<String>, minor: u32, version: &str) -> R<()> {
    let matches = |pattern: &str, path: &[String]| {
        let parts: Vec<&str> = pattern.split('.').collect();
        parts.len() == path.len() && parts.iter().zip(path).all(|(p, s)| *p == "*" || p == s)
    };
    match &node.value {
        Value::Map(m) => {
            for (k, v) in &m.entries {
                path.push(k.name.clone());
                if let Some((_, need)) = GATED
                    .iter()
                    .find(|(pattern, need)| minor < *need && matches(pattern, path))
                {
                    return Err(ctx.err(
                        k.pos,
                        &path.join("."),
                        format!(
                            "needs compose file version 3.{need} or newer, but the file says {version:?}; \
                             raise `version:` in this file and in the files merged with it"
                        ),
                    ));
                }
                check_gates(ctx, v, path, minor, version)?;
                path.pop();
            }
        }
        Value::Seq(items) => {
            for item in items {
                path.push("[]".into());
                check_gates(ctx, item, path, minor, version)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

pub(crate) fn load_file(ctx: &Ctx, root: &Node) -> R<FileConfig> {
    let top = match &root.value {
        Value::Map(m) => m,
        Value::Null => {
            return Err(ctx.err(
                root.pos,
                "",
                "the file is empty; a compose file needs at least `services:`",
            ))
        }
        _ => return Err(ctx.type_err(root, "top level", "a mapping")),
    };
    ctx.check_keys(
        top,
        "top level",
        &[
            "version", "services", "networks", "volumes", "secrets", "configs",
        ],
    )?;
    let version = top.get("version").map(|n| match &n.value {
        Value::Str(v) => Ok((v.clone(), n.pos)),
        _ => Err(ctx.type_err(n, "version", "a quoted string such as \"3.8\"")),
    });
    let version = version.transpose()?;
    if let Some((v, pos)) = &version {
        let Some(minor) = schema_minor(v) else {
            return Err(ctx.err(
                *pos,
                "version",
                format!("unsupported compose file version {v:?}; stack files use \"3.0\" to \"3.{LATEST_MINOR}\" (recipes use \"3.8\")"),
            ));
        };
        check_gates(ctx, root, &mut Vec::new(), minor, v)?;
    }
    let mut compose = Compose {
        version: version.as_ref().map(|v| v.0.clone()).unwrap_or_default(),
        extras: ctx.extras(top),
        ..Compose::default()
    };
    if let Some(services) = top.get("services") {
        if let Some(m) = ctx.map(services, "services")? {
            for (key, node) in &m.entries {
                let path = format!("services.{}", key.name);
                compose
                    .services
                    .insert(key.name.clone(), load_service(ctx, node, &path)?);
            }
        }
    }
    if let Some(n) = top
        .get("networks")
        .map(|n| ctx.map(n, "networks"))
        .transpose()?
    {
        for (key, node) in n.into_iter().flat_map(|m| &m.entries) {
            let path = format!("networks.{}", key.name);
            compose
                .networks
                .insert(key.name.clone(), load_network(ctx, node, &path, &key.name)?);
        }
    }
    if let Some(n) = top
        .get("volumes")
        .map(|n| ctx.map(n, "volumes"))
        .transpose()?
    {
        for (key, node) in n.into_iter().flat_map(|m| &m.entries) {
            let path = format!("volumes.{}", key.name);
            compose
                .volumes
                .insert(key.name.clone(), load_volume(ctx, node, &path, &key.name)?);
        }
    }
    for (section, target) in [
        ("secrets", &mut compose.secrets),
        ("configs", &mut compose.configs),
    ] {
        if let Some(n) = top.get(section).map(|n| ctx.map(n, section)).transpose()? {
            for (key, node) in n.into_iter().flat_map(|m| &m.entries) {
                let path = format!("{section}.{}", key.name);
                let kind = section.trim_end_matches('s');
                target.insert(
                    key.name.clone(),
                    load_file_object(ctx, node, &path, &key.name, kind)?,
                );
            }
        }
    }
    Ok(FileConfig { version, compose })
}

fn load_service(ctx: &Ctx, node: &Node, path: &str) -> R<Service> {
    let Value::Map(m) = &node.value else {
        return Err(ctx.type_err(node, path, "a mapping (a service needs at least `image:`)"));
    };
    for (key, _) in &m.entries {
        if let Some((_, why)) = FORBIDDEN.iter().find(|(k, _)| *k == key.name) {
            return Err(ctx.err(
                key.pos,
                path,
                format!("`{}` is not allowed in a stack file: {why}", key.name),
            ));
        }
    }
    ctx.check_keys(m, path, SERVICE_KEYS)?;
    let mut s = Service {
        extras: ctx.extras(m),
        ..Service::default()
    };
    for (key, v) in &m.entries {
        let p = format!("{path}.{}", key.name);
        let p = p.as_str();
        match key.name.as_str() {
            "build" => s.build = Some(load_build(ctx, v, p)?),
            "cap_add" => s.cap_add = ctx.string_list(v, p)?,
            "cap_drop" => s.cap_drop = ctx.string_list(v, p)?,
            "cgroupns_mode" => s.cgroupns_mode = ctx.string(v, p)?,
            "cgroup_parent" => s.cgroup_parent = ctx.string(v, p)?,
            "command" => s.command = shell_command(ctx, v, p)?,
            "entrypoint" => s.entrypoint = shell_command(ctx, v, p)?,
            "configs" => s.configs = file_refs(ctx, v, p)?,
            "secrets" => s.secrets = file_refs(ctx, v, p)?,
            "container_name" => s.container_name = ctx.string(v, p)?,
            "credential_spec" => {
                let mm = ctx.map(v, p)?.cloned().unwrap_or_default();
                ctx.check_keys(&mm, p, &["config", "file", "registry"])?;
                let mut c = CredentialSpec::default();
                for (k, vv) in &mm.entries {
                    let pp = format!("{p}.{}", k.name);
                    match k.name.as_str() {
                        "config" => c.config = ctx.string(vv, &pp)?,
                        "file" => c.file = ctx.string(vv, &pp)?,
                        "registry" => c.registry = ctx.string(vv, &pp)?,
                        _ => {}
                    }
                }
                s.credential_spec = (c != CredentialSpec::default()).then_some(c);
            }
            "depends_on" => s.depends_on = ctx.string_list(v, p)?,
            "deploy" => s.deploy = load_deploy(ctx, v, p)?,
            "devices" => s.devices = ctx.string_list(v, p)?,
            "dns" => s.dns = ctx.string_or_list(v, p)?,
            "dns_search" => s.dns_search = ctx.string_or_list(v, p)?,
            "domainname" => s.domainname = ctx.string(v, p)?,
            "environment" => s.environment = ctx.mapping_or_list(v, p, '=', true)?,
            "env_file" => s.env_file = ctx.string_or_list(v, p)?,
            "expose" => {
                s.expose = ctx
                    .list(v, p)?
                    .iter()
                    .enumerate()
                    .map(|(i, n)| match &n.value {
                        Value::Str(_) | Value::Int(_) => Ok(n.scalar_text().unwrap_or_default()),
                        _ => Err(ctx.type_err(n, &format!("{p}[{i}]"), "a port number")),
                    })
                    .collect::<R<_>>()?
            }
            "external_links" => s.external_links = ctx.string_list(v, p)?,
            "extra_hosts" => s.extra_hosts = hosts_list(ctx, v, p)?,
            "healthcheck" => s.healthcheck = Some(load_healthcheck(ctx, v, p)?),
            "hostname" => s.hostname = ctx.string(v, p)?,
            "image" => s.image = ctx.string(v, p)?,
            "init" => s.init = Some(ctx.bool(v, p)?),
            "ipc" => s.ipc = ctx.string(v, p)?,
            "isolation" => s.isolation = ctx.string(v, p)?,
            "labels" => s.labels = ctx.labels(v, p)?,
            "links" => s.links = ctx.string_list(v, p)?,
            "logging" => s.logging = Some(load_logging(ctx, v, p)?),
            "mac_address" => s.mac_address = ctx.string(v, p)?,
            "network_mode" => s.network_mode = ctx.string(v, p)?,
            "networks" => s.networks = service_networks(ctx, v, p)?,
            "pid" if v.value == Value::Null => {}
            "pid" => s.pid = ctx.string(v, p)?,
            // Accepted by Docker's schema but not carried into a Swarm service.
            "oom_score_adj" => {
                ctx.int(v, p)?;
            }
            "ports" => s.ports = ports(ctx, v, p)?,
            "privileged" => s.privileged = ctx.bool(v, p)?,
            "read_only" => s.read_only = ctx.bool(v, p)?,
            "restart" => s.restart = ctx.string(v, p)?,
            "security_opt" => s.security_opt = ctx.string_list(v, p)?,
            "shm_size" => {
                s.shm_size = match &v.value {
                    Value::Int(_) => v.scalar_text().unwrap_or_default(),
                    _ => ctx.string(v, p)?,
                }
            }
            "stdin_open" => s.stdin_open = ctx.bool(v, p)?,
            "stop_grace_period" => s.stop_grace_period = Some(ctx.duration(v, p)?),
            "stop_signal" => s.stop_signal = ctx.string(v, p)?,
            "sysctls" => {
                s.sysctls = ctx
                    .mapping_or_list(v, p, '=', false)?
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect()
            }
            "tmpfs" => s.tmpfs = ctx.string_or_list(v, p)?,
            "tty" => s.tty = ctx.bool(v, p)?,
            "ulimits" => s.ulimits = ulimits(ctx, v, p)?,
            "user" => s.user = ctx.string(v, p)?,
            "userns_mode" => s.userns_mode = ctx.string(v, p)?,
            "volumes" => s.volumes = service_volumes(ctx, v, p)?,
            "working_dir" => s.working_dir = ctx.string(v, p)?,
            _ => {}
        }
    }
    resolve_environment(ctx, &mut s, node.pos, path)?;
    Ok(s)
}

/// Reads `env_file`s, then fills value-less (or empty) entries from the deploy environment,
/// as Docker's loader does.
fn resolve_environment(ctx: &Ctx, s: &mut Service, pos: Pos, path: &str) -> R<()> {
    let mut env: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut fill = |k: String, v: Option<String>| {
        let value = match v {
            None => (ctx.lookup)(&k),
            Some(x) if x.is_empty() => (ctx.lookup)(&k).or(Some(x)),
            some => some,
        };
        env.insert(k, value);
    };
    for file in &s.env_file {
        let rel = clean_relative(file);
        let text = (ctx.read)(&rel).ok_or_else(|| {
            ctx.err(
                pos,
                path,
                format!("env_file {file:?} is not in the recipe; add it or remove the entry"),
            )
        })?;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) => fill(k.to_string(), Some(v.to_string())),
                None => fill(line.to_string(), None),
            }
        }
    }
    for (k, v) in std::mem::take(&mut s.environment) {
        fill(k, v);
    }
    s.environment = env;
    Ok(())
}

fn shell_command(ctx: &Ctx, node: &Node, path: &str) -> R<Vec<String>> {
    match &node.value {
        Value::Str(s) => shlex::split(s).ok_or_else(|| {
            ctx.err(
                node.pos,
                path,
                "unbalanced quotes in the command; close them or use the list form",
            )
        }),
        Value::Null => Ok(Vec::new()),
        _ => ctx.string_list(node, path),
    }
}

fn file_refs(ctx: &Ctx, node: &Node, path: &str) -> R<Vec<FileRef>> {
    let mut out = Vec::new();
    for (i, item) in ctx.list(node, path)?.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match &item.value {
            Value::Str(s) => out.push(FileRef {
                source: s.clone(),
                ..FileRef::default()
            }),
            Value::Map(m) => {
                ctx.check_keys(m, &p, &["source", "target", "uid", "gid", "mode"])?;
                let mut r = FileRef::default();
                for (k, v) in &m.entries {
                    let pp = format!("{p}.{}", k.name);
                    match k.name.as_str() {
                        "source" => r.source = ctx.string(v, &pp)?,
                        "target" => r.target = ctx.string(v, &pp)?,
                        "uid" => r.uid = ctx.string(v, &pp)?,
                        "gid" => r.gid = ctx.string(v, &pp)?,
                        "mode" => {
                            let n = ctx.uint(v, &pp)?;
                            r.mode = Some(
                                u32::try_from(n)
                                    .map_err(|_| ctx.err(v.pos, &pp, "file mode is too large"))?,
                            );
                        }
                        _ => {}
                    }
                }
                out.push(r);
            }
            _ => return Err(ctx.type_err(item, &p, "a name or a mapping with `source`")),
        }
    }
    Ok(out)
}

fn hosts_list(ctx: &Ctx, node: &Node, path: &str) -> R<Vec<String>> {
    match &node.value {
        Value::Map(_) => {
            let mut list: Vec<String> = ctx
                .mapping_or_list(node, path, ':', true)?
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k}:{v}")))
                .collect();
            list.sort();
            Ok(list)
        }
        _ => ctx.string_list(node, path),
    }
}

fn load_build(ctx: &Ctx, node: &Node, path: &str) -> R<Build> {
    if let Value::Str(s) = &node.value {
        return Ok(Build {
            context: s.clone(),
            ..Build::default()
        });
    }
    // Docker's schema allows any other key under `build` (it is ignored by stack deploys).
    let m = ctx.map(node, path)?.cloned().unwrap_or_default();
    let mut b = Build::default();
    for (k, v) in &m.entries {
        let p = format!("{path}.{}", k.name);
        match k.name.as_str() {
            "context" => b.context = ctx.string(v, &p)?,
            "dockerfile" => b.dockerfile = ctx.string(v, &p)?,
            "args" => b.args = ctx.mapping_or_list(v, &p, '=', true)?,
            "labels" => b.labels = ctx.labels(v, &p)?,
            "cache_from" => b.cache_from = ctx.string_or_list(v, &p)?,
            "extra_hosts" => b.extra_hosts = hosts_list(ctx, v, &p)?,
            "network" => b.network = ctx.string(v, &p)?,
            "target" => b.target = ctx.string(v, &p)?,
            _ => {}
        }
    }
    Ok(b)
}

fn load_healthcheck(ctx: &Ctx, node: &Node, path: &str) -> R<Healthcheck> {
    let m = ctx.map(node, path)?.cloned().unwrap_or_default();
    ctx.check_keys(
        &m,
        path,
        &[
            "test",
            "timeout",
            "interval",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
    )?;
    let mut h = Healthcheck::default();
    for (k, v) in &m.entries {
        let p = format!("{path}.{}", k.name);
        match k.name.as_str() {
            "test" => {
                h.test = match &v.value {
                    Value::Str(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    _ => ctx.string_list(v, &p)?,
                }
            }
            "timeout" => h.timeout = Some(ctx.duration(v, &p)?),
            "interval" => h.interval = Some(ctx.duration(v, &p)?),
            "retries" => h.retries = Some(ctx.uint(v, &p)?),
            "start_period" => h.start_period = Some(ctx.duration(v, &p)?),
            "start_interval" => h.start_interval = Some(ctx.duration(v, &p)?),
            "disable" => h.disable = ctx.bool(v, &p)?,
            _ => {}
        }
    }
    Ok(h)
}

fn load_logging(ctx: &Ctx, node: &Node, path: &str) -> R<Logging> {
    let m = ctx.map(node, path)?.cloned().unwrap_or_default();
    ctx.check_keys(&m, path, &["driver", "options"])?;
    let mut l = Logging::default();
    for (k, v) in &m.entries {
        let p = format!("{path}.{}", k.name);
        match k.name.as_str() {
            "driver" => l.driver = ctx.string(v, &p)?,
            "options" => l.options = ctx.string_map(v, &p)?,
            _ => {}
        }
    }
    Ok(l)
}

fn service_networks(
    ctx: &Ctx,
    node: &Node,
    path: &str,
) -> R<BTreeMap<String, Option<ServiceNetwork>>> {
    let mut out = BTreeMap::new();
    match &node.value {
        Value::Seq(_) => {
            for name in ctx.string_list(node, path)? {
                out.insert(name, None);
            }
        }
        Value::Map(m) => {
            for (k, v) in &m.entries {
                let p = format!("{path}.{}", k.name);
                let Some(mm) = ctx.map(v, &p)? else {
                    out.insert(k.name.clone(), None);
                    continue;
                };
                ctx.check_keys(
                    mm,
                    &p,
                    &["aliases", "ipv4_address", "ipv6_address", "driver_opts"],
                )?;
                let mut n = ServiceNetwork::default();
                for (kk, vv) in &mm.entries {
                    let pp = format!("{p}.{}", kk.name);
                    match kk.name.as_str() {
                        "aliases" => n.aliases = ctx.string_list(vv, &pp)?,
                        "ipv4_address" => n.ipv4_address = ctx.string(vv, &pp)?,
                        "ipv6_address" => n.ipv6_address = ctx.string(vv, &pp)?,
                        "driver_opts" => n.driver_opts = ctx.string_map(vv, &pp)?,
                        _ => {}
                    }
                }
                out.insert(k.name.clone(), Some(n));
            }
        }
        Value::Null => {}
        _ => return Err(ctx.type_err(node, path, "a list or a mapping of networks")),
    }
    Ok(out)
}

fn ulimits(ctx: &Ctx, node: &Node, path: &str) -> R<BTreeMap<String, Ulimit>> {
    let mut out = BTreeMap::new();
    let Some(m) = ctx.map(node, path)? else {
        return Ok(out);
    };
    for (k, v) in &m.entries {
        let p = format!("{path}.{}", k.name);
        let u = match &v.value {
            Value::Int(i) => Ulimit::Single(*i),
            Value::Map(mm) => {
                ctx.check_keys(mm, &p, &["soft", "hard"])?;
                let get = |key: &str| -> R<i64> {
                    let n = mm.get(key).ok_or_else(|| {
                        ctx.err(
                            v.pos,
                            &p,
                            format!("`{key}` is required with soft/hard limits"),
                        )
                    })?;
                    ctx.int(n, &format!("{p}.{key}"))
                };
                Ulimit::Range {
                    soft: get("soft")?,
                    hard: get("hard")?,
                }
            }
            _ => return Err(ctx.type_err(v, &p, "a number or {soft, hard}")),
        };
        out.insert(k.name.clone(), u);
    }
    Ok(out)
}

fn load_deploy(ctx: &Ctx, node: &Node, path: &str) -> R<Deploy> {
    let Some(m) = ctx.map(node, path)? else {
        return Ok(Deploy::default());
    };
    ctx.check_keys(
        m,
        path,
        &[
            "mode",
            "replicas",
            "labels",
            "update_config",
            "rollback_config",
            "resources",
            "restart_policy",
            "placement",
            "endpoint_mode",
        ],
    )?;
    let mut d = Deploy::default();
    for (k, v) in &m.entries {
        let p = format!("{path}.{}", k.name);
        let p = p.as_str();
        match k.name.as_str() {
            "mode" => d.mode = ctx.string(v, p)?,
            "replicas" => d.replicas = Some(ctx.uint(v, p)?),
            "labels" => d.labels = ctx.labels(v, p)?,
            "update_config" => d.update_config = Some(update_config(ctx, v, p)?),
            "rollback_config" => d.rollback_config = Some(update_config(ctx, v, p)?),
            "resources" => d.resources = resources(ctx, v, p)?,
            "restart_policy" => {
                let mm = ctx.map(v, p)?.cloned().unwrap_or_default();
                ctx.check_keys(&mm, p, &["condition", "delay", "max_attempts", "window"])?;
                let mut r = RestartPolicy::default();
                for (kk, vv) in &mm.entries {
                    let pp = format!("{p}.{}", kk.name);
                    match kk.name.as_str() {
                        "condition" => r.condition = ctx.string(vv, &pp)?,
                        "delay" => r.delay = Some(ctx.duration(vv, &pp)?),
                        "max_attempts" => r.max_attempts = Some(ctx.uint(vv, &pp)?),
                        "window" => r.window = Some(ctx.duration(vv, &pp)?),
                        _ => {}
                    }
                }
                d.restart_policy = Some(r);
            }
            "placement" => {
                let mm = ctx.map(v, p)?.cloned().unwrap_or_default();
                ctx.check_keys(
                    &mm,
                    p,
                    &["constraints", "preferences", "max_replicas_per_node"],
                )?;
                for (kk, vv) in &mm.entries {
                    let pp = format!("{p}.{}", kk.name);
                    match kk.name.as_str() {
                        "constraints" => d.placement.constraints = ctx.string_list(vv, &pp)?,
                        "preferences" => {
                            for (i, item) in ctx.list(vv, &pp)?.iter().enumerate() {
                                let ip = format!("{pp}[{i}]");
                                let im = ctx.map(item, &ip)?.cloned().unwrap_or_default();
                                ctx.check_keys(&im, &ip, &["spread"])?;
                                let spread = im
                                    .get("spread")
                                    .map(|s| ctx.string(s, &format!("{ip}.spread")))
                                    .transpose()?
                                    .unwrap_or_default();
                                d.placement.preferences.push(PlacementPreference { spread });
                            }
                        }
                        "max_replicas_per_node" => d.placement.max_replicas = ctx.uint(vv, &pp)?,
                        _ => {}
                    }
                }
            }
            "endpoint_mode" => d.endpoint_mode = ctx.string(v, p)?,
            _ => {}
        }
    }
    Ok(d)
}

fn update_config(ctx: &Ctx, node: &Node, path: &str) -> R<UpdateConfig> {
    let m = ctx.map(node, path)?.cloned().unwrap_or_default();
    ctx.check_keys(
        &m,
        path,
        &[
            "parallelism",
            "delay",
            "failure_action",
            "monitor",
            "max_failure_ratio",
            "order",
        ],
    )?;
    let mut u = UpdateConfig::default();
    for (k, v) in &m.entries {
        let p = format!("{path}.{}", k.name);
        match k.name.as_str() {
            "parallelism" => u.parallelism = Some(ctx.uint(v, &p)?),
            "delay" => u.delay = ctx.duration(v, &p)?,
            "failure_action" => u.failure_action = ctx.string(v, &p)?,
            "monitor" => u.monitor = ctx.duration(v, &p)?,
            "max_failure_ratio" => {
                let f = match v.value {
                    Value::Int(i) => i as f32,
                    Value::Float(f) => f as f32,
                    _ => return Err(ctx.type_err(v, &p, "a number")),
                };
                u.max_failure_ratio = f.to_string().parse().unwrap_or(f64::from(f));
            }
            "order" => u.order = ctx.string(v, &p)?,
            _ => {}
        }
    }
    Ok(u)
}

fn resources(ctx: &Ctx, node: &Node, path: &str) -> R<Resources> {
    let Some(m) = ctx.map(node, path)? else {
        return Ok(Resources::default());
    };
    ctx.check_keys(m, path, &["limits", "reservations"])?;
    let mut r = Resources::default();
    for (k, v) in &m.entries {
        let p = format!("{path}.{}", k.name);
        let mm = ctx.map(v, &p)?.cloned().unwrap_or_default();
        match k.name.as_str() {
            "limits" => {
                ctx.check_keys(&mm, &p, &["cpus", "memory", "pids"])?;
                let mut l = ResourceLimit::default();
                for (kk, vv) in &mm.entries {
                    let pp = format!("{p}.{}", kk.name);
                    match kk.name.as_str() {
                        "cpus" => l.cpus = ctx.string(vv, &pp)?,
                        "memory" => l.memory = unit_bytes(ctx, vv, &pp)?,
                        "pids" => l.pids = ctx.int(vv, &pp)?,
                        _ => {}
                    }
                }
                r.limits = Some(l);
            }
            "reservations" => {
                ctx.check_keys(&mm, &p, &["cpus", "memory", "generic_resources"])?;
                let mut res = Resource::default();
                for (kk, vv) in &mm.entries {
                    let pp = format!("{p}.{}", kk.name);
                    match kk.name.as_str() {
                        "cpus" => res.cpus = ctx.string(vv, &pp)?,
                        "memory" => res.memory = unit_bytes(ctx, vv, &pp)?,
                        "generic_resources" => {
                            for (i, item) in ctx.list(vv, &pp)?.iter().enumerate() {
                                let ip = format!("{pp}[{i}]");
                                let im = ctx.map(item, &ip)?.cloned().unwrap_or_default();
                                ctx.check_keys(&im, &ip, &["discrete_resource_spec"])?;
                                let spec = match im.get("discrete_resource_spec") {
                                    Some(s) => {
                                        let sp = format!("{ip}.discrete_resource_spec");
                                        let sm = ctx.map(s, &sp)?.cloned().unwrap_or_default();
                                        ctx.check_keys(&sm, &sp, &["kind", "value"])?;
                                        Some(DiscreteResource {
                                            kind: sm
                                                .get("kind")
                                                .map(|n| ctx.string(n, &format!("{sp}.kind")))
                                                .transpose()?
                                                .unwrap_or_default(),
                                            value: sm
                                                .get("value")
                                                .map(|n| ctx.int(n, &format!("{sp}.value")))
                                                .transpose()?
                                                .unwrap_or_default(),
                                        })
                                    }
                                    None => None,
                                };
                                res.generic_resources.push(GenericResource {
                                    discrete_resource_spec: spec,
                                });
                            }
                        }
                        _ => {}
                    }
                }
                r.reservations = Some(res);
            }
            _ => {}
        }
    }
    Ok(r)
}

/// Docker's `RAMInBytes`: `512M`, `1.5g`, `1024k`, `2GiB`, or a plain number of bytes.
pub fn parse_ram(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((n * mult) as i64)
}

fn unit_bytes(ctx: &Ctx, node: &Node, path: &str) -> R<UnitBytes> {
    match &node.value {
        Value::Int(i) => Ok(UnitBytes(*i)),
        Value::Str(s) => parse_ram(s).map(UnitBytes).ok_or_else(|| {
            ctx.err(
                node.pos,
                path,
                format!("{s:?} is not a size (write it like 512M or 2G)"),
            )
        }),
        _ => Err(ctx.type_err(node, path, "a size such as \"512M\"")),
    }
}

fn ports(ctx: &Ctx, node: &Node, path: &str) -> R<Vec<Port>> {
    let mut out = Vec::new();
    for (i, item) in ctx.list(node, path)?.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match &item.value {
            Value::Int(_) | Value::Str(_) => {
                let spec = item.scalar_text().unwrap_or_default();
                out.extend(parse_port_spec(&spec).map_err(|e| ctx.err(item.pos, &p, e))?);
            }
            Value::Map(m) => {
                ctx.check_keys(m, &p, &["mode", "target", "published", "protocol"])?;
                let mut port = Port::default();
                for (k, v) in &m.entries {
                    let pp = format!("{p}.{}", k.name);
                    match k.name.as_str() {
                        "mode" => port.mode = ctx.string(v, &pp)?,
                        "protocol" => port.protocol = ctx.string(v, &pp)?,
                        "target" | "published" => {
                            let n = ctx.uint(v, &pp)?;
                            let n = u32::try_from(n)
                                .ok()
                                .filter(|n| *n <= 65535)
                                .ok_or_else(|| ctx.err(v.pos, &pp, "a port must be 0–65535"))?;
                            if k.name == "target" {
                                port.target = n
                            } else {
                                port.published = n
                            }
                        }
                        _ => {}
                    }
                }
                out.push(port);
            }
            _ => return Err(ctx.type_err(item, &p, "a port spec such as \"8080:80\"")),
        }
    }
    Ok(out)
}

fn parse_port_range(s: &str) -> Result<(u32, u32), String> {
    let parse = |x: &str| -> Result<u32, String> {
        x.parse::<u32>()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| format!("invalid port {x:?}"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                return Err(format!("invalid port range {s:?}"));
            }
            Ok((a, b))
        }
        None => {
            let a = parse(s)?;
            Ok((a, a))
        }
    }
}

/// `[ip:][published[-end]:]target[-end][/protocol]`, expanded to one entry per port.
pub fn parse_port_spec(spec: &str) -> Result<Vec<Port>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol {proto:?} in port {spec:?}"));
    }
    let parts: Vec<&str> = match rest.rfind(']') {
        // [ipv6]:published:target
        Some(end) if rest.starts_with('[') => {
            let after: Vec<&str> = rest[end + 1..].trim_start_matches(':').split(':').collect();
            std::iter::once(&rest[..=end]).chain(after).collect()
        }
        _ => rest.split(':').collect(),
    };
    let (published, target) = match parts.as_slice() {
        [t] => ("", *t),
        [p, t] => (*p, *t),
        [_ip, p, t] => (*p, *t),
        _ => return Err(format!("invalid port spec {spec:?}")),
    };
    let (t0, t1) = parse_port_range(target)?;
    let pub_range = if published.is_empty() {
        None
    } else {
        Some(parse_port_range(published)?)
    };
    if let Some((p0, p1)) = pub_range {
        if p1 - p0 != t1 - t0 && p0 != p1 {
            return Err(format!(
                "port ranges in {spec:?} differ in size; make both sides cover the same number of ports"
            ));
        }
    }
    let mut ports: Vec<(String, Port)> = (t0..=t1)
        .map(|t| {
            let published = match pub_range {
                Some((p0, p1)) if p0 == p1 => p0,
                Some((p0, _)) => p0 + (t - t0),
                None => 0,
            };
            (
                format!("{t}/{proto}"),
                Port {
                    mode: "ingress".into(),
                    target: t,
                    published,
                    protocol: proto.clone(),
                },
            )
        })
        .collect();
    ports.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(ports.into_iter().map(|(_, p)| p).collect())
}

fn service_volumes(ctx: &Ctx, node: &Node, path: &str) -> R<Vec<ServiceVolume>> {
    let mut out = Vec::new();
    for (i, item) in ctx.list(node, path)?.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut vol = match &item.value {
            Value::Str(s) => parse_volume_spec(s).map_err(|e| ctx.err(item.pos, &p, e))?,
            Value::Map(m) => long_volume(ctx, m, &p)?,
            _ => return Err(ctx.type_err(item, &p, "a volume spec such as \"data:/data\"")),
        };
        if vol.kind == "bind" {
            if vol.source.is_empty() {
                return Err(ctx.err(item.pos, &p, "a bind mount needs a `source`"));
            }
            if !vol.source.starts_with('/') && !vol.source.starts_with('~') {
                vol.source = clean_relative(&vol.source);
            }
        }
        out.push(vol);
    }
    Ok(out)
}

fn long_volume(ctx: &Ctx, m: &Mapping, path: &str) -> R<ServiceVolume> {
    ctx.check_keys(
        m,
        path,
        &[
            "type",
            "source",
            "target",
            "read_only",
            "consistency",
            "bind",
            "volume",
            "tmpfs",
            "cluster",
        ],
    )?;
    let mut v = ServiceVolume::default();
    for (k, n) in &m.entries {
        let p = format!("{path}.{}", k.name);
        match k.name.as_str() {
            "type" => v.kind = ctx.string(n, &p)?,
            "source" => v.source = ctx.string(n, &p)?,
            "target" => v.target = ctx.string(n, &p)?,
            "read_only" => v.read_only = ctx.bool(n, &p)?,
            "consistency" => v.consistency = ctx.string(n, &p)?,
            "bind" => {
                let mm = ctx.map(n, &p)?.cloned().unwrap_or_default();
                ctx.check_keys(&mm, &p, &["propagation"])?;
                v.bind = Some(VolumeBind {
                    propagation: mm
                        .get("propagation")
                        .map(|x| ctx.string(x, &format!("{p}.propagation")))
                        .transpose()?
                        .unwrap_or_default(),
                });
            }
            "volume" => {
                let mm = ctx.map(n, &p)?.cloned().unwrap_or_default();
                ctx.check_keys(&mm, &p, &["nocopy"])?;
                v.volume = Some(VolumeVolume {
                    nocopy: mm
                        .get("nocopy")
                        .map(|x| ctx.bool(x, &format!("{p}.nocopy")))
                        .transpose()?
                        .unwrap_or_default(),
                });
            }
            "tmpfs" => {
                let mm = ctx.map(n, &p)?.cloned().unwrap_or_default();
                ctx.check_keys(&mm, &p, &["size"])?;
                v.tmpfs = Some(VolumeTmpfs {
                    size: mm
                        .get("size")
                        .map(|x| match &x.value {
                            Value::Str(s) => parse_ram(s)
                                .ok_or_else(|| ctx.err(x.pos, &format!("{p}.size"), "not a size")),
                            _ => ctx.int(x, &format!("{p}.size")),
                        })
                        .transpose()?
                        .unwrap_or_default(),
                });
            }
            "cluster" => {
                v.cluster = Some(match n.to_json() {
                    Json::Object(o) => o.into_iter().collect(),
                    _ => BTreeMap::new(),
                })
            }
            _ => {}
        }
    }
    if v.kind.is_empty() {
        return Err(ctx.err(
            m.entries.first().map(|e| e.0.pos).unwrap_or_default(),
            path,
            "a long-form volume needs `type` (volume, bind or tmpfs)",
        ));
    }
    Ok(v)
}

/// Docker's short volume syntax `[source:]target[:options]`, parsed the way Docker does,
/// including its reading of a one-letter first section as a Windows drive (`c:/data`).
pub fn parse_volume_spec(spec: &str) -> Result<ServiceVolume, String> {
    let mut v = ServiceVolume::default();
    let chars: Vec<char> = spec.chars().collect();
    if chars.is_empty() {
        return Err("empty volume spec".into());
    }
    if chars.len() <= 2 {
        v.target = spec.to_string();
        v.kind = "volume".into();
        return Ok(v);
    }
    let mut buffer: Vec<char> = Vec::new();
    let mut sections = chars.iter().map(|c| Some(*c)).chain(std::iter::once(None));
    let mut result = Ok(());
    for c in sections.by_ref() {
        let is_drive = c == Some(':') && buffer.len() == 1 && buffer[0].is_alphabetic();
        if is_drive {
            buffer.push(':');
        } else if c == Some(':') || c.is_none() {
            if let Err(e) = volume_section(&buffer, c.is_none(), &mut v) {
                result = Err(format!("invalid volume spec {spec:?}: {e}"));
                break;
            }
            buffer.clear();
        } else if let Some(c) = c {
            buffer.push(c);
        }
    }
    v.kind = if v.source.is_empty() {
        "volume"
    } else if is_file_path(&v.source) {
        "bind"
    } else {
        "volume"
    }
    .into();
    result.map(|_| v)
}

fn volume_section(buffer: &[char], end: bool, v: &mut ServiceVolume) -> Result<(), &'static str> {
    let text: String = buffer.iter().collect();
    if buffer.is_empty() {
        return Err("empty section between colons");
    }
    if v.source.is_empty() && end {
        v.target = text;
        return Ok(());
    }
    if v.source.is_empty() {
        v.source = text;
        return Ok(());
    }
    if v.target.is_empty() {
        v.target = text;
        return Ok(());
    }
    if !end {
        return Err("too many colons");
    }
    for opt in text.split(',') {
        match opt {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "nocopy" => v.volume = Some(VolumeVolume { nocopy: true }),
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                v.bind = Some(VolumeBind {
                    propagation: opt.to_string(),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_file_path(source: &str) -> bool {
    let mut chars = source.chars();
    match chars.next() {
        Some('.' | '/' | '~') => true,
        Some(first) => {
            source.starts_with("\\\\") || (first.is_alphabetic() && chars.next() == Some(':'))
        }
        None => false,
    }
}

/// `./a/../b/c` → `b/c`: a path relative to the recipe root, cleaned lexically.
pub fn clean_relative(path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

fn external(ctx: &Ctx, node: &Node, path: &str) -> R<(bool, Option<String>)> {
    match &node.value {
        Value::Bool(b) => Ok((*b, None)),
        Value::Map(m) => {
            ctx.check_keys(m, path, &["name"])?;
            let name = m
                .get("name")
                .map(|n| ctx.string(n, &format!("{path}.name")))
                .transpose()?;
            Ok((true, name))
        }
        _ => Err(ctx.type_err(node, path, "true, false or {name: …}")),
    }
}

fn load_network(ctx: &Ctx, node: &Node, path: &str, key: &str) -> R<Network> {
    let Some(m) = ctx.map(node, path)? else {
        return Ok(Network::default());
    };
    ctx.check_keys(
        m,
        path,
        &[
            "name",
            "driver",
            "driver_opts",
            "ipam",
            "external",
            "internal",
            "attachable",
            "labels",
        ],
    )?;
    let mut n = Network {
        extras: ctx.extras(m),
        ..Network::default()
    };
    let mut external_name = None;
    for (k, v) in &m.entries {
        let p = format!("{path}.{}", k.name);
        match k.name.as_str() {
            "name" => n.name = ctx.string(v, &p)?,
            "driver" => n.driver = ctx.string(v, &p)?,
            "driver_opts" => n.driver_opts = ctx.string_map(v, &p)?,
            "ipam" => {
                let mm = ctx.map(v, &p)?.cloned().unwrap_or_default();
                ctx.check_keys(&mm, &p, &["driver", "config"])?;
                for (kk, vv) in &mm.entries {
                    let pp = format!("{p}.{}", kk.name);
                    match kk.name.as_str() {
                        "driver" => n.ipam.driver = ctx.string(vv, &pp)?,
                        "config" => {
                            for (i, item) in ctx.list(vv, &pp)?.iter().enumerate() {
                                let ip = format!("{pp}[{i}]");
                                let im = ctx.map(item, &ip)?.cloned().unwrap_or_default();
                                ctx.check_keys(&im, &ip, &["subnet"])?;
                                n.ipam.config.push(IpamPool {
                                    subnet: im
                                        .get("subnet")
                                        .map(|s| ctx.string(s, &format!("{ip}.subnet")))
                                        .transpose()?
                                        .unwrap_or_default(),
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
            "external" => (n.external, external_name) = external(ctx, v, &p)?,
            "internal" => n.internal = ctx.bool(v, &p)?,
            "attachable" => n.attachable = ctx.bool(v, &p)?,
            "labels" => n.labels = ctx.labels(v, &p)?,
            _ => {}
        }
    }
    if n.external {
        match external_name {
            Some(en) if !n.name.is_empty() => {
                return Err(ctx.err(
                    node.pos,
                    path,
                    format!(
                        "external.name {en:?} and name {:?} conflict; only use name",
                        n.name
                    ),
                ))
            }
            Some(en) => n.name = en,
            None if n.name.is_empty() => n.name = key.to_string(),
            None => {}
        }
    }
    Ok(n)
}

fn load_volume(ctx: &Ctx, node: &Node, path: &str, key: &str) -> R<Volume> {
    let Some(m) = ctx.map(node, path)? else {
        return Ok(Volume::default());
    };
    ctx.check_keys(
        m,
        path,
        &["name", "driver", "driver_opts", "external", "labels"],
    )?;
    let mut vol = Volume {
        extras: ctx.extras(m),
        ..Volume::default()
    };
    let mut external_name = None;
    for (k, v) in &m.entries {
        let p = format!("{path}.{}", k.name);
        match k.name.as_str() {
            "name" => vol.name = ctx.string(v, &p)?,
            "driver" => vol.driver = ctx.string(v, &p)?,
            "driver_opts" => vol.driver_opts = ctx.string_map(v, &p)?,
            "external" => (vol.external, external_name) = external(ctx, v, &p)?,
            "labels" => vol.labels = ctx.labels(v, &p)?,
            _ => {}
        }
    }
    if vol.external {
        for (set, what) in [
            (!vol.driver.is_empty(), "driver"),
            (!vol.driver_opts.is_empty(), "driver_opts"),
            (!vol.labels.is_empty(), "labels"),
        ] {
            if set {
                return Err(ctx.err(
                    node.pos,
                    path,
                    format!("an external volume cannot also set `{what}`"),
                ));
            }
        }
        match external_name {
            Some(en) if !vol.name.is_empty() => {
                return Err(ctx.err(
                    node.pos,
                    path,
                    format!(
                        "external.name {en:?} and name {:?} conflict; only use name",
                        vol.name
                    ),
                ))
            }
            Some(en) => vol.name = en,
            None if vol.name.is_empty() => vol.name = key.to_string(),
            None => {}
        }
    }
    Ok(vol)
}

fn load_file_object(ctx: &Ctx, node: &Node, path: &str, key: &str, kind: &str) -> R<FileObject> {
    let m = ctx.map(node, path)?.cloned().unwrap_or_default();
    ctx.check_keys(
        &m,
        path,
        &[
            "name",
            "file",
            "external",
            "labels",
            "driver",
            "driver_opts",
            "template_driver",
        ],
    )?;
    let mut o = FileObject {
        extras: ctx.extras(&m),
        ..FileObject::default()
    };
    let mut external_name = None;
    for (k, v) in &m.entries {
        let p = format!("{path}.{}", k.name);
        match k.name.as_str() {
            "name" => o.name = ctx.string(v, &p)?,
            "file" => o.file = ctx.string(v, &p)?,
            "external" => (o.external, external_name) = external(ctx, v, &p)?,
            "labels" => o.labels = ctx.labels(v, &p)?,
            "driver" => o.driver = ctx.string(v, &p)?,
            "driver_opts" => o.driver_opts = ctx.string_map(v, &p)?,
            "template_driver" => o.template_driver = ctx.string(v, &p)?,
            _ => {}
        }
    }
    if o.external {
        match external_name {
            Some(_) if !o.name.is_empty() => {
                return Err(ctx.err(
                    node.pos,
                    path,
                    format!("{kind} external.name and name conflict; only use name"),
                ))
            }
            Some(en) => o.name = en,
            None if o.name.is_empty() => o.name = key.to_string(),
            None => {}
        }
    } else if !o.driver.is_empty() {
        if !o.file.is_empty() {
            return Err(ctx.err(
                node.pos,
                path,
                format!("{kind} `driver` and `file` conflict; only use driver"),
            ));
        }
    } else {
        o.file = clean_relative(&o.file);
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        let p = parse_port_spec("8080:80").unwrap();
        assert_eq!((p[0].published, p[0].target), (8080, 80));
        let p = parse_port_spec("9000-9001:9000-9001/udp").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].protocol, "udp");
        let p = parse_port_spec("127.0.0.1:7000:7000").unwrap();
        assert_eq!(p[0].published, 7000);
        let p = parse_port_spec("5000").unwrap();
        assert_eq!((p[0].published, p[0].target), (0, 5000));
        assert!(parse_port_spec("80:x").is_err());
        assert!(parse_port_spec("1-3:1-2").is_err());
    }

    #[test]
    fn volume_specs() {
        let v = parse_volume_spec("data:/data").unwrap();
        assert_eq!((v.kind.as_str(), v.source.as_str()), ("volume", "data"));
        let v = parse_volume_spec("./conf:/etc/conf:ro").unwrap();
        assert_eq!(v.kind, "bind");
        assert!(v.read_only);
        let v = parse_volume_spec("/anon").unwrap();
        assert_eq!((v.kind.as_str(), v.target.as_str()), ("volume", "/anon"));
        assert!(parse_volume_spec("ab::c").is_err());
        // Docker reads a one-letter first section as a Windows drive.
        assert_eq!(parse_volume_spec("b:/z").unwrap().target, "b:/z");
        assert!(parse_volume_spec("ab:/cd:ro:gh").is_err());
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram("512M"), Some(536_870_912));
        assert_eq!(parse_ram("1g"), Some(1_073_741_824));
        assert_eq!(parse_ram("1024"), Some(1024));
        assert_eq!(parse_ram("2GiB"), Some(2_147_483_648));
        assert_eq!(parse_ram("lots"), None);
    }

    #[test]
    fn relative_paths() {
        assert_eq!(clean_relative("./a.sh"), "a.sh");
        assert_eq!(clean_relative("postgres/../x/y.sh"), "x/y.sh");
        assert_eq!(clean_relative("/abs/p"), "/abs/p");
    }
}
