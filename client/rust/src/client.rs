//! [`BrainClient`]: one connection to brain, with auth, deadlines and retries.

use std::{future::Future, time::Duration};

use brain_proto::v1::{
    self as pb, admin_service_client::AdminServiceClient, image_facts_service_client::ImageFactsServiceClient,
    orchestrator_service_client::OrchestratorServiceClient, performance_service_client::PerformanceServiceClient,
    project_service_client::ProjectServiceClient,
};
use futures::{Stream, StreamExt, stream::BoxStream};
use tokio::time::Instant;
use tonic::{
    Code, Request, Response, Status,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::{BrainError, RetryPolicy, watch::ImageFactsWatch};

/// Largest response the client accepts (context packets and reports can be large).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A client for every brain RPC, cheap to clone (clones share one HTTP/2 connection).
///
/// Unary calls run under the default deadline (10 s unless configured) and
/// idempotent ones are retried with backoff on UNAVAILABLE (see
/// [`RetryPolicy`] and the crate docs for which calls are idempotent). Use
/// [`with_timeout`](Self::with_timeout) / [`with_retry`](Self::with_retry) for
/// one call's own settings:
///
/// ```no_run
/// # async fn f(client: brain_client::BrainClient) -> Result<(), brain_client::BrainError> {
/// use std::time::Duration;
/// let projects = client.with_timeout(Duration::from_secs(2)).list_projects(Default::default()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BrainClient {
    channel: Channel,
    authorization: Option<MetadataValue<Ascii>>,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    watch_backoff: RetryPolicy,
}

impl std::fmt::Debug for BrainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrainClient")
            .field("authenticated", &self.authorization.is_some())
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Configures and connects a [`BrainClient`].
#[derive(Debug, Clone)]
pub struct BrainClientBuilder {
    endpoint: String,
    api_key: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    retry: RetryPolicy,
    watch_backoff: RetryPolicy,
    keep_alive: Option<Duration>,
}

impl BrainClientBuilder {
    /// The API key (`brk_...`), sent as `authorization: Bearer <key>`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Default deadline of unary calls (10 s by default); streams have none.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Unary calls without a default deadline.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// How long to wait for the TCP connection (5 s by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retry policy of idempotent unary calls.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Backoff between reconnects of [`watch_image_facts`](BrainClient::watch_image_facts);
    /// `max_attempts` bounds consecutive failed reconnects (0 = never give up, the default).
    pub fn watch_backoff(mut self, policy: RetryPolicy) -> Self {
        self.watch_backoff = policy;
        self
    }

    /// HTTP/2 keep-alive ping interval (30 s by default), so a dead connection
    /// under a long watch is noticed; `None` disables pings.
    pub fn keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval;
        self
    }

    fn endpoint(&self) -> Result<Endpoint, BrainError> {
        let uri =
            if self.endpoint.contains("://") { self.endpoint.clone() } else { format!("http://{}", self.endpoint) };
        if uri.starts_with("https://") {
            return Err(BrainError::local(
                Code::InvalidArgument,
                "https endpoints are not supported by this build; terminate TLS in front of brain or use http://",
            ));
        }
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|e| BrainError::local(Code::InvalidArgument, format!("invalid endpoint '{uri}': {e}")))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("brain-client-rust/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| BrainError::local(Code::InvalidArgument, e.to_string()))?;
        if let Some(interval) = self.keep_alive {
            endpoint = endpoint
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(Duration::from_secs(10))
                .keep_alive_while_idle(true);
        }
        Ok(endpoint)
    }

    fn authorization(&self) -> Result<Option<MetadataValue<Ascii>>, BrainError> {
        self.api_key
            .as_deref()
            .map(|key| {
                format!("Bearer {key}").parse().map_err(|_| {
                    BrainError::local(Code::InvalidArgument, "the API key has characters not allowed in a header")
                })
            })
            .transpose()
    }

    fn build(self, channel: Channel) -> Result<BrainClient, BrainError> {
        Ok(BrainClient {
            authorization: self.authorization()?,
            channel,
            timeout: self.timeout,
            retry: self.retry,
            watch_backoff: self.watch_backoff,
        })
    }

    /// Connects now; fails with UNAVAILABLE when the server cannot be reached.
    pub async fn connect(self) -> Result<BrainClient, BrainError> {
        let endpoint = self.endpoint()?;
        self.authorization()?;
        let channel = endpoint.connect().await.map_err(|e| {
            BrainError::local(Code::Unavailable, format!("cannot connect to {}: {}", self.endpoint, source_chain(&e)))
        })?;
        self.build(channel)
    }

    /// Connects on the first call (and reconnects whenever needed).
    pub fn connect_lazy(self) -> Result<BrainClient, BrainError> {
        let channel = self.endpoint()?.connect_lazy();
        self.build(channel)
    }
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

impl BrainClient {
    /// Starts configuring a client for `endpoint` (`host:port` or `http://host:port`).
    pub fn builder(endpoint: impl Into<String>) -> BrainClientBuilder {
        BrainClientBuilder {
            endpoint: endpoint.into(),
            api_key: None,
            timeout: Some(Duration::from_secs(10)),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            watch_backoff: RetryPolicy {
                max_attempts: 0,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                multiplier: 2.0,
                jitter: 0.2,
            },
            keep_alive: Some(Duration::from_secs(30)),
        }
    }

    /// Connects with the defaults and an optional API key.
    pub async fn connect(endpoint: impl Into<String>, api_key: Option<&str>) -> Result<Self, BrainError> {
        let mut builder = Self::builder(endpoint);
        if let Some(key) = api_key {
            builder = builder.api_key(key);
        }
        builder.connect().await
    }

    /// This client with another deadline for unary calls (`None`: no deadline).
    pub fn with_timeout(&self, timeout: impl Into<Option<Duration>>) -> Self {
        Self { timeout: timeout.into(), ..self.clone() }
    }

    /// This client with another retry policy for idempotent unary calls.
    pub fn with_retry(&self, policy: RetryPolicy) -> Self {
        Self { retry: policy, ..self.clone() }
    }

    /// This client with retries disabled.
    pub fn without_retries(&self) -> Self {
        self.with_retry(RetryPolicy::none())
    }

    /// The default deadline of unary calls; None when they have none.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    pub(crate) fn watch_backoff(&self) -> &RetryPolicy {
        &self.watch_backoff
    }

    /// A request carrying the API key and, when there is a deadline, `grpc-timeout`.
    pub(crate) fn request<T>(&self, message: T, deadline: Option<Instant>) -> Result<Request<T>, BrainError> {
        let mut request = Request::new(message);
        if let Some(value) = &self.authorization {
            request.metadata_mut().insert("authorization", value.clone());
        }
        if let Some(deadline) = deadline {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(BrainError::local(Code::DeadlineExceeded, "the deadline passed before the call started"));
            }
            request.set_timeout(remaining);
        }
        Ok(request)
    }

    /// Runs a unary call under the deadline, retrying it when it is idempotent.
    async fn unary<Req, Resp, F, Fut>(&self, idempotent: bool, message: Req, mut call: F) -> Result<Resp, BrainError>
    where
        Req: Clone,
        F: FnMut(Channel, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let max_attempts = if idempotent { self.retry.max_attempts.max(1) } else { 1 };
        let mut attempt = 1;
        loop {
            let request = self.request(message.clone(), deadline)?;
            let attempt_call = call(self.channel.clone(), request);
            // grpc-timeout only starts once the request is on a connection;
            // this also bounds waiting for the connection itself.
            let outcome = match deadline {
                Some(d) => tokio::time::timeout_at(d, attempt_call).await.map_err(|_| {
                    BrainError::local(Code::DeadlineExceeded, "the deadline passed before the server answered")
                })?,
                None => attempt_call.await,
            };
            let status = match outcome {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => status,
            };
            let err = BrainError::from(status);
            if attempt >= max_attempts || !err.is_retryable() {
                return Err(err);
            }
            // Never sooner than the server asked (a per-tenant limit says when it admits again).
            let wait = self.retry.backoff(attempt).max(err.retry_delay().unwrap_or_default());
            if deadline.is_some_and(|d| Instant::now() + wait >= d) {
                return Err(err);
            }
            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying brain call");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Opens a server stream (no default deadline, never retried).
    async fn server_stream<Req, Resp, F, Fut>(
        &self,
        message: Req,
        call: F,
    ) -> Result<BoxStream<'static, Result<Resp, BrainError>>, BrainError>
    where
        Resp: Send + 'static,
        F: FnOnce(Channel, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<tonic::Streaming<Resp>>, Status>>,
    {
        let request = self.request(message, None)?;
        let stream = call(self.channel.clone(), request).await.map_err(BrainError::from)?.into_inner();
        Ok(stream.map(|item| item.map_err(BrainError::from)).boxed())
    }

    pub(crate) fn projects_stub(channel: Channel) -> ProjectServiceClient<Channel> {
        ProjectServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }
    pub(crate) fn orchestrator_stub(channel: Channel) -> OrchestratorServiceClient<Channel> {
        OrchestratorServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }
    pub(crate) fn image_facts_stub(channel: Channel) -> ImageFactsServiceClient<Channel> {
        ImageFactsServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }
    pub(crate) fn performance_stub(channel: Channel) -> PerformanceServiceClient<Channel> {
        PerformanceServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }
    pub(crate) fn admin_stub(channel: Channel) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    // ---- health -------------------------------------------------------------

    /// The server's overall health (`grpc.health.v1`, service ""); no API key needed.
    pub async fn health(&self) -> Result<ServingStatus, BrainError> {
        let response = self
            .unary(true, HealthCheckRequest { service: String::new() }, |ch, req| async move {
                HealthClient::new(ch).check(req).await
            })
            .await?;
        Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
    }

    // ---- ProjectService -----------------------------------------------------

    /// Creates a project (not retried: a retry could create a second one).
    pub async fn create_project(&self, request: pb::CreateProjectRequest) -> Result<pb::Project, BrainError> {
        let response = self
            .unary(false, request, |ch, req| async move { Self::projects_stub(ch).create_project(req).await })
            .await?;
        response.project.ok_or_else(|| missing("project"))
    }

    /// One of the caller's projects; NOT_FOUND (`PROJECT_NOT_FOUND`) also for another tenant's.
    pub async fn get_project(&self, project_id: impl Into<String>) -> Result<pb::Project, BrainError> {
        let request = pb::GetProjectRequest { project_id: project_id.into() };
        let response =
            self.unary(true, request, |ch, req| async move { Self::projects_stub(ch).get_project(req).await }).await?;
        response.project.ok_or_else(|| missing("project"))
    }

    /// Changes a project's name or description (the fields `update_mask` names). Retried: writing
    /// the same values again leaves the same project (only its update time moves).
    pub async fn update_project(&self, request: pb::UpdateProjectRequest) -> Result<pb::Project, BrainError> {
        let response = self
            .unary(true, request, |ch, req| async move { Self::projects_stub(ch).update_project(req).await })
            .await?;
        response.project.ok_or_else(|| missing("project"))
    }

    /// Deletes a project and everything in it, returning how many rows of each kind were
    /// removed (not retried: a replay would answer PROJECT_NOT_FOUND, so a NOT_FOUND after
    /// a lost response means the project is gone).
    pub async fn delete_project(&self, project_id: impl Into<String>) -> Result<pb::DeletedRows, BrainError> {
        let request = pb::DeleteProjectRequest { project_id: project_id.into() };
        let response = self
            .unary(false, request, |ch, req| async move { Self::projects_stub(ch).delete_project(req).await })
            .await?;
        response.deleted.ok_or_else(|| missing("deleted"))
    }

    /// Streams everything a project holds, as records in the order
    /// [`import_project`](Self::import_project) takes them: an
    /// [`ExportHeader`](pb::ExportHeader) (the project, and how many records of each kind
    /// follow), then scenes in position order, memory items, conversation turns (archived ones
    /// included) and image analyses, all from one consistent snapshot. Orchestrations, jobs
    /// and the event log are not exported.
    ///
    /// Errors before the first record (NOT_FOUND `PROJECT_NOT_FOUND`, auth) are this call's
    /// `Err`; a failure later ends the stream with one `Err` item. No deadline: an export
    /// lasts as long as the project is large, so the client's default timeout (which bounds
    /// unary calls) does not apply; wrap the stream in `tokio::time::timeout` to bound it.
    /// Dropping the stream cancels the export. Not retried: export again (a new snapshot).
    pub async fn export_project(
        &self,
        project_id: impl Into<String>,
    ) -> Result<BoxStream<'static, Result<pb::ProjectRecord, BrainError>>, BrainError> {
        let request = pb::ExportProjectRequest { project_id: project_id.into() };
        let mut stream = self
            .server_stream(request, |ch, req| async move { Self::projects_stub(ch).export_project(req).await })
            .await?
            .map(|item| item.and_then(|response| response.record.ok_or_else(|| missing("record"))));
        // A server may report NOT_FOUND as the stream's first message rather than instead of
        // the stream; either way the caller sees it here.
        let first = match stream.next().await {
            Some(Err(err)) => return Err(err),
            first => first,
        };
        Ok(futures::stream::iter(first).chain(stream).boxed())
    }

    /// Creates a new project from an export's records, sent in export order (the header
    /// first), one message each; returns the new project and how many records of each kind
    /// were stored. Scene and image ids, names, values, timestamps and order are kept; the
    /// project gets a new id.
    ///
    /// A malformed, out-of-order or truncated record is INVALID_ARGUMENT naming it
    /// (`field()` = `records[N]` or `records[N].<field>`, N from 0), and nothing of the import
    /// stays. No deadline, as for [`export_project`](Self::export_project): the client's
    /// default timeout does not cut an import off. To abandon an import, drop the returned
    /// future: the stream is reset and the server removes what it had stored. (Ending
    /// `records` early is not an abort: the server sees the end of the import and answers
    /// INVALID_ARGUMENT only when the header's counts were not reached.) Not retried: a replay
    /// would create a second project.
    pub async fn import_project(
        &self,
        records: impl Stream<Item = pb::ProjectRecord> + Send + 'static,
    ) -> Result<pb::ImportProjectResponse, BrainError> {
        let messages = records.map(|record| pb::ImportProjectRequest { record: Some(record) });
        let request = self.request(messages, None)?;
        let response = Self::projects_stub(self.channel.clone()).import_project(request).await?;
        Ok(response.into_inner())
    }

    /// Lists the caller's projects, one page at a time.
    pub async fn list_projects(
        &self,
        request: pb::ListProjectsRequest,
    ) -> Result<pb::ListProjectsResponse, BrainError> {
        self.unary(true, request, |ch, req| async move { Self::projects_stub(ch).list_projects(req).await }).await
    }

    /// Creates or replaces a scene; retried only when `scene_id` is set (then
    /// a replay writes the same scene again).
    pub async fn upsert_scene(&self, request: pb::UpsertSceneRequest) -> Result<pb::UpsertSceneResponse, BrainError> {
        let idempotent = !request.scene_id.is_empty();
        self.unary(idempotent, request, |ch, req| async move { Self::projects_stub(ch).upsert_scene(req).await }).await
    }

    /// Deletes a scene (not retried: a replay would answer SCENE_NOT_FOUND).
    pub async fn delete_scene(
        &self,
        project_id: impl Into<String>,
        scene_id: impl Into<String>,
    ) -> Result<(), BrainError> {
        let request = pb::DeleteSceneRequest { project_id: project_id.into(), scene_id: scene_id.into() };
        self.unary(false, request, |ch, req| async move { Self::projects_stub(ch).delete_scene(req).await }).await?;
        Ok(())
    }

    /// Lists a project's scenes in position order, one page at a time.
    pub async fn list_scenes(&self, request: pb::ListScenesRequest) -> Result<pb::ListScenesResponse, BrainError> {
        self.unary(true, request, |ch, req| async move { Self::projects_stub(ch).list_scenes(req).await }).await
    }

    /// Creates or replaces the memory item with the request's type and key;
    /// retried (a replay stores the same value; it may count one extra occurrence).
    pub async fn put_memory(&self, request: pb::PutMemoryRequest) -> Result<pb::PutMemoryResponse, BrainError> {
        self.unary(true, request, |ch, req| async move { Self::projects_stub(ch).put_memory(req).await }).await
    }

    /// Deletes a memory item by id or by type and key (not retried).
    pub async fn delete_memory(&self, request: pb::DeleteMemoryRequest) -> Result<(), BrainError> {
        self.unary(false, request, |ch, req| async move { Self::projects_stub(ch).delete_memory(req).await }).await?;
        Ok(())
    }

    /// Lists a project's memory items, one page at a time.
    pub async fn list_memories(
        &self,
        request: pb::ListMemoriesRequest,
    ) -> Result<pb::ListMemoriesResponse, BrainError> {
        self.unary(true, request, |ch, req| async move { Self::projects_stub(ch).list_memories(req).await }).await
    }

    // ---- OrchestratorService ------------------------------------------------

    /// Orchestrates one prompt; retried only when `request_id` is set (the
    /// server then replays the stored response instead of running it twice).
    pub async fn orchestrate(&self, request: pb::OrchestrateRequest) -> Result<pb::OrchestrateResponse, BrainError> {
        let idempotent = !request.request_id.is_empty();
        self.unary(idempotent, request, |ch, req| async move { Self::orchestrator_stub(ch).orchestrate(req).await })
            .await
    }

    /// Orchestrates one prompt and streams its progress (never retried; call
    /// again with the same `request_id` to replay it).
    pub async fn orchestrate_stream(
        &self,
        request: pb::OrchestrateStreamRequest,
    ) -> Result<BoxStream<'static, Result<pb::OrchestrateStreamResponse, BrainError>>, BrainError> {
        self.server_stream(request, |ch, req| async move { Self::orchestrator_stub(ch).orchestrate_stream(req).await })
            .await
    }

    /// The context Orchestrate would build, without deciding or writing.
    pub async fn get_context_packet(
        &self,
        request: pb::GetContextPacketRequest,
    ) -> Result<pb::GetContextPacketResponse, BrainError> {
        self.unary(true, request, |ch, req| async move { Self::orchestrator_stub(ch).get_context_packet(req).await })
            .await
    }

    // ---- ImageFactsService --------------------------------------------------

    /// Accepts images for background analysis (not retried: a replay would
    /// queue the images twice, or fail with IMAGE_ID_TAKEN).
    pub async fn analyze_images(
        &self,
        request: pb::AnalyzeImagesRequest,
    ) -> Result<pb::AnalyzeImagesResponse, BrainError> {
        self.unary(false, request, |ch, req| async move { Self::image_facts_stub(ch).analyze_images(req).await }).await
    }

    /// One image's analysis, whatever its state: pending, ready with facts, or failed with a reason.
    pub async fn get_image_facts(
        &self,
        project_id: impl Into<String>,
        image_id: impl Into<String>,
    ) -> Result<pb::ImageAnalysis, BrainError> {
        let request = pb::GetImageFactsRequest { project_id: project_id.into(), image_id: image_id.into() };
        let response = self
            .unary(true, request, |ch, req| async move { Self::image_facts_stub(ch).get_image_facts(req).await })
            .await?;
        response.analysis.ok_or_else(|| missing("analysis"))
    }

    /// Lists a project's image analyses, one page at a time.
    pub async fn list_image_facts(
        &self,
        request: pb::ListImageFactsRequest,
    ) -> Result<pb::ListImageFactsResponse, BrainError> {
        self.unary(true, request, |ch, req| async move { Self::image_facts_stub(ch).list_image_facts(req).await }).await
    }

    /// Watches a project's image events after `after_cursor` (0: from the
    /// start), reconnecting from the last cursor seen whenever the connection
    /// drops, so every event is yielded exactly once. See [`ImageFactsWatch`].
    pub fn watch_image_facts(&self, project_id: impl Into<String>, after_cursor: u64) -> ImageFactsWatch {
        self.watch_image_facts_with(pb::WatchImageFactsRequest {
            project_id: project_id.into(),
            after_cursor,
            orchestration_id: String::new(),
        })
    }

    /// [`watch_image_facts`](Self::watch_image_facts) with every request field,
    /// for example to follow one orchestration's images only.
    pub fn watch_image_facts_with(&self, request: pb::WatchImageFactsRequest) -> ImageFactsWatch {
        ImageFactsWatch::new(self.clone(), request)
    }

    // ---- PerformanceService -------------------------------------------------

    /// One report over the request's window (the last 5 minutes by default), of the caller's
    /// tenant only; process-wide figures (caches, streams, memory, pool) are everyone's.
    pub async fn get_performance_report(
        &self,
        request: pb::GetPerformanceReportRequest,
    ) -> Result<pb::PerformanceReport, BrainError> {
        let response = self
            .unary(true, request, |ch, req| async move { Self::performance_stub(ch).get_performance_report(req).await })
            .await?;
        response.report.ok_or_else(|| missing("report"))
    }

    /// A fresh report every interval until the stream is dropped (not resumed on disconnect).
    pub async fn watch_performance_report(
        &self,
        request: pb::WatchPerformanceReportRequest,
    ) -> Result<BoxStream<'static, Result<pb::WatchPerformanceReportResponse, BrainError>>, BrainError> {
        self.server_stream(
            request,
            |ch, req| async move { Self::performance_stub(ch).watch_performance_report(req).await },
        )
        .await
    }

    // ---- AdminService -------------------------------------------------------

    /// Applies the retention policy to one tenant (`tenant`: its name; required with an admin
    /// key, empty for the implicit tenant in local mode); retried (a second run finds nothing
    /// more to do). Needs an admin key outside local mode: a tenant's key gets
    /// PERMISSION_DENIED (`ADMIN_KEY_REQUIRED`).
    pub async fn run_retention(
        &self,
        request: pb::RunRetentionRequest,
    ) -> Result<pb::RunRetentionResponse, BrainError> {
        self.unary(true, request, |ch, req| async move { Self::admin_stub(ch).run_retention(req).await }).await
    }

    /// Erases a tenant: its API keys, every project with everything in it, and the tenant
    /// itself; returns what was erased. Needs an admin key (or local mode). Not retried: a
    /// replay would answer NOT_FOUND (`TENANT_NOT_FOUND`), so after a lost response
    /// TENANT_NOT_FOUND means the tenant is gone.
    pub async fn purge_tenant(&self, tenant: impl Into<String>) -> Result<pb::PurgeTenantResponse, BrainError> {
        let request = pb::PurgeTenantRequest { tenant: tenant.into() };
        self.unary(false, request, |ch, req| async move { Self::admin_stub(ch).purge_tenant(req).await }).await
    }
}

fn missing(field: &str) -> BrainError {
    BrainError::local(Code::Internal, format!("the server's response has no {field}"))
}
