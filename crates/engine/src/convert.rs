//! A loaded stack → the Swarm objects a deploy creates, the way `docker stack deploy` converts
//! a compose file: names scoped by the stack (`<stack>_<name>`), the stack label on everything,
//! entrypoint → Command and command → Args, sorted environment, default network, aliases,
//! secret/config references with `0`/`0`/`0444` defaults, and so on.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use bollard::models::*;

use cooper_recipe::compose::{self, Compose, Service};
use cooper_recipe::repo::RecipeFiles;

use crate::{EngineError, Result, STACK_LABEL};

/// A network the stack creates.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkPlan {
    pub name: String,
    pub spec: NetworkCreateRequest,
}

/// A config the stack creates (from a recipe file).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigPlan {
    pub key: String,
    pub name: String,
    pub data: Vec<u8>,
    pub spec: ConfigSpec,
}

/// Everything a deploy of one stack needs.
#[derive(Debug, Clone)]
pub struct StackPlan {
    pub stack: String,
    pub networks: Vec<NetworkPlan>,
    /// External networks that must exist (e.g. `proxy`).
    pub external_networks: Vec<String>,
    pub configs: Vec<ConfigPlan>,
    /// External configs that must exist.
    pub external_configs: Vec<String>,
    /// Secret Swarm names the services use (all must exist; recipes use external secrets).
    pub secrets: Vec<String>,
    /// Service name (unscoped) → spec. Secret and config IDs are filled in by `apply`.
    pub services: BTreeMap<String, ServiceSpec>,
}

fn scope(stack: &str, name: &str) -> String {
    format!("{stack}_{name}")
}

fn stack_labels(stack: &str, labels: &BTreeMap<String, String>) -> HashMap<String, String> {
    let mut out: HashMap<String, String> =
        labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    out.insert(STACK_LABEL.into(), stack.into());
    out
}

fn nanos(d: &compose::Duration) -> i64 {
    d.0
}

/// `0.5` → 500_000_000 (Docker's ParseCPUs).
fn parse_cpus(text: &str) -> Result<i64> {
    let f: f64 = text
        .trim()
        .parse()
        .map_err(|_| EngineError::Invalid(format!("invalid cpus value {text:?}")))?;
    let n = (f * 1e9).round();
    if !(0.0..=(i64::MAX as f64)).contains(&n) {
        return Err(EngineError::Invalid(format!("invalid cpus value {text:?}")));
    }
    Ok(n as i64)
}

/// Converts a stack. `extra_labels` are added to every service's labels (cooper's
/// `coop-cloud.<stack>.*` deploy labels).
pub fn convert(
    stack: &str,
    compose: &Compose,
    files: &RecipeFiles,
    extra_labels: &BTreeMap<String, String>,
) -> Result<StackPlan> {
    let mut plan = StackPlan {
        stack: stack.to_string(),
        networks: Vec::new(),
        external_networks: Vec::new(),
        configs: Vec::new(),
        external_configs: Vec::new(),
        secrets: Vec::new(),
        services: BTreeMap::new(),
    };

    // Networks the services use (a service without networks joins `default`).
    let mut used_networks: Vec<String> = Vec::new();
    for svc in compose.services.values() {
        if svc.networks.is_empty() {
            used_networks.push("default".into());
        }
        used_networks.extend(svc.networks.keys().cloned());
    }
    used_networks.sort();
    used_networks.dedup();
    for key in &used_networks {
        let def = compose.networks.get(key);
        if def.is_none() && key != "default" {
            return Err(EngineError::Invalid(format!(
                "a service uses network {key:?}, which the stack does not define"
            )));
        }
        let def = def.cloned().unwrap_or_default();
        if def.external {
            plan.external_networks.push(if def.name.is_empty() {
                key.clone()
            } else {
                def.name.clone()
            });
            continue;
        }
        let name = if def.name.is_empty() {
            scope(stack, key)
        } else {
            def.name.clone()
        };
        let ipam = (!def.ipam.is_zero()).then(|| Ipam {
            driver: (!def.ipam.driver.is_empty()).then(|| def.ipam.driver.clone()),
            config: Some(
                def.ipam
                    .config
                    .iter()
                    .map(|p| IpamConfig {
                        subnet: Some(p.subnet.clone()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            options: None,
        });
        plan.networks.push(NetworkPlan {
            name: name.clone(),
            spec: NetworkCreateRequest {
                name,
                driver: Some(if def.driver.is_empty() {
                    "overlay".into()
                } else {
                    def.driver.clone()
                }),
                internal: Some(def.internal),
                attachable: Some(def.attachable),
                ipam,
                options: (!def.driver_opts.is_empty())
                    .then(|| def.driver_opts.clone().into_iter().collect()),
                labels: Some(stack_labels(stack, &def.labels)),
                ..Default::default()
            },
        });
    }

    // Configs and secrets the services use.
    let mut used_configs: Vec<&str> = compose
        .services
        .values()
        .flat_map(|s| s.configs.iter().map(|r| r.source.as_str()))
        .collect();
    used_configs.sort();
    used_configs.dedup();
    for key in used_configs {
        let def = compose.configs.get(key).ok_or_else(|| {
            EngineError::Invalid(format!(
                "a service uses config {key:?}, which the stack does not define"
            ))
        })?;
        let name = if def.name.is_empty() {
            scope(stack, key)
        } else {
            def.name.clone()
        };
        if def.external {
            plan.external_configs.push(name);
            continue;
        }
        let data = files.get(&def.file).ok_or_else(|| {
            EngineError::Invalid(format!(
                "config {key}: file {:?} is not in recipe {} at {}",
                def.file, files.recipe, files.origin
            ))
        })?;
        plan.configs.push(ConfigPlan {
            key: key.to_string(),
            name: name.clone(),
            data: data.to_vec(),
            spec: ConfigSpec {
                name: Some(name),
                labels: Some(stack_labels(stack, &def.labels)),
                data: Some(base64::engine::general_purpose::STANDARD.encode(data)),
                templating: (!def.template_driver.is_empty()).then(|| Driver {
                    name: def.template_driver.clone(),
                    options: None,
                }),
            },
        });
    }
    let mut used_secrets: Vec<String> = Vec::new();
    for svc in compose.services.values() {
        for r in &svc.secrets {
            let def = compose.secrets.get(&r.source).ok_or_else(|| {
                EngineError::Invalid(format!(
                    "a service uses secret {:?}, which the stack does not define",
                    r.source
                ))
            })?;
            used_secrets.push(if def.name.is_empty() {
                scope(stack, &r.source)
            } else {
                def.name.clone()
            });
        }
    }
    used_secrets.sort();
    used_secrets.dedup();
    plan.secrets = used_secrets;

    for (name, svc) in &compose.services {
        let spec = service_spec(stack, name, svc, compose, extra_labels)?;
        plan.services.insert(name.clone(), spec);
    }
    Ok(plan)
}

fn file_ref_name(
    stack: &str,
    source: &str,
    defs: &BTreeMap<String, compose::FileObject>,
) -> String {
    match defs.get(source) {
        Some(d) if !d.name.is_empty() => d.name.clone(),
        _ => scope(stack, source),
    }
}

/// Where a secret or config lands in the container, with Docker's defaults: the source name,
/// owner `0:0`, mode `0444`.
fn file_target(r: &compose::FileRef) -> (String, String, String, u32) {
    let or = |v: &str, d: &str| {
        if v.is_empty() {
            d.to_string()
        } else {
            v.to_string()
        }
    };
    (
        or(&r.target, &r.source),
        or(&r.uid, "0"),
        or(&r.gid, "0"),
        r.mode.unwrap_or(0o444),
    )
}

fn service_spec(
    stack: &str,
    name: &str,
    svc: &Service,
    compose: &Compose,
    extra_labels: &BTreeMap<String, String>,
) -> Result<ServiceSpec> {
    let mut labels = svc.deploy.labels.clone();
    labels.extend(extra_labels.clone());
    let mut labels = stack_labels(stack, &labels);
    labels.insert("com.docker.stack.image".into(), svc.image.clone());

    let env: Vec<String> = svc
        .environment
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();

    let mut mounts = Vec::new();
    for v in &svc.volumes {
        let mut m = Mount {
            target: Some(v.target.clone()),
            read_only: Some(v.read_only),
            consistency: (!v.consistency.is_empty()).then(|| v.consistency.clone()),
            ..Default::default()
        };
        match v.kind.as_str() {
            "volume" => {
                m.typ = Some(MountType::VOLUME);
                let mut opts = MountVolumeOptions {
                    no_copy: v.volume.as_ref().map(|o| o.nocopy),
                    ..Default::default()
                };
                if !v.source.is_empty() {
                    let def = compose.volumes.get(&v.source).ok_or_else(|| {
                        EngineError::Invalid(format!(
                            "service {name} mounts volume {:?}, which the stack does not define",
                            v.source
                        ))
                    })?;
                    let source = if def.external || !def.name.is_empty() {
                        if def.name.is_empty() {
                            v.source.clone()
                        } else {
                            def.name.clone()
                        }
                    } else {
                        scope(stack, &v.source)
                    };
                    m.source = Some(source);
                    if !def.external {
                        opts.labels = Some(stack_labels(stack, &def.labels));
                        if !def.driver.is_empty() || !def.driver_opts.is_empty() {
                            opts.driver_config = Some(MountVolumeOptionsDriverConfig {
                                name: (!def.driver.is_empty()).then(|| def.driver.clone()),
                                options: (!def.driver_opts.is_empty())
                                    .then(|| def.driver_opts.clone().into_iter().collect()),
                            });
                        }
                    }
                }
                m.volume_options = Some(opts);
            }
            "bind" => {
                if !v.source.starts_with('/') {
                    return Err(EngineError::Invalid(format!(
                        "service {name}: bind mount source {:?} is relative; a server cannot see the \
                         recipe's files, use an absolute path or a config",
                        v.source
                    )));
                }
                m.typ = Some(MountType::BIND);
                m.source = Some(v.source.clone());
                m.bind_options = v.bind.as_ref().map(|b| MountBindOptions {
                    propagation: match b.propagation.as_str() {
                        "private" => Some(MountBindOptionsPropagationEnum::PRIVATE),
                        "rprivate" => Some(MountBindOptionsPropagationEnum::RPRIVATE),
                        "shared" => Some(MountBindOptionsPropagationEnum::SHARED),
                        "rshared" => Some(MountBindOptionsPropagationEnum::RSHARED),
                        "slave" => Some(MountBindOptionsPropagationEnum::SLAVE),
                        "rslave" => Some(MountBindOptionsPropagationEnum::RSLAVE),
                        _ => None,
                    },
                    ..Default::default()
                });
            }
            "tmpfs" => {
                m.typ = Some(MountType::TMPFS);
                m.tmpfs_options = v.tmpfs.as_ref().map(|t| MountTmpfsOptions {
                    size_bytes: (t.size != 0).then_some(t.size),
                    ..Default::default()
                });
            }
            other => {
                return Err(EngineError::Invalid(format!(
                    "service {name}: volume type {other:?} is not supported in a Swarm stack"
                )))
            }
        }
        mounts.push(m);
    }

    let mut secrets: Vec<TaskSpecContainerSpecSecrets> = svc
        .secrets
        .iter()
        .map(|r| {
            let (name, uid, gid, mode) = file_target(r);
            TaskSpecContainerSpecSecrets {
                file: Some(TaskSpecContainerSpecFile {
                    name: Some(name),
                    uid: Some(uid),
                    gid: Some(gid),
                    mode: Some(mode),
                }),
                secret_id: None,
                secret_name: Some(file_ref_name(stack, &r.source, &compose.secrets)),
            }
        })
        .collect();
    secrets.sort_by(|a, b| a.secret_name.cmp(&b.secret_name));
    let mut configs: Vec<TaskSpecContainerSpecConfigs> = svc
        .configs
        .iter()
        .map(|r| {
            let (name, uid, gid, mode) = file_target(r);
            TaskSpecContainerSpecConfigs {
                file: Some(TaskSpecContainerSpecFile1 {
                    name: Some(name),
                    uid: Some(uid),
                    gid: Some(gid),
                    mode: Some(mode),
                }),
                runtime: None,
                config_id: None,
                config_name: Some(file_ref_name(stack, &r.source, &compose.configs)),
            }
        })
        .collect();
    configs.sort_by(|a, b| a.config_name.cmp(&b.config_name));

    let health_check = match &svc.healthcheck {
        None => None,
        Some(h) if h.disable => Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }),
        Some(h) => Some(HealthConfig {
            test: (!h.test.is_empty()).then(|| h.test.clone()),
            interval: h.interval.as_ref().map(nanos),
            timeout: h.timeout.as_ref().map(nanos),
            retries: h.retries.map(|r| r as i64),
            start_period: h.start_period.as_ref().map(nanos),
            start_interval: h.start_interval.as_ref().map(nanos),
        }),
    };

    let mut networks: Vec<NetworkAttachmentConfig> = Vec::new();
    let service_networks: Vec<(String, Option<compose::ServiceNetwork>)> =
        if svc.networks.is_empty() {
            vec![("default".into(), None)]
        } else {
            svc.networks
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
    for (key, opts) in service_networks {
        let def = compose.networks.get(&key).cloned().unwrap_or_default();
        let target = if def.name.is_empty() {
            scope(stack, &key)
        } else {
            def.name.clone()
        };
        let mut aliases = opts.as_ref().map(|o| o.aliases.clone()).unwrap_or_default();
        aliases.push(name.to_string());
        networks.push(NetworkAttachmentConfig {
            target: Some(target),
            aliases: Some(aliases),
            driver_opts: opts
                .filter(|o| !o.driver_opts.is_empty())
                .map(|o| o.driver_opts.into_iter().collect()),
        });
    }
    networks.sort_by(|a, b| a.target.cmp(&b.target));

    let mode = match svc.deploy.mode.as_str() {
        "global" => {
            if svc.deploy.replicas.is_some() {
                return Err(EngineError::Invalid(format!(
                    "service {name}: replicas cannot be used with mode global"
                )));
            }
            ServiceSpecMode {
                global: Some(HashMap::new()),
                ..Default::default()
            }
        }
        "replicated" | "" => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(svc.deploy.replicas.unwrap_or(1) as i64),
            }),
            ..Default::default()
        },
        other => {
            return Err(EngineError::Invalid(format!(
                "service {name}: unknown deploy mode {other:?} (use replicated or global)"
            )))
        }
    };

    let update = |u: &compose::UpdateConfig| ServiceSpecUpdateConfig {
        parallelism: Some(u.parallelism.unwrap_or(1) as i64),
        delay: Some(u.delay.0),
        failure_action: match u.failure_action.as_str() {
            "continue" => Some(ServiceSpecUpdateConfigFailureActionEnum::CONTINUE),
            "pause" => Some(ServiceSpecUpdateConfigFailureActionEnum::PAUSE),
            "rollback" => Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            _ => None,
        },
        monitor: Some(u.monitor.0),
        max_failure_ratio: Some(u.max_failure_ratio),
        order: match u.order.as_str() {
            "start-first" => Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
            "stop-first" => Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST),
            _ => None,
        },
    };
    let rollback = |u: &compose::UpdateConfig| {
        let c = update(u);
        ServiceSpecRollbackConfig {
            parallelism: c.parallelism,
            delay: c.delay,
            failure_action: match u.failure_action.as_str() {
                "continue" => Some(ServiceSpecRollbackConfigFailureActionEnum::CONTINUE),
                "pause" => Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
                _ => None,
            },
            monitor: c.monitor,
            max_failure_ratio: c.max_failure_ratio,
            order: match u.order.as_str() {
                "start-first" => Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
                "stop-first" => Some(ServiceSpecRollbackConfigOrderEnum::STOP_FIRST),
                _ => None,
            },
        }
    };

    let restart_policy = svc
        .deploy
        .restart_policy
        .as_ref()
        .map(|r| TaskSpecRestartPolicy {
            condition: match r.condition.as_str() {
                "none" => Some(TaskSpecRestartPolicyConditionEnum::NONE),
                "on-failure" => Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE),
                "any" => Some(TaskSpecRestartPolicyConditionEnum::ANY),
                _ => None,
            },
            delay: r.delay.as_ref().map(nanos),
            max_attempts: r.max_attempts.map(|m| m as i64),
            window: r.window.as_ref().map(nanos),
        });

    let resources = {
        let r = &svc.deploy.resources;
        let limits = match &r.limits {
            Some(l) => Some(Limit {
                nano_cpus: if l.cpus.is_empty() {
                    None
                } else {
                    Some(parse_cpus(&l.cpus)?)
                },
                memory_bytes: (l.memory.0 != 0).then_some(l.memory.0),
                pids: (l.pids != 0).then_some(l.pids),
            }),
            None => None,
        };
        let reservations = match &r.reservations {
            Some(l) => Some(ResourceObject {
                nano_cpus: if l.cpus.is_empty() {
                    None
                } else {
                    Some(parse_cpus(&l.cpus)?)
                },
                memory_bytes: (l.memory.0 != 0).then_some(l.memory.0),
                generic_resources: None,
            }),
            None => None,
        };
        TaskSpecResources {
            limits,
            reservations,
            ..Default::default()
        }
    };

    let container = TaskSpecContainerSpec {
        image: Some(svc.image.clone()),
        labels: Some(stack_labels(stack, &svc.labels)),
        command: (!svc.entrypoint.is_empty()).then(|| svc.entrypoint.clone()),
        args: (!svc.command.is_empty()).then(|| svc.command.clone()),
        hostname: (!svc.hostname.is_empty()).then(|| svc.hostname.clone()),
        env: (!env.is_empty()).then_some(env),
        dir: (!svc.working_dir.is_empty()).then(|| svc.working_dir.clone()),
        user: (!svc.user.is_empty()).then(|| svc.user.clone()),
        tty: svc.tty.then_some(true),
        open_stdin: svc.stdin_open.then_some(true),
        read_only: svc.read_only.then_some(true),
        mounts: (!mounts.is_empty()).then_some(mounts),
        stop_signal: (!svc.stop_signal.is_empty()).then(|| svc.stop_signal.clone()),
        stop_grace_period: svc.stop_grace_period.as_ref().map(nanos),
        health_check,
        hosts: (!svc.extra_hosts.is_empty()).then(|| {
            svc.extra_hosts
                .iter()
                .filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}")))
                .collect()
        }),
        dns_config: (!svc.dns.is_empty() || !svc.dns_search.is_empty()).then(|| {
            TaskSpecContainerSpecDnsConfig {
                nameservers: Some(svc.dns.clone()),
                search: Some(svc.dns_search.clone()),
                options: None,
            }
        }),
        secrets: (!secrets.is_empty()).then_some(secrets),
        configs: (!configs.is_empty()).then_some(configs),
        init: svc.init,
        sysctls: (!svc.sysctls.is_empty()).then(|| svc.sysctls.clone().into_iter().collect()),
        capability_add: (!svc.cap_add.is_empty()).then(|| svc.cap_add.clone()),
        capability_drop: (!svc.cap_drop.is_empty()).then(|| svc.cap_drop.clone()),
        ulimits: (!svc.ulimits.is_empty()).then(|| {
            svc.ulimits
                .iter()
                .map(|(k, u)| {
                    let (soft, hard) = match u {
                        compose::Ulimit::Single(n) => (*n, *n),
                        compose::Ulimit::Range { soft, hard } => (*soft, *hard),
                    };
                    ResourcesUlimits {
                        name: Some(k.clone()),
                        soft: Some(soft),
                        hard: Some(hard),
                    }
                })
                .collect()
        }),
        ..Default::default()
    };

    let mut ports: Vec<EndpointPortConfig> = svc
        .ports
        .iter()
        .map(|p| EndpointPortConfig {
            name: None,
            protocol: match p.protocol.as_str() {
                "udp" => Some(EndpointPortConfigProtocolEnum::UDP),
                "sctp" => Some(EndpointPortConfigProtocolEnum::SCTP),
                _ => Some(EndpointPortConfigProtocolEnum::TCP),
            },
            target_port: Some(i64::from(p.target)),
            published_port: (p.published != 0).then_some(i64::from(p.published)),
            publish_mode: match p.mode.as_str() {
                "host" => Some(EndpointPortConfigPublishModeEnum::HOST),
                _ => Some(EndpointPortConfigPublishModeEnum::INGRESS),
            },
        })
        .collect();
    ports.sort_by_key(|p| (p.published_port, p.target_port));

    Ok(ServiceSpec {
        name: Some(scope(stack, name)),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(resources),
            restart_policy,
            placement: Some(TaskSpecPlacement {
                constraints: (!svc.deploy.placement.constraints.is_empty())
                    .then(|| svc.deploy.placement.constraints.clone()),
                preferences: (!svc.deploy.placement.preferences.is_empty()).then(|| {
                    svc.deploy
                        .placement
                        .preferences
                        .iter()
                        .map(|p| TaskSpecPlacementPreferences {
                            spread: Some(TaskSpecPlacementSpread {
                                spread_descriptor: Some(p.spread.clone()),
                            }),
                        })
                        .collect()
                }),
                max_replicas: (svc.deploy.placement.max_replicas != 0)
                    .then_some(svc.deploy.placement.max_replicas as i64),
                platforms: None,
            }),
            networks: Some(networks),
            log_driver: svc.logging.as_ref().map(|l| TaskSpecLogDriver {
                name: Some(l.driver.clone()),
                options: Some(l.options.clone().into_iter().collect()),
            }),
            ..Default::default()
        }),
        mode: Some(mode),
        update_config: svc.deploy.update_config.as_ref().map(update),
        rollback_config: svc.deploy.rollback_config.as_ref().map(rollback),
        networks: None,
        endpoint_spec: Some(EndpointSpec {
            mode: match svc.deploy.endpoint_mode.as_str() {
                "dnsrr" => Some(EndpointSpecModeEnum::DNSRR),
                "vip" => Some(EndpointSpecModeEnum::VIP),
                _ => None,
            },
            ports: Some(ports),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cooper_recipe::envfile::EnvFile;
    use cooper_recipe::repo::{Origin, RecipeFiles};

    fn files(compose: &str) -> RecipeFiles {
        RecipeFiles::from_map(
            "t",
            Origin::WorkTree {
                head: None,
                dirty: vec![],
            },
            [
                ("compose.yml".to_string(), compose.as_bytes().to_vec()),
                ("conf.txt".to_string(), b"hello".to_vec()),
            ]
            .into_iter()
            .collect(),
        )
    }

    #[test]
    fn converts_like_docker_stack_deploy() {
        let f = files(
            r#"version: "3.8"
services:
  app:
    image: nginx:1
    entrypoint: ["/entry"]
    command: ["serve"]
    environment: [B=2, A=1, PASS]
    networks: [proxy, internal]
    volumes: ["data:/data", "/etc/hosts:/h:ro"]
    secrets: [db_password]
    configs: [{source: conf, target: /etc/conf, mode: 0400}]
    ports: ["8080:80"]
    deploy:
      labels: [a=b]
      update_config: {order: start-first}
  worker:
    image: busybox:1
networks:
  proxy: {external: true}
  internal:
volumes:
  data:
secrets:
  db_password: {external: true, name: "${STACK_NAME}_db_password_v1"}
configs:
  conf: {name: "${STACK_NAME}_conf_v2", file: conf.txt}
"#,
        );
        let env = EnvFile::parse("DOMAIN=a.example.org\n").unwrap();
        let stack = cooper_recipe::stack::load("a.example.org", &env, &f).unwrap();
        let extra = BTreeMap::from([(
            "coop-cloud.a_example_org.recipe".to_string(),
            "t".to_string(),
        )]);
        let plan = convert("a_example_org", &stack.compose, &f, &extra).unwrap();
        assert_eq!(plan.external_networks, vec!["proxy"]);
        let names: Vec<&str> = plan.networks.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["a_example_org_default", "a_example_org_internal"]
        );
        assert_eq!(plan.secrets, vec!["a_example_org_db_password_v1"]);
        assert_eq!(plan.configs[0].name, "a_example_org_conf_v2");
        assert_eq!(plan.configs[0].data, b"hello");
        let app = &plan.services["app"];
        assert_eq!(app.name.as_deref(), Some("a_example_org_app"));
        let labels = app.labels.as_ref().unwrap();
        assert_eq!(labels[STACK_LABEL], "a_example_org");
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["coop-cloud.a_example_org.recipe"], "t");
        let c = app
            .task_template
            .as_ref()
            .unwrap()
            .container_spec
            .as_ref()
            .unwrap();
        assert_eq!(c.command.as_deref(), Some(&["/entry".to_string()][..]));
        assert_eq!(c.args.as_deref(), Some(&["serve".to_string()][..]));
        assert_eq!(
            c.env.as_deref(),
            Some(&["A=1".to_string(), "B=2".into(), "PASS".into()][..])
        );
        let mounts = c.mounts.as_ref().unwrap();
        assert_eq!(mounts[0].source.as_deref(), Some("a_example_org_data"));
        assert_eq!(mounts[1].typ, Some(MountType::BIND));
        let cfg = &c.configs.as_ref().unwrap()[0];
        assert_eq!(cfg.file.as_ref().unwrap().mode, Some(0o400));
        let sec = &c.secrets.as_ref().unwrap()[0];
        assert_eq!(
            sec.file.as_ref().unwrap().name.as_deref(),
            Some("db_password")
        );
        assert_eq!(sec.file.as_ref().unwrap().mode, Some(0o444));
        let nets = app
            .task_template
            .as_ref()
            .unwrap()
            .networks
            .as_ref()
            .unwrap();
        assert_eq!(nets[0].target.as_deref(), Some("a_example_org_internal"));
        assert_eq!(nets[1].target.as_deref(), Some("proxy"));
        assert_eq!(nets[1].aliases.as_deref(), Some(&["app".to_string()][..]));
        let worker = &plan.services["worker"];
        let wn = worker
            .task_template
            .as_ref()
            .unwrap()
            .networks
            .as_ref()
            .unwrap();
        assert_eq!(wn[0].target.as_deref(), Some("a_example_org_default"));
        assert_eq!(
            worker
                .mode
                .as_ref()
                .unwrap()
                .replicated
                .as_ref()
                .unwrap()
                .replicas,
            Some(1)
        );
    }

    #[test]
    fn relative_bind_mounts_are_refused() {
        let f = files(
            "version: \"3.8\"\nservices:\n  app:\n    image: x\n    volumes: [\"./data:/data\"]\n",
        );
        let env = EnvFile::parse("DOMAIN=a.example.org\n").unwrap();
        let stack = cooper_recipe::stack::load("a.example.org", &env, &f).unwrap();
        let err = convert("a", &stack.compose, &f, &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("relative"), "{err}");
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert!(parse_cpus("lots").is_err());
    }
}
