//! The registry client against a real registry: Debian's `docker-registry` (distribution 2.8)
//! on loopback, with images built and pushed here. Tags (including odd shapes), digests equal
//! to what the engine recorded at push, a multi-arch index, basic auth (a second registry
//! over the same storage with htpasswd), errors, and the per-client cache (each tag resolved
//! once). Needs `scripts/setup-swarm` (installs docker-registry).

use std::collections::HashMap;

use cooper_registry::{Client, Credentials, ImageRef, RegistryError};
use cooper_testkit::{docker, LocalRegistry};

const TAGS: &[&str] = &[
    "1.27.1-alpine",
    "1.27.2-alpine",
    "1.28.0-alpine",
    "1.27.2",
    "latest",
];

#[tokio::test(flavor = "multi_thread")]
async fn tags_digests_indexes_and_auth_against_a_real_registry() {
    let d = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0"])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let open = LocalRegistry::start(dir.path(), &storage, None).unwrap();
    let host = open.host();
    open.push("cooper/web", TAGS).unwrap();

    let client = Client::default();
    let image = ImageRef::parse(&format!("{host}/cooper/web:1.27.2-alpine")).unwrap();
    let mut tags = client.tags(&image).await.unwrap();
    tags.sort();
    let mut want: Vec<String> = TAGS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(tags, want);

    // The digest is the one the engine recorded when it pushed.
    let resolved = client.resolve(&image).await.unwrap();
    let repo_digest = docker(&[
        "inspect",
        "--format",
        "{{range .RepoDigests}}{{println .}}{{end}}",
        &format!("{host}/cooper/web:1.27.2-alpine"),
    ]);
    assert!(
        repo_digest.lines().any(|l| l.ends_with(&resolved.digest)),
        "{repo_digest} vs {}",
        resolved.digest
    );
    assert!(resolved.platforms.is_empty());

    // Resolved once per client: asking again costs no request.
    let trips = client.round_trips();
    client.resolve(&image).await.unwrap();
    assert_eq!(client.round_trips(), trips);

    // A multi-arch index (two platforms), put by hand through the API.
    let manifest_url = format!("http://{host}/v2/cooper/web/manifests/1.27.2-alpine");
    let http = reqwest::Client::new();
    let m = http
        .get(&manifest_url)
        .header("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    let media_type = m.headers()["content-type"].to_str().unwrap().to_string();
    let size = m.bytes().await.unwrap().len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": media_type, "digest": resolved.digest, "size": size,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": media_type, "digest": resolved.digest, "size": size,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
        ]
    });
    let put = http
        .put(format!("http://{host}/v2/cooper/web/manifests/multi"))
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .body(index.to_string())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{:?}", put.text().await);
    let multi = client
        .resolve(&ImageRef::parse(&format!("{host}/cooper/web:multi")).unwrap())
        .await
        .unwrap();
    assert!(multi.media_type.contains("index"), "{multi:?}");
    assert_ne!(multi.digest, resolved.digest);
    assert_eq!(
        multi.platforms,
        vec![
            ("linux/amd64".to_string(), resolved.digest.clone()),
            ("linux/arm64/v8".to_string(), resolved.digest.clone()),
        ]
    );
    // A pin resolves to itself.
    let pinned = client
        .resolve(
            &ImageRef::parse(&format!(
                "{host}/cooper/web:1.27.2-alpine@{}",
                resolved.digest
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(pinned.digest, resolved.digest);

    // Errors say what is missing.
    let e = client
        .resolve(&ImageRef::parse(&format!("{host}/cooper/web:9.9.9")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e}");

    // Basic auth: a second registry over the same storage, with a password.
    let hash = bcrypt::hash_with_result("s3cret-pass", 5)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("cooper:{hash}\n")).unwrap();
    let locked = LocalRegistry::start(dir.path(), &storage, Some(&htpasswd)).unwrap();
    let lhost = locked.host();
    let limage = ImageRef::parse(&format!("{lhost}/cooper/web:1.28.0-alpine")).unwrap();
    let e = Client::default().tags(&limage).await.unwrap_err();
    assert!(matches!(e, RegistryError::Denied { .. }), "{e}");
    assert!(e.to_string().contains("check the credentials"), "{e}");
    let wrong = Client::new(HashMap::from([(
        lhost.clone(),
        Credentials {
            username: "cooper".into(),
            password: "nope".into(),
        },
    )]));
    assert!(matches!(
        wrong.tags(&limage).await.unwrap_err(),
        RegistryError::Denied { .. }
    ));
    let right = Client::new(HashMap::from([(
        lhost.clone(),
        Credentials {
            username: "cooper".into(),
            password: "s3cret-pass".into(),
        },
    )]));
    assert_eq!(right.tags(&limage).await.unwrap().len(), TAGS.len() + 1);
    assert_eq!(
        right.resolve(&limage).await.unwrap().digest,
        resolved.digest
    );
    assert!(!format!(
        "{:?}",
        Credentials {
            username: "u".into(),
            password: "s3cret-pass".into()
        }
    )
    .contains("s3cret"));
    for t in TAGS {
        docker(&["rmi", &format!("{host}/cooper/web:{t}")]);
    }
}

/// Token auth as Docker Hub, GHCR and Gitea do it: a 401 with a `Bearer realm=…,service=…,
/// scope=…` challenge, a token from the realm (with basic credentials when given), then the
/// request again with the token. No token-issuing registry is reachable here, so this speaks
/// to a minimal stand-in server that follows that exchange (Docker's token spec).
#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_challenge_is_answered() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                break;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                loop {
                    let Ok(Some(request)) = lines.next_line().await else {
                        break;
                    };
                    let mut auth = String::new();
                    while let Ok(Some(h)) = lines.next_line().await {
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h
                            .strip_prefix("authorization: ")
                            .or_else(|| h.strip_prefix("Authorization: "))
                        {
                            auth = v.to_string();
                        }
                    }
                    log.lock().unwrap().push(format!("{request} | {auth}"));
                    let (status, extra, body) = if request.starts_with("GET /token") {
                        if auth.starts_with("Basic ")
                            && request.contains("scope=repository%3Aacme%2Fapp%3Apull")
                        {
                            (
                                "200 OK",
                                String::new(),
                                r#"{"token":"tok-123"}"#.to_string(),
                            )
                        } else {
                            ("401 Unauthorized", String::new(), "{}".to_string())
                        }
                    } else if auth == "Bearer tok-123" {
                        (
                            "200 OK",
                            String::new(),
                            r#"{"name":"acme/app","tags":["1.0","1.1"]}"#.to_string(),
                        )
                    } else {
                        (
                            "401 Unauthorized",
                            format!("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\",scope=\"repository:acme/app:pull\"\r\n"),
                            "{}".to_string(),
                        )
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
                        body.len()
                    );
                    if w.write_all(resp.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let host = format!("127.0.0.1:{port}");
    let image = ImageRef::parse(&format!("{host}/acme/app:1.0")).unwrap();
    let client = Client::new(HashMap::from([(
        host.clone(),
        Credentials {
            username: "bot".into(),
            password: "pw".into(),
        },
    )]));
    assert_eq!(client.tags(&image).await.unwrap(), vec!["1.0", "1.1"]);
    let log = seen.lock().unwrap().clone();
    assert_eq!(log.len(), 3, "{log:#?}");
    assert!(log[0].starts_with("GET /v2/acme/app/tags/list"), "{log:#?}");
    assert!(
        log[1].starts_with("GET /token?service=test-registry&scope=repository"),
        "{log:#?}"
    );
    assert!(log[2].ends_with("| Bearer tok-123"), "{log:#?}");
    // The token is kept: the next request needs no new challenge.
    client.tags(&image).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 4);
    assert_eq!(client.round_trips(), 4);
}
