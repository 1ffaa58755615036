//! Merging an overlay onto the stack so far, with the rules of Docker's stack loader
//! (docker CLI 28, which is what abra's loader follows and what the differential test checks):
//!
//! - services merge field by field; a scalar from the overlay wins only when it is not empty
//!   (so `read_only: false` or `init: false` cannot switch off a `true`: a Docker quirk kept
//!   for compatibility, pinned by a test);
//! - plain lists append (`dns`, `cap_add`, `placement.constraints`, and also
//!   `healthcheck.test`, another quirk pinned by a test); `command`/`entrypoint` are replaced;
//! - `secrets`/`configs` merge by `source`, `volumes` by `target`, `ports` by published port,
//!   and come out sorted by that key once both sides have entries;
//! - maps merge key by key (labels: overlay always wins; environment: only a non-empty
//!   overlay value wins);
//! - top-level networks, volumes, secrets and configs are replaced whole by the overlay's entry.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::model::*;

fn string(dst: &mut String, src: String) {
    if !src.is_empty() {
        *dst = src;
    }
}

fn flag(dst: &mut bool, src: bool) {
    *dst = *dst || src;
}

fn append<T>(dst: &mut Vec<T>, src: Vec<T>) {
    dst.extend(src);
}

fn replace_if_set<T>(dst: &mut Vec<T>, src: Vec<T>) {
    if !src.is_empty() {
        *dst = src;
    }
}

fn labels(dst: &mut BTreeMap<String, String>, src: BTreeMap<String, String>) {
    dst.extend(src);
}

/// Merges slices keyed by a field; the result is sorted by the key (only when `dst` has entries,
/// as Docker applies its keyed merge only then).
fn keyed<T, K: Ord + Clone>(dst: &mut Vec<T>, src: Vec<T>, key: impl Fn(&T) -> K) {
    if dst.is_empty() {
        *dst = src;
        return;
    }
    let mut map: BTreeMap<K, T> = BTreeMap::new();
    for item in std::mem::take(dst).into_iter().chain(src) {
        map.insert(key(&item), item);
    }
    *dst = map.into_values().collect();
}

fn opt_scalar<T: PartialEq + Default>(dst: &mut Option<T>, src: Option<T>) {
    match (dst.as_mut(), src) {
        (_, None) => {}
        (None, Some(s)) => *dst = Some(s),
        (Some(d), Some(s)) => {
            if s != T::default() {
                *d = s;
            }
        }
    }
}

fn opt_override<T>(dst: &mut Option<T>, src: Option<T>) {
    if src.is_some() {
        *dst = src;
    }
}

fn extras(dst: &mut BTreeMap<String, Json>, src: BTreeMap<String, Json>) {
    for (k, v) in src {
        match dst.get_mut(&k) {
            Some(d) => deep_merge_json(d, v),
            None => {
                dst.insert(k, v);
            }
        }
    }
}

fn deep_merge_json(dst: &mut Json, src: Json) {
    match (dst, src) {
        (Json::Object(d), Json::Object(s)) => {
            for (k, v) in s {
                match d.get_mut(&k) {
                    Some(dv) => deep_merge_json(dv, v),
                    None => {
                        d.insert(k, v);
                    }
                }
            }
        }
        (d, s) => {
            if !s.is_null() {
                *d = s;
            }
        }
    }
}

/// Merges `over` onto `base` (both already loaded from one file each).
pub fn merge(base: &mut Compose, over: Compose) {
    for (name, svc) in over.services {
        match base.services.get_mut(&name) {
            Some(b) => merge_service(b, svc),
            None => {
                base.services.insert(name, svc);
            }
        }
    }
    base.networks.extend(over.networks);
    base.volumes.extend(over.volumes);
    base.secrets.extend(over.secrets);
    base.configs.extend(over.configs);
}

fn merge_service(d: &mut Service, s: Service) {
    if let Some(sb) = s.build {
        let db = d.build.get_or_insert_with(Build::default);
        string(&mut db.context, sb.context);
        string(&mut db.dockerfile, sb.dockerfile);
        environment(&mut db.args, sb.args);
        labels(&mut db.labels, sb.labels);
        append(&mut db.cache_from, sb.cache_from);
        append(&mut db.extra_hosts, sb.extra_hosts);
        string(&mut db.network, sb.network);
        string(&mut db.target, sb.target);
    }
    append(&mut d.cap_add, s.cap_add);
    append(&mut d.cap_drop, s.cap_drop);
    string(&mut d.cgroupns_mode, s.cgroupns_mode);
    string(&mut d.cgroup_parent, s.cgroup_parent);
    replace_if_set(&mut d.command, s.command);
    keyed(&mut d.configs, s.configs, |r| r.source.clone());
    string(&mut d.container_name, s.container_name);
    if let Some(sc) = s.credential_spec {
        let dc = d
            .credential_spec
            .get_or_insert_with(CredentialSpec::default);
        string(&mut dc.config, sc.config);
        string(&mut dc.file, sc.file);
        string(&mut dc.registry, sc.registry);
    }
    append(&mut d.depends_on, s.depends_on);
    merge_deploy(&mut d.deploy, s.deploy);
    append(&mut d.devices, s.devices);
    append(&mut d.dns, s.dns);
    append(&mut d.dns_search, s.dns_search);
    string(&mut d.domainname, s.domainname);
    replace_if_set(&mut d.entrypoint, s.entrypoint);
    environment(&mut d.environment, s.environment);
    append(&mut d.env_file, s.env_file);
    append(&mut d.expose, s.expose);
    append(&mut d.external_links, s.external_links);
    append(&mut d.extra_hosts, s.extra_hosts);
    string(&mut d.hostname, s.hostname);
    match (d.healthcheck.as_mut(), s.healthcheck) {
        (_, None) => {}
        (None, Some(sh)) => d.healthcheck = Some(sh),
        (Some(dh), Some(sh)) => {
            append(&mut dh.test, sh.test);
            opt_scalar(&mut dh.timeout, sh.timeout);
            opt_scalar(&mut dh.interval, sh.interval);
            opt_override(&mut dh.retries, sh.retries);
            opt_scalar(&mut dh.start_period, sh.start_period);
            opt_scalar(&mut dh.start_interval, sh.start_interval);
            flag(&mut dh.disable, sh.disable);
        }
    }
    string(&mut d.image, s.image);
    opt_scalar(&mut d.init, s.init);
    string(&mut d.ipc, s.ipc);
    string(&mut d.isolation, s.isolation);
    labels(&mut d.labels, s.labels);
    append(&mut d.links, s.links);
    match (d.logging.as_mut(), s.logging) {
        (_, None) => {}
        (None, Some(sl)) => d.logging = Some(sl),
        (Some(dl), Some(sl)) => {
            if dl.driver == sl.driver || dl.driver.is_empty() || sl.driver.is_empty() {
                string(&mut dl.driver, sl.driver);
                labels(&mut dl.options, sl.options);
            } else {
                *dl = sl;
            }
        }
    }
    string(&mut d.mac_address, s.mac_address);
    string(&mut d.network_mode, s.network_mode);
    for (name, sn) in s.networks {
        match d.networks.get_mut(&name) {
            None => {
                d.networks.insert(name, sn);
            }
            Some(None) => {
                d.networks.insert(name, sn);
            }
            Some(Some(dn)) => {
                if let Some(sn) = sn.filter(|n| *n != ServiceNetwork::default()) {
                    dn.aliases = sn.aliases;
                    string(&mut dn.ipv4_address, sn.ipv4_address);
                    string(&mut dn.ipv6_address, sn.ipv6_address);
                    labels(&mut dn.driver_opts, sn.driver_opts);
                }
            }
        }
    }
    string(&mut d.pid, s.pid);
    keyed(&mut d.ports, s.ports, |p| p.published);
    flag(&mut d.privileged, s.privileged);
    flag(&mut d.read_only, s.read_only);
    string(&mut d.restart, s.restart);
    keyed(&mut d.secrets, s.secrets, |r| r.source.clone());
    append(&mut d.security_opt, s.security_opt);
    string(&mut d.shm_size, s.shm_size);
    flag(&mut d.stdin_open, s.stdin_open);
    opt_scalar(&mut d.stop_grace_period, s.stop_grace_period);
    string(&mut d.stop_signal, s.stop_signal);
    labels(&mut d.sysctls, s.sysctls);
    append(&mut d.tmpfs, s.tmpfs);
    flag(&mut d.tty, s.tty);
    for (name, su) in s.ulimits {
        let zero = matches!(su, Ulimit::Single(0) | Ulimit::Range { soft: 0, hard: 0 });
        if !zero || !d.ulimits.contains_key(&name) {
            d.ulimits.insert(name, su);
        }
    }
    string(&mut d.user, s.user);
    string(&mut d.userns_mode, s.userns_mode);
    keyed(&mut d.volumes, s.volumes, |v| v.target.clone());
    string(&mut d.working_dir, s.working_dir);
    extras(&mut d.extras, s.extras);
}

fn environment(d: &mut BTreeMap<String, Option<String>>, s: BTreeMap<String, Option<String>>) {
    for (k, v) in s {
        let replace = match d.get(&k) {
            None | Some(None) => true,
            Some(Some(existing)) => {
                existing.is_empty() || v.as_deref().is_some_and(|x| !x.is_empty())
            }
        };
        if replace {
            d.insert(k, v);
        }
    }
}

fn merge_update(d: &mut Option<UpdateConfig>, s: Option<UpdateConfig>) {
    match (d.as_mut(), s) {
        (_, None) => {}
        (None, Some(s)) => *d = Some(s),
        (Some(du), Some(su)) => {
            opt_override(&mut du.parallelism, su.parallelism);
            if !su.delay.is_zero() {
                du.delay = su.delay;
            }
            string(&mut du.failure_action, su.failure_action);
            if !su.monitor.is_zero() {
                du.monitor = su.monitor;
            }
            if su.max_failure_ratio != 0.0 {
                du.max_failure_ratio = su.max_failure_ratio;
            }
            string(&mut du.order, su.order);
        }
    }
}

fn merge_deploy(d: &mut Deploy, s: Deploy) {
    string(&mut d.mode, s.mode);
    opt_override(&mut d.replicas, s.replicas);
    labels(&mut d.labels, s.labels);
    merge_update(&mut d.update_config, s.update_config);
    merge_update(&mut d.rollback_config, s.rollback_config);
    match (d.resources.limits.as_mut(), s.resources.limits) {
        (_, None) => {}
        (None, Some(l)) => d.resources.limits = Some(l),
        (Some(dl), Some(sl)) => {
            string(&mut dl.cpus, sl.cpus);
            if sl.memory.0 != 0 {
                dl.memory = sl.memory;
            }
            if sl.pids != 0 {
                dl.pids = sl.pids;
            }
        }
    }
    match (d.resources.reservations.as_mut(), s.resources.reservations) {
        (_, None) => {}
        (None, Some(r)) => d.resources.reservations = Some(r),
        (Some(dr), Some(sr)) => {
            string(&mut dr.cpus, sr.cpus);
            if sr.memory.0 != 0 {
                dr.memory = sr.memory;
            }
            append(&mut dr.generic_resources, sr.generic_resources);
        }
    }
    match (d.restart_policy.as_mut(), s.restart_policy) {
        (_, None) => {}
        (None, Some(r)) => d.restart_policy = Some(r),
        (Some(dr), Some(sr)) => {
            string(&mut dr.condition, sr.condition);
            opt_scalar(&mut dr.delay, sr.delay);
            opt_override(&mut dr.max_attempts, sr.max_attempts);
            opt_scalar(&mut dr.window, sr.window);
        }
    }
    append(&mut d.placement.constraints, s.placement.constraints);
    append(&mut d.placement.preferences, s.placement.preferences);
    if s.placement.max_replicas != 0 {
        d.placement.max_replicas = s.placement.max_replicas;
    }
    string(&mut d.endpoint_mode, s.endpoint_mode);
}
