//! The `brain` command line against a live server: human output by default,
//! proto3 JSON with `--json`, errors with their reason and a failing exit code.

mod support;

use std::process::Output;

use support::{BrainServer, repo_root};

struct Cli<'a> {
    server: &'a BrainServer,
}

impl Cli<'_> {
    async fn run(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_brain"))
            .args(args)
            .env("BRAIN_ADDR", &self.server.addr)
            .env("BRAIN_API_KEY", &self.server.api_key)
            .output()
            .await
            .expect("run brain")
    }

    async fn ok_with_stdin(&self, args: &[&str], input: &[u8]) -> String {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_brain"))
            .args(args)
            .env("BRAIN_ADDR", &self.server.addr)
            .env("BRAIN_API_KEY", &self.server.api_key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run brain");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).await.expect("write stdin");
        drop(stdin);
        let output = child.wait_with_output().await.expect("wait for brain");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "brain {args:?} failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        stdout
    }

    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "brain {args:?} failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        stdout
    }

    async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let stdout = self.ok(&all).await;
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("brain {args:?} printed invalid JSON ({e}): {stdout}"))
    }

    /// Runs a command expected to fail; returns the JSON error it printed.
    async fn error(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(&all).await;
        assert!(!output.status.success(), "brain {args:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let value: serde_json::Value = serde_json::from_str(stderr.trim()).expect("JSON error on stderr");
        value["error"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_scenario() {
    let server = BrainServer::start().await;
    let cli = Cli { server: &server };

    assert_eq!(cli.ok(&["health"]).await.trim(), "SERVING");

    let created = cli.json(&["projects", "create", "CLI project", "--description", "from the CLI test"]).await;
    let project_id = created["projectId"].as_str().expect("projectId").to_owned();
    let shown = cli.ok(&["projects", "get", &project_id]).await;
    assert!(shown.contains("CLI project") && shown.contains("from the CLI test"), "{shown}");

    for (id, name) in [("intro", "Intro"), ("demo", "Demo"), ("outro", "Outro")] {
        let out =
            cli.ok(&["scenes", "upsert", &project_id, "--scene-id", id, "--name", name, "--summary", "A scene"]).await;
        assert!(out.starts_with("Created scene"), "{out}");
    }
    let page = cli.json(&["scenes", "list", &project_id, "--page-size", "2"]).await;
    assert_eq!(page["scenes"].as_array().map(Vec::len), Some(2));
    assert!(!page["nextPageToken"].as_str().unwrap_or_default().is_empty());
    let all = cli.json(&["scenes", "list", &project_id, "--page-size", "2", "--all"]).await;
    let ids: Vec<&str> =
        all["scenes"].as_array().expect("scenes").iter().filter_map(|s| s["sceneId"].as_str()).collect();
    assert_eq!(ids, ["intro", "demo", "outro"]);
    let table = cli.ok(&["scenes", "list", &project_id]).await;
    assert!(table.lines().next().is_some_and(|h| h.contains("SCENE")) && table.contains("outro"), "{table}");
    cli.ok(&["scenes", "delete", &project_id, "demo"]).await;
    let after = cli.json(&["scenes", "list", &project_id]).await;
    assert_eq!(after["scenes"].as_array().map(Vec::len), Some(2));

    let put = cli.json(&["memory", "put", &project_id, "style", "minimal", "--confidence", "0.8"]).await;
    assert_eq!(put["created"], true);
    assert_eq!(put["memory"]["type"], "MEMORY_TYPE_USER_PREFERENCE");
    let listed = cli.ok(&["memory", "list", &project_id]).await;
    assert!(listed.contains("style") && listed.contains("minimal"), "{listed}");
    cli.ok(&["memory", "delete", &project_id, "--key", "style"]).await;
    let empty = cli.json(&["memory", "list", &project_id]).await;
    assert_eq!(empty["memories"].as_array().map(Vec::len), Some(0));

    let err = cli.error(&["projects", "get", "no-such-project"]).await;
    assert_eq!(err["code"], "NOT_FOUND");
    assert_eq!(err["reason"], "PROJECT_NOT_FOUND");
    let err = cli.error(&["--api-key", "brk_wrong", "projects", "list"]).await;
    assert_eq!(err["code"], "UNAUTHENTICATED");
    assert_eq!(err["reason"], "API_KEY_INVALID");
    let human = cli.run(&["projects", "get", ""]).await;
    assert!(!human.status.success());
    let stderr = String::from_utf8_lossy(&human.stderr);
    assert!(stderr.contains("INVALID_ARGUMENT (MISSING_FIELD)") && stderr.contains("field: project_id"), "{stderr}");

    let image = repo_root().join("client/testdata/sunset.png");
    let image = image.to_str().expect("utf-8 path");
    let out = cli.json(&["orchestrate", &project_id, "Make the intro dark blue", "--image", image]).await;
    assert!(out["orchestration"]["orchestrationId"].as_str().is_some_and(|id| !id.is_empty()), "{out}");
    let human = cli.ok(&["orchestrate", &project_id, "Make the outro shorter"]).await;
    assert!(human.contains("Decision"), "{human}");

    // A streamed orchestration's summary shows each image as the stream last reported it, not
    // as it was accepted.
    let streamed = cli
        .ok(&["orchestrate", &project_id, "Use this mood board", "--image", image, "--stream", "--image-wait", "30s"])
        .await;
    assert!(streamed.contains("image_facts_processed"), "{streamed}");
    let (_, summary) = streamed.split_once("completed").unwrap_or_else(|| panic!("no summary: {streamed}"));
    let image_line = summary.lines().find(|l| l.starts_with("Image ")).unwrap_or_else(|| panic!("{streamed}"));
    assert!(image_line.ends_with(" ready"), "{streamed}");

    // The image attached above (and the one of this analyze call) produce events.
    let grpc = server.client().await;
    grpc.analyze_images(brain_client::proto::AnalyzeImagesRequest {
        project_id: project_id.clone(),
        images: vec![brain_client::proto::ImageInput {
            source: Some(brain_client::proto::image_input::Source::Data(support::sunset_png().into())),
            ..Default::default()
        }],
    })
    .await
    .expect("analyze images");
    let out = cli.ok(&["watch", &project_id, "--limit", "1"]).await;
    assert!(out.starts_with('#'), "{out}");

    let report = cli.json(&["report", "--window", "start"]).await;
    assert!(report["requests"]["total"].as_str().is_some_and(|t| t != "0"), "{report}");
    assert!(cli.ok(&["report"]).await.contains("Requests"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_projects_delete() {
    let server = BrainServer::start().await;
    let cli = Cli { server: &server };

    // Text: what was removed, kind by kind.
    let created = cli.json(&["projects", "create", "Doomed"]).await;
    let project_id = created["projectId"].as_str().expect("projectId").to_owned();
    for id in ["intro", "outro"] {
        cli.ok(&["scenes", "upsert", &project_id, "--scene-id", id, "--name", id]).await;
    }
    cli.ok(&["memory", "put", &project_id, "style", "minimal"]).await;
    let out = cli.ok(&["projects", "delete", &project_id]).await;
    assert!(out.starts_with(&format!("Deleted project {project_id}")), "{out}");
    let count = |kind: &str| {
        let line = out.lines().find(|l| l.starts_with(kind)).unwrap_or_else(|| panic!("no {kind} line: {out}"));
        line[kind.len()..].trim().parse::<u64>().unwrap_or_else(|e| panic!("{kind}: {e}: {out}"))
    };
    assert_eq!((count("Scenes"), count("Memory items"), count("Events")), (2, 1, 0), "{out}");

    // Afterwards the project is NOT_FOUND, to a second delete too.
    let err = cli.error(&["projects", "get", &project_id]).await;
    assert_eq!((err["code"].as_str(), err["reason"].as_str()), (Some("NOT_FOUND"), Some("PROJECT_NOT_FOUND")));
    let err = cli.error(&["projects", "delete", &project_id]).await;
    assert_eq!((err["code"].as_str(), err["reason"].as_str()), (Some("NOT_FOUND"), Some("PROJECT_NOT_FOUND")));
    let err = cli.error(&["scenes", "list", &project_id]).await;
    assert_eq!(err["reason"], "PROJECT_NOT_FOUND");

    // JSON: a bare DeletedRows, 64-bit counts as strings (as grpcurl prints them), zeros included.
    let created = cli.json(&["projects", "create", "Doomed too"]).await;
    let project_id = created["projectId"].as_str().expect("projectId").to_owned();
    cli.ok(&["scenes", "upsert", &project_id, "--name", "Intro"]).await;
    let deleted = cli.json(&["projects", "delete", &project_id]).await;
    assert_eq!(deleted["scenes"], "1", "{deleted}");
    assert_eq!(deleted["memoryItems"], "0", "{deleted}");
    for field in ["conversationTurns", "orchestrations", "imageAnalyses", "jobs", "events"] {
        assert!(deleted[field].is_string(), "{field} in {deleted}");
    }
    assert!(deleted.get("deleted").is_none(), "not wrapped in a response: {deleted}");
    let listed = cli.json(&["projects", "list", "--all"]).await;
    assert_eq!(listed["projects"].as_array().map(Vec::len), Some(0), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_projects_export_import() {
    let server = BrainServer::start().await;
    let cli = Cli { server: &server };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("launch.jsonl");
    let file = file.to_str().expect("utf-8 path");

    let created = cli.json(&["projects", "create", "Launch video"]).await;
    let project_id = created["projectId"].as_str().expect("projectId").to_owned();
    for id in ["intro", "demo", "outro"] {
        cli.ok(&["scenes", "upsert", &project_id, "--scene-id", id, "--name", id, "--summary", "A scene"]).await;
    }
    cli.ok(&["memory", "put", &project_id, "style", "minimal"]).await;

    // To a file: the file holds the records, stdout says what was written.
    let out = cli.ok(&["projects", "export", &project_id, "--output", file]).await;
    assert!(out.starts_with(&format!("Exported project {project_id}")), "{out}");
    let text = std::fs::read_to_string(file).expect("export file");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0]["header"]["project"]["projectId"], project_id.as_str(), "{text}");
    assert_eq!(lines[0]["header"]["counts"]["scenes"], "3", "{text}");
    assert_eq!(lines[1]["scene"]["sceneId"], "intro", "{text}");
    assert_eq!(lines[4]["memory"]["value"], "minimal", "{text}");
    // To stdout (the default): the same lines, and nothing on stderr, which is no terminal here.
    let output = cli.run(&["projects", "export", &project_id]).await;
    assert!(output.status.success() && output.stderr.is_empty(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), text);

    // Import from the file (JSON: the new project) and from stdin (text), blank lines skipped.
    let imported = cli.json(&["projects", "import", file]).await;
    let copy = imported["projectId"].as_str().expect("projectId").to_owned();
    assert_ne!(copy, project_id);
    assert_eq!(imported["name"], "Launch video");
    let scenes = cli.json(&["scenes", "list", &copy]).await;
    let ids: Vec<&str> =
        scenes["scenes"].as_array().expect("scenes").iter().filter_map(|s| s["sceneId"].as_str()).collect();
    assert_eq!(ids, ["intro", "demo", "outro"]);
    let out = cli.ok_with_stdin(&["projects", "import", "-"], text.replace('\n', "\n\n").as_bytes()).await;
    assert!(out.starts_with("Imported project ") && out.contains("Scenes              3"), "{out}");
    let listed = cli.json(&["projects", "list"]).await;
    assert_eq!(listed["projects"].as_array().map(Vec::len), Some(3), "{listed}");

    // A malformed line fails on the client, naming the line; nothing is imported.
    let broken = dir.path().join("broken.jsonl");
    let mut with_bad_line: Vec<&str> = text.lines().collect();
    with_bad_line.insert(2, r#"{"scene": {"sceneId": "x", "nmae": "typo"}}"#);
    std::fs::write(&broken, with_bad_line.join("\n")).expect("write");
    let output = cli.run(&["projects", "import", broken.to_str().expect("utf-8")]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("broken.jsonl line 3") && stderr.contains("nmae"), "{stderr}");
    // A record the server refuses: INVALID_ARGUMENT naming records[N], and the line it is on.
    let refused = dir.path().join("refused.jsonl");
    std::fs::write(&refused, text.replace(r#""key":"style""#, r#""key":"""#)).expect("write");
    let refused = refused.to_str().expect("utf-8");
    let err = cli.error(&["projects", "import", refused]).await;
    assert_eq!(err["code"], "INVALID_ARGUMENT", "{err}");
    assert!(err["field"].as_str().is_some_and(|f| f.starts_with("records[4]")), "{err}");
    let output = cli.run(&["projects", "import", refused]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refused.jsonl line 5: INVALID_ARGUMENT"), "{stderr}");
    let listed = cli.json(&["projects", "list"]).await;
    assert_eq!(listed["projects"].as_array().map(Vec::len), Some(3), "failed imports leave nothing: {listed}");

    // A missing project: NOT_FOUND, and no file.
    let missing = dir.path().join("missing.jsonl");
    let err = cli.error(&["projects", "export", "no-such-project", "-o", missing.to_str().expect("utf-8")]).await;
    assert_eq!((err["code"].as_str(), err["reason"].as_str()), (Some("NOT_FOUND"), Some("PROJECT_NOT_FOUND")));
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(left.len(), 3, "no export file, no partial file: {left:?}");
}
