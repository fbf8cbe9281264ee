use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use mcp_canary::{check, config, daemon, demo, driver, login, reference, report, run as profile_run, telemetry};

/// Canary prober, load runner and telemetry exporter for MCP servers.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: probe every configured target, serve /metrics. SIGHUP or
    /// `POST /-/reload` reloads the config (a refused one leaves the running one in place).
    Serve {
        #[arg(long, short)]
        config: PathBuf,
        /// Also reload when the config file's contents change (checked every 5 s; a
        /// Kubernetes ConfigMap update shows up within its kubelet sync period).
        #[arg(long)]
        watch_config: bool,
        /// How often `--watch-config` reads the file.
        #[arg(long, default_value = "5s", value_parser = watch_interval, requires = "watch_config")]
        watch_interval: std::time::Duration,
    },
    /// Run the reference MCP server.
    Target(Box<reference::TargetArgs>),
    /// Reference server and daemon in one process, no config needed.
    Demo(demo::DemoArgs),
    /// Validate a config file and print the effective config, secrets masked.
    CheckConfig { file: PathBuf },
    /// Probe one MCP server once with the default script; exit 0 healthy, 3 unreachable,
    /// 4 auth required, 5 protocol error or a step timeout, 6 tool error or tool timeout,
    /// 7 notification missed (1 bad flags or internal error, 2 usage error).
    Check(Box<check::CheckArgs>),
    /// OAuth for targets that need a person's authorization once: `auth login --config FILE
    /// --target NAME` stores the refresh token the daemon then uses.
    Auth {
        #[command(subcommand)]
        command: login::AuthCommand,
    },
    /// Run one heavy profile once (for CI): exit 0 on pass, 99 on a threshold breach,
    /// 98 on a baseline regression, 2 when refused.
    Run {
        #[command(subcommand)]
        profile: profile_run::RunProfile,
    },
    /// Render a saved JSON report as HTML (with charts, optionally against a --baseline),
    /// JUnit XML or a Markdown summary; exit 0 when written, 1 on a bad report.
    Report(Box<report::ReportArgs>),
}

/// `--watch-interval`: 1 s to 1 h (reading the file more often than every second buys nothing).
fn watch_interval(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_secs(3600) {
        return Err("must be between 1s and 1h".into());
    }
    Ok(d)
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"));
    // Colour only on a terminal, and never with NO_COLOR set (no-color.org): a log file or a
    // journal gets plain text.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !no_color;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    mcp_canary::process::return_freed_bodies_to_the_system();
    // Every session holds a connection: allow what the host allows, not the soft default.
    if let Err(e) = mcp_canary::process::raise_descriptor_limit() {
        tracing::warn!(error = %e, "Cannot raise the open-file limit to its hard limit");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<u8> {
    let shutdown = CancellationToken::new();
    match command {
        Command::Serve { config: path, watch_config, watch_interval } => {
            // Heavy profiles are planned against their targets before anything starts, and
            // before a reload is accepted.
            let load: daemon::ConfigLoader = Arc::new({
                let path = path.clone();
                move || {
                    let config = config::load(&path)?;
                    driver::plan_scheduled(&config)?;
                    Ok(config)
                }
            });
            let config = load().map_err(|e| anyhow::anyhow!("invalid config {}:\n{e}", path.display()))?;
            let exporter = telemetry::Exporter::install(config.otlp.as_ref())?;
            let reloads = daemon::Reloads::new(load, watch_config.then(|| (path.clone(), watch_interval)));
            daemon::cancel_on_signals(shutdown.clone(), Some(reloads.sender()));
            daemon::run(config, exporter, None, Some(reloads), shutdown).await?;
            Ok(0)
        }
        Command::Target(args) => {
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
            daemon::cancel_on_signals(shutdown.clone(), None);
            let handle = reference::spawn(listener, args.options(), shutdown.clone()).await?;
            println!("mcp-canary target listening on {}", handle.mcp_url());
            shutdown.cancelled().await;
            Ok(0)
        }
        Command::Demo(args) => {
            let otlp = config::otlp_from_env().map_err(|e| anyhow::anyhow!("invalid OTLP environment:\n{e}"))?;
            let exporter = telemetry::Exporter::install(otlp.as_ref())?;
            daemon::cancel_on_signals(shutdown.clone(), None);
            demo::run(args, exporter, shutdown).await?;
            Ok(0)
        }
        Command::CheckConfig { file } => {
            let raw = config::load_raw(Some(&file))
                .map_err(|e| anyhow::anyhow!("invalid config {}:\n{e}", file.display()))?;
            let invalid = |e: config::ConfigErrors| anyhow::anyhow!("invalid config {}:\n{e}", file.display());
            driver::plan_scheduled(&config::validate(&raw).map_err(invalid)?).map_err(invalid)?;
            print!("{}", config::render_masked(&raw));
            eprintln!("config {} is valid", file.display());
            Ok(0)
        }
        Command::Run { profile } => {
            daemon::cancel_on_signals(shutdown.clone(), None);
            profile_run::run(profile, shutdown).await
        }
        Command::Auth { command } => login::run(command).await,
        Command::Report(args) => report::command(&args),
        Command::Check(args) => {
            let code = check::run(*args).await?;
            Ok(code as u8)
        }
    }
}
