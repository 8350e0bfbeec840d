/**
 * Test support: the real brain-server on a free port, and a TCP proxy that can
 * cut, refuse or stall connections to it.
 *
 * The server binary is $BRAIN_SERVER_BIN when set, else
 * <target>/debug/brain-server (built with cargo when it is missing).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BrainClient } from "../src/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (tests run from .build-test/test). */
export const REPO_ROOT = path.resolve(here, "../../../..");
export const PACKAGE_DIR = path.resolve(here, "../..");
export const SUNSET_PNG = readFileSync(path.join(REPO_ROOT, "client/testdata/sunset.png"));

export function serverBinary(): string {
  if (process.env.BRAIN_SERVER_BIN) return process.env.BRAIN_SERVER_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? path.join(REPO_ROOT, "target");
  const binary = path.join(target, "debug", "brain-server");
  if (!existsSync(binary)) {
    execFileSync("cargo", ["build", "-p", "brain-server", "--manifest-path", path.join(REPO_ROOT, "Cargo.toml")], {
      stdio: "inherit",
    });
  }
  return binary;
}

/**
 * The environment without BRAIN_* variables: the server reads those as settings
 * and refuses unknown ones (BRAIN_ADDR, BRAIN_API_KEY and BRAIN_SERVER_BIN are
 * the client's); the tests pass everything the server needs as flags.
 */
function serverEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("BRAIN_")));
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The tenant of `BrainServer.apiKey`. */
export const TENANT = "client-tests";
/** The tenant of `BrainServer.purgeKey`, there to be purged. */
export const PURGE_TENANT = "client-tests-purge";

/** Runs `brain-server keys create <args>` and returns the key it prints. */
function createKey(binary: string, databaseUrl: string, ...args: string[]): string {
  const key = execFileSync(binary, ["keys", "create", ...args, "--database-url", databaseUrl], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: serverEnv(),
  }).trim();
  if (!key.startsWith("brk_")) throw new Error(`unexpected key ${key}`);
  return key;
}

/**
 * A running brain-server with an API key of TENANT (`apiKey`), an admin key (`adminKey`) and an
 * API key of PURGE_TENANT (`purgeKey`); `stop()` sends SIGTERM.
 */
export class BrainServer {
  private constructor(
    readonly addr: string,
    readonly apiKey: string,
    readonly adminKey: string,
    readonly purgeKey: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {}

  static async start(): Promise<BrainServer> {
    const binary = serverBinary();
    const dir = mkdtempSync(path.join(tmpdir(), "brain-ts-"));
    const databaseUrl = `sqlite://${path.join(dir, "brain.db")}`;
    const apiKey = createKey(binary, databaseUrl, "--tenant", TENANT);
    const adminKey = createKey(binary, databaseUrl, "--admin");
    const purgeKey = createKey(binary, databaseUrl, "--tenant", PURGE_TENANT);
    const readyFile = path.join(dir, "ready.json");
    const log = openSync(path.join(dir, "server.log"), "w");
    const child = spawn(
      binary,
      ["--listen-addr", "127.0.0.1:0", "--metrics-addr", "off", "--database-url", databaseUrl, "--ready-file", readyFile],
      { stdio: ["ignore", log, log], env: serverEnv() },
    );
    const started = Date.now();
    let addr: string | undefined;
    while (addr === undefined) {
      try {
        addr = JSON.parse(readFileSync(readyFile, "utf8")).grpc_addr as string;
      } catch {
        if (child.exitCode !== null) throw new Error(`brain-server exited before it was ready:\n${readLog(dir)}`);
        if (Date.now() - started > 30_000) throw new Error(`brain-server not ready after 30 s:\n${readLog(dir)}`);
        await delay(20);
      }
    }
    const probe = new BrainClient(addr, { timeoutMs: 1000 });
    try {
      for (;;) {
        try {
          if ((await probe.healthCheck()) === "SERVING") break;
        } catch {
          // not listening yet
        }
        if (Date.now() - started > 30_000) throw new Error(`brain-server not SERVING after 30 s:\n${readLog(dir)}`);
        await delay(20);
      }
    } finally {
      probe.close();
    }
    return new BrainServer(addr, apiKey, adminKey, purgeKey, child, dir);
  }

  client(options: ConstructorParameters<typeof BrainClient>[1] = {}): BrainClient {
    return new BrainClient(this.addr, { apiKey: this.apiKey, ...options });
  }

  log(): string {
    return readLog(this.dir);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function readLog(dir: string): string {
  try {
    return readFileSync(path.join(dir, "server.log"), "utf8");
  } catch {
    return "";
  }
}

/** A loopback TCP proxy in front of the server, to break connections on purpose. */
export class Proxy {
  addr = "";
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private stalled = false;
  private port = 0;

  private constructor(private readonly upstream: { host: string; port: number }) {}

  static async start(upstream: string): Promise<Proxy> {
    const [host, port] = upstream.split(":");
    const proxy = new Proxy({ host: host ?? "127.0.0.1", port: Number(port) });
    await proxy.listen();
    proxy.addr = `127.0.0.1:${proxy.port}`;
    return proxy;
  }

  private listen(): Promise<void> {
    const server = net.createServer((inbound) => {
      this.track(inbound);
      if (this.stalled) return; // hold the connection open and never answer
      const outbound = net.connect(this.upstream);
      this.track(outbound);
      inbound.pipe(outbound).pipe(inbound);
      const close = () => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on("error", close).on("close", close);
      outbound.on("error", close).on("close", close);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
  }

  /** Drops every open connection. */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Stops listening and cuts open connections: new connections are refused. */
  async refuse(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.cut();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port. */
  async restore(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.listen();
        return;
      } catch (error) {
        if (attempt >= 50) throw error;
        await delay(20);
      }
    }
  }

  /** New connections are accepted but never answered. */
  stall(): void {
    this.stalled = true;
  }

  async close(): Promise<void> {
    await this.refuse();
  }
}
