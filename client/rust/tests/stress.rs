//! `brain stress` against a live server: the server's performance report of
//! the stressed project counts exactly the calls the client made, per
//! method and status code, and its latencies sit inside the client's.

mod support;

use support::BrainServer;

async fn stress(server: &BrainServer, args: &[&str]) -> serde_json::Value {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_brain"))
        .arg("--json")
        .arg("stress")
        .args(args)
        .env("BRAIN_ADDR", &server.addr)
        .env("BRAIN_API_KEY", &server.api_key)
        .output()
        .await
        .expect("run brain stress");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "brain stress {args:?} failed: {stdout}{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("invalid JSON ({e}): {stdout}"))
}

fn u(v: &serde_json::Value) -> u64 {
    // proto3 JSON writes 64-bit integers as strings.
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0)
}

fn server_method<'a>(out: &'a serde_json::Value, method: &str) -> &'a serde_json::Value {
    out["server"]["rpcLatencies"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["name"] == method))
        .unwrap_or_else(|| panic!("no {method} in the server's report: {out:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_report_counts_what_stress_sent() {
    let server = BrainServer::start().await;
    let out = stress(
        &server,
        &[
            "--duration",
            "2s",
            "--concurrency",
            "6",
            "--connections",
            "2",
            "--mix",
            "get-project=3,list-scenes=1,put-memory=1",
        ],
    )
    .await;

    let before = &out["calls_before_load"];
    assert_eq!((u(&before["CreateProject"]), u(&before["UpsertScene"]), u(&before["PutMemory"])), (1, 5, 5), "{out:#}");
    let operations = out["client"]["operations"].as_array().expect("operations");
    assert_eq!(operations.len(), 3, "{out:#}");
    let mut total = 0;
    for op in operations {
        let method = op["method"].as_str().expect("method");
        let calls = u(&op["calls"]);
        assert!(calls > 0, "{method} was called: {op}");
        assert_eq!(u(&op["errors"]), 0, "{op}");
        total += calls;
        let seen = server_method(&out, method);
        assert_eq!(u(&seen["count"]), calls + u(&before[method]), "{method}: server count vs client calls");
        let (p50, p99, max) = (seen["p50Ms"].as_f64(), seen["p99Ms"].as_f64(), seen["maxMs"].as_f64());
        assert!(p50.is_some_and(|v| v > 0.0) && p50 <= p99 && p99 <= max, "{seen}");
        // The server's time is inside the client's round trip (1 ms slack for clock reads).
        let client_max = op["max_ms"].as_f64().expect("client max");
        assert!(max.is_some_and(|m| m <= client_max + 1.0), "{method}: server max {max:?} > client max {client_max}");
    }
    assert_eq!(u(&out["client"]["total"]["calls"]), total);
    let requests = &out["server"]["requests"];
    // The load, the setup calls and the probe of Orchestrate-less mixes (none here).
    assert_eq!(u(&requests["total"]), total + 11, "{out:#}");
    assert_eq!(u(&requests["errors"]), 0);
    assert_eq!(out["server"]["projectId"], out["project_id"]);
}

/// The report's stage timings, prompt statistics and measured async win cover
/// the stress run's orchestrations and their images.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_with_images_shows_stages_and_the_measured_async_win() {
    let server = BrainServer::start().await;
    let out = stress(
        &server,
        &["--duration", "3s", "--concurrency", "4", "--mix", "orchestrate", "--images", "1", "--image-size", "128"],
    )
    .await;
    let orchestrations = u(&out["client"]["total"]["ok"]);
    assert!(orchestrations > 0, "{out:#}");
    assert_eq!(u(&out["images_sent"]), orchestrations);
    let report = &out["server"];
    assert_eq!(u(&server_method(&out, "Orchestrate")["count"]), orchestrations + 1, "the probe call counts too");
    for stage in report["stageLatencies"].as_array().expect("stages") {
        assert_eq!(u(&stage["count"]), orchestrations + 1, "{stage}");
    }
    assert_eq!(u(&report["tokens"]["prompts"]), orchestrations + 1);
    let jobs = &report["jobs"];
    assert_eq!(u(&jobs["completed"]), orchestrations, "{jobs}");
    assert_eq!((u(&jobs["depth"]), u(&jobs["running"])), (0, 0));
    let measured = &report["asyncWin"]["measured"];
    assert_eq!(u(&measured["samples"]), orchestrations, "{measured}");
    let (actual, blocking) = (measured["meanActualMs"].as_f64(), measured["meanBlockingMs"].as_f64());
    assert!(actual.is_some_and(|a| a > 0.0) && blocking > actual, "{measured}");
    let improvement = measured["improvement"].as_f64().expect("improvement");
    assert!(improvement > 0.0 && improvement < 1.0, "{measured}");
}
