//! Helpers for the image facts tests: real encoded fixture images, a project,
//! a watch stream reader, and a loopback HTTP image host whose responses the
//! test controls (stall until released, fail N times, fixed status).

#![allow(dead_code)]

use std::{
    collections::HashMap,
    io::Cursor,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use brain_e2e::Server;
use brain_proto::v1::{
    AnalyzeImagesRequest, ImageAnalysis, ImageFactsEvent, ImageInput, WatchImageFactsRequest, WatchImageFactsResponse,
    image_input::Source, watch_image_facts_response::Message,
};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use tokio::sync::{Notify, watch};
use tonic::Streaming;

/// An image with a left and a right half of two colours.
pub fn picture(width: u32, height: u32, left: [u8; 3], right: [u8; 3]) -> DynamicImage {
    let mut img = RgbImage::new(width, height);
    for (x, _, p) in img.enumerate_pixels_mut() {
        *p = Rgb(if x < width / 2 { left } else { right });
    }
    DynamicImage::ImageRgb8(img)
}

/// `img` encoded as `format`.
pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    let img = if format == ImageFormat::Gif { DynamicImage::ImageRgba8(img.to_rgba8()) } else { img.clone() };
    img.write_to(&mut Cursor::new(&mut out), format).expect("encode fixture");
    out
}

/// A `width`×`height` image of `background` with a `fill` rectangle at (x, y, w, h).
pub fn rect_on(
    width: u32,
    height: u32,
    background: [u8; 3],
    fill: [u8; 3],
    rect: (u32, u32, u32, u32),
) -> DynamicImage {
    let (rx, ry, rw, rh) = rect;
    let mut img = RgbImage::new(width, height);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let inside = x >= rx && x < rx + rw && y >= ry && y < ry + rh;
        *p = Rgb(if inside { fill } else { background });
    }
    DynamicImage::ImageRgb8(img)
}

/// A valid PNG whose header declares `width`×`height` 8-bit RGB pixels over a
/// few hundred bytes of data: a decompression bomb if decoded naively.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32(kind);
        crc = crc32_update(crc, data);
        out.extend_from_slice(&(!crc).to_be_bytes());
        out
    }
    fn crc32(data: &[u8]) -> u32 {
        crc32_update(0xFFFF_FFFF, data)
    }
    fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        crc
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend(chunk(b"IHDR", &ihdr));
    // zlib: header, one stored block of 256 zero bytes, adler32 of those.
    let zeros = [0u8; 256];
    let mut z = vec![0x78, 0x01, 0x01, 0x00, 0x01, 0xFF, 0xFE];
    z.extend_from_slice(&zeros);
    z.extend_from_slice(&0x0100_0001u32.to_be_bytes());
    out.extend(chunk(b"IDAT", &z));
    out.extend(chunk(b"IEND", &[]));
    out
}

/// A complete, well-formed JPEG of a few hundred bytes (16x16 pixels of scan data and an
/// end-of-image marker) whose frame header claims `width`x`height`: too little data for the
/// image it declares.
pub fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = encode(&picture(16, 16, [10, 200, 10], [200, 200, 10]), ImageFormat::Jpeg);
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame header");
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

/// A small PNG.
pub fn png() -> Vec<u8> {
    encode(&picture(64, 48, [220, 40, 40], [30, 30, 170]), ImageFormat::Png)
}

/// A PNG cut in half: a valid signature, an incomplete image.
pub fn truncated_png() -> Vec<u8> {
    let full = encode(&picture(64, 64, [10, 200, 10], [200, 200, 10]), ImageFormat::Png);
    full[..full.len() / 2].to_vec()
}

/// A PNG signature followed by garbage.
pub fn corrupt_png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..400u32).map(|i| (i * 37 % 251) as u8));
    bytes
}

/// An inline image input.
pub fn inline(bytes: Vec<u8>, image_id: &str) -> ImageInput {
    ImageInput { source: Some(Source::Data(bytes.into())), mime_type: String::new(), image_id: image_id.into() }
}

/// An image input by URL.
pub fn by_url(url: &str, image_id: &str) -> ImageInput {
    ImageInput { source: Some(Source::Url(url.into())), mime_type: String::new(), image_id: image_id.into() }
}

/// Creates a project; returns its id.
pub async fn project(server: &Server, name: &str) -> String {
    brain_e2e::create_project(&mut server.projects(None).await, name).await.project_id
}

/// Sends images with AnalyzeImages; returns the accepted analyses.
pub async fn analyze(server: &Server, project_id: &str, images: Vec<ImageInput>) -> Vec<ImageAnalysis> {
    let mut client = server.image_facts(None).await;
    client
        .analyze_images(AnalyzeImagesRequest { project_id: project_id.into(), images })
        .await
        .expect("analyze images")
        .into_inner()
        .analyses
}

/// Runs one SQL query against the test database and returns the first row's
/// columns (which the query must CAST to TEXT; NULL as None), for checks the
/// API does not expose.
pub async fn query_row(db: &brain_e2e::TestDb, sql: &str) -> Option<Vec<Option<String>>> {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let conn = Database::connect(&db.url).await.expect("connect to the test database");
    let backend = conn.get_database_backend();
    let row = conn.query_one_raw(Statement::from_string(backend, sql.to_owned())).await.expect("query");
    let out = row.map(|row| (0..).map_while(|i| row.try_get_by_index::<Option<String>>(i).ok()).collect());
    conn.close().await.ok();
    out
}

/// `sql`'s first column of its first row as a number: a `SELECT CAST(COUNT(*) AS TEXT) ...`.
pub async fn count(db: &brain_e2e::TestDb, sql: &str) -> u64 {
    let row = query_row(db, sql).await.and_then(|r| r.into_iter().next().flatten());
    row.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no count from {sql}"))
}

/// How many rows of each table name `owner_id`: tables' `column` equal to it, then the owner's
/// own row (`owner_table` by `id`). For checks that a deletion left nothing behind.
pub async fn rows_naming(
    db: &brain_e2e::TestDb,
    tables: &[&'static str],
    column: &str,
    owner_table: &'static str,
    owner_id: &str,
) -> Vec<(&'static str, u64)> {
    let mut counts = Vec::new();
    for table in tables {
        let sql = format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table} WHERE {column} = '{owner_id}'");
        counts.push((*table, count(db, &sql).await));
    }
    let sql = format!("SELECT CAST(COUNT(*) AS TEXT) FROM {owner_table} WHERE id = '{owner_id}'");
    counts.push((owner_table, count(db, &sql).await));
    counts
}

/// Runs one SQL statement against the test database (for setting up states
/// the API cannot produce, like events older than the retention window).
pub async fn exec(db: &brain_e2e::TestDb, sql: &str) -> u64 {
    use sea_orm::{ConnectionTrait, Database};
    let conn = Database::connect(&db.url).await.expect("connect to the test database");
    let done = conn.execute_unprepared(sql).await.expect("execute").rows_affected();
    conn.close().await.ok();
    done
}

/// Opens a WatchImageFacts stream.
pub async fn watch(server: &Server, project_id: &str, after_cursor: u64) -> Streaming<WatchImageFactsResponse> {
    watch_filtered(server, project_id, after_cursor, "").await
}

/// Opens a WatchImageFacts stream limited to one orchestration.
pub async fn watch_filtered(
    server: &Server,
    project_id: &str,
    after_cursor: u64,
    orchestration_id: &str,
) -> Streaming<WatchImageFactsResponse> {
    let mut client = server.image_facts(None).await;
    client
        .watch_image_facts(WatchImageFactsRequest {
            project_id: project_id.into(),
            after_cursor,
            orchestration_id: orchestration_id.into(),
        })
        .await
        .expect("watch image facts")
        .into_inner()
}

/// The next event on a stream, skipping heartbeats; panics after `timeout`.
pub async fn next_event(stream: &mut Streaming<WatchImageFactsResponse>, timeout: Duration) -> ImageFactsEvent {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let message = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("no event before the timeout")
            .expect("stream failed")
            .expect("stream ended");
        if let Some(Message::Event(event)) = message.message {
            return event;
        }
    }
}

/// The next `n` events.
pub async fn events(
    stream: &mut Streaming<WatchImageFactsResponse>,
    n: usize,
    timeout: Duration,
) -> Vec<ImageFactsEvent> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(next_event(stream, timeout).await);
    }
    out
}

/// How the image host answers one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// 200 with the bytes.
    Serve,
    /// Waits until [`ImageHost::release`], then 200.
    Stall,
    /// The first `n` requests get `status`, later ones 200.
    FailFirst(u32, u16),
    /// Always `status`.
    Status(u16),
}

struct Route {
    bytes: Vec<u8>,
    behavior: Behavior,
}

#[derive(Default)]
struct HostState {
    routes: Mutex<HashMap<String, Route>>,
    hits: Mutex<HashMap<String, Vec<std::time::Instant>>>,
    hit: Notify,
    released: Option<watch::Sender<bool>>,
}

/// A loopback HTTP server serving test images.
pub struct ImageHost {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<HostState>,
    task: tokio::task::JoinHandle<()>,
}

impl ImageHost {
    /// Starts a host on 127.0.0.1:0.
    pub async fn start() -> Self {
        let (released, _) = watch::channel(false);
        let state = Arc::new(HostState { released: Some(released), ..HostState::default() });
        let app = Router::new().route("/img/{name}", get(serve)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind image host");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// Serves `bytes` at `/img/{name}` as `behavior` says; returns the URL.
    pub fn add(&self, name: &str, bytes: Vec<u8>, behavior: Behavior) -> String {
        self.state.routes.lock().expect("routes").insert(name.into(), Route { bytes, behavior });
        format!("http://{}/img/{name}", self.addr)
    }

    /// Requests received for `name`.
    pub fn hits(&self, name: &str) -> u32 {
        self.hit_times(name).len() as u32
    }

    /// When each request for `name` arrived.
    pub fn hit_times(&self, name: &str) -> Vec<std::time::Instant> {
        self.state.hits.lock().expect("hits").get(name).cloned().unwrap_or_default()
    }

    /// Waits until `name` received at least `n` requests.
    pub async fn wait_hits(&self, name: &str, n: u32, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.hit.notified();
            if self.hits(name) >= n {
                return;
            }
            assert!(
                tokio::time::timeout_at(deadline, notified).await.is_ok() || self.hits(name) >= n,
                "{name} got {} requests, expected {n}",
                self.hits(name)
            );
        }
    }

    /// Lets stalled and future stalling requests complete.
    pub fn release(&self) {
        if let Some(tx) = &self.state.released {
            // send_replace: the value must change even when no request is waiting.
            tx.send_replace(true);
        }
    }
}

impl Drop for ImageHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(Path(name): Path<String>, State(state): State<Arc<HostState>>) -> Response {
    let hit = {
        let mut hits = state.hits.lock().expect("hits");
        let times = hits.entry(name.clone()).or_default();
        times.push(std::time::Instant::now());
        times.len() as u32
    };
    state.hit.notify_waiters();
    let (bytes, behavior) = match state.routes.lock().expect("routes").get(&name) {
        Some(route) => (route.bytes.clone(), route.behavior),
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    match behavior {
        Behavior::Serve => {}
        Behavior::Stall => {
            if let Some(tx) = &state.released {
                let mut rx = tx.subscribe();
                let _ = rx.wait_for(|released| *released).await;
            }
        }
        Behavior::FailFirst(n, status) if hit <= n => {
            return StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response();
        }
        Behavior::FailFirst(..) => {}
        Behavior::Status(status) => {
            return StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response();
        }
    }
    let content_type = match bytes.get(..4) {
        Some([0xFF, 0xD8, 0xFF, _]) => "image/jpeg",
        Some(b"GIF8") => "image/gif",
        Some(b"RIFF") => "image/webp",
        _ => "image/png",
    };
    ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
}
