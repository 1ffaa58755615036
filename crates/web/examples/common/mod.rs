//! What the dashboard's benchmark servers share: logging in through the router itself, as a
//! browser would (the login page's CSRF token and cookie, then the form).

use axum::body::Body;
use axum::http::{header, Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Logs `email` in through `router`; the session cookie (`name=value`).
pub async fn login(router: &axum::Router, email: &str, password: &str) -> anyhow::Result<String> {
    let page = router
        .clone()
        .oneshot(Request::get("/login").body(Body::empty())?)
        .await?;
    let cookie = page
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_string();
    let body = String::from_utf8(page.into_body().collect().await?.to_bytes().to_vec())?;
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    let csrf = body[at..].split('"').next().unwrap_or_default().to_string();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &csrf)
        .append_pair("email", email)
        .append_pair("password", password)
        .finish();
    let res = router
        .clone()
        .oneshot(
            Request::post("/login")
                .header(header::COOKIE, &cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))?,
        )
        .await?;
    Ok(res
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or(&cookie)
        .to_string())
}
