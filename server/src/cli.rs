//! The `brain-server` command line: serve (the default), migrate, manage API keys, show config.

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};

use crate::{
    auth,
    config::{Config, Sources},
    store::Store,
};

/// brain: context, token budgets and decisions for AI products, over gRPC.
#[derive(Debug, Parser)]
#[command(name = "brain-server", version, about)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Options every command accepts. Flags override `BRAIN_*` variables, which override the config file.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Config file (TOML). Default: ./brain.toml when it exists. Also BRAIN_CONFIG.
    #[arg(long, global = true, env = "BRAIN_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// gRPC listen address (listen_addr).
    #[arg(long, global = true, value_name = "ADDR")]
    listen_addr: Option<String>,
    /// Database URL: sqlite://PATH or postgres://... (database_url).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Address for /metrics and /dashboard, or "off" (metrics_addr).
    #[arg(long, global = true, value_name = "ADDR")]
    metrics_addr: Option<String>,
    /// Log format: pretty or json (log_format).
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Write the bound addresses as JSON to this file once listening (ready_file).
    #[arg(long, global = true, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Serve a non-loopback address without API keys (insecure).
    #[arg(long, global = true)]
    insecure: bool,
    /// Any setting, as KEY=VALUE (repeatable); see docs/CONFIGURATION.md.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = parse_pair)]
    set: Vec<(String, String)>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC (the default command).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Print the effective configuration (secrets redacted) and exit.
    Config,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key for a tenant (created if new), or an admin key, and print it once.
    Create {
        /// Tenant name.
        #[arg(long, required_unless_present = "admin", conflicts_with = "admin")]
        tenant: Option<String>,
        /// An admin key: AdminService only (RunRetention, PurgeTenant), no tenant's data.
        #[arg(long)]
        admin: bool,
    },
    /// List keys (prefixes only; keys themselves are never stored).
    List,
    /// Revoke a key by id or prefix.
    Revoke {
        /// Key id or prefix, as `keys list` shows.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// Erase a tenant: its keys, every project with everything in it, and the tenant
    /// (what AdminService.PurgeTenant does).
    Purge {
        /// Tenant name.
        name: String,
    },
}

fn parse_pair(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got '{raw}'"))
}

impl GlobalArgs {
    fn sources(&self) -> Sources {
        let mut overrides = Vec::new();
        let mut flag = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                overrides.push((key.to_owned(), v));
            }
        };
        flag("listen_addr", self.listen_addr.clone());
        flag("database_url", self.database_url.clone());
        flag("metrics_addr", self.metrics_addr.clone());
        flag("log_format", self.log_format.clone());
        flag("ready_file", self.ready_file.as_ref().map(|p| p.display().to_string()));
        if self.insecure {
            overrides.push(("insecure".into(), "true".into()));
        }
        overrides.extend(self.set.iter().cloned());
        Sources { file: self.config.clone(), overrides }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.global.sources()) {
        Ok(c) => c,
        Err(err) => {
            eprintln!("brain-server: {err}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Some(Command::Config)) {
        print!("{}", config.to_redacted_toml());
        return ExitCode::SUCCESS;
    }
    // Every HTTP client (image fetches, model backends, error tracking) uses the ring TLS provider.
    crate::http_client::install_tls_provider();
    // Held until exit: dropping it flushes error tracking.
    let _telemetry = match crate::telemetry::init(&config) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("brain-server: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("brain-server: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the log goes to stderr (and to error tracking), so no eprintln as well.
            tracing::error!(error = format!("{err:#}"), "brain-server failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => crate::startup::serve(config).await,
        Command::Config => Ok(()),
        Command::Migrate => {
            let store = Store::open(&config).await?;
            store.initialize().await?;
            store.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys(keys) => {
            let store = Store::open(&config).await?;
            store.initialize().await?;
            let outcome = run_keys(&store, keys).await;
            store.close().await;
            outcome
        }
        Command::Tenants(TenantsCommand::Purge { name }) => {
            let store = Store::open(&config).await?;
            store.initialize().await?;
            let projects = crate::projects::Projects::new(store.clone(), Default::default());
            let outcome = projects.purge_tenant(&name).await;
            store.close().await;
            let purge = outcome?;
            let d = purge.deleted;
            println!(
                "purged tenant '{name}': {} projects, {} API keys; {} scenes, {} memory items, {} conversation turns, \
                 {} orchestrations, {} image analyses, {} jobs, {} events",
                purge.projects,
                purge.api_keys,
                d.scenes,
                d.memory_items,
                d.conversation_turns,
                d.orchestrations,
                d.image_analyses,
                d.jobs,
                d.events
            );
            Ok(())
        }
    }
}

async fn run_keys(store: &Store, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { tenant: Some(tenant), admin: false } => {
            let tenant = crate::validate::name("tenant", &tenant, crate::validate::MAX_NAME_CHARS)?;
            let new = auth::generate_key();
            let info = store.create_api_key(&tenant, &new.hash, &new.prefix).await?;
            eprintln!("Created key {} for tenant '{}'. It is shown only this once:", info.id, info.tenant_name);
            println!("{}", new.key);
        }
        KeysCommand::Create { .. } => {
            let new = auth::generate_key();
            let info = store.create_admin_key(&new.hash, &new.prefix).await?;
            eprintln!("Created admin key {} (AdminService only). It is shown only this once:", info.id);
            println!("{}", new.key);
        }
        KeysCommand::List => {
            println!("{:<38} {:<14} {:<20} {:<8}", "ID", "PREFIX", "TENANT", "STATUS");
            for key in store.list_api_keys().await? {
                let status = if key.revoked_at.is_some() { "revoked" } else { "active" };
                let tenant = if key.admin { "(admin)" } else { key.tenant_name.as_str() };
                println!("{:<38} {:<14} {:<20} {:<8}", key.id, key.prefix, tenant, status);
            }
        }
        KeysCommand::Revoke { key } => {
            if store.revoke_api_key(&key).await? {
                println!("revoked {key}");
            } else {
                anyhow::bail!("no active key matches {key}");
            }
        }
    }
    Ok(())
}
