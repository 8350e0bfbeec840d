// Headless Chromium test of brain's /dashboard.
//
// Starts the real server (metrics port on 127.0.0.1:0), drives a little
// mixed load with ghz over gRPC (successes, NOT_FOUND and INVALID_ARGUMENT
// failures, and Orchestrate calls with an image when the server implements
// them), opens /dashboard in Debian's Chromium through playwright-core,
// waits until the charts are drawn with data and the tiles show numbers,
// and saves a screenshot.
//
// Environment: BRAIN_SERVER_BIN (the server binary), GHZ, GRPCURL,
// CHROMIUM (default /usr/bin/chromium), SCREENSHOT (default
// target/dashboard.png), LOAD_SECONDS (default 24).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, mkdirSync, rmSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const root = resolve(dirname(new URL(import.meta.url).pathname), "..", "..");
const serverBin = process.env.BRAIN_SERVER_BIN || join(root, "target", "debug", "brain-server");
const ghz = process.env.GHZ || "ghz";
const grpcurl = process.env.GRPCURL || "grpcurl";
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const screenshot = resolve(root, process.env.SCREENSHOT || "target/dashboard.png");
const loadSeconds = Number(process.env.LOAD_SECONDS || 24);
// An 8x8 PNG, so orchestrations (once implemented) enqueue real image analyses.
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAP0lEQVR4nE3CQRHAMBACQJTwjghEVERFRERERERFnCv6Y9hZeClZYSlZ4UfJCr9KVnhPssJnkhW+k6zwN8n6Aw3IX6F9LQYyAAAAAElFTkSuQmCC";

// Polls `probe` until it returns a truthy value; a probe error means "not yet", unless `fatal()` says to stop.
async function waitFor(what, probe, timeoutMs = 60_000, fatal = () => undefined) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    const reason = fatal();
    if (reason) throw new Error(reason);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// The server reads BRAIN_* settings; start it from a clean slate.
function serverEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("BRAIN_") || key === "SENTRY_DSN") delete env[key];
  return env;
}

async function grpc(addr, method, body) {
  const { stdout } = await run(grpcurl, ["-plaintext", "-format-error", "-d", JSON.stringify(body), addr, method]);
  return JSON.parse(stdout);
}

// Starts ghz; resolves with its summary when it finishes. Errors count as data here, not failures.
function load(addr, method, data, extra) {
  const args = ["--insecure", "--call", method, "--data", JSON.stringify(data), "--concurrency", "2",
    "--connections", "1", "--format", "summary", ...extra, addr];
  return run(ghz, args, { maxBuffer: 1 << 24 }).then((r) => r.stdout, (e) => e.stdout || String(e));
}

test("dashboard shows live charts for a server under load", { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "brain-dashboard-"));
  const ready = join(dir, "ready.json");
  const log = openSync(join(dir, "server.log"), "w");
  const server = spawn(serverBin, [
    "--listen-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--ready-file", ready,
    "--database-url", `sqlite://${join(dir, "brain.db")}`, "--log-format", "json",
    // Scheduled retention every 5 s, so the page shows a last run.
    "--set", "retention_interval_ms=5000",
  ], { cwd: dir, stdio: ["ignore", log, log], env: serverEnv() });
  let exited = false;
  server.on("exit", () => { exited = true; });
  let context;
  t.after(async () => {
    await context?.close().catch(() => {});
    if (!exited) { server.kill("SIGTERM"); await waitFor("server exit", async () => exited, 20_000).catch(() => server.kill("SIGKILL")); }
    rmSync(dir, { recursive: true, force: true });
  });

  const died = () => exited ? "brain-server exited early:\n" + readFileSync(join(dir, "server.log"), "utf8") : undefined;
  const addrs = await waitFor("the ready file", async () => {
    const json = JSON.parse(readFileSync(ready, "utf8"));
    return json.metrics_addr ? json : undefined;
  }, 60_000, died);
  const grpcAddr = addrs.grpc_addr, http = `http://${addrs.metrics_addr}`;
  // Brain RPCs answer once the store is migrated.
  const project = await waitFor("the first project", () =>
    grpc(grpcAddr, "brain.v1.ProjectService/CreateProject", { name: "Launch video", description: "dashboard test" }),
    60_000, died);
  const id = project.project.projectId;
  assert.ok(id, "created a project");

  // Load spread over several 10-second slots, so the charts have a history.
  const duration = `${loadSeconds}s`;
  const runs = Promise.all([
    load(grpcAddr, "brain.v1.ProjectService.GetProject", { project_id: id }, ["--rps", "20", "--duration", duration]),
    load(grpcAddr, "brain.v1.ProjectService.PutMemory",
      { project_id: id, type: "MEMORY_TYPE_USER_PREFERENCE", key: "pace-{{.RequestNumber}}", value: "fast cuts" },
      ["--rps", "8", "--duration", duration]),
    load(grpcAddr, "brain.v1.ProjectService.GetProject", { project_id: "no-such-project" }, ["--rps", "3", "--duration", duration]),
    load(grpcAddr, "brain.v1.ProjectService.UpsertScene", { project_id: id, name: "" }, ["--rps", "1", "--duration", duration]),
    load(grpcAddr, "brain.v1.OrchestratorService.Orchestrate",
      { project_id: id, prompt: "add an intro scene in the style of this image", images: [{ data: PNG, mime_type: "image/png" }] },
      ["--rps", "2", "--duration", duration]),
  ]);

  context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "brain-chromium-")), {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1440, height: 1300 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  const page = context.pages()[0] || await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));

  // Half the load first, so the page opens on a server that is already busy.
  await sleep((loadSeconds / 2) * 1000);
  const response = await page.goto(`${http}/dashboard?refresh=1&window=5m`);
  assert.equal(response.status(), 200);
  await page.waitForSelector("body[data-loaded=true]", { timeout: 30_000 });

  const points = (chart) => page.$eval(`[data-chart=${chart}]`, (el) => Number(el.dataset.points));
  await waitFor("latency and error charts with several points", async () =>
    (await points("latency")) >= 6 && (await points("errors")) >= 4, 60_000);
  const summaries = await runs;
  // Let the last slot land on the page.
  await sleep(2_500);

  const text = async (sel) => (await page.textContent(sel)).trim();
  const total = Number((await text("#t-requests")).replace(/,/g, ""));
  assert.ok(total >= loadSeconds * 20, `requests tile shows the load: ${total}`);
  assert.match(await text("#t-rps"), /^[0-9.]+ per second$/);
  assert.match(await text("#t-p95"), /^[0-9.]+ (ms|s)$/);
  assert.match(await text("#t-errors"), /^[0-9.]+%$/);
  assert.match(await text("#t-mem"), /MiB|GiB/);
  assert.ok((await points("latency")) >= 6, "latency chart has points");
  assert.ok(await page.$$eval("[data-chart=latency] path[data-series]", (p) => p.length) >= 3, "p50, p95 and p99 lines drawn");
  // The charts draw one bar per 10-second slot: a load of N seconds fills at least floor(N / 10) slots whole.
  const fullSlots = Math.max(1, Math.floor(loadSeconds / 10));
  const errorBars = await page.$$eval("[data-chart=errors] rect[data-series=errors]", (r) => r.length);
  assert.ok(errorBars >= fullSlots, `error bars drawn: ${errorBars}, expected at least ${fullSlots}`);
  const rpcRows = await page.$$eval("#rpc-table tbody tr td:first-child", (tds) => tds.map((td) => td.textContent));
  for (const method of ["GetProject", "PutMemory", "UpsertScene"]) assert.ok(rpcRows.includes(method), `${method} in ${rpcRows}`);
  const codes = await page.$$eval("#errors-table tbody tr td:first-child", (tds) => tds.map((td) => td.textContent));
  assert.ok(codes.includes("NOT_FOUND") && codes.includes("INVALID_ARGUMENT"), `error codes: ${codes}`);
  // When orchestrations are implemented, the async-win chart must show them too.
  const orchestrated = !codes.includes("UNIMPLEMENTED");
  if (orchestrated) {
    await waitFor("async win points", async () => (await points("async")) > 0, 30_000);
  }
  await waitFor("the last retention run", async () => /^Retention: last run /.test(await text("#retention")), 20_000);
  assert.match(await text("#retention"), /^Retention: last run .+ \(every 5 s\), 1 tenants in [0-9,]+ ms, (removed|nothing to remove)/);
  assert.deepEqual(consoleErrors, [], "no script errors");
  assert.ok(requests.every((u) => u.startsWith(http)), `the page loads nothing from elsewhere: ${requests.filter((u) => !u.startsWith(http))}`);

  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  assert.ok(existsSync(screenshot));
  console.log(`screenshot: ${screenshot}\norchestrations implemented: ${orchestrated}\nghz summaries:\n${summaries.map((s) => s.split("\n").slice(0, 6).join("\n")).join("\n---\n")}`);
});
