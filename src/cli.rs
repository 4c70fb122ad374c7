//! The `glint` command line: argument parsing and the server commands. Exit codes: 0 success,
//! 1 a runtime failure, 2 a usage error.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::registry::RegistryService;
use crate::config::{App, Config, RawConfig};
use crate::registry::Registry;

const USAGE: &str = "\
glint: an OpenStack Glance v1 compatible image service

Usage: glint <command> [options]

Commands:
  serve      run the image service (registry now; the Images API joins it) in one process
  registry   run the Registry API alone
  help       show this text

Options (serve, registry):
  --bind-host ADDR      address to listen on (default 0.0.0.0)
  --registry-port PORT  Registry API port (default 9191; 0 picks a free port)
  --api-port PORT       Images API port (serve only; default 9292)
  --data-dir DIR        where all state lives (default ./glint-data)
  --config-file FILE    a Glance-style INI file ([DEFAULT], [app:glance-registry], ...)
  -v, --verbose         log life-cycle events
  -d, --debug           log every request

Every option can also be set in the config file by its Glance name (bind_host, registry_port,
limit_param_default, api_limit_max, ...) or as GLINT_<NAME> in the environment; flags win over
the environment, which wins over the file.

Example:
  glint registry --bind-host 127.0.0.1 --data-dir /var/lib/glint
";

/// A usage error: printed with a hint, exit code 2.
#[derive(Debug)]
struct UsageError(String);

/// A parsed command line.
#[derive(Debug)]
enum Command {
    Help,
    Version,
    Serve(App, RawConfig),
}

/// Runs the command line `args` (including the program name) and returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let command = match parse_args(args) {
        Ok(c) => c,
        Err(UsageError(msg)) => {
            eprintln!("glint: {msg}\nRun 'glint help' for usage.");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("glint {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Serve(app, raw) => {
            let config = match Config::resolve(&raw) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("glint: {e}");
                    return ExitCode::from(2);
                }
            };
            crate::log::set_max_level(config.log_level);
            for w in &raw.warnings {
                crate::warn!("{w}");
            }
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("glint: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run_servers(app, config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("glint: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| UsageError(format!("argument is not UTF-8: {a:?}")))
        })
        .collect::<Result<_, _>>()?;
    let Some((command, rest)) = args.split_first() else {
        return Err(UsageError("no command given".into()));
    };
    let app = match command.as_str() {
        "help" | "--help" | "-h" => return Ok(Command::Help),
        "--version" | "version" => return Ok(Command::Version),
        "serve" => App::Serve,
        "registry" => App::Registry,
        other => return Err(UsageError(format!("unknown command '{other}'"))),
    };
    let mut flags = RawConfig::default();
    let mut config_file: Option<PathBuf> = None;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "-v" | "--verbose" => flags.set_flag("verbose", "true"),
            "-d" | "--debug" => flags.set_flag("debug", "true"),
            "--bind-host" => flags.set_flag("bind_host", &value(name)?),
            "--registry-port" => flags.set_flag("registry_port", &value(name)?),
            "--api-port" if app == App::Serve => flags.set_flag("api_port", &value(name)?),
            "--data-dir" => flags.set_flag("data_dir", &value(name)?),
            "--config-file" => config_file = Some(PathBuf::from(value(name)?)),
            other => {
                return Err(UsageError(format!(
                    "unknown option '{other}' for '{command}'"
                )))
            }
        }
    }
    let mut raw = RawConfig::default();
    if let Some(path) = &config_file {
        raw.load_file(path, app).map_err(|e| UsageError(e.0))?;
    }
    raw.load_env(std::env::vars());
    for (option, setting) in flags.settings() {
        raw.set_flag(option, setting);
    }
    Ok(Command::Serve(app, raw))
}

/// Opens the registry, binds the listeners and serves until SIGINT or SIGTERM, then drains
/// in-flight requests and flushes the database.
async fn run_servers(app: App, config: Config) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        format!(
            "cannot create data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    let registry = Registry::open(&config.registry_dir()).map_err(|e| {
        format!(
            "cannot open the registry database in {} (is another glint using it?): {e}",
            config.registry_dir().display()
        )
    })?;
    let registry = Arc::new(registry);
    let addr = SocketAddr::new(config.bind_host, config.registry_port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let which = match app {
        App::Serve => "serve",
        App::Registry => "registry",
    };
    eprintln!("glint {which}: registry listening on http://{local}");
    let service = Arc::new(RegistryService::new(registry.clone(), config.limits));
    crate::server::serve(listener, service, shutdown_signal()).await;
    registry
        .flush()
        .await
        .map_err(|e| format!("flushing the registry on shutdown failed: {e}"))?;
    crate::info!("shut down cleanly");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    crate::warn!("cannot listen for SIGTERM: {e}");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    crate::info!("shutdown signal received; finishing in-flight requests");
}
