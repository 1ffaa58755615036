//! The address check against a real DNS server on loopback (Debian's dnsmasq, installed by
//! scripts/setup-swarm): a name that points at its server, one that points elsewhere, one that
//! does not exist, a server known by its own name, a server whose addresses are unknown.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use cooper_web::dns::{Dns, Status};

#[tokio::test]
async fn an_address_is_checked_against_a_real_dns_server() {
    let server = cooper_testkit::Dnsmasq::start(&[
        "--address=/radio.coop.test/127.0.0.1",
        "--address=/elsewhere.coop.test/10.9.9.9",
        "--host-record=swarm.coop.test,127.0.0.2",
    ]);
    let at = server.at;
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    let dns = Dns::new(Some(at), &[("default".to_string(), local)]).unwrap();
    // dnsmasq answers once it listens (bounded wait, no guessed sleep).
    let start = Instant::now();
    let ok = loop {
        let c = dns.check("radio.coop.test", "default").await;
        if c.ok() || start.elapsed() > Duration::from_secs(20) {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ok.status, Status::Points, "{}", ok.describe());
    assert_eq!(ok.records, vec!["radio.coop.test. A 127.0.0.1"]);
    assert!(ok.describe().contains("ready"));

    let away = dns.check("elsewhere.coop.test", "default").await;
    assert_eq!(
        away.status,
        Status::Elsewhere(vec!["10.9.9.9".parse().unwrap()])
    );
    assert!(
        away.describe().contains("resolves to 10.9.9.9"),
        "{}",
        away.describe()
    );

    let gone = dns.check("gone.coop.test", "default").await;
    assert!(
        matches!(gone.status, Status::Missing(_)),
        "{:?}",
        gone.status
    );
    assert!(gone.describe().contains("does not resolve yet"));
    assert_eq!(gone.records, vec!["gone.coop.test. A 127.0.0.1"]);

    // A server known by its name: its records come from DNS too.
    let named = dns.check("radio.coop.test", "swarm.coop.test").await;
    assert_eq!(named.records, vec!["radio.coop.test. A 127.0.0.2"]);
    assert_eq!(named.status, Status::Elsewhere(vec![local]));

    let unknown = dns.check("radio.coop.test", "nowhere.coop.test").await;
    assert!(matches!(unknown.status, Status::ServerUnknown(_)));
    assert!(unknown
        .describe()
        .contains("--server-address nowhere.coop.test=IP"));
}
