//! A job's live page: its event stream says the job's state when it changes, so a page opened
//! while the job was queued turns to "running" when a worker takes it, even when the job then
//! says nothing (it waits for an app's lock). The test plays the worker.

mod support;

use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use support::*;
use tower::ServiceExt;

#[tokio::test]
async fn a_queued_jobs_stream_says_when_it_runs() {
    let Some(w) = world(false).await else {
        return;
    };
    let mut admin = Client::new(&w.router);
    admin.login("admin@example.org").await;
    let job = w
        .store
        .create_job("restart", OWN, "{}", "admin@example.org")
        .await
        .unwrap();
    let req = axum::http::Request::get(format!("/jobs/{}/events", job.id))
        .header("cookie", admin.cookie.clone().unwrap())
        .body(Body::empty())
        .unwrap();
    let res = w.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let mut seen = String::new();
    // Reads the stream until `want` shows up (bounded).
    async fn until(body: &mut Body, seen: &mut String, want: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !seen.contains(want) {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .unwrap_or_else(|_| panic!("no {want:?} in the stream: {seen}"))
                .expect("the stream stays open")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                seen.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }
    until(&mut body, &mut seen, "event: state\ndata: queued").await;
    let claimed = w
        .store
        .claim_job()
        .await
        .unwrap()
        .expect("the job is taken");
    assert_eq!(claimed.id, job.id);
    until(&mut body, &mut seen, "event: state\ndata: running").await;
    assert_eq!(seen.matches("data: queued").count(), 1, "said once: {seen}");
}
