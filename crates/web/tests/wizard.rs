//! The setup wizard as a visitor without an account uses it, in-process: a recipe with an
//! outgoing-mail option in its `.env.sample`, answers checked field by field (the reasons next
//! to the fields), the draft kept between visits, the request sent and seen in the operators'
//! queue, declined once with a reason. Secrets are never asked here.

mod support;

use support::*;

const SAMPLE: &str = "TYPE=demo
DOMAIN=demo.example.com
SECRET_DB_PASSWORD_VERSION=v1

## Outgoing mail
#COMPOSE_FILE=\"$COMPOSE_FILE:compose.smtp.yml\"
#SMTP_HOST=
#SMTP_PORT=587
#SECRET_SMTP_PASSWORD_VERSION=v1 # generate=false
";

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn recipe(abra: &std::path::Path) {
    let dir = abra.join("recipes/demo");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".env.sample"), SAMPLE).unwrap();
    std::fs::write(
        dir.join("compose.yml"),
        "version: \"3.8\"\nservices:\n  app:\n    image: nginx:1.27\n",
    )
    .unwrap();
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "first"]);
    git(&dir, &["tag", "-a", "1.0.0+1.27", "-m", "first"]);
}

#[tokio::test]
async fn a_community_asks_for_an_instance() {
    let w = world(false).await.unwrap();
    recipe(w.abra_dir.path());
    let mut v = Client::new(&w.router);

    let page = v.get("/request").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("demo 1.0.0+1.27"), "{}", page.body);

    // Field by field: the reasons stand next to the fields.
    let bad = v
        .submit(
            "/request",
            &[
                ("step", "start"),
                ("community", ""),
                ("email", "nope"),
                ("recipe", "ghost"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad
        .body
        .contains("id=\"community-error\">Give your community"));
    assert!(bad
        .body
        .contains("id=\"email-error\">Give an e-mail address"));
    assert!(bad
        .body
        .contains("id=\"recipe-error\">Choose one of the apps"));
    assert!(bad.body.contains("value=\"nope\""), "what was typed stays");

    let ok = v
        .submit(
            "/request",
            &[
                ("step", "start"),
                ("community", "Radio Bielefeld"),
                ("email", "ops@radio.example"),
                ("recipe", "demo"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let options = v.get("/request").await;
    assert!(options.body.contains("Outgoing mail"), "{}", options.body);
    assert!(
        options.body.contains("smtp password"),
        "secrets are named for later"
    );
    assert!(
        !options.body.contains("type=\"password\""),
        "no secret is asked here"
    );

    // The option on without its required host, a port that is no number.
    let bad = v
        .submit(
            "/request",
            &[
                ("step", "options"),
                ("option", "smtp"),
                ("value:SMTP_HOST", ""),
                ("value:SMTP_PORT", "5x"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("id=\"e-SMTP_HOST\">required when"),
        "{}",
        bad.body
    );
    assert!(bad
        .body
        .contains("id=\"e-SMTP_PORT\">must be a whole number"));

    // A half-finished wizard waits: a new visit shows what was typed.
    let again = v.get("/request").await;
    assert!(again.body.contains("value=\"5x\""), "kept: {}", again.body);

    let ok = v
        .submit(
            "/request",
            &[
                ("step", "options"),
                ("option", "smtp"),
                ("value:SMTP_HOST", "mail.radio.example"),
                ("value:SMTP_PORT", "587"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let review = v.get("/request").await;
    assert!(
        review.body.contains("mail.radio.example"),
        "{}",
        review.body
    );

    // Sizes with what they need; no money figure until the co-op publishes its rates.
    assert!(
        review.body.contains("up to 50 people")
            && review
                .body
                .contains("needs about 0.5 CPU, 1 GiB memory, 10 GiB disk")
            && !review.body.contains("suggested contribution"),
        "{}",
        review.body
    );
    std::fs::create_dir_all(w.abra_dir.path().join("cooper")).unwrap();
    std::fs::write(
        w.abra_dir.path().join("cooper/rates.toml"),
        "currency = \"EUR\"\nbase = 5\nper_cpu = 12\nper_gib_memory = 4\nper_gib_disk = 0.2\n",
    )
    .unwrap();
    let review = v.get("/request").await;
    assert!(
        review
            .body
            .contains("suggested contribution EUR 17.00 a month"),
        "{}",
        review.body
    );

    // No size, an address already in use, then good ones.
    let nosize = v
        .submit(
            "/request",
            &[("step", "send"), ("domain", "radio.coop.example")],
        )
        .await;
    assert_eq!(nosize.status, 400);
    assert!(nosize.body.contains("id=\"size-error\""), "{}", nosize.body);
    let taken = v
        .submit(
            "/request",
            &[("step", "send"), ("size", "small"), ("domain", OWN)],
        )
        .await;
    assert_eq!(taken.status, 400);
    assert!(taken.body.contains("already in use"), "{}", taken.body);
    assert!(
        taken.body.contains("value=\"small\" checked"),
        "the size chosen stays"
    );
    let bad = v
        .submit(
            "/request",
            &[
                ("step", "send"),
                ("size", "small"),
                ("domain", "not a domain"),
            ],
        )
        .await;
    assert!(bad.body.contains("id=\"domain-error\""));
    let sent = v
        .submit(
            "/request",
            &[
                ("step", "send"),
                ("size", "medium"),
                ("domain", "Radio.Coop.Example"),
            ],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.body.contains("radio.coop.example"));
    let rows = w.store.instance_requests(true).await.unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.recipe.as_str(), r.version.as_str()),
        ("demo", "1.0.0+1.27")
    );
    assert!(r.answers.contains("mail.radio.example") && r.answers.contains("smtp"));
    // The draft is gone: the next visit starts afresh.
    assert!(v.get("/request").await.body.contains("Your community"));

    // The queue: operators see it, members do not (404), the decline needs a reason and
    // happens once.
    let mut m = Client::new(&w.router);
    m.login("member@community-a.example.org").await;
    assert_eq!(m.get("/queue").await.status, 404);
    let mut o = Client::new(&w.router);
    o.login("operator@a.example.org").await;
    let q = o.get("/queue").await;
    assert!(
        q.body.contains("Radio Bielefeld") && q.body.contains("smtp"),
        "{}",
        q.body
    );
    // The request's page: the approve form asks for the secret the recipe cannot make;
    // without it, nothing happens and the reason stands next to the field.
    let page = o.get(&format!("/queue/{}", r.id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("name=\"secret:smtp_password\" type=\"password\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("mail.radio.example"),
        "the answers are shown"
    );
    // 5 + 1 × 12 + 2 × 4 + 50 × 0.2 = 35
    assert!(
        page.body
            .contains("up to 500 people: needs about 1 CPU, 2 GiB memory, 50 GiB disk")
            && page
                .body
                .contains("suggested contribution EUR 35.00 a month"),
        "{}",
        page.body
    );
    assert_eq!(m.get(&format!("/queue/{}", r.id)).await.status, 404);
    let refused = o
        .submit(
            &format!("/queue/{}/approve", r.id),
            &[("server", "no-such-server"), ("secret:smtp_password", "")],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("id=\"server-error\""),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("id=\"secret-smtp_password-error\""),
        "{}",
        refused.body
    );
    assert_eq!(
        w.store
            .instance_request(&r.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        "new",
        "a refused approval changes nothing"
    );
    // A question to the requester: mailed, and the request waits for the answer; a note
    // stays with the operators.
    let write = format!("/queue/{}/write", r.id);
    assert_eq!(
        o.submit(&write, &[("message", " "), ("then", "ask")])
            .await
            .status,
        400
    );
    let asked = o
        .submit(
            &write,
            &[("message", "How many people will use it?"), ("then", "ask")],
        )
        .await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    assert_eq!(
        w.store
            .instance_request(&r.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        "needs-information"
    );
    o.submit(
        &write,
        &[("message", "They answered: about 40."), ("then", "note")],
    )
    .await;
    let mails = w
        .store
        .pending_for("email", "ops@radio.example")
        .await
        .unwrap();
    assert!(
        mails
            .iter()
            .any(|m| m.subject.starts_with("We received your request"))
            && mails
                .iter()
                .any(|m| m.body.contains("How many people will use it?")),
        "{mails:?}"
    );
    assert!(
        !mails.iter().any(|m| m.body.contains("about 40")),
        "a note is not sent"
    );
    let page = o.get(&format!("/queue/{}", r.id)).await;
    assert!(
        page.body
            .contains("Question to the requester: How many people")
            && page.body.contains("Note: They answered: about 40."),
        "{}",
        page.body
    );
    assert_eq!(
        m.submit(&write, &[("message", "x"), ("then", "note")])
            .await
            .status,
        404
    );
    let path = format!("/queue/{}/decline", r.id);
    assert_eq!(o.submit(&path, &[("reason", "")]).await.status, 400);
    assert_eq!(
        o.submit(&path, &[("reason", "no room this month")])
            .await
            .status,
        303
    );
    assert_eq!(o.submit(&path, &[("reason", "again")]).await.status, 409);
    assert_eq!(
        w.store
            .request_comments(&r.id)
            .await
            .unwrap()
            .last()
            .unwrap()
            .1,
        "no room this month"
    );

    // A request received by e-mail, typed in by an operator: marked as theirs.
    for (step, pairs) in [
        (
            "start",
            vec![
                ("community", "Choir Minden"),
                ("email", "choir@minden.example"),
                ("recipe", "demo"),
            ],
        ),
        ("options", vec![]),
        (
            "send",
            vec![("size", "small"), ("domain", "choir.coop.example")],
        ),
    ] {
        let mut form = vec![("step", step)];
        form.extend(pairs);
        let r = o.submit("/request", &form).await;
        assert!(r.status == 303 || r.status == 200, "{step}: {}", r.body);
    }
    let entered = w
        .store
        .instance_requests(true)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.domain == "choir.coop.example")
        .expect("the request entered by the operator");
    let notes = w.store.request_comments(&entered.id).await.unwrap();
    assert_eq!(notes[0].0, "operator@a.example.org");
    assert!(
        notes[0].1.starts_with("Entered by operator@a.example.org"),
        "{notes:?}"
    );
}
