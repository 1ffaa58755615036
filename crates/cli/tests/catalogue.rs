//! `cooper catalogue generate|sync` and the catalogue-backed `recipe ls|versions`, against real
//! git repositories and a real registry (Debian's docker-registry on loopback): recipes.json
//! in abra's shape with README metadata, each service's image, tag and short digest (a pinned
//! digest taken as written), each distinct tag looked up once, offline without digests,
//! cooper's levels; sync clones and fast-forwards a catalogue repository; --publish pushes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cooper_testkit::LocalRegistry;

struct Env {
    dir: tempfile::TempDir,
    abra: PathBuf,
}

impl Env {
    fn cooper(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args(args)
            .env("ABRA_DIR", &self.abra)
            .env("DOCKER_CONFIG", self.dir.path().join("no-docker-config"))
            .env("GIT_AUTHOR_NAME", "cooper tests")
            .env("GIT_AUTHOR_EMAIL", "tests@cooper.invalid")
            .env("GIT_COMMITTER_NAME", "cooper tests")
            .env("GIT_COMMITTER_EMAIL", "tests@cooper.invalid")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cooper(args);
        assert!(
            out.status.success(),
            "cooper {args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn catalogue(&self) -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.abra.join("catalogue/recipes.json")).unwrap(),
        )
        .unwrap()
    }
}

const README: &str = "# alpha\n\n> The first letter\n\n<!-- metadata -->\n* **Category**: Apps\n* **Status**: 3, beta\n* **Image**: [`cooper/web`](https://example.org/web), 2, third-party\n* **Healthcheck**: Yes\n* **Backups**: No\n* **Email**: N/A\n* **Tests**: 2\n* **SSO**: No\n<!-- endmetadata -->\n";

/// A recipe repository with one release per entry: (tag, compose.yml).
fn recipe(root: &Path, name: &str, releases: &[(&str, String)]) {
    let mut list = Vec::new();
    for (tag, compose) in releases {
        let d = root.join("src").join(name).join(tag);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("compose.yml"), compose).unwrap();
        std::fs::write(
            d.join(".env.sample"),
            format!("TYPE={name}\nDOMAIN={name}.example.org\n"),
        )
        .unwrap();
        std::fs::write(d.join("README.md"), README.replace("alpha", name)).unwrap();
        list.push((d, *tag));
    }
    cooper_testkit::recipe_repo(&root.join("abra/recipes").join(name), &list).unwrap();
}

fn compose(services: &[(&str, String)]) -> String {
    let mut s = String::from("version: \"3.8\"\nservices:\n");
    for (name, image) in services {
        s.push_str(&format!("  {name}:\n    image: {image}\n"));
    }
    s
}

#[test]
fn generate_looks_each_tag_up_once_and_recipe_commands_read_the_catalogue() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(cooper_testkit::ensure_test_images()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reg = LocalRegistry::start(dir.path(), &dir.path().join("storage"), None).unwrap();
    let host = reg.host();
    reg.push("cooper/web", &["1.0"]).unwrap();
    reg.push_image(cooper_testkit::RESTIC_IMAGE, "cooper/web", &["1.1"])
        .unwrap();
    let digest = |tag: &str| {
        let r = cooper_registry::ImageRef::parse(&format!("{host}/cooper/web:{tag}")).unwrap();
        rt.block_on(cooper_registry::Client::default().resolve(&r))
            .unwrap()
            .digest
    };
    let (d10, d11) = (digest("1.0"), digest("1.1"));
    let short = |d: &str| d.trim_start_matches("sha256:")[..8].to_string();
    let pin = "sha256:00000000aaaabbbbccccddddeeeeffff0000111122223333444455556666aaaa";

    let web = |t: &str| format!("{host}/cooper/web:{t}");
    recipe(
        dir.path(),
        "alpha",
        &[
            (
                "1.0.0+1.0",
                compose(&[("app", web("1.0")), ("db", format!("{}@{pin}", web("1.0")))]),
            ),
            (
                "1.1.0+1.1",
                compose(&[("app", web("1.1")), ("db", web("1.0"))]),
            ),
        ],
    );
    recipe(
        dir.path(),
        "beta",
        &[("0.1.0+1.0", compose(&[("app", web("1.0"))]))],
    );
    let env = Env {
        abra: dir.path().join("abra"),
        dir,
    };
    std::fs::create_dir_all(env.abra.join("servers")).unwrap();
    std::fs::create_dir_all(env.abra.join("cooper/levels")).unwrap();
    std::fs::write(
        env.abra.join("cooper/levels/alpha.json"),
        r#"{"1.1.0+1.1": {"level": 8, "tested": "2026-11-25T10:00:00Z"}}"#,
    )
    .unwrap();

    let stats: serde_json::Value =
        serde_json::from_str(&env.ok(&["catalogue", "generate", "-m"])).unwrap();
    assert_eq!(stats["recipes"], 2);
    assert_eq!(stats["versions"], 3);
    assert_eq!(stats["images"], 5);
    assert_eq!(
        stats["lookups"], 2,
        "web:1.0 and web:1.1, once each; the pin needs none"
    );
    assert_eq!(
        stats["round_trips"], 2,
        "an open registry: one request per tag"
    );
    assert_eq!(stats["problems"].as_array().unwrap().len(), 0, "{stats}");

    let c = env.catalogue();
    let alpha = &c["alpha"];
    assert_eq!(alpha["name"], "alpha");
    assert_eq!(alpha["category"], "Apps");
    assert_eq!(alpha["description"], "The first letter");
    assert_eq!(alpha["default_branch"], "main");
    assert_eq!(alpha["features"]["status"], 3);
    assert_eq!(alpha["features"]["image"]["rating"], "2");
    assert_eq!(alpha["features"]["image"]["source"], "third-party");
    assert_eq!(alpha["features"]["tests"], "2");
    assert_eq!(
        alpha["repository"],
        "https://git.coopcloud.tech/coop-cloud/alpha.git"
    );
    let v0 = &alpha["versions"][0]["1.0.0+1.0"];
    assert_eq!(v0["app"]["image"], format!("{host}/cooper/web"));
    assert_eq!(v0["app"]["tag"], "1.0");
    assert_eq!(v0["app"]["digest"], short(&d10));
    assert_eq!(v0["db"]["digest"], "00000000", "the pin, as written");
    let v1 = &alpha["versions"][1]["1.1.0+1.1"];
    assert_eq!(v1["app"]["digest"], short(&d11));
    assert_eq!(alpha["cooper_levels"]["1.1.0+1.1"], 8);
    assert!(c["beta"].get("cooper_levels").is_none());

    let versions = env.ok(&["recipe", "versions", "alpha"]);
    assert!(
        versions.contains(&format!(
            "1.1.0+1.1: (level 8)\n - app ({host}/cooper/web:1.1, {})\n",
            short(&d11)
        )),
        "{versions}"
    );
    let ls = env.ok(&["recipe", "ls"]);
    assert!(ls.contains("alpha\tApps\t3\t1.1.0+1.1\t2\t8\tyes"), "{ls}");

    // Offline: no registry, no digests but the pinned one; other recipes' entries are kept.
    std::fs::write(
        env.abra.join("catalogue/recipes.json"),
        r#"{"zeta": {"name": "zeta"}}"#,
    )
    .unwrap();
    let stats: serde_json::Value =
        serde_json::from_str(&env.ok(&["-o", "catalogue", "generate", "alpha", "-m"])).unwrap();
    assert_eq!(stats["round_trips"], 0);
    let c = env.catalogue();
    assert_eq!(c["zeta"]["name"], "zeta");
    assert!(c.get("beta").is_none(), "only alpha was asked for");
    assert_eq!(c["alpha"]["versions"][0]["1.0.0+1.0"]["app"]["digest"], "");
    assert_eq!(
        c["alpha"]["versions"][0]["1.0.0+1.0"]["db"]["digest"],
        "00000000"
    );

    // A broken catalogue: listings say where, and still work from the local clones.
    std::fs::write(
        env.abra.join("catalogue/recipes.json"),
        "{\n  \"alpha\": [\n",
    )
    .unwrap();
    let out = env.cooper(&["recipe", "ls"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("recipes.json: line 3"), "{err}");
}

#[test]
fn sync_clones_and_fast_forwards_and_generate_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("catalogue.git");
    let work = dir.path().join("work");
    cooper_testkit::git(dir.path(), &["init", "-q", "--bare", "catalogue.git"]).unwrap();
    cooper_testkit::git(
        dir.path(),
        &["clone", "-q", remote.to_str().unwrap(), "work"],
    )
    .unwrap();
    std::fs::write(
        work.join("recipes.json"),
        r#"{"gamma": {"name": "gamma", "category": "Utilities", "features": {"status": 2}, "versions": [{"0.1.0+1.0": {"app": {"image": "x", "tag": "1.0", "digest": "abcdef01"}}}]}}"#,
    )
    .unwrap();
    cooper_testkit::git(&work, &["add", "-A"]).unwrap();
    cooper_testkit::git(&work, &["commit", "-qm", "first"]).unwrap();
    cooper_testkit::git(&work, &["push", "-q", "origin", "HEAD"]).unwrap();

    let env = Env {
        abra: dir.path().join("abra"),
        dir,
    };
    std::fs::create_dir_all(env.abra.join("servers")).unwrap();
    let out = env.ok(&["catalogue", "sync", "--remote", remote.to_str().unwrap()]);
    assert!(out.contains("cloned the catalogue"), "{out}");
    let ls = env.ok(&["recipe", "ls"]);
    assert!(
        ls.contains("gamma\tUtilities\t2\t0.1.0+1.0\t1\t-\tno"),
        "{ls}"
    );
    let v = env.ok(&["recipe", "versions", "gamma"]);
    assert!(v.contains("0.1.0+1.0:\n - app (x:1.0, abcdef01)"), "{v}");
    assert!(env.ok(&["catalogue", "sync"]).contains("up to date"));

    std::fs::write(
        work.join("recipes.json"),
        r#"{"gamma": {"name": "gamma"}, "delta": {"name": "delta"}}"#,
    )
    .unwrap();
    cooper_testkit::git(&work, &["commit", "-qam", "second"]).unwrap();
    cooper_testkit::git(&work, &["push", "-q", "origin", "HEAD"]).unwrap();
    assert!(env
        .ok(&["catalogue", "sync"])
        .contains("updated the catalogue"));
    assert!(env.ok(&["recipe", "ls"]).contains("delta"));

    // Generate into the clone and publish: the remote gets the new entry.
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("compose.yml"),
        compose(&[("app", "nginx:1.27.2".into())]),
    )
    .unwrap();
    std::fs::write(src.join(".env.sample"), "TYPE=eps\n").unwrap();
    std::fs::write(src.join("README.md"), README.replace("alpha", "eps")).unwrap();
    cooper_testkit::recipe_repo(&env.abra.join("recipes/eps"), &[(src, "1.0.0+1.27.2")]).unwrap();
    let out = env.ok(&["-o", "catalogue", "generate", "eps", "--publish"]);
    assert!(out.contains("published the catalogue"), "{out}");
    cooper_testkit::git(&work, &["pull", "-q"]).unwrap();
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("recipes.json")).unwrap()).unwrap();
    assert_eq!(
        published["eps"]["versions"][0]["1.0.0+1.27.2"]["app"]["tag"],
        "1.27.2"
    );
    assert_eq!(published["delta"]["name"], "delta", "other entries kept");

    // A catalogue directory that is not a clone: refused with the fix.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("catalogue")).unwrap();
    std::fs::write(other.path().join("catalogue/recipes.json"), "{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cooper"))
        .args(["catalogue", "sync", "--remote", remote.to_str().unwrap()])
        .env("ABRA_DIR", other.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a git clone"));
}
