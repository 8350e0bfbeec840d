//! A stand-in for Sentry's ingest endpoint on loopback, speaking the real
//! protocol: the SDK POSTs envelopes to `/api/<project>/envelope/` with an
//! `X-Sentry-Auth` header; each envelope is a JSON header line followed by
//! items, each a JSON item header (with `type` and an optional `length`) and
//! its payload. The stand-in parses envelopes strictly by that format
//! (https://develop.sentry.dev/sdk/data-model/envelopes/), answers
//! `200 {"id": ...}` as ingest does, and keeps everything for assertions.
//!
//! Point a server at it with `SENTRY_DSN=http://public@127.0.0.1:<port>/1`.

use std::sync::{Arc, Mutex};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// One HTTP request the stand-in received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Request path, e.g. `/api/1/envelope/`.
    pub path: String,
    /// The `X-Sentry-Auth` header.
    pub auth: String,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The raw body, for leak checks.
    pub body: Vec<u8>,
    /// The body parsed as an envelope; `Err` says why it is not one.
    pub envelope: Result<Envelope, String>,
}

/// A parsed envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The envelope header (`event_id`, `sent_at`, `dsn`, ...).
    pub header: serde_json::Value,
    /// (item header, payload) pairs.
    pub items: Vec<(serde_json::Value, Vec<u8>)>,
}

impl Envelope {
    /// The payloads of `event` items, as JSON.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.items
            .iter()
            .filter(|(header, _)| header["type"] == "event")
            .filter_map(|(_, payload)| serde_json::from_slice(payload).ok())
            .collect()
    }
}

/// Parses an envelope: header line, then items of header line + payload
/// (exactly `length` bytes when the item header has one, else up to the
/// next newline).
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, String> {
    fn line(rest: &[u8]) -> (&[u8], &[u8]) {
        match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[]),
        }
    }
    let (head, mut rest) = line(body);
    let header: serde_json::Value =
        serde_json::from_slice(head).map_err(|e| format!("envelope header is not JSON: {e}"))?;
    if !header.is_object() {
        return Err("envelope header is not an object".into());
    }
    let mut items = Vec::new();
    while !rest.is_empty() {
        let (item_head, after) = line(rest);
        if item_head.is_empty() && after.is_empty() {
            break;
        }
        let item: serde_json::Value =
            serde_json::from_slice(item_head).map_err(|e| format!("item header is not JSON: {e}"))?;
        if !item["type"].is_string() {
            return Err(format!("item header without a type: {item}"));
        }
        let (payload, next) = match item["length"].as_u64() {
            Some(n) => {
                let n = n as usize;
                if after.len() < n {
                    return Err(format!("item says {n} bytes, {} left", after.len()));
                }
                let (payload, mut next) = after.split_at(n);
                if next.first() == Some(&b'\n') {
                    next = &next[1..];
                }
                (payload, next)
            }
            None => line(after),
        };
        items.push((item, payload.to_vec()));
        rest = next;
    }
    Ok(Envelope { header, items })
}

/// The running stand-in.
pub struct FakeSentry {
    /// Port on 127.0.0.1.
    pub port: u16,
    received: Arc<Mutex<Vec<Request>>>,
}

impl FakeSentry {
    /// Listens on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the Sentry stand-in");
        let port = listener.local_addr().expect("addr").port();
        let received: Arc<Mutex<Vec<Request>>> = Arc::default();
        let sink = received.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, sink.clone()));
            }
        });
        Self { port, received }
    }

    /// A DSN that sends here, with public key `public` and project 1.
    pub fn dsn(&self) -> String {
        format!("http://public@127.0.0.1:{}/1", self.port)
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.received.lock().expect("sink").clone()
    }

    /// Every event received so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.requests().iter().filter_map(|r| r.envelope.as_ref().ok()).flat_map(Envelope::events).collect()
    }

    /// Waits until an event matches `want`, up to `timeout`.
    pub async fn wait_for_event(
        &self,
        timeout: std::time::Duration,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(event) = self.events().into_iter().find(|e| want(e)) {
                return Some(event);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Serves one keep-alive HTTP/1.1 connection.
async fn serve(socket: tokio::net::TcpStream, sink: Arc<Mutex<Vec<Request>>>) {
    let mut reader = BufReader::new(socket);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let path = request_line.split(' ').nth(1).unwrap_or_default().to_owned();
        let (mut length, mut auth, mut content_type, mut encoding) = (0usize, String::new(), String::new(), None);
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim().to_owned();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().unwrap_or(0),
                    "x-sentry-auth" => auth = value,
                    "content-type" => content_type = value,
                    "content-encoding" => encoding = Some(value),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let envelope = match encoding {
            Some(encoding) => Err(format!("unsupported content-encoding {encoding}")),
            None => parse_envelope(&body),
        };
        let event_id = envelope
            .as_ref()
            .ok()
            .and_then(|e| e.header["event_id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "00000000000000000000000000000000".into());
        sink.lock().expect("sink").push(Request { path, auth, content_type, body, envelope });
        let reply = serde_json::json!({ "id": event_id }).to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if reader.get_mut().write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_items_with_and_without_length() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
            {\"type\":\"attachment\",\"length\":10}\n\x00\n23456789\n\
            {\"type\":\"event\"}\n{\"message\":\"hi\"}\n";
        let envelope = parse_envelope(body).expect("envelope");
        assert_eq!(envelope.items.len(), 2);
        assert_eq!(envelope.items[0].1, b"\x00\n23456789");
        assert_eq!(envelope.events(), vec![serde_json::json!({ "message": "hi" })]);
        assert!(parse_envelope(b"not json\n").is_err());
        assert!(parse_envelope(b"{}\n{\"type\":\"event\",\"length\":99}\n{}").is_err());
    }
}
