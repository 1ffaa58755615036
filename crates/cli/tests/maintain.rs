//! `cooper recipe upgrade` against a real registry (Debian's docker-registry on loopback):
//! candidates keep the tag's shape, `-m` changes nothing, `-y -n` rewrites the tag and the
//! `@sha256` pin and leaves every other byte of the compose file as it was.

use std::process::{Command, Stdio};

use cooper_testkit::LocalRegistry;

#[test]
fn recipe_upgrade_proposes_by_shape_and_rewrites_only_image_lines() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(cooper_testkit::ensure_test_images()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reg = LocalRegistry::start(dir.path(), &dir.path().join("storage"), None).unwrap();
    let host = reg.host();
    reg.push(
        "cooper/web",
        &[
            "1.27.1-alpine",
            "1.27.2-alpine",
            "2.0.0-alpine",
            "1.28.5",
            "latest",
        ],
    )
    .unwrap();
    // 1.28.0-alpine is a different image, so its digest differs.
    reg.push_image(
        cooper_testkit::RESTIC_IMAGE,
        "cooper/web",
        &["1.28.0-alpine"],
    )
    .unwrap();
    let digest_of = |tag: &str| {
        let client = cooper_registry::Client::default();
        let r = cooper_registry::ImageRef::parse(&format!("{host}/cooper/web:{tag}")).unwrap();
        rt.block_on(client.resolve(&r)).unwrap().digest
    };
    let old_pin = digest_of("1.27.2-alpine");
    let new_pin = digest_of("1.28.0-alpine");
    assert_ne!(old_pin, new_pin);

    let abra = dir.path().join("abra");
    let recipe = abra.join("recipes/up");
    std::fs::create_dir_all(&recipe).unwrap();
    std::fs::create_dir_all(abra.join("servers")).unwrap();
    let compose = format!(
        "---\n# a recipe to upgrade\nservices:\n  app:\n    image: {host}/cooper/web:1.27.1-alpine   # the web app\n    environment:\n      - OTHER={host}/cooper/web:1.27.1-alpine\n  db:\n    image: \"{host}/cooper/web:1.27.2-alpine@{old_pin}\"\n  var:\n    image: ${{IMAGE:-{host}/cooper/web}}:${{WEB_VERSION:-1.27.1}}-alpine\n  set:\n    image: ${{IMAGE:-nginx}}:${{SET_VERSION:-1.0}}\n"
    );
    std::fs::write(recipe.join("compose.yml"), &compose).unwrap();
    std::fs::write(recipe.join(".env.sample"), "TYPE=up\nSET_VERSION=1.0\n").unwrap();
    // An overlay in a subfolder (as bonfire's postgres/compose.postgres.tune.yml).
    std::fs::create_dir_all(recipe.join("extra")).unwrap();
    let overlay = format!("services:\n  app:\n    image: {host}/cooper/web:1.27.1-alpine\n");
    std::fs::write(recipe.join("extra/compose.extra.yml"), &overlay).unwrap();
    cooper_testkit::git(&recipe, &["init", "-q", "-b", "main"]).unwrap();
    cooper_testkit::git(&recipe, &["add", "-A"]).unwrap();
    cooper_testkit::git(&recipe, &["commit", "-q", "-m", "init"]).unwrap();
    let cooper = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args(args)
            .env("ABRA_DIR", &abra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    let out = cooper(&["recipe", "upgrade", "up", "-m"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let app = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["image"].as_str().unwrap().ends_with("1.27.1-alpine"))
        .unwrap();
    let cands: Vec<(String, String)> = app["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c[0].as_str().unwrap().to_string(),
                c[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        cands,
        [
            ("patch".to_string(), "1.27.2-alpine".to_string()),
            ("minor".to_string(), "1.28.0-alpine".to_string()),
            ("major".to_string(), "2.0.0-alpine".to_string()),
        ],
        "never latest, never 1.28.5 (another shape)"
    );
    assert!(app.get("tags").is_none(), "tags only with -a");
    let all: serde_json::Value =
        serde_json::from_slice(&cooper(&["recipe", "upgrade", "up", "-m", "-a"]).stdout).unwrap();
    let app_all = all
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["image"].as_str().unwrap().ends_with("1.27.1-alpine"))
        .unwrap();
    assert_eq!(
        app_all["tags"],
        serde_json::json!([
            "1.27.1-alpine",
            "1.27.2-alpine",
            "1.28.0-alpine",
            "1.28.5",
            "2.0.0-alpine",
            "latest"
        ])
    );
    let var = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["image"].as_str().unwrap().contains("WEB_VERSION"))
        .unwrap();
    assert_eq!(
        var["chosen"]["to"],
        format!("${{IMAGE:-{host}/cooper/web}}:${{WEB_VERSION:-1.27.2}}-alpine"),
        "a version in a variable's default is upgraded there"
    );
    let set = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["image"].as_str().unwrap().contains("SET_VERSION"))
        .unwrap();
    assert!(
        set["note"]
            .as_str()
            .unwrap()
            .contains("SET_VERSION, a setting in .env.sample"),
        "{set}"
    );
    assert_eq!(
        std::fs::read_to_string(recipe.join("compose.yml")).unwrap(),
        compose,
        "-m changes nothing"
    );

    let out = cooper(&["-n", "recipe", "upgrade", "up", "-y"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = compose
        .replace(
            &format!("image: {host}/cooper/web:1.27.1-alpine   #"),
            &format!("image: {host}/cooper/web:1.28.0-alpine   #"),
        )
        .replace(
            &format!("\"{host}/cooper/web:1.27.2-alpine@{old_pin}\""),
            &format!("\"{host}/cooper/web:1.28.0-alpine@{new_pin}\""),
        )
        .replace("${WEB_VERSION:-1.27.1}", "${WEB_VERSION:-1.28.0}");
    assert_eq!(
        std::fs::read_to_string(recipe.join("compose.yml")).unwrap(),
        expected
    );
    assert!(expected.contains(&format!("OTHER={host}/cooper/web:1.27.1-alpine")));
    assert_eq!(
        std::fs::read_to_string(recipe.join("extra/compose.extra.yml")).unwrap(),
        overlay.replace("1.27.1-alpine", "1.28.0-alpine"),
        "overlays in subfolders are upgraded too"
    );

    // On a terminal, each image is offered its candidates: keep the variable one, take the
    // major step for the app, keep the pinned db image, then confirm. (`script` gives the command a pseudo-terminal.)
    cooper_testkit::git(&recipe, &["checkout", "--", "."]).unwrap();
    let mut child = Command::new("script")
        .args([
            "-qefc",
            &format!("{} recipe upgrade up", env!("CARGO_BIN_EXE_cooper")),
            "/dev/null",
        ])
        .env("ABRA_DIR", &abra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for answer in ["s\n", "3\n", "s\n", "y\n"] {
            std::thread::sleep(std::time::Duration::from_millis(700));
            stdin.write_all(answer.as_bytes()).unwrap();
            stdin.flush().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    let out = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("[3] 2.0.0-alpine (major)"), "{shown}");
    assert!(
        shown.contains("[1] 1.27.2-alpine (patch) (default)"),
        "without -y the patch step is the default: {shown}"
    );
    assert_eq!(
        std::fs::read_to_string(recipe.join("compose.yml")).unwrap(),
        compose.replace(
            &format!("image: {host}/cooper/web:1.27.1-alpine   #"),
            &format!("image: {host}/cooper/web:2.0.0-alpine   #"),
        ),
        "the app took the major step, the pinned db was kept"
    );
}
