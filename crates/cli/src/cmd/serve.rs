//! `cooper serve`: the dashboard. Opens the store, marks jobs cut off by the last stop as
//! interrupted (their cleanup runs), prints a one-time setup token while nobody administers,
//! and serves until Ctrl-C or SIGTERM.

use std::io::BufRead;
use std::net::SocketAddr;

use anyhow::{bail, Context};
use clap::Args;

use crate::Ctx;

#[derive(Debug, Args)]
pub struct Serve {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// The store: `sqlite://<path>` or `postgres://user:password@host/db` (default: SQLite at
    /// `$ABRA_DIR/cooper/cooper.db`). Read from the environment, so a password stays out of argv.
    #[arg(
        long,
        env = "COOPER_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    database: Option<String>,
    /// Session cookies without `Secure`, for plain HTTP; only on a loopback address (behind a
    /// TLS proxy, leave it off).
    #[arg(long)]
    insecure_http: bool,
    /// Make a federation admin with this email and stop (the password is read from standard
    /// input, never from the command line).
    #[arg(long, value_name = "EMAIL")]
    create_admin: Option<String>,
    /// The admin's display name (with `--create-admin`).
    #[arg(long, value_name = "NAME", default_value = "Administrator")]
    admin_name: String,
    /// How many jobs run at once.
    #[arg(long, default_value_t = 2, value_name = "N")]
    workers: usize,
    /// How long one look at a server's engine is shared by every viewer, in milliseconds.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    live_ttl_ms: u64,
    /// The dashboard's address as people reach it (`https://dash.example.org`): used in the
    /// links it hands out and as the OpenID redirect (`<URL>/oidc/callback`). Default: read
    /// off each request.
    #[arg(long, env = "COOPER_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Log in with an OpenID Connect provider too (a co-op's Keycloak, Authentik, …): its
    /// issuer URL. People log in as the account with the same *verified* email; nobody gets
    /// an account from it (invitations make accounts).
    #[arg(long, env = "COOPER_OIDC_ISSUER", value_name = "URL")]
    oidc_issuer: Option<String>,
    /// The client id registered at the provider (with `--oidc-issuer`).
    #[arg(long, env = "COOPER_OIDC_CLIENT_ID", value_name = "ID")]
    oidc_client_id: Option<String>,
    /// A file holding the client secret (a Swarm secret); or set `COOPER_OIDC_CLIENT_SECRET`.
    /// Never on the command line.
    #[arg(long, env = "COOPER_OIDC_CLIENT_SECRET_FILE", value_name = "PATH")]
    oidc_client_secret_file: Option<std::path::PathBuf>,
    /// How often the scheduler looks for runs that are due, in milliseconds (0: no scheduler
    /// in this process; another `cooper serve` on the same store may plan).
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    schedule_tick_ms: u64,
    /// The lowest `recipe test` level a release needs before upgrade checks offer it (0: any).
    #[arg(long, default_value_t = 0, value_name = "LEVEL")]
    min_test_level: u8,
    /// The image the deployment tests' HTTP probes run in (needs busybox `wget`), for test
    /// jobs and provisioning.
    #[arg(long, env = "COOPER_PROBE_IMAGE", default_value = cooper_ops::test::DEFAULT_PROBE_IMAGE)]
    probe_image: String,
    /// The DNS server the address checks ask (`IP:PORT`; default: the system's resolver).
    #[arg(long, value_name = "IP:PORT")]
    dns_server: Option<std::net::SocketAddr>,
    /// A server's public address, for the DNS records and checks of the instances placed
    /// on it, when its name does not resolve to it (repeatable): `default=203.0.113.5`.
    #[arg(long = "server-address", value_name = "NAME=IP", value_parser = cooper_web::dns::parse_server_address)]
    server_addresses: Vec<(String, std::net::IpAddr)>,
    /// The SMTP server notifications leave by: `smtp://user@host:587` (STARTTLS required),
    /// `smtps://user@host:465` (TLS from the start), or `smtp+insecure://127.0.0.1:25` (no TLS;
    /// loopback only). The password comes from `COOPER_SMTP_PASSWORD` or
    /// `--smtp-password-file`, never the URL.
    #[arg(long, env = "COOPER_SMTP_URL", value_name = "URL")]
    smtp_url: Option<String>,
    /// A file holding the SMTP password (a Swarm secret).
    #[arg(long, env = "COOPER_SMTP_PASSWORD_FILE", value_name = "PATH")]
    smtp_password_file: Option<std::path::PathBuf>,
    /// The sender of notifications: `cooper <dashboard@coop.example>`.
    #[arg(long, env = "COOPER_SMTP_FROM", value_name = "ADDRESS")]
    smtp_from: Option<String>,
    /// A CA certificate (PEM) to trust for the SMTP server (a co-op's own CA).
    #[arg(long, env = "COOPER_SMTP_CA_FILE", value_name = "PATH")]
    smtp_ca_file: Option<std::path::PathBuf>,
    /// How often due notifications are sent, in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    notify_every_ms: u64,
    /// What the login button names: "Log in with <LABEL>".
    #[arg(
        long,
        env = "COOPER_OIDC_LABEL",
        value_name = "LABEL",
        default_value = "your co-op's account"
    )]
    oidc_label: String,
}

impl Serve {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        if self.insecure_http && !self.listen.ip().is_loopback() {
            bail!(
                "--insecure-http is only allowed on a loopback address ({} is not): put cooper serve behind a TLS proxy (Traefik on Co-op Cloud) and drop --insecure-http",
                self.listen
            );
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        rt.block_on(self.serve(ctx))
    }

    async fn serve(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let store = open_store(self.database.as_deref(), ctx).await?;
        if let Some(email) = &self.create_admin {
            let password = read_password(ctx)?;
            let p = cooper_web::create_admin(&store, email, &self.admin_name, &password).await?;
            println!(
                "federation admin {} created; start `cooper serve` and log in",
                p.email
            );
            return Ok(0);
        }
        let config = cooper_web::Config {
            insecure_http: self.insecure_http,
            workers: self.workers,
            live_ttl: std::time::Duration::from_millis(self.live_ttl_ms),
            public_url: self.public_url()?,
            oidc: self.oidc()?,
            schedule_tick: (self.schedule_tick_ms > 0)
                .then(|| std::time::Duration::from_millis(self.schedule_tick_ms)),
            min_level: self.min_test_level,
            probe_image: self.probe_image.clone(),
            dns_server: self.dns_server,
            server_addresses: self.server_addresses.clone(),
            smtp: self.smtp()?,
            notify_every: std::time::Duration::from_millis(self.notify_every_ms.max(100)),
            ..Default::default()
        };
        let state = cooper_web::Inner::new(store, ctx.abra.clone(), config);
        let started = cooper_web::start(&state).await?;
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .with_context(|| {
                format!(
                    "listening on {} (is another program using it? choose another with --listen)",
                    self.listen
                )
            })?;
        let addr = listener.local_addr()?;
        let shown = if addr.ip().is_loopback() {
            format!("http://localhost:{}/", addr.port())
        } else {
            format!("http://{addr}/ (serve it behind a TLS proxy)")
        };
        println!("cooper serve: listening on {shown}");
        if started.interrupted > 0 {
            println!(
                "cooper serve: {} job(s) were running at the last stop: marked interrupted, cleanup ran (see their pages)",
                started.interrupted
            );
        }
        if let Some(token) = &started.setup_token {
            println!(
                "cooper serve: nobody administers this dashboard yet. Open {}setup and give this one-time setup token (valid 24 h):\n\n    {token}\n",
                shown.split(' ').next().unwrap_or_default()
            );
        }
        println!("cooper serve: ready (Ctrl-C stops it)");
        use std::io::Write;
        std::io::stdout().flush()?;
        cooper_web::serve(listener, state, shutdown()).await?;
        println!("cooper serve: stopped");
        Ok(0)
    }
}

impl Serve {
    fn public_url(&self) -> anyhow::Result<Option<String>> {
        let Some(raw) = &self.public_url else {
            return Ok(None);
        };
        let u = url::Url::parse(raw).with_context(|| {
            format!("--public-url {raw:?} is not a URL: give the address people open, e.g. https://dash.example.org")
        })?;
        let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match u.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => bail!("--public-url {raw:?}: use https:// (plain http only for localhost)"),
        }
        if u.path() != "/" || u.query().is_some() {
            bail!("--public-url {raw:?}: give only scheme and host (cooper serve answers at the root)");
        }
        Ok(Some(raw.trim_end_matches('/').to_string()))
    }

    fn smtp(&self) -> anyhow::Result<Option<cooper_web::notify::SmtpConfig>> {
        let Some(raw) = &self.smtp_url else {
            return Ok(None);
        };
        let u = url::Url::parse(raw).with_context(|| {
            format!("--smtp-url {raw:?} is not a URL: give smtp://user@mail.example.org:587")
        })?;
        if u.password().is_some() {
            bail!("--smtp-url carries a password: remove it from the URL and set COOPER_SMTP_PASSWORD (or --smtp-password-file), so it stays out of argv");
        }
        let host = u
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("--smtp-url {raw:?} names no host"))?
            .to_string();
        let (tls, default_port) = match u.scheme() {
            "smtp" => ("starttls", 587),
            "smtps" => ("tls", 465),
            "smtp+insecure" => {
                let loopback = host == "localhost"
                    || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    bail!("--smtp-url {raw:?}: plain SMTP without TLS only to a relay on this machine (127.0.0.1); use smtp:// (STARTTLS) or smtps://");
                }
                ("none", 25)
            }
            other => bail!("--smtp-url: unknown scheme {other:?}: use smtp:// (STARTTLS), smtps:// or smtp+insecure:// (loopback)"),
        };
        let password = match (
            &self.smtp_password_file,
            std::env::var("COOPER_SMTP_PASSWORD"),
        ) {
            (Some(_), Ok(_)) => {
                bail!("both --smtp-password-file and COOPER_SMTP_PASSWORD are set: keep one")
            }
            (Some(f), Err(_)) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading --smtp-password-file {}", f.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            (None, Ok(p)) => Some(p),
            (None, Err(_)) => None,
        };
        let user = (!u.username().is_empty()).then(|| {
            url::form_urlencoded::parse(format!("u={}", u.username()).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        });
        if user.is_some() != password.is_some() {
            bail!("--smtp-url: give both a user (in the URL) and a password (COOPER_SMTP_PASSWORD), or neither");
        }
        let from = self.smtp_from.clone().ok_or_else(|| {
            anyhow::anyhow!("--smtp-url needs --smtp-from (the sender, e.g. \"cooper <dashboard@coop.example>\")")
        })?;
        cooper_web::notify::check_address(&from)
            .map_err(|e| anyhow::anyhow!("--smtp-from {from:?} is not an address: {e}"))?;
        let ca_pem = match &self.smtp_ca_file {
            Some(f) => Some(
                std::fs::read(f)
                    .with_context(|| format!("reading --smtp-ca-file {}", f.display()))?,
            ),
            None => None,
        };
        Ok(Some(cooper_web::notify::SmtpConfig {
            host,
            port: u.port().unwrap_or(default_port),
            tls: tls.into(),
            user,
            password,
            from,
            ca_pem,
        }))
    }

    fn oidc(&self) -> anyhow::Result<Option<std::sync::Arc<cooper_web::oidc::Oidc>>> {
        let Some(issuer) = &self.oidc_issuer else {
            if self.oidc_client_id.is_some() {
                bail!("--oidc-client-id without --oidc-issuer: name the provider too");
            }
            return Ok(None);
        };
        let Some(client_id) = &self.oidc_client_id else {
            bail!("--oidc-issuer needs --oidc-client-id (the client registered at the provider)");
        };
        let client_secret = match (
            &self.oidc_client_secret_file,
            std::env::var("COOPER_OIDC_CLIENT_SECRET"),
        ) {
            (Some(_), Ok(_)) => bail!(
                "both --oidc-client-secret-file and COOPER_OIDC_CLIENT_SECRET are set: keep one"
            ),
            (Some(file), Err(_)) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| {
                        format!("reading --oidc-client-secret-file {}", file.display())
                    })?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            (None, Ok(secret)) => Some(secret),
            (None, Err(_)) => None,
        };
        let oidc = cooper_web::oidc::Oidc::new(cooper_web::oidc::OidcConfig {
            // Exactly as given: the ID token's `iss` must match it to the character.
            issuer: issuer.clone(),
            client_id: client_id.clone(),
            client_secret: client_secret.filter(|s| !s.is_empty()),
            label: self.oidc_label.clone(),
        })?;
        Ok(Some(std::sync::Arc::new(oidc)))
    }
}

/// The store of `--database` (or `COOPER_DATABASE`), else `$ABRA_DIR/cooper/cooper.db`.
pub(crate) async fn open_store(
    database: Option<&str>,
    ctx: &Ctx,
) -> anyhow::Result<cooper_store::Store> {
    Ok(match database {
        Some(url) => cooper_store::Store::open(&with_password_file(url)?).await?,
        None => cooper_store::Store::open_default(&ctx.abra.root).await?,
    })
}

/// A Postgres URL without a password gets the one in `COOPER_DATABASE_PASSWORD_FILE` (a Swarm
/// secret), so the password never stands in argv, the environment or a label.
fn with_password_file(url: &str) -> anyhow::Result<String> {
    let Some(file) = std::env::var_os("COOPER_DATABASE_PASSWORD_FILE") else {
        return Ok(url.to_string());
    };
    let password = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "reading COOPER_DATABASE_PASSWORD_FILE ({})",
            file.to_string_lossy()
        )
    })?;
    with_password(url, password.trim_end_matches(['\n', '\r']))
}

fn with_password(url: &str, password: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).with_context(|| {
        "--database: give postgres://user@host/db with COOPER_DATABASE_PASSWORD_FILE"
    })?;
    if parsed.username().is_empty() {
        bail!("--database: name the user (postgres://user@host/db) when the password comes from COOPER_DATABASE_PASSWORD_FILE");
    }
    if parsed.password().is_some() {
        bail!("--database already has a password and COOPER_DATABASE_PASSWORD_FILE gives another: keep one");
    }
    parsed
        .set_password(Some(password))
        .map_err(|()| anyhow::anyhow!("--database: this URL cannot carry a password"))?;
    Ok(parsed.to_string())
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// The new admin's password: one line of standard input (asked for on a terminal).
fn read_password(ctx: &Ctx) -> anyhow::Result<String> {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if tty && !ctx.no_input {
        eprint!("password for the new admin (at least 12 characters; it shows as you type): ");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("no password on standard input: run `printf '%s\\n' \"$PASSWORD\" | cooper serve --create-admin <email>`");
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::{with_password, Serve};
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        serve: Serve,
    }

    fn parse(args: &[&str]) -> Serve {
        T::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .unwrap()
            .serve
    }

    #[test]
    fn the_public_url_is_checked() {
        let ok = parse(&["--public-url", "https://dash.example.org/"]);
        assert_eq!(
            ok.public_url().unwrap().as_deref(),
            Some("https://dash.example.org")
        );
        assert!(parse(&["--public-url", "http://localhost:8080"])
            .public_url()
            .is_ok());
        let e = parse(&["--public-url", "http://dash.example.org"])
            .public_url()
            .unwrap_err()
            .to_string();
        assert!(e.contains("use https://"), "{e}");
        let e = parse(&["--public-url", "https://dash.example.org/app"])
            .public_url()
            .unwrap_err()
            .to_string();
        assert!(e.contains("only scheme and host"), "{e}");
        let e = parse(&["--public-url", "dash.example.org"])
            .public_url()
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a URL"), "{e}");
    }

    #[test]
    fn smtp_settings_are_checked() {
        let e = parse(&["--smtp-url", "smtp://u:pw@mail.example.org"])
            .smtp()
            .unwrap_err()
            .to_string();
        assert!(e.contains("COOPER_SMTP_PASSWORD"), "{e}");
        let e = parse(&["--smtp-url", "smtp+insecure://mail.example.org"])
            .smtp()
            .unwrap_err()
            .to_string();
        assert!(e.contains("only to a relay on this machine"), "{e}");
        let e = parse(&["--smtp-url", "smtp://mail.example.org"])
            .smtp()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--smtp-from"), "{e}");
        let e = parse(&[
            "--smtp-url",
            "smtp://mail.example.org",
            "--smtp-from",
            "not an address",
        ])
        .smtp()
        .unwrap_err()
        .to_string();
        assert!(e.contains("is not an address"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let c = parse(&[
            "--smtp-url",
            "smtp://dash%40coop.example@mail.example.org",
            "--smtp-password-file",
            pw.to_str().unwrap(),
            "--smtp-from",
            "cooper <dash@coop.example>",
        ])
        .smtp()
        .unwrap()
        .unwrap();
        assert_eq!((c.port, c.tls.as_str()), (587, "starttls"));
        assert_eq!(c.user.as_deref(), Some("dash@coop.example"));
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let e = parse(&[
            "--smtp-url",
            "smtps://mail.example.org",
            "--smtp-password-file",
            pw.to_str().unwrap(),
            "--smtp-from",
            "a@b.example",
        ])
        .smtp()
        .unwrap_err()
        .to_string();
        assert!(e.contains("both a user"), "{e}");
    }

    #[test]
    fn openid_needs_issuer_and_client_together() {
        let e = parse(&["--oidc-issuer", "https://id.example.org"])
            .oidc()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--oidc-client-id"), "{e}");
        let e = parse(&["--oidc-client-id", "cooper"])
            .oidc()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--oidc-issuer"), "{e}");
        let e = parse(&["--oidc-issuer", "not a url", "--oidc-client-id", "c"])
            .oidc()
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a URL"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        let o = parse(&[
            "--oidc-issuer",
            "https://id.example.org/realms/coop",
            "--oidc-client-id",
            "cooper",
            "--oidc-client-secret-file",
            file.to_str().unwrap(),
        ])
        .oidc()
        .unwrap()
        .expect("configured");
        assert_eq!(o.config.client_secret.as_deref(), Some("s3cret"));
        assert_eq!(o.config.issuer, "https://id.example.org/realms/coop");
        assert!(
            !format!("{o:?}").contains("s3cret"),
            "the secret is not in Debug output"
        );
        assert!(parse(&[]).oidc().unwrap().is_none());
    }

    #[test]
    fn the_password_file_goes_into_the_url_encoded() {
        assert_eq!(
            with_password("postgres://cooper@db/cooper", "p@ss w/rd").unwrap(),
            "postgres://cooper:p%40ss%20w%2Frd@db/cooper"
        );
        let e = with_password("postgres://db/cooper", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("name the user"), "{e}");
        let e = with_password("postgres://u:p@db/c", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("keep one"), "{e}");
    }
}
