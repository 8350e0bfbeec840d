//! The image fetcher against a real HTTP server on loopback, and its SSRF guard.
//!
//! Positive tests allow exactly 127.0.0.1 (or all private addresses); the SSRF
//! tests run with the production policy.

#[path = "support/images.rs"]
mod images;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use brain_server::vision::ImageFormat;
use brain_server::vision::fetch::{AddressPolicy, FetchError, FetchSettings, Fetcher};
use brain_server::vision::intake;

const CAP: usize = 64 << 10;

fn png_bytes() -> Vec<u8> {
    images::encode_rgb(&images::photo_like(64, 48), image::ImageFormat::Png)
}

fn webp_bytes() -> Vec<u8> {
    images::encode_rgb(&images::photo_like(64, 48), image::ImageFormat::WebP)
}

fn with_type(content_type: &'static str, body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn redirect(to: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// Starts the stand-in image host on 127.0.0.1 and returns its address.
async fn image_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let port = addr.port();
    let app = Router::new()
        .route("/ok.png", get(|| async { with_type("image/png", png_bytes()) }))
        .route("/typed.png", get(|| async { with_type("image/png; charset=binary", png_bytes()) }))
        .route("/octet", get(|| async { with_type("application/octet-stream", png_bytes()) }))
        .route("/untyped", get(|| async { Response::new(Body::from(png_bytes())) }))
        .route("/webp-as-jpeg", get(|| async { with_type("image/jpeg", webp_bytes()) }))
        .route("/html", get(|| async { with_type("text/html", b"<html>hi</html>".to_vec()) }))
        .route("/svg", get(|| async { with_type("image/svg+xml", b"<svg/>".to_vec()) }))
        .route("/liar", get(|| async { with_type("image/png", b"<html>not really</html>".to_vec()) }))
        .route("/octet-text", get(|| async { with_type("application/octet-stream", b"plain text, no image".to_vec()) }))
        .route("/big", get(|| async { with_type("image/png", vec![0x89; CAP + 1]) }))
        .route(
            "/big-chunked",
            get(|| async {
                // No Content-Length: a stream of 8 KiB chunks starting with a PNG signature.
                let mut first = png_bytes();
                first.resize(8 << 10, 0);
                let chunks = std::iter::once(first).chain(std::iter::repeat_n(vec![0u8; 8 << 10], 64));
                let stream = futures::stream::iter(chunks.map(Ok::<_, std::io::Error>));
                Response::builder().header(header::CONTENT_TYPE, "image/png").body(Body::from_stream(stream)).unwrap()
            }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/forbidden", get(|| async { StatusCode::FORBIDDEN }))
        .route("/broken", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/busy", get(|| async { StatusCode::TOO_MANY_REQUESTS }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                with_type("image/png", png_bytes())
            }),
        )
        .route(
            "/hop/{n}",
            get(move |Path(n): Path<u32>| async move {
                if n == 0 {
                    redirect("/ok.png".into())
                } else {
                    redirect(format!("http://127.0.0.1:{port}/hop/{}", n - 1))
                }
            }),
        )
        .route("/loop", get(|| async { redirect("/loop".into()) }))
        .route("/to-metadata", get(|| async { redirect("http://169.254.169.254/latest/meta-data/".into()) }))
        .route("/to-private", get(|| async { redirect("http://10.0.0.1/x.png".into()) }))
        .route("/to-ipv6-loopback", get(move || async move { redirect(format!("http://[::1]:{port}/ok.png")) }))
        .route("/to-mapped", get(move || async move { redirect(format!("http://[::ffff:127.0.0.2]:{port}/ok.png")) }))
        .route("/to-localhost", get(move || async move { redirect(format!("http://localhost:{port}/ok.png")) }))
        .route("/to-file", get(|| async { redirect("file:///etc/passwd".into()) }))
        .route("/to-credentials", get(move || async move { redirect(format!("http://u:p@127.0.0.1:{port}/ok.png")) }));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

fn settings(policy: AddressPolicy) -> FetchSettings {
    FetchSettings {
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(5),
        max_bytes: CAP,
        max_redirects: 3,
        policy,
        // These tests are about addresses, redirects and caps; the rate check has its own tests.
        min_bytes_per_sec: 0,
        rate_grace: Duration::from_secs(1),
        slow_max_attempts: 2,
    }
}

/// Production policy plus exactly 127.0.0.1, where the test server lives.
fn only_test_server() -> Fetcher {
    Fetcher::new(settings(AddressPolicy { allow_private: false, exceptions: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)] }))
        .unwrap()
}

fn production() -> Fetcher {
    Fetcher::new(settings(AddressPolicy::public_only())).unwrap()
}

#[tokio::test]
async fn fetches_images() {
    let addr = image_server().await;
    let fetcher = only_test_server();
    for path in ["/ok.png", "/typed.png", "/octet", "/untyped"] {
        let got = fetcher.fetch(&format!("http://{addr}{path}")).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(got.format, ImageFormat::Png, "{path}");
        assert_eq!(got.bytes, png_bytes(), "{path}");
    }
    // The bytes decide between supported formats.
    let got = fetcher.fetch(&format!("http://{addr}/webp-as-jpeg")).await.unwrap();
    assert_eq!(got.format, ImageFormat::Webp);
    // Redirects within the limit are followed; the final URL is reported.
    let got = fetcher.fetch(&format!("http://{addr}/hop/2")).await.unwrap();
    assert_eq!(got.final_url.path(), "/ok.png");
    assert_eq!(got.bytes, png_bytes());
}

#[tokio::test]
async fn refuses_what_is_not_an_image() {
    let addr = image_server().await;
    let fetcher = only_test_server();
    for path in ["/html", "/svg", "/liar", "/octet-text"] {
        let err = fetcher.fetch(&format!("http://{addr}{path}")).await.unwrap_err();
        assert!(matches!(err, FetchError::WrongType(_)), "{path}: {err:?}");
        assert!(err.is_permanent());
    }
}

#[tokio::test]
async fn enforces_the_size_cap() {
    let addr = image_server().await;
    let fetcher = only_test_server();
    for path in ["/big", "/big-chunked"] {
        let err = fetcher.fetch(&format!("http://{addr}{path}")).await.unwrap_err();
        assert_eq!(err, FetchError::TooLarge { limit: CAP }, "{path}");
        assert!(err.is_permanent());
    }
    // Lower cap than the small image itself.
    let mut s = settings(AddressPolicy { allow_private: true, exceptions: vec![] });
    s.max_bytes = 100;
    let err = Fetcher::new(s).unwrap().fetch(&format!("http://{addr}/untyped")).await.unwrap_err();
    assert_eq!(err, FetchError::TooLarge { limit: 100 });
}

#[tokio::test]
async fn classifies_statuses_and_timeouts() {
    let addr = image_server().await;
    let fetcher = only_test_server();
    let cases = [("/missing", 404, true), ("/forbidden", 403, true), ("/broken", 500, false), ("/busy", 429, false)];
    for (path, code, permanent) in cases {
        let err = fetcher.fetch(&format!("http://{addr}{path}")).await.unwrap_err();
        assert_eq!(err, FetchError::Status(code), "{path}");
        assert_eq!(err.is_permanent(), permanent, "{path}");
    }

    let mut s = settings(AddressPolicy { allow_private: true, exceptions: vec![] });
    s.total_timeout = Duration::from_millis(300);
    let err = Fetcher::new(s).unwrap().fetch(&format!("http://{addr}/slow")).await.unwrap_err();
    assert_eq!(err, FetchError::Timeout);
    assert!(!err.is_permanent());

    // Nothing listens on a port we just released: a transient connection failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let err = fetcher.fetch(&format!("http://{closed}/x.png")).await.unwrap_err();
    assert!(matches!(err, FetchError::Connect(_)), "{err:?}");
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn redirects_are_revalidated() {
    let addr = image_server().await;
    let fetcher = only_test_server();

    let err = fetcher.fetch(&format!("http://{addr}/loop")).await.unwrap_err();
    assert_eq!(err, FetchError::TooManyRedirects(3));
    assert!(err.is_permanent());
    assert_eq!(fetcher.fetch(&format!("http://{addr}/hop/4")).await.unwrap_err(), FetchError::TooManyRedirects(3));

    // The first hop is allowed (127.0.0.1 is the test exception); where it redirects is not.
    for path in ["/to-metadata", "/to-private", "/to-ipv6-loopback", "/to-mapped"] {
        let err = fetcher.fetch(&format!("http://{addr}{path}")).await.unwrap_err();
        assert!(matches!(err, FetchError::Forbidden(_)), "{path}: {err:?}");
        assert!(err.is_permanent());
    }
    // A redirect to a name goes through the guarded resolver: localhost also answers ::1
    // (or only 127.0.0.1 on hosts without IPv6, which the exception allows).
    match fetcher.fetch(&format!("http://{addr}/to-localhost")).await {
        Err(FetchError::Forbidden(msg)) => assert!(msg.contains("localhost"), "{msg}"),
        Ok(got) => assert_eq!(got.bytes, png_bytes()),
        Err(other) => panic!("unexpected {other:?}"),
    }
    for path in ["/to-file", "/to-credentials"] {
        let err = fetcher.fetch(&format!("http://{addr}{path}")).await.unwrap_err();
        assert!(matches!(err, FetchError::InvalidUrl(_)), "{path}: {err:?}");
    }
}

#[tokio::test]
async fn ssrf_targets_are_refused() {
    let addr = image_server().await;
    let port = addr.port();
    let fetcher = production();
    for url in [
        "http://127.0.0.1/x".to_owned(),
        "http://10.0.0.1/x".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::1]/x".to_owned(),
        "http://[::ffff:127.0.0.1]/x".to_owned(),
        "http://2130706433/".to_owned(),
        "http://0x7f000001/".to_owned(),
        "http://0/".to_owned(),
        format!("http://127.0.0.1:{port}/ok.png"),
        // A host name resolving to loopback, with a live server on that port: the resolver refuses it.
        format!("http://localhost:{port}/ok.png"),
    ] {
        let err = fetcher.fetch(&url).await.unwrap_err();
        assert!(matches!(err, FetchError::Forbidden(_)), "{url}: {err:?}");
        assert!(err.is_permanent(), "{url}");
        // Intake agrees on literal addresses, before anything is stored.
        if !url.contains("localhost") {
            let e = intake::validate_url(&url, false).unwrap_err();
            assert_eq!(e.reason(), brain_server::error::Reason::ImageUrlForbidden, "{url}");
        }
    }

    // The same server is reachable when the development switch is on: the refusal above was the guard.
    let dev = Fetcher::new(settings(AddressPolicy { allow_private: true, exceptions: vec![] })).unwrap();
    let got = dev.fetch(&format!("http://localhost:{port}/ok.png")).await.unwrap();
    assert_eq!(got.bytes, png_bytes());
}

#[tokio::test]
async fn malformed_urls_are_invalid() {
    let fetcher = production();
    for url in ["", "nope", "ftp://example.com/a.png", "http://user:pw@example.com/a.png", "javascript:alert(1)"] {
        let err = fetcher.fetch(url).await.unwrap_err();
        assert!(matches!(err, FetchError::InvalidUrl(_)), "{url}: {err:?}");
        assert!(err.is_permanent());
    }
}
