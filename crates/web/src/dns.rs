//! An instance's address: the DNS records to create so it reaches its server, and a live
//! check that they do. A server's addresses are what its name resolves to, or what the
//! operator gave with `cooper serve --server-address NAME=IP` (servers named `default` or
//! reached by a private name). Lookups go to the system's resolver, or to
//! `--dns-server IP:PORT`; they are bounded (2 s, one try) and never cached, so a record just
//! made is seen at once.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{Resolver, TokioResolver};

/// What a live check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The name resolves, only to the server's addresses.
    Points,
    /// The name resolves, but (also) elsewhere.
    Elsewhere(Vec<IpAddr>),
    /// The name does not resolve (yet); why.
    Missing(String),
    /// The server's own addresses are unknown; why.
    ServerUnknown(String),
}

/// The records to make and what the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub domain: String,
    pub server: String,
    /// Zone-file lines: `radio.example.org. A 203.0.113.5`.
    pub records: Vec<String>,
    pub status: Status,
}

impl Check {
    /// One sentence for people.
    pub fn describe(&self) -> String {
        match &self.status {
            Status::Points => format!(
                "{} resolves to server {}: it is ready.",
                self.domain, self.server
            ),
            Status::Elsewhere(found) => format!(
                "{} resolves to {}, not (only) to server {}: change its records to the ones below.",
                self.domain,
                found
                    .iter()
                    .map(|ip| ip.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.server
            ),
            Status::Missing(why) => format!(
                "{} does not resolve yet ({why}): create the records below.",
                self.domain
            ),
            Status::ServerUnknown(why) => format!(
                "The addresses of server {} are not known ({why}): give them with `cooper serve --server-address {}=IP`.",
                self.server, self.server
            ),
        }
    }

    pub fn ok(&self) -> bool {
        self.status == Status::Points
    }
}

pub struct Dns {
    resolver: TokioResolver,
    addresses: BTreeMap<String, Vec<IpAddr>>,
}

impl Dns {
    /// A resolver asking `server` (or the system's resolver), with the servers' addresses
    /// the operator gave.
    pub fn new(server: Option<SocketAddr>, addresses: &[(String, IpAddr)]) -> anyhow::Result<Dns> {
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.attempts = 1;
        opts.timeout = Duration::from_secs(2);
        let resolver = match server {
            Some(at) => {
                let group = NameServerConfigGroup::from_ips_clear(&[at.ip()], at.port(), true);
                Resolver::builder_with_config(
                    ResolverConfig::from_parts(None, Vec::new(), group),
                    TokioConnectionProvider::default(),
                )
            }
            None => Resolver::builder_tokio()
                .map_err(|e| anyhow::anyhow!("reading the system's DNS settings: {e}"))?,
        }
        .with_options(opts)
        .build();
        let mut map: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for (name, ip) in addresses {
            map.entry(name.clone()).or_default().push(*ip);
        }
        Ok(Dns {
            resolver,
            addresses: map,
        })
    }

    async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match tokio::time::timeout(Duration::from_secs(3), self.resolver.lookup_ip(fqdn)).await {
            Ok(Ok(found)) => {
                let mut ips: Vec<IpAddr> = found.iter().collect();
                ips.sort();
                ips.dedup();
                Ok(ips)
            }
            Ok(Err(e)) if e.is_nx_domain() => Err("no such name".into()),
            Ok(Err(e)) if e.is_no_records_found() => Err("no address records".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the DNS server did not answer within 3 s".into()),
        }
    }

    /// The server's addresses: given, or what its name resolves to.
    pub async fn server_addresses(&self, server: &str) -> Result<Vec<IpAddr>, String> {
        if let Some(ips) = self.addresses.get(server) {
            return Ok(ips.clone());
        }
        self.lookup(server).await
    }

    /// The records `domain` needs to reach `server`, and whether it does now.
    pub async fn check(&self, domain: &str, server: &str) -> Check {
        let (records, status) = match self.server_addresses(server).await {
            Err(why) => (Vec::new(), Status::ServerUnknown(why)),
            Ok(want) => {
                let records = want
                    .iter()
                    .map(|ip| {
                        let kind = if ip.is_ipv4() { "A" } else { "AAAA" };
                        format!("{domain}. {kind} {ip}")
                    })
                    .collect();
                let status = match self.lookup(domain).await {
                    Err(why) => Status::Missing(why),
                    Ok(found) if !found.is_empty() && found.iter().all(|ip| want.contains(ip)) => {
                        Status::Points
                    }
                    Ok(found) => Status::Elsewhere(found),
                };
                (records, status)
            }
        };
        Check {
            domain: domain.to_string(),
            server: server.to_string(),
            records,
            status,
        }
    }
}

/// `NAME=IP` (from `--server-address`).
pub fn parse_server_address(s: &str) -> Result<(String, IpAddr), String> {
    let (name, ip) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: write it as NAME=IP (default=203.0.113.5)"))?;
    let ip = ip
        .trim()
        .parse::<IpAddr>()
        .map_err(|e| format!("{s:?}: {ip:?} is not an IP address ({e})"))?;
    if name.trim().is_empty() {
        return Err(format!("{s:?}: the server's name is missing before ="));
    }
    Ok((name.trim().to_string(), ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_are_read_as_name_equals_ip() {
        assert_eq!(
            parse_server_address("default=127.0.0.1").unwrap(),
            ("default".to_string(), "127.0.0.1".parse().unwrap())
        );
        assert!(parse_server_address("default")
            .unwrap_err()
            .contains("NAME=IP"));
        assert!(parse_server_address("default=nope")
            .unwrap_err()
            .contains("not an IP address"));
        assert!(parse_server_address("=::1").unwrap_err().contains("name"));
    }
}
