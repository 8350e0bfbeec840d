//! Durability of image analysis: resuming a watch after a disconnect, a
//! `kill -9` in the middle of an analysis, retries with backoff, and two
//! replicas sharing one PostgreSQL.

mod common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use brain_e2e::{Server, ServerOptions, TestDb, assert_error, backend_tests, error_field};
use brain_proto::v1::{
    EventType, GetImageFactsRequest, ImageAnalysisStatus, ImageFactsEvent, RunRetentionRequest, WatchImageFactsRequest,
};
use common::*;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(60);

fn options() -> ServerOptions {
    ServerOptions::new()
        .set("job_workers", 2)
        .set("job_poll_interval_ms", 200)
        .set("allow_private_image_urls", true)
        .set("job_backoff_ms", 100)
}

fn check_log(events: &[ImageFactsEvent], total: u64) {
    let cursors: Vec<u64> = events.iter().map(|e| e.cursor).collect();
    assert_eq!(cursors, (1..=total).collect::<Vec<_>>(), "every cursor exactly once, in order");
    let mut per_image: BTreeMap<&str, Vec<EventType>> = BTreeMap::new();
    for e in events {
        per_image.entry(&e.image_id).or_default().push(e.r#type());
    }
    for (image, types) in per_image {
        assert_eq!(types, [EventType::ImageFactsReady, EventType::ImageFactsProcessed], "{image}");
    }
}

async fn resume_after_disconnect_loses_and_repeats_nothing(db: Arc<TestDb>) {
    let server = Arc::new(Server::start_with(&db, options().set("job_workers", 3)).await);
    let project_id = project(&server, "Resume").await;
    const PRODUCERS: usize = 3;
    const REQUESTS: usize = 4;
    const PER_REQUEST: usize = 2;
    let total = (PRODUCERS * REQUESTS * PER_REQUEST * 2) as u64;

    // Concurrent producers, while a consumer keeps dropping its stream and resuming.
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let server = server.clone();
        let project_id = project_id.clone();
        producers.push(tokio::spawn(async move {
            for r in 0..REQUESTS {
                let shade = (p * 60 + r * 10) as u8;
                let images = (0..PER_REQUEST)
                    .map(|i| {
                        let img = picture(32 + i as u32, 32, [shade, 100, 200], [200, shade, 40]);
                        inline(encode(&img, image::ImageFormat::Png), &format!("p{p}-r{r}-i{i}"))
                    })
                    .collect();
                analyze(&server, &project_id, images).await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }));
    }
    let mut received: Vec<ImageFactsEvent> = Vec::new();
    let mut reconnects = 0;
    while (received.len() as u64) < total {
        let after = received.last().map_or(0, |e| e.cursor);
        let mut stream = watch(&server, &project_id, after).await;
        let take = 3 + reconnects % 5;
        for _ in 0..take {
            if received.len() as u64 == total {
                break;
            }
            received.push(next_event(&mut stream, WAIT).await);
        }
        drop(stream);
        reconnects += 1;
    }
    for p in producers {
        p.await.expect("producer");
    }
    assert!(reconnects > 5, "the consumer reconnected {reconnects} times");
    check_log(&received, total);

    // Replays: from the start, and from the middle, then nothing more.
    let mut from_start = watch(&server, &project_id, 0).await;
    check_log(&events(&mut from_start, total as usize, WAIT).await, total);
    let middle = total / 2;
    let mut from_middle = watch(&server, &project_id, middle).await;
    let rest = events(&mut from_middle, (total - middle) as usize, WAIT).await;
    assert_eq!(rest.iter().map(|e| e.cursor).collect::<Vec<_>>(), ((middle + 1)..=total).collect::<Vec<_>>());
    assert_eq!(rest, received[middle as usize..].to_vec(), "a replay is the same events as the live delivery");
}

async fn kill9_mid_analysis_then_restart_completes(db: Arc<TestDb>) {
    let host = ImageHost::start().await;
    let url = host.add("slow.png", png(), Behavior::Stall);
    let opts = || options().set("job_workers", 1).set("job_lease_ms", 1_500);
    let first = Server::start_with(&db, opts()).await;
    let project_id = project(&first, "Crash").await;
    analyze(&first, &project_id, vec![by_url(&url, "slow")]).await;
    // The worker is now inside the analysis (fetching), holding the lease.
    host.wait_hits("slow.png", 1, WAIT).await;
    let running = image_status(&first, &project_id, "slow").await;
    assert_eq!(running, ImageAnalysisStatus::Running);
    first.kill9();
    drop(first);

    host.release();
    let second = Server::start_with(&db, opts()).await;
    let mut stream = watch(&second, &project_id, 0).await;
    let done = events(&mut stream, 2, WAIT).await;
    assert_eq!(done[0].r#type(), EventType::ImageFactsReady);
    assert_eq!(done[1].r#type(), EventType::ImageFactsProcessed);
    assert_eq!(done[0].image_id, "slow");
    assert_eq!(host.hits("slow.png"), 2, "fetched once per attempt");
    let mut client = second.image_facts(None).await;
    let analysis = client
        .get_image_facts(GetImageFactsRequest { project_id: project_id.clone(), image_id: "slow".into() })
        .await
        .expect("get")
        .into_inner()
        .analysis
        .expect("analysis");
    assert_eq!(analysis.status(), ImageAnalysisStatus::Ready);
    assert_eq!(analysis.attempts, 2, "the killed attempt counts");
    let job = query_row(&db, "SELECT status, CAST(attempts AS TEXT) FROM jobs WHERE subject_id = 'slow'").await;
    assert_eq!(job, Some(vec![Some("succeeded".into()), Some("2".into())]));
}

async fn failed_attempts_back_off_and_record_the_last_error(db: Arc<TestDb>) {
    let host = ImageHost::start().await;
    let flaky = host.add("flaky.png", png(), Behavior::FailFirst(2, 500));
    let gone = host.add("gone.png", png(), Behavior::Status(404));
    let server = Server::start_with(&db, options().set("job_backoff_ms", 200)).await;
    let project_id = project(&server, "Retries").await;
    let mut stream = watch(&server, &project_id, 0).await;
    analyze(&server, &project_id, vec![by_url(&flaky, "flaky"), by_url(&gone, "gone")]).await;

    let events = events(&mut stream, 3, WAIT).await;
    let failed = events.iter().find(|e| e.image_id == "gone").expect("gone failed");
    assert_eq!(failed.r#type(), EventType::ImageFactsFailed);
    assert!(failed.error.contains("404"), "{}", failed.error);
    let ready: Vec<_> = events.iter().filter(|e| e.image_id == "flaky").map(|e| e.r#type()).collect();
    assert_eq!(ready, [EventType::ImageFactsReady, EventType::ImageFactsProcessed]);

    assert_eq!(host.hits("gone.png"), 1, "a 404 is not retried");
    let times = host.hit_times("flaky.png");
    assert_eq!(times.len(), 3);
    // Backoff with jitter: the n-th retry waits between half and all of 200 ms * 2^(n-1).
    assert!(times[1] - times[0] >= Duration::from_millis(100), "{:?}", times[1] - times[0]);
    assert!(times[2] - times[1] >= Duration::from_millis(200), "{:?}", times[2] - times[1]);

    let job = query_row(
        &db,
        "SELECT status, CAST(attempts AS TEXT), last_error, CASE WHEN payload IS NULL THEN 'cleared' ELSE 'kept' END \
         FROM jobs WHERE subject_id = 'flaky'",
    )
    .await
    .expect("job row");
    assert_eq!(job[0].as_deref(), Some("succeeded"));
    assert_eq!(job[1].as_deref(), Some("3"));
    assert!(job[2].as_deref().is_some_and(|e| e.contains("500")), "last error kept: {job:?}");
    assert_eq!(job[3].as_deref(), Some("cleared"));
    assert_eq!(image_status(&server, &project_id, "flaky").await, ImageAnalysisStatus::Ready);
    let gone_job = query_row(&db, "SELECT status, CAST(attempts AS TEXT) FROM jobs WHERE subject_id = 'gone'").await;
    assert_eq!(gone_job, Some(vec![Some("failed".into()), Some("1".into())]));
}

async fn resuming_across_deleted_events_is_refused(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options().set("retention_event_hours", 1)).await;
    let project_id = project(&server, "Retention").await;
    let mut stream = watch(&server, &project_id, 0).await;
    analyze(&server, &project_id, vec![inline(png(), "old")]).await;
    events(&mut stream, 2, WAIT).await;
    analyze(&server, &project_id, vec![inline(png(), "new")]).await;
    events(&mut stream, 2, WAIT).await;
    // The first image's events are two hours old; retention deletes them.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let two_hours_ago = now - 2 * 3_600_000;
    assert_eq!(exec(&db, &format!("UPDATE events SET created_at = {two_hours_ago} WHERE cursor <= 2")).await, 2);
    let mut admin = server.admin(None).await;
    let report = admin
        .run_retention(RunRetentionRequest { dry_run: false, project_id: project_id.clone(), tenant: String::new() })
        .await
        .expect("retention")
        .into_inner();
    assert_eq!(report.deleted_events, 2);

    // Resuming after cursor 1 would silently skip cursor 2: refused, with what to do instead.
    let mut client = server.image_facts(None).await;
    let request = |after_cursor| WatchImageFactsRequest {
        project_id: project_id.clone(),
        after_cursor,
        orchestration_id: String::new(),
    };
    let status =
        assert_error(client.watch_image_facts(request(1)).await.map(|_| ()), Code::InvalidArgument, "INVALID_FIELD");
    assert_eq!(error_field(&status).as_deref(), Some("after_cursor"));
    assert!(status.message().contains("ListImageFacts") && status.message().contains("after cursor 2"), "{status:?}");
    // From the edge of what is kept, and from 0 (the whole stored log), nothing is missing.
    let mut kept = watch(&server, &project_id, 2).await;
    assert_eq!(events(&mut kept, 2, WAIT).await.iter().map(|e| e.cursor).collect::<Vec<_>>(), [3, 4]);
    let mut all = watch(&server, &project_id, 0).await;
    assert_eq!(events(&mut all, 2, WAIT).await.iter().map(|e| e.cursor).collect::<Vec<_>>(), [3, 4]);
    // Resuming where the live stream left off is unaffected.
    let mut live = watch(&server, &project_id, 4).await;
    analyze(&server, &project_id, vec![inline(png(), "newest")]).await;
    assert_eq!(next_event(&mut live, WAIT).await.cursor, 5);
}

async fn jobs_of_unknown_kinds_are_left_alone(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Rolling deploy").await;
    // A job a newer version would enqueue: due now, with an expired lease too.
    for (id, status, lease) in [("future-1", "queued", "NULL"), ("future-2", "running", "1")] {
        exec(
            &db,
            &format!(
                "INSERT INTO jobs (id, tenant_id, project_id, kind, subject_id, payload, status, attempts, \
                 max_attempts, run_after, lease_until, lease_owner, last_error, created_at, updated_at, started_at, \
                 finished_at) SELECT '{id}', tenant_id, id, 'transcribe_audio', 'clip', NULL, '{status}', 0, 5, 0, \
                 {lease}, NULL, NULL, 0, 0, NULL, NULL FROM projects WHERE id = '{project_id}'"
            ),
        )
        .await;
    }
    // The workers run (this image is analysed) but never claim what they cannot handle.
    let mut stream = watch(&server, &project_id, 0).await;
    analyze(&server, &project_id, vec![inline(png(), "known")]).await;
    events(&mut stream, 2, WAIT).await;
    for id in ["future-1", "future-2"] {
        let row = query_row(&db, &format!("SELECT status, CAST(attempts AS TEXT) FROM jobs WHERE id = '{id}'")).await;
        let status = if id == "future-1" { "queued" } else { "running" };
        assert_eq!(row, Some(vec![Some(status.into()), Some("0".into())]), "{id}");
    }
}

async fn image_status(server: &Server, project_id: &str, image_id: &str) -> ImageAnalysisStatus {
    let mut client = server.image_facts(None).await;
    client
        .get_image_facts(GetImageFactsRequest { project_id: project_id.into(), image_id: image_id.into() })
        .await
        .expect("get")
        .into_inner()
        .analysis
        .expect("analysis")
        .status()
}

backend_tests!(
    resume_after_disconnect_loses_and_repeats_nothing,
    kill9_mid_analysis_then_restart_completes,
    failed_attempts_back_off_and_record_the_last_error,
    resuming_across_deleted_events_is_refused,
    jobs_of_unknown_kinds_are_left_alone,
);

/// Replica tests need a shared database: PostgreSQL only.
mod replicas {
    use super::*;

    async fn postgres() -> Option<Arc<TestDb>> {
        let db = TestDb::postgres().await;
        if db.is_none() {
            eprintln!("skipped: {} is not set", brain_e2e::POSTGRES_ENV);
        }
        db
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(brain_postgres), ignore = "BRAIN_TEST_POSTGRES_URL was not set when the tests were built")]
    async fn two_replicas_behave_as_one_service() {
        let Some(db) = postgres().await else { return };
        // A only serves the API; B does the analysis.
        let a = Server::start_with(&db, options().set("job_workers", 0)).await;
        let b = Server::start_with(&db, options()).await;
        let project_id = project(&a, "Replicas").await;
        let mut on_a = watch(&a, &project_id, 0).await;
        let mut on_b = watch(&b, &project_id, 0).await;

        analyze(&a, &project_id, vec![inline(png(), "x1"), inline(truncated_png(), "x2"), inline(png(), "x3")]).await;
        let seen_a = events(&mut on_a, 5, WAIT).await;
        let seen_b = events(&mut on_b, 5, WAIT).await;
        assert_eq!(seen_a, seen_b, "both replicas deliver the same events in the same order");
        assert_eq!(seen_a.iter().map(|e| e.cursor).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        let failed: Vec<_> = seen_a.iter().filter(|e| e.r#type() == EventType::ImageFactsFailed).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].image_id, "x2");

        let owner = query_row(&db, "SELECT lease_owner FROM jobs WHERE subject_id = 'x1'").await.expect("job");
        let owner = owner[0].clone().unwrap_or_default();
        assert!(owner.starts_with(&format!("{}:", b.pid())), "analysed by B (pid {}), owner {owner}", b.pid());

        // And the other way round: accepted on B, seen on A.
        analyze(&b, &project_id, vec![inline(png(), "y1")]).await;
        let more = events(&mut on_a, 2, WAIT).await;
        assert_eq!(more.iter().map(|e| (e.cursor, e.image_id.as_str())).collect::<Vec<_>>(), [(6, "y1"), (7, "y1")]);
        assert_eq!(events(&mut on_b, 2, WAIT).await, more);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(brain_postgres), ignore = "BRAIN_TEST_POSTGRES_URL was not set when the tests were built")]
    async fn an_expired_lease_moves_the_job_to_another_replica() {
        let Some(db) = postgres().await else { return };
        let host = ImageHost::start().await;
        let url = host.add("stuck.png", png(), Behavior::Stall);
        let opts = || options().set("job_workers", 1).set("job_lease_ms", 1_500);
        let mut replicas = vec![Server::start_with(&db, opts()).await, Server::start_with(&db, opts()).await];
        let project_id = project(&replicas[0], "Failover").await;
        analyze(&replicas[0], &project_id, vec![by_url(&url, "stuck")]).await;
        host.wait_hits("stuck.png", 1, WAIT).await;

        // Kill whichever replica claimed it; the other takes over once the lease expires.
        let owner = query_row(&db, "SELECT lease_owner FROM jobs WHERE subject_id = 'stuck'").await.expect("job");
        let owner = owner[0].clone().unwrap_or_default();
        let holder = replicas.iter().position(|r| owner.starts_with(&format!("{}:", r.pid()))).expect("a holder");
        let victim = replicas.remove(holder);
        victim.kill9();
        drop(victim);
        host.release();

        let survivor = &replicas[0];
        let mut stream = watch(survivor, &project_id, 0).await;
        let done = events(&mut stream, 2, WAIT).await;
        assert_eq!(done[0].r#type(), EventType::ImageFactsReady);
        let owner = query_row(&db, "SELECT lease_owner, CAST(attempts AS TEXT) FROM jobs WHERE subject_id = 'stuck'")
            .await
            .expect("job");
        assert!(owner[0].clone().unwrap_or_default().starts_with(&format!("{}:", survivor.pid())), "{owner:?}");
        assert_eq!(owner[1].as_deref(), Some("2"));
    }
}
