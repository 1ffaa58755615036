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
