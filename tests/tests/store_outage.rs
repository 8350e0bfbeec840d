//! Faults under load, against the real binary: PostgreSQL going away for 10 s
//! while clients write, and `kill -9` while Orchestrate calls with request ids
//! are in flight. No call answered OK may be lost, and during an outage every
//! call ends within one connection wait.

mod common;

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use brain_e2e::{ProxyMode, Server, ServerOptions, TcpProxy, TestDb, backend_tests, error_reason};
use brain_proto::v1::OrchestrateRequest;
use tonic::Code;

/// One Orchestrate call as a client saw it.
#[derive(Debug, Clone)]
struct Call {
    started: Instant,
    ended: Instant,
    /// The orchestration id when answered OK, else (code, reason).
    outcome: Result<String, (Code, String)>,
}

fn prompt_for(request_id: &str) -> String {
    format!("Add a scene called {request_id} with a warm sunset palette")
}

fn keyed(project_id: &str, request_id: &str) -> OrchestrateRequest {
    OrchestrateRequest {
        project_id: project_id.into(),
        prompt: prompt_for(request_id),
        request_id: request_id.into(),
        ..Default::default()
    }
}

/// Sends Orchestrate calls with fresh request ids from `writers` clients until `stop`.
async fn load(
    server: &Server,
    project_id: &str,
    writers: usize,
    stop: Arc<AtomicBool>,
) -> Arc<Mutex<BTreeMap<String, Call>>> {
    let calls: Arc<Mutex<BTreeMap<String, Call>>> = Arc::default();
    for who in 0..writers {
        let mut client = server.orchestrator(None).await;
        let (project_id, stop, calls) = (project_id.to_owned(), stop.clone(), calls.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let request_id = format!("w{who}-{n}");
                let started = Instant::now();
                let result = client.orchestrate(keyed(&project_id, &request_id)).await;
                let outcome = match result {
                    Ok(r) => Ok(r.into_inner().orchestration.map(|o| o.orchestration_id).unwrap_or_default()),
                    Err(status) => Err((status.code(), error_reason(&status).unwrap_or_default())),
                };
                let failed = outcome.is_err();
                calls.lock().unwrap().insert(request_id, Call { started, ended: Instant::now(), outcome });
                if failed {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }
    calls
}

/// Replays every acknowledged request id: each must come back as a replay of the same orchestration.
async fn assert_acknowledged_replay(server: &Server, project_id: &str, calls: &BTreeMap<String, Call>) -> usize {
    let mut client = server.orchestrator(None).await;
    let mut acknowledged = 0;
    for (request_id, call) in calls {
        let Ok(id) = &call.outcome else { continue };
        acknowledged += 1;
        let replay = client
            .orchestrate(keyed(project_id, request_id))
            .await
            .unwrap_or_else(|s| panic!("replaying acknowledged {request_id}: {s:?}"))
            .into_inner();
        assert!(replay.replayed, "acknowledged {request_id} was lost: it ran again");
        assert_eq!(&replay.orchestration.expect("orchestration").orchestration_id, id, "{request_id}");
    }
    acknowledged
}

/// PostgreSQL stops answering for 10 s under load (every connection closed, new ones refused):
/// nothing acknowledged is lost, every call during the outage ends within the acquire timeout
/// plus 1 s with UNAVAILABLE STORE_UNAVAILABLE, and calls succeed again within 1 s of
/// PostgreSQL accepting connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(brain_postgres), ignore = "BRAIN_TEST_POSTGRES_URL was not set when the tests were built")]
async fn postgres_outage_under_load_loses_nothing_and_bounds_every_call() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!(
            "skipped postgres_outage_under_load_loses_nothing_and_bounds_every_call: {} is not set",
            brain_e2e::POSTGRES_ENV
        );
        return;
    };
    const ACQUIRE: Duration = Duration::from_millis(2000);
    let proxy = TcpProxy::start(&db.postgres_host_port()).await;
    let proxied = db.url.replacen(&db.postgres_host_port(), &proxy.addr.to_string(), 1);
    let server = Server::start_with(
        &db,
        ServerOptions::new().set("database_url", &proxied).set("db_acquire_timeout_ms", ACQUIRE.as_millis()),
    )
    .await;
    let project_id = common::project(&server, "outage").await;
    let stop = Arc::new(AtomicBool::new(false));
    let calls = load(&server, &project_id, 6, stop.clone()).await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = Instant::now();
    proxy.set_mode(ProxyMode::Refuse);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let up = Instant::now();
    proxy.set_mode(ProxyMode::Forward);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    tokio::time::sleep(ACQUIRE + Duration::from_secs(1)).await;
    let calls = calls.lock().unwrap().clone();

    let bound = ACQUIRE + Duration::from_secs(1);
    let mut during = 0;
    for (request_id, call) in &calls {
        let took = call.ended - call.started;
        if call.started >= down && call.started < up {
            during += 1;
            assert!(took <= bound, "{request_id} started during the outage and took {took:?} (bound {bound:?})");
        }
        if let Err((code, reason)) = &call.outcome {
            assert_eq!((*code, reason.as_str()), (Code::Unavailable, "STORE_UNAVAILABLE"), "{request_id}");
        }
    }
    let first_ok_after = calls
        .values()
        .filter(|c| c.outcome.is_ok() && c.ended >= up)
        .map(|c| c.ended - up)
        .min()
        .expect("a call succeeded after the outage");
    let failed = calls.values().filter(|c| c.outcome.is_err()).count();
    let acknowledged = assert_acknowledged_replay(&server, &project_id, &calls).await;
    println!(
        "measured: postgres outage 10 s: {} calls, {during} started during it, {failed} failed, \
         {acknowledged} acknowledged and all replayed; first OK {} ms after PostgreSQL returned",
        calls.len(),
        first_ok_after.as_millis()
    );
    assert!(during > 0 && failed > 0, "the outage was not felt");
    assert!(first_ok_after <= Duration::from_secs(1), "first OK {first_ok_after:?} after PostgreSQL returned");
}

/// `kill -9` while Orchestrate calls with request ids are in flight: after a restart, every
/// request id that was answered OK replays with the same orchestration.
async fn kill9_under_orchestrate_load_loses_no_acknowledged_request(db: Arc<TestDb>) {
    let server = Server::start_with(&db, ServerOptions::new()).await;
    let project_id = common::project(&server, "kill -9").await;
    let stop = Arc::new(AtomicBool::new(false));
    let calls = load(&server, &project_id, 8, stop.clone()).await;
    // Kill once some calls were answered (a loaded CI machine may need a while for the first),
    // and a moment later, so that others are in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while calls.lock().unwrap().values().filter(|c| c.outcome.is_ok()).count() < 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    drop(server);
    let calls = calls.lock().unwrap().clone();

    let server = Server::start(&db).await;
    let acknowledged = assert_acknowledged_replay(&server, &project_id, &calls).await;
    println!("measured: kill -9 under Orchestrate load: {acknowledged} of {} calls acknowledged, 0 lost", calls.len());
    let failures: Vec<_> = calls.values().filter_map(|c| c.outcome.as_ref().err()).take(5).collect();
    assert!(acknowledged > 0, "no call was acknowledged before the kill; failures: {failures:?}");
}

backend_tests!(kill9_under_orchestrate_load_loses_no_acknowledged_request);
