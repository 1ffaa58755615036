//! The instance list over many apps: paging, filters, sorting by state, what an operator's
//! filter choices offer, and an unreachable server shown as such — through the router, as a
//! browser asks for it.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use support::*;

fn rows(body: &str) -> Vec<String> {
    body.split("<th scope=\"row\"><a href=\"/instances/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn paging_filters_and_states_over_many_apps() {
    let (_sdir, store) = cooper_store::testing::sqlite().await;
    let abra_dir = tempfile::tempdir().unwrap();
    let mut stacks: BTreeMap<String, BTreeMap<String, cooper_engine::exec::StackStatus>> =
        BTreeMap::new();
    for i in 0..120 {
        let server = ["one", "two", "far"][i % 3];
        let domain = format!("app{i:03}.example.org");
        let dir = abra_dir.path().join("servers").join(server);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(".cooper-endpoint"),
            "unix:///nonexistent/cooper-test.sock\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{domain}.env")),
            format!("TYPE=demo:1.0.0+1\nDOMAIN={domain}\n"),
        )
        .unwrap();
        let mut st = running("1.0.0+1");
        if i % 10 == 0 {
            st.running = 0; // degraded
        }
        if server != "far" {
            stacks
                .entry(server.to_string())
                .or_default()
                .insert(cooper_recipe::stack::stack_name(&domain), st);
        }
    }
    // Server `far` does not answer.
    let source = Fixed(stacks.into_iter().map(|(k, v)| (k, Ok(v))).collect());
    let state = cooper_web::Inner::with_source(
        store.clone(),
        cooper_recipe::abra_dir::AbraDir::new(abra_dir.path()),
        cooper_web::Config {
            login_per_minute: 1000,
            ..Default::default()
        },
        Arc::new(source),
    );
    let router = cooper_web::app(state);
    let hash = cooper_web::auth::hash_password(PASSWORD).unwrap();
    store
        .add_person("admin@example.org", "A", Some(&hash), true)
        .await
        .unwrap();
    let op = store
        .add_person("op@example.org", "O", Some(&hash), false)
        .await
        .unwrap();
    let coop = store.add_coop("C").await.unwrap();
    store.set_server_owner("two", &coop.id).await.unwrap();
    store
        .add_membership(&op.id, "coop", &coop.id, "operator")
        .await
        .unwrap();

    let mut admin = Client::new(&router);
    admin.login("admin@example.org").await;
    let first = admin.get("/instances").await;
    assert!(
        first.body.contains("Instances <small>120</small>"),
        "{}",
        first.body
    );
    assert_eq!(rows(&first.body).len(), 50);
    assert!(first.body.contains("page 1 of 3"));
    let second = admin.get("/instances?page=2").await;
    let r = rows(&second.body);
    assert_eq!(
        (r.first().unwrap().as_str(), r.len()),
        ("app050.example.org", 50)
    );
    let past = admin.get("/instances?page=99").await;
    assert!(
        past.body.contains("page 3 of 3"),
        "a page past the end shows the last"
    );
    assert_eq!(rows(&past.body).len(), 20);

    let down = admin.get("/instances?state=bad").await;
    let r = rows(&down.body);
    // Degraded (every tenth) on the servers that answer; `far`'s apps are not "down".
    assert!(r.iter().all(|d| d.ends_with("0.example.org")), "{r:?}");
    assert_eq!(r.len(), 8);
    let far = admin.get("/instances?server=far").await;
    assert_eq!(rows(&far.body).len(), 40);
    assert!(
        far.body.contains("server unreachable"),
        "unreachable is said, not 'down'"
    );
    assert!(
        !far.body.contains("class=\"state bad\""),
        "nothing on `far` is called degraded"
    );
    let by_state = admin.get("/instances?sort=state").await;
    assert_eq!(
        rows(&by_state.body)[0],
        "app000.example.org",
        "degraded first"
    );
    let unknown = admin.get("/instances?server=nowhere").await;
    assert!(unknown
        .body
        .contains("No instances to show with these filters"));

    // The operator of server `two` sees its 40 apps, and only `two` in the server choices.
    let mut o = Client::new(&router);
    o.login("op@example.org").await;
    let mine = o.get("/instances").await;
    assert!(mine.body.contains("Instances <small>40</small>"));
    assert!(
        mine.body.contains("<option>two</option>") && !mine.body.contains("<option>one</option>")
    );
    let theirs = o.get("/instances?server=one").await;
    assert!(
        rows(&theirs.body).is_empty(),
        "filtering cannot reveal another co-op's apps"
    );
}
