//! The `tollgate` command line. Parses arguments and hands over to `app`; no logic here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tollgate::app::{self, Listeners};
use tollgate::config::Config;
use tollgate::control::store::users::Role;
use tollgate::control::usecases::users::NewUser;
use tollgate::{control, telemetry};

/// jemalloc, not glibc's malloc: glibc kept what a broker outage's backlog had used in its
/// per-thread arenas (300+ MiB resident for good, docs/performance/soak-2026-11-28.md), and
/// jemalloc is also the faster of the two here (docs/performance/request-path-2026-12-05.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read once at start: a background thread gives pages freed for a
/// second back to the OS, so memory falls after a burst without any request paying for it.
/// (The form is the one tikv-jemallocator documents: jemalloc reads the symbol at start;
/// `_RJEM_MALLOC_CONF` in the environment overrides it, docs/operations.md#memory.)
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Token-authenticated ingest gateway for logs, metrics and traces"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (TOML). Without it every key takes its default.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run the control plane alone (token management API and the gateways' feed).
    ControlPlane {
        /// Config file (TOML); its `[control_plane]` section applies.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage the Manage Tokens page's users (straight on the control plane's store).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Validate a config file (with environment overrides) without starting anything.
    CheckConfig {
        /// Config file (TOML).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user of an account (its first admin, typically) and print the one-time
    /// link on which they set a password.
    Add {
        /// Config file (TOML); its `[control_plane]` section names the store.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The account the user belongs to.
        #[arg(long)]
        account: i64,
        /// What the user logs in with.
        #[arg(long)]
        email: String,
        /// The name the page shows.
        #[arg(long)]
        name: String,
        /// admin | user | read-only
        #[arg(long, default_value = "admin", value_parser = ["admin", "user", "read-only"])]
        role: String,
    },
}

fn load(path: Option<&PathBuf>) -> Result<Config, tollgate::config::ConfigError> {
    match path {
        Some(p) => Config::load(p, std::env::vars()),
        None => Config::parse("", std::env::vars()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => {
            match load(Some(&file)).and_then(|c| tollgate::app::check(&c)) {
                Ok(warnings) => {
                    for w in warnings {
                        eprintln!("warning: {w}");
                    }
                    println!("{}: ok", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve { config } => {
            let Some((config, runtime)) = start(config.as_ref()) else {
                return ExitCode::FAILURE;
            };
            finish(runtime.block_on(async {
                let listeners = Listeners::bind(&config).await?;
                app::run(config, listeners, shutdown_signal()).await
            }))
        }
        Command::User {
            command:
                UserCommand::Add {
                    config,
                    account,
                    email,
                    name,
                    role,
                },
        } => {
            let Some((config, runtime)) = start(config.as_ref()) else {
                return ExitCode::FAILURE;
            };
            let role = Role::parse(&role).expect("clap allows only the three roles");
            let new = NewUser {
                email: &email,
                full_name: &name,
                role,
            };
            match runtime.block_on(control::add_user(&config.control_plane, account, &new)) {
                Ok(invited) => {
                    println!(
                        "user {} ({}) created in account {account}; set the password within \
                         {} hours at:\n{}",
                        invited.user.id,
                        invited.user.email,
                        config.control_plane.setup_link_ttl_secs.as_secs() / 3600,
                        invited.setup_url
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::ControlPlane { config } => {
            let Some((config, runtime)) = start(config.as_ref()) else {
                return ExitCode::FAILURE;
            };
            finish(runtime.block_on(app::run_control_plane(
                config.control_plane,
                shutdown_signal(),
            )))
        }
    }
}

/// Loads the config, starts logging and the runtime; reports a failure on stderr.
fn start(path: Option<&PathBuf>) -> Option<(Config, tokio::runtime::Runtime)> {
    let config = match load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    telemetry::init_logging(&config.log);
    match tokio::runtime::Runtime::new() {
        Ok(r) => Some((config, r)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            None
        }
    }
}

fn finish(result: Result<(), app::AppError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "tollgate failed");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
