//! The browser pages embedded from web/dist, served by a real server: content types, the Content-Security-Policy,
//! `ETag` with `304 Not Modified`, `404` for unknown files and for paths that climb out of their directory, and the
//! pages kept out of the OpenAPI document.

mod common;

use common::TestServer;
use reqwest::header;
use reqwest::StatusCode;

#[tokio::test]
async fn admin_console_pages_have_content_types_csp_and_etags() {
    let mut s = TestServer::start().await;
    for (path, ctype, needle) in [
        ("/admin", "text/html; charset=utf-8", "<title>Orrery admin</title>"),
        ("/admin/", "text/html; charset=utf-8", "<title>Orrery admin</title>"),
        ("/admin/index.html", "text/html; charset=utf-8", "/admin/main.js"),
        ("/admin/main.js", "text/javascript; charset=utf-8", "/v1/admin/"),
        ("/admin/admin.css", "text/css; charset=utf-8", "body"),
    ] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers().clone();
        assert_eq!(h[header::CONTENT_TYPE], ctype, "{path}");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache", "{path}");
        let etag = h[header::ETAG].to_str().unwrap().to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
            "{path}: {etag}"
        );
        let body = r.text().await.unwrap();
        assert!(body.contains(needle), "{path} lacks {needle:?}");

        // The same file again with its tag: 304 and no body; with another tag: the file.
        let again = s
            .http
            .get(s.url(path))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()[header::ETAG].to_str().unwrap(), etag, "{path}");
        assert!(again.bytes().await.unwrap().is_empty(), "{path}: a 304 has no body");
        let other = s
            .http
            .get(s.url(path))
            .header(header::IF_NONE_MATCH, "\"0000\", W/\"1111\"")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::OK, "{path}");
    }
    s.stop().await;
}

#[tokio::test]
async fn home_page_is_served_and_links_the_console() {
    let mut s = TestServer::start().await;
    let r = s.http.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    let body = r.text().await.unwrap();
    assert!(body.contains("/admin/"), "the home page links the admin console");
    s.stop().await;
}

#[tokio::test]
async fn unknown_files_are_404_in_the_api_error_form() {
    let mut s = TestServer::start().await;
    for path in [
        "/admin/nope.js",
        "/admin/deep/er/nope.css",
        "/admin/..%2Fplay%2Findex.html",
        "/play/nope.js",
        "/landing/nope.css",
        "/index.html",
    ] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    // A page is not an endpoint: a POST to it is refused, with the JSON error.
    let r = s.http.post(s.url("/admin/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    s.stop().await;
}

#[tokio::test]
async fn pages_stay_out_of_the_openapi_document() {
    let mut s = TestServer::start().await;
    let doc = s.get_json("/v1/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    for page in ["/", "/admin", "/admin/", "/admin/{*file}", "/play/{*file}"] {
        assert!(!paths.contains_key(page), "{page} is in the OpenAPI document");
    }
    assert!(paths.contains_key("/v1/admin/sessions"));
    s.stop().await;
}

/// Past the connection cap, the admin console's pages are served on the operator reserve like the admin API, while
/// `/` (a player's page) gets `503 at_capacity` like a login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_the_console_still_loads_and_the_home_page_gets_503() {
    let mut cfg = common::config(common::temp_dir());
    cfg.http.max_connections = 10;
    cfg.http.reserve_connections = 3;
    let mut s = TestServer::start_with(cfg).await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(tokio::net::TcpStream::connect(s.addr()).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let fresh = || reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    for path in ["/admin/", "/admin/main.js"] {
        let r = fresh().get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path} past the cap");
    }
    let r = fresh().get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "at_capacity");
    drop(idle);
    s.stop().await;
}
