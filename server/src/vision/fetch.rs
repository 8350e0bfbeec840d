//! Fetching images by URL, guarded against server-side request forgery.
//!
//! - No proxy; connect and total timeouts (the total covers every redirect hop
//!   and the whole body).
//! - Every address a host name resolves to is checked by a custom resolver at
//!   connect time; if ANY of them is forbidden the fetch is refused (a name
//!   answering both public and private addresses is treated as hostile). This
//!   also defeats DNS rebinding: there is no earlier lookup to fool.
//! - Literal-IP URLs never reach a resolver, so they are checked explicitly,
//!   on the first URL and on every redirect target.
//! - Redirects are followed by hand, at most `image_fetch_max_redirects`, each
//!   target re-validated (scheme, user info, literal IP; names go through the
//!   guarded resolver).
//! - The response must be 2xx with `Content-Type` image/png, image/jpeg,
//!   image/webp or image/gif; `application/octet-stream`,
//!   `binary/octet-stream` or no `Content-Type` are accepted only when the bytes
//!   sniff as one of those formats. A declared image type whose bytes are not
//!   an image is refused; when the bytes are a different supported format than
//!   declared (CDNs often serve WebP as image/jpeg), the bytes decide.
//! - The body is streamed and abandoned as soon as it passes `max_image_bytes`
//!   (a `Content-Length` over the cap is refused before reading; a missing or
//!   lying one does not help). No content encoding is negotiated, so a
//!   compressed body cannot expand past the cap.
//!
//! - A source that trickles is cut off: once `image_fetch_rate_grace_ms` has
//!   passed since the request, the body received must keep up with
//!   `image_fetch_min_bytes_per_sec` over the time since the grace ended
//!   (checked every quarter second, headers included, so a server trickling
//!   its headers fails as fast as one trickling its body). A worker is held a
//!   second or so, not the whole total timeout.
//!
//! Failures are classified: bad URL, forbidden address, 4xx (except 408 and
//! 429), wrong type, too large and too many redirects are permanent; timeouts,
//! too slow transfers, connection failures, 408, 429 and 5xx are transient
//! (timeouts and slow transfers [`FetchError::is_slow`], which callers retry
//! fewer times).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::redirect;
use url::{Host, Url};

use super::intake::{self, ImageFormat};
use crate::config::Config;

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL (or a redirect target) is malformed, not http(s) or carries credentials. Permanent.
    #[error("invalid image URL: {0}")]
    InvalidUrl(String),
    /// The URL's host is, or resolves to, a forbidden address. Permanent.
    #[error("image URL forbidden: {0}")]
    Forbidden(String),
    /// The server answered with a non-2xx status.
    #[error("the image server answered HTTP {0}")]
    Status(u16),
    /// More redirects than allowed. Permanent.
    #[error("more than {0} redirects")]
    TooManyRedirects(u32),
    /// Not a PNG, JPEG, WebP or GIF (by Content-Type or bytes). Permanent.
    #[error("not a supported image: {0}")]
    WrongType(String),
    /// The body exceeds the size cap. Permanent.
    #[error("the image exceeds {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// Connect or total timeout. Transient, slow.
    #[error("fetching the image timed out")]
    Timeout,
    /// The transfer fell below the minimum rate after the grace period. Transient, slow.
    #[error(
        "the image server is too slow: {received} bytes in {elapsed_ms} ms, below the minimum of {min_bytes_per_sec} \
         bytes/s after the first {grace_ms} ms"
    )]
    TooSlow {
        /// Body bytes received.
        received: u64,
        /// Time since the request was sent, in ms.
        elapsed_ms: u64,
        /// The configured minimum rate.
        min_bytes_per_sec: u64,
        /// The configured grace period, in ms.
        grace_ms: u64,
    },
    /// DNS or TCP/TLS connection failure. Transient.
    #[error("could not connect to the image server: {0}")]
    Connect(String),
    /// The connection broke while reading the body. Transient.
    #[error("the image download broke off: {0}")]
    Body(String),
}

impl FetchError {
    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            FetchError::Status(code) => is_permanent_status(*code),
            FetchError::Timeout | FetchError::TooSlow { .. } | FetchError::Connect(_) | FetchError::Body(_) => false,
            FetchError::InvalidUrl(_)
            | FetchError::Forbidden(_)
            | FetchError::TooManyRedirects(_)
            | FetchError::WrongType(_)
            | FetchError::TooLarge { .. } => true,
        }
    }
}

impl FetchError {
    /// Whether the source answered too slowly (timed out or trickled): worth fewer retries than
    /// other transient failures, since each try holds a worker for the whole deadline.
    pub fn is_slow(&self) -> bool {
        matches!(self, FetchError::Timeout | FetchError::TooSlow { .. })
    }
}

fn is_permanent_status(code: u16) -> bool {
    (400..500).contains(&code) && code != 408 && code != 429
}

/// A fetched image.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its format, from its magic numbers.
    pub format: ImageFormat,
    /// Where it was finally fetched from, after redirects.
    pub final_url: Url,
}

/// Which addresses may be fetched from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Allow every address (the `allow_private_image_urls` development switch).
    pub allow_private: bool,
    /// Exact addresses allowed although in a forbidden range (e.g. a test server on loopback).
    pub exceptions: Vec<IpAddr>,
}

impl AddressPolicy {
    /// Public addresses only: the production default.
    pub fn public_only() -> Self {
        Self::default()
    }

    /// Whether `ip` may be connected to.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || !intake::is_forbidden_ip(ip) || self.exceptions.contains(&ip.to_canonical())
    }
}

/// Fetcher settings.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Whole fetch: all hops and the body.
    pub total_timeout: Duration,
    /// Body cap, in bytes.
    pub max_bytes: usize,
    /// Redirects followed.
    pub max_redirects: u32,
    /// Allowed addresses.
    pub policy: AddressPolicy,
    /// Lowest average body rate after the grace period, in bytes per second; 0 = unchecked.
    pub min_bytes_per_sec: u64,
    /// Time after sending the request before the rate is checked.
    pub rate_grace: Duration,
    /// Attempts a job gets when its fetch was slow ([`FetchError::is_slow`]).
    pub slow_max_attempts: u32,
}

impl FetchSettings {
    /// From `image_fetch_*`, `max_image_bytes` and `allow_private_image_urls`.
    pub fn from_config(config: &Config) -> Self {
        let fetch = &config.images.fetch;
        Self {
            connect_timeout: fetch.connect_timeout,
            total_timeout: fetch.timeout,
            max_bytes: config.images.max_bytes,
            max_redirects: fetch.max_redirects,
            policy: AddressPolicy { allow_private: config.images.allow_private_urls, exceptions: Vec::new() },
            min_bytes_per_sec: fetch.min_bytes_per_sec,
            rate_grace: fetch.rate_grace,
            slow_max_attempts: fetch.slow_max_attempts,
        }
    }
}

/// Fetches images by URL. Cheap to clone (shares its connection pool).
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    settings: Arc<FetchSettings>,
}

impl Fetcher {
    /// A fetcher with the configured limits.
    pub fn from_config(config: &Config) -> Result<Self, crate::error::Error> {
        Self::new(FetchSettings::from_config(config))
    }

    /// A fetcher with these settings.
    pub fn new(settings: FetchSettings) -> Result<Self, crate::error::Error> {
        let builder = crate::http_client::builder("brain-image-fetcher")
            .no_proxy()
            .redirect(redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.total_timeout)
            .dns_resolver(GuardedResolver { policy: Arc::new(settings.policy.clone()) })
            .pool_idle_timeout(Duration::from_secs(30));
        let client = crate::http_client::build(builder, "image fetch client")?;
        Ok(Self { client, settings: Arc::new(settings) })
    }

    /// Its settings.
    pub fn settings(&self) -> &FetchSettings {
        &self.settings
    }

    /// Fetches `url` under every guard described in the module docs.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let url = intake::validate_url(url, true).map_err(|e| FetchError::InvalidUrl(e.message().to_owned()))?;
        let received = AtomicU64::new(0);
        let transfer = tokio::time::timeout(self.settings.total_timeout, self.fetch_hops(url, &received));
        tokio::select! {
            result = transfer => result.unwrap_or(Err(FetchError::Timeout)),
            too_slow = self.watch_rate(&received, Instant::now()) => Err(too_slow),
        }
    }

    /// Resolves when the transfer falls behind the minimum rate; never when the check is off.
    async fn watch_rate(&self, received: &AtomicU64, started: Instant) -> FetchError {
        const CHECK_EVERY: Duration = Duration::from_millis(250);
        let settings = &self.settings;
        if settings.min_bytes_per_sec == 0 {
            return std::future::pending().await;
        }
        tokio::time::sleep(settings.rate_grace + CHECK_EVERY).await;
        loop {
            let elapsed = started.elapsed();
            let checked = elapsed.saturating_sub(settings.rate_grace);
            let required = (settings.min_bytes_per_sec as f64 * checked.as_secs_f64()) as u64;
            let got = received.load(Ordering::Relaxed);
            if got < required {
                return FetchError::TooSlow {
                    received: got,
                    elapsed_ms: elapsed.as_millis() as u64,
                    min_bytes_per_sec: settings.min_bytes_per_sec,
                    grace_ms: settings.rate_grace.as_millis() as u64,
                };
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }

    async fn fetch_hops(&self, mut url: Url, received: &AtomicU64) -> Result<Fetched, FetchError> {
        let mut redirects = 0u32;
        loop {
            self.check_literal_host(&url)?;
            let response = self
                .client
                .get(url.clone())
                .header(ACCEPT, "image/png,image/jpeg,image/webp,image/gif;q=0.9,*/*;q=0.1")
                .send()
                .await
                .map_err(classify)?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(LOCATION)
            {
                if redirects >= self.settings.max_redirects {
                    return Err(FetchError::TooManyRedirects(self.settings.max_redirects));
                }
                redirects += 1;
                let location = location
                    .to_str()
                    .map_err(|_| FetchError::InvalidUrl("a redirect Location is not valid text".into()))?;
                let next = url
                    .join(location)
                    .map_err(|e| FetchError::InvalidUrl(format!("a redirect Location is malformed: {e}")))?;
                intake::check_parsed_url(&next, true)
                    .map_err(|e| FetchError::InvalidUrl(format!("redirect: {}", e.message())))?;
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            return self.read_image(response, url, received).await;
        }
    }

    fn check_literal_host(&self, url: &Url) -> Result<(), FetchError> {
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        if self.settings.policy.permits(ip) {
            Ok(())
        } else {
            Err(FetchError::Forbidden(intake::forbidden_error(ip).message().to_owned()))
        }
    }

    async fn read_image(
        &self,
        mut response: reqwest::Response,
        url: Url,
        received: &AtomicU64,
    ) -> Result<Fetched, FetchError> {
        let limit = self.settings.max_bytes;
        let content_type =
            response.headers().get(CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if let Some(ct) = &content_type
            && ImageFormat::from_mime(ct).is_none()
            && !is_octet_stream(ct)
        {
            return Err(FetchError::WrongType(format!("Content-Type {}", truncate(ct, 100))));
        }
        let declared_len = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared_len.is_some_and(|n| n > limit as u64) {
            return Err(FetchError::TooLarge { limit });
        }
        let mut body = Vec::with_capacity(declared_len.map_or(64 << 10, |n| n as usize).min(limit));
        let mut sniffed = false;
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
            received.store(body.len() as u64, Ordering::Relaxed);
            if !sniffed && body.len() >= 12 {
                // Refuse a non-image early instead of downloading all of it.
                sniffed = true;
                if intake::sniff(&body).is_none() {
                    return Err(not_an_image(&body, content_type.as_deref()));
                }
            }
        }
        let format = intake::sniff(&body).ok_or_else(|| not_an_image(&body, content_type.as_deref()))?;
        Ok(Fetched { bytes: body, format, final_url: url })
    }
}

fn not_an_image(body: &[u8], content_type: Option<&str>) -> FetchError {
    let what = intake::describe_unsupported(body);
    FetchError::WrongType(match content_type {
        Some(ct) => format!("the body is {what} although Content-Type says {}", truncate(ct, 100)),
        None => format!("the body is {what}"),
    })
}

fn is_octet_stream(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(essence.as_str(), "application/octet-stream" | "binary/octet-stream")
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Maps a client error to a fetch error, recognising the resolver's refusal.
fn classify(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<ForbiddenAddress>() {
            return FetchError::Forbidden(refused.to_string());
        }
        source = err.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_builder() {
        FetchError::InvalidUrl(error_chain(e))
    } else if e.is_body() || e.is_decode() {
        FetchError::Body(error_chain(e))
    } else {
        FetchError::Connect(error_chain(e))
    }
}

/// The error and its causes, without the URL (which may carry signed tokens).
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    parts.join(": ")
}

/// The resolver refused a host because of one of its addresses.
#[derive(Debug)]
struct ForbiddenAddress {
    host: String,
    ip: IpAddr,
}

impl std::fmt::Display for ForbiddenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves to {} ({}); brain only fetches from public addresses",
            self.host,
            self.ip,
            intake::ip_class(self.ip)
        )
    }
}

impl std::error::Error for ForbiddenAddress {}

/// Resolves with the system resolver (via tokio) and refuses the whole name
/// if any of its addresses is not permitted.
#[derive(Debug, Clone)]
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !policy.permits(a.ip())) {
                return Err(
                    Box::new(ForbiddenAddress { host, ip: bad.ip() }) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            if addrs.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(FetchError::Status(404).is_permanent());
        assert!(FetchError::Status(403).is_permanent());
        assert!(!FetchError::Status(429).is_permanent());
        assert!(!FetchError::Status(408).is_permanent());
        assert!(!FetchError::Status(500).is_permanent());
        assert!(!FetchError::Status(503).is_permanent());
        assert!(FetchError::Forbidden("x".into()).is_permanent());
        assert!(FetchError::TooLarge { limit: 1 }.is_permanent());
        assert!(FetchError::WrongType("x".into()).is_permanent());
        assert!(!FetchError::Timeout.is_permanent());
        let too_slow =
            FetchError::TooSlow { received: 2, elapsed_ms: 1_250, min_bytes_per_sec: 4_096, grace_ms: 1_000 };
        assert!(!too_slow.is_permanent() && too_slow.is_slow() && FetchError::Timeout.is_slow());
        assert!(!FetchError::Connect("x".into()).is_slow() && !FetchError::Status(503).is_slow());
        assert!(too_slow.to_string().contains("too slow: 2 bytes in 1250 ms"), "{too_slow}");
        assert!(!FetchError::Connect("x".into()).is_permanent());
    }

    #[test]
    fn policy() {
        let p = AddressPolicy::public_only();
        assert!(p.permits("8.8.8.8".parse().unwrap()));
        assert!(!p.permits("127.0.0.1".parse().unwrap()));
        let p = AddressPolicy { allow_private: false, exceptions: vec!["127.0.0.1".parse().unwrap()] };
        assert!(p.permits("127.0.0.1".parse().unwrap()));
        assert!(p.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!p.permits("127.0.0.2".parse().unwrap()));
        assert!(!p.permits("::1".parse().unwrap()));
        assert!(AddressPolicy { allow_private: true, exceptions: vec![] }.permits("10.0.0.1".parse().unwrap()));
    }

    /// A loopback server that answers every connection by writing `response` one byte every `every`.
    async fn trickling_server(response: &'static [u8], every: Duration) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut request = [0u8; 1024];
                    let _ = socket.read(&mut request).await;
                    for byte in response {
                        if socket.write_all(&[*byte]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(every).await;
                    }
                });
            }
        });
        addr
    }

    fn loopback_settings(min_bytes_per_sec: u64, grace_ms: u64) -> FetchSettings {
        FetchSettings {
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(20),
            max_bytes: 1 << 20,
            max_redirects: 0,
            policy: AddressPolicy { allow_private: true, exceptions: vec![] },
            min_bytes_per_sec,
            rate_grace: Duration::from_millis(grace_ms),
            slow_max_attempts: 2,
        }
    }

    #[tokio::test]
    async fn a_trickling_source_fails_fast_as_too_slow() {
        const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 100\r\n\r\n\x89PNG";
        let addr = trickling_server(RESPONSE, Duration::from_millis(100)).await;
        let fetcher = Fetcher::new(loopback_settings(1_000, 300)).unwrap();
        let started = Instant::now();
        let err = fetcher.fetch(&format!("http://{addr}/slow.png")).await.expect_err("too slow");
        let took = started.elapsed();
        assert!(matches!(err, FetchError::TooSlow { .. }), "{err}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn a_source_that_keeps_up_is_not_cut_off() {
        const RESPONSE: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 4\r\n\r\nGIF8";
        let addr = trickling_server(RESPONSE, Duration::ZERO).await;
        let fetcher = Fetcher::new(loopback_settings(1_000, 300)).unwrap();
        let err = fetcher.fetch(&format!("http://{addr}/fast.gif")).await.expect_err("not an image");
        assert!(matches!(err, FetchError::WrongType(_)), "the body arrived and was judged: {err}");
    }

    #[tokio::test]
    async fn resolver_refuses_loopback_names() {
        let resolver = GuardedResolver { policy: Arc::new(AddressPolicy::public_only()) };
        let err = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        assert!(err.downcast_ref::<ForbiddenAddress>().is_some(), "{err}");
        let allowing = GuardedResolver { policy: Arc::new(AddressPolicy { allow_private: true, exceptions: vec![] }) };
        let addrs: Vec<SocketAddr> = allowing.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
