//! The books through the dashboard, as people use them: a treasurer adds entries and proposes
//! a month, an operator confirms it, a community member reads their community's
//! transparency page (charts, downloads) and nothing of another community's, a closed month
//! refuses new entries, bad input is named, and the public summary names nobody.
//! Runs on SQLite and on Postgres.

mod support;

use axum::http::StatusCode;
use support::*;

async fn books(postgres: bool) {
    let Some(w) = world(postgres).await else {
        return;
    };
    // A second community of co-op A, whose books community A's people must not see.
    let other = w
        .store
        .add_community("Tenants Union", &w.coop_a)
        .await
        .unwrap()
        .id;
    let coop = &w.coop_a;

    let mut treasurer = Client::new(&w.router);
    treasurer.login("treasurer@a.example.org").await;
    let add = |kind: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let mut f = vec![("kind", kind), ("date", "2026-11-05")];
        f.extend(extra);
        f
    };
    for form in [
        add(
            "contribution",
            vec![("amount", "300"), ("party", "community:Community A")],
        ),
        add(
            "contribution",
            vec![("amount", "100"), ("party", "community:Tenants Union")],
        ),
        add(
            "cost",
            vec![
                ("amount", "120"),
                ("party", "coop:Co-op A"),
                ("target", "server:alpha"),
                ("category", "server"),
            ],
        ),
        add(
            "labour",
            vec![
                ("hours", "2:30"),
                ("party", "person:ana@a.example.org"),
                ("target", "instance:a1.alpha.example.org"),
                ("note", "upgrade"),
            ],
        ),
    ] {
        let page = treasurer
            .submit(&format!("/books/coops/{coop}/entries"), &form)
            .await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{form:?}: {}",
            page.body
        );
    }
    // Bad input names the field and the fix; nothing is added.
    let page = treasurer
        .submit(
            &format!("/books/coops/{coop}/entries"),
            &add(
                "contribution",
                vec![("amount", "3,50"), ("party", "community:Community A")],
            ),
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("amount"), "{}", page.body);
    assert_eq!(w.store.entries(coop, None).await.unwrap().len(), 4);

    // The month as the treasurer previews it: figures, both charts, the shares.
    let month = treasurer
        .get(&format!("/books/coops/{coop}?period=2026-11"))
        .await;
    assert_eq!(month.status, StatusCode::OK, "{}", month.body);
    assert!(month.body.contains("is open: a preview"), "{}", month.body);
    assert_eq!(month.body.matches("<svg class=\"chart\"").count(), 2);
    assert!(month.body.contains("person:ana@a.example.org"));
    assert!(month.body.contains("400.00 EUR"), "received 300 + 100");

    // Proposed by the treasurer, confirmed by an operator: closed.
    let page = treasurer
        .submit(
            &format!("/books/coops/{coop}/close"),
            &[("period", "2026-11"), ("rates", "")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let again = treasurer
        .get(&format!("/books/coops/{coop}?period=2026-11"))
        .await;
    assert!(
        again
            .body
            .contains("proposed by treasurer@a.example.org as treasurer"),
        "{}",
        again.body
    );
    let mut operator = Client::new(&w.router);
    operator.login("operator@a.example.org").await;
    let page = operator
        .submit(
            &format!("/books/coops/{coop}/close"),
            &[("period", "2026-11"), ("rates", "")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let row = w
        .store
        .settlement(coop, "2026-11".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, "closed");
    assert_eq!(row.closed_by.as_deref(), Some("operator@a.example.org"));
    // Closing twice is refused; so is an entry in the closed month.
    let page = operator
        .submit(
            &format!("/books/coops/{coop}/close"),
            &[("period", "2026-11"), ("rates", "")],
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.body.contains("already closed"), "{}", page.body);
    let page = treasurer
        .submit(
            &format!("/books/coops/{coop}/entries"),
            &add(
                "contribution",
                vec![("amount", "5"), ("party", "community:Community A")],
            ),
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.body.contains("closed"), "{}", page.body);
    // A rate that is not a number is named.
    let page = treasurer
        .submit(
            &format!("/books/coops/{coop}/close"),
            &[("period", "2026-12"), ("rates", "GBP=lots")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("rates"), "{}", page.body);

    // A member of Community A reads its page: what it gave, where it went, what its instance
    // cost — and nothing of the Tenants Union.
    let mut member = Client::new(&w.router);
    member.login("member@community-a.example.org").await;
    let page = member
        .get(&format!("/books/communities/{}", w.community_a))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("2026-11 is closed"), "{}", page.body);
    assert!(page.body.contains("300.00 EUR"), "{}", page.body);
    assert!(
        page.body.contains("a1.alpha.example.org"),
        "its instance's costs"
    );
    assert_eq!(page.body.matches("<svg class=\"chart\"").count(), 2);
    assert!(!page.body.contains("Tenants Union"), "{}", page.body);
    assert!(!page.body.contains("ana@a.example.org"), "no person's name");
    let hidden = member.get(&format!("/books/communities/{other}")).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let hidden = member.get(&format!("/books/coops/{coop}")).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let index = member.get("/books").await;
    assert!(index.body.contains("Community A"));
    assert!(!index.body.contains("Tenants Union"), "{}", index.body);
    // Downloads: its own months only.
    let csv = member
        .get(&format!("/books/communities/{}/books.csv", w.community_a))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with("period,state,currency,what,amount"));
    assert!(
        csv.body.contains("2026-11,closed,EUR,contributed,300.00"),
        "{}",
        csv.body
    );
    assert!(
        !csv.body.contains("100.00"),
        "not the other community's: {}",
        csv.body
    );
    let json = member
        .get(&format!("/books/communities/{}/books.json", w.community_a))
        .await;
    let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(v["months"][0]["books"]["contributed"], 30000);

    // The public summary exists only once switched on, and names nobody.
    let mut anyone = Client::new(&w.router);
    assert_eq!(
        anyone.get(&format!("/open/{coop}")).await.status,
        StatusCode::NOT_FOUND
    );
    let page = treasurer
        .submit(&format!("/books/coops/{coop}/public"), &[("public", "on")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let open = anyone.get(&format!("/open/{coop}")).await;
    assert_eq!(open.status, StatusCode::OK);
    assert!(open.body.contains("400.00 EUR"), "{}", open.body);
    for name in [
        "Community A",
        "Tenants Union",
        "ana@",
        "treasurer@",
        "operator@",
    ] {
        assert!(!open.body.contains(name), "{name} on the public page");
    }
    // The federation-wide view of a federation admin counts the closed month.
    let mut admin = Client::new(&w.router);
    admin.login("admin@example.org").await;
    let fed = admin.get("/books").await;
    assert!(fed.body.contains("Across the federation"), "{}", fed.body);
    assert!(fed.body.contains("2026-11"), "{}", fed.body);
}

#[tokio::test]
async fn books_through_the_dashboard_on_sqlite() {
    books(false).await;
}

#[tokio::test]
async fn books_through_the_dashboard_on_postgres() {
    books(true).await;
}

/// Posts a multipart form as a browser's file input would: fields, then one file.
async fn upload(
    client: &mut Client,
    path: &str,
    fields: &[(&str, &str)],
    file: (&str, &str),
) -> Page {
    let csrf = client.csrf().await;
    let boundary = "----cooper-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = String::new();
    for (k, v) in std::iter::once(&("csrf", csrf.as_str())).chain(fields) {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: text/csv\r\n\r\n{}\r\n--{boundary}--\r\n",
        file.0, file.1
    ));
    client
        .send(
            axum::http::Request::post(path)
                .header(
                    axum::http::header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(axum::body::Body::from(body))
                .unwrap(),
        )
        .await
}

const OC: &str = include_str!("../../ledger/tests/fixtures/opencollective-transactions.csv");
const OC_BAD: &str = include_str!("../../ledger/tests/fixtures/opencollective-bad.csv");

async fn imports(postgres: bool) {
    let Some(w) = world(postgres).await else {
        return;
    };
    let coop = &w.coop_a;
    let path = format!("/books/coops/{coop}/import");
    let mut treasurer = Client::new(&w.router);
    treasurer.login("treasurer@a.example.org").await;

    // A bad file: every bad line named, nothing imported.
    let page = upload(&mut treasurer, &path, &[], ("bad.csv", OC_BAD)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("line 3"), "{}", page.body);
    assert!(page.body.contains("BALANCE_TRANSFER"), "{}", page.body);
    assert!(w.store.entries(coop, None).await.unwrap().is_empty());

    // Only checking changes nothing.
    let page = upload(
        &mut treasurer,
        &path,
        &[("dry_run", "on")],
        ("transactions.csv", OC),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("reads cleanly"), "{}", page.body);
    assert!(w.store.entries(coop, None).await.unwrap().is_empty());

    // The export, mapped to Community A; then again: nothing more.
    let maps = [("maps", "riseup-community=community:Community A")];
    let page = upload(&mut treasurer, &path, &maps, ("transactions.csv", OC)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let added = w.store.entries(coop, None).await.unwrap().len();
    assert!(added >= 12, "{added}");
    assert!(
        page.body.contains(&format!("{added} added, 0 already")),
        "{}",
        page.body
    );
    let page = upload(&mut treasurer, &path, &maps, ("transactions.csv", OC)).await;
    assert!(
        page.body.contains(&format!("0 added, {added} already")),
        "{}",
        page.body
    );
    assert_eq!(w.store.entries(coop, None).await.unwrap().len(), added);
    let mapped = w
        .store
        .entries_of_party(coop, "community:Community A")
        .await
        .unwrap();
    assert!(
        !mapped.is_empty(),
        "the account was mapped to the community"
    );

    // Without the form's CSRF field the upload is refused before anything is read.
    let mut stranger = treasurer.clone();
    let res = stranger
        .send(
            axum::http::Request::post(&path)
                .header(
                    axum::http::header::CONTENT_TYPE,
                    "multipart/form-data; boundary=x",
                )
                .body(axum::body::Body::from(format!(
                    "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.csv\"\r\n\r\n{OC}\r\n--x--\r\n"
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.denied.as_deref(), Some("csrf"));

    // The template download is cooper's header and an example of each kind.
    let t = treasurer.get("/books/template.csv").await;
    assert!(
        t.body.starts_with("date,kind,amount,currency,party"),
        "{}",
        t.body
    );
}

#[tokio::test]
async fn imports_through_the_dashboard_on_sqlite() {
    imports(false).await;
}

#[tokio::test]
async fn imports_through_the_dashboard_on_postgres() {
    imports(true).await;
}
