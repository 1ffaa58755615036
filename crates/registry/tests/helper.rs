//! Credentials from a Docker credential helper (`credHelpers` / `credsStore` in the Docker
//! client config), against a real registry with basic auth: the helper is a program on PATH
//! speaking Docker's helper protocol (`get`, server on stdin, JSON on stdout), asked once per
//! registry however many requests follow. Its own process: it puts the helper on PATH.

use std::os::unix::fs::PermissionsExt;

use cooper_registry::{docker_config, Client, ImageRef, RegistryError};
use cooper_testkit::LocalRegistry;

#[test]
fn a_credential_helper_supplies_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // Set before any thread exists (the runtime is built below).
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(cooper_testkit::ensure_test_images()).unwrap();
    let storage = dir.path().join("storage");
    let open = LocalRegistry::start(dir.path(), &storage, None).unwrap();
    open.push("cooper/helped", &["1.0.0", "1.0.1"]).unwrap();
    let hash = bcrypt::hash_with_result("helper-pass", 5)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("cooper:{hash}\n")).unwrap();
    let locked = LocalRegistry::start(dir.path(), &storage, Some(&htpasswd)).unwrap();
    let host = locked.host();

    let log = dir.path().join("helper.log");
    let helper = bin.join("docker-credential-cooper-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\necho \"$server\" >> {log}\nif [ \"$server\" = {host} ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"cooper\",\"Secret\":\"helper-pass\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let image = ImageRef::parse(&format!("{host}/cooper/helped:1.0.0")).unwrap();
    for (name, config) in [
        (
            "credHelpers",
            format!(r#"{{"credHelpers":{{"{host}":"cooper-test"}}}}"#),
        ),
        ("credsStore", r#"{"credsStore":"cooper-test"}"#.to_string()),
    ] {
        let _ = std::fs::remove_file(&log);
        let cfg = dir.path().join(format!("{name}.json"));
        std::fs::write(&cfg, config).unwrap();
        let client = Client::with_config(docker_config(Some(&cfg)));
        rt.block_on(async {
            let mut tags = client.tags(&image).await.unwrap();
            tags.sort();
            assert_eq!(tags, ["1.0.0", "1.0.1"], "{name}");
            client.resolve(&image).await.unwrap();
            let other = ImageRef::parse(&format!("{host}/cooper/helped:1.0.1")).unwrap();
            client.resolve(&other).await.unwrap();
        });
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!("{host}\n"),
            "{name}: asked once, for this registry"
        );
    }

    // A helper that knows nothing for the registry: denied, with the registry named.
    let cfg = dir.path().join("none.json");
    std::fs::write(
        &cfg,
        r#"{"credHelpers":{"elsewhere.example":"cooper-test"}}"#,
    )
    .unwrap();
    let client = Client::with_config(docker_config(Some(&cfg)));
    let e = rt.block_on(client.tags(&image)).unwrap_err();
    assert!(matches!(e, RegistryError::Denied { .. }), "{e}");
    assert!(e.to_string().contains(&host), "{e}");
}
