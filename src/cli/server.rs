//! The server commands: `serve`, `api` and `registry`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::UsageError;
use crate::api::catalog::Catalog;
use crate::api::images::{ApiSettings, ImagesService};
use crate::api::registry::RegistryService;
use crate::auth::{Authenticator, Keystone, PolicyFile, SetupError, TokensFile};
use crate::client::registry::RegistryClient;
use crate::config::{App, Config, RawConfig};
use crate::journal::Journal;
use crate::registry::{self, Registry};
use crate::store::{self, Filesystem, Stores, Swift, S3};

/// Usage of the server commands.
pub const USAGE: &str = "\
Server commands:
  serve      run the whole image service in one process: the Images API and the registry
  api        run the Images API alone, over a remote registry (--registry-url)
  registry   run the Registry API alone
  check      check a stopped registry's records, indexes and memberships against each other
             (--data-dir, --config-file); exits 1 if anything disagrees

Options (serve, api, registry):
  --bind-host ADDR      address to listen on (default 0.0.0.0)
  --api-port PORT       Images API port (serve, api; default 9292; 0 picks a free port)
  --registry-port PORT  Registry API port (serve, registry; default 9191)
  --registry-url URL    where `api` finds the registry (default http://127.0.0.1:9191)
  --data-dir DIR        where all state lives (default ./glint-data)
  --config-file FILE    a Glance-style INI file ([DEFAULT], [app:glance-api], ...)
  -v, --verbose         log life-cycle events
  -d, --debug           log every request

Every option can also be set in the config file by its Glance name (bind_host, registry_port,
image_size_cap, filesystem_store_datadir, ...) or as GLINT_<NAME> in the environment; flags win
over the environment, which wins over the file.

Examples:
  glint serve --data-dir /var/lib/glint
  glint registry --bind-host 127.0.0.1 --data-dir /var/lib/glint-registry
  glint api --registry-url http://10.0.0.5:9191 --api-port 9292
";

/// `glint check`: the registry's full consistency check, on a registry no server has open.
pub fn check(args: &[String]) -> Result<ExitCode, UsageError> {
    let raw = parse_args(App::Registry, args)?;
    let config = Config::resolve(&raw).map_err(|e| UsageError(e.to_string()))?;
    let registry = match open_registry(&config) {
        Ok(registry) => registry,
        Err(e) => {
            eprintln!("glint check: {e} (is a server still running on it?)");
            return Ok(ExitCode::FAILURE);
        }
    };
    match registry.check() {
        Ok(report) => {
            println!(
                "{} records, {} index entries, {} membership entries: {}",
                report.records,
                report.index_entries,
                report.member_entries,
                if report.problems.is_empty() {
                    "consistent".to_string()
                } else {
                    format!("{} problems", report.problems.len())
                }
            );
            for problem in &report.problems {
                println!("  {problem}");
            }
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            eprintln!("glint check: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Runs a server command with its arguments.
pub fn run(app: App, args: &[String]) -> Result<ExitCode, UsageError> {
    let raw = parse_args(app, args)?;
    let config = Config::resolve(&raw).map_err(|e| UsageError(e.to_string()))?;
    crate::log::init(config.log_level, config.log_json);
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
            return Ok(ExitCode::FAILURE);
        }
    };
    Ok(match runtime.block_on(run_servers(app, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("glint: {e}");
            ExitCode::FAILURE
        }
    })
}

fn parse_args(app: App, rest: &[String]) -> Result<RawConfig, UsageError> {
    let mut flags = RawConfig::default();
    let mut config_file: Option<PathBuf> = None;
    let mut args = super::ArgWalker::new(rest);
    while let Some((name, _)) = args.next_arg() {
        match name {
            "-v" | "--verbose" => flags.set_flag("verbose", "true"),
            "-d" | "--debug" => flags.set_flag("debug", "true"),
            "--bind-host" => flags.set_flag("bind_host", &args.value(name)?),
            "--registry-port" if app != App::Api => {
                flags.set_flag("registry_port", &args.value(name)?)
            }
            "--api-port" if app != App::Registry => flags.set_flag("api_port", &args.value(name)?),
            "--registry-url" if app == App::Api => {
                flags.set_flag("registry_url", &args.value(name)?)
            }
            "--data-dir" => flags.set_flag("data_dir", &args.value(name)?),
            "--config-file" => config_file = Some(PathBuf::from(args.value(name)?)),
            other => return Err(UsageError(format!("unknown option '{other}'"))),
        }
    }
    let mut raw = RawConfig::default();
    if let Some(path) = &config_file {
        raw.load_file(path, app)
            .map_err(|e| UsageError(e.to_string()))?;
    }
    raw.load_env(std::env::vars());
    for (option, setting) in flags.settings() {
        raw.set_flag(option, setting);
    }
    Ok(raw)
}

/// Opens what `app` needs, binds its listeners and serves until SIGINT or SIGTERM, then drains
/// in-flight requests and flushes the database.
async fn run_servers(app: App, config: Config) -> Result<(), ServeError> {
    // Listen for signals before anything is announced: a SIGTERM that arrives right after the
    // "listening" line must drain and flush, not kill the process.
    let shutdown = shutdown_signal()?;
    raise_open_files_limit(&config);
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let registry = match app {
        App::Api => None,
        App::Serve | App::Registry => Some(Arc::new(open_registry(&config)?)),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    if let Some(registry) = &registry {
        let listener = bind(&config, config.registry_port, "registry").await?;
        let service = Arc::new(
            RegistryService::new(registry.clone(), config.limits)
                .with_trusted_clients(config.auth.registry_trusted_clients.clone()),
        );
        servers.spawn(crate::server::serve(
            listener,
            service,
            config.client_limits.clone(),
            stopped(stop_rx.clone()),
        ));
    }
    if app != App::Registry {
        let stores = Arc::new(open_stores(&config)?);
        let catalog = match &registry {
            Some(registry) => Catalog::Local(registry.clone()),
            None => Catalog::Remote(RegistryClient::new(&config.registry_url)),
        };
        let journal = Journal::open(&config.data_dir).map_err(|source| ServeError::DataDir {
            path: config.data_dir.join(crate::journal::DIR_NAME),
            source,
        })?;
        let settings = ApiSettings {
            limits: config.limits,
            size_cap: config.image_size_cap,
            property_quota: config.image_property_quota,
            public_endpoint: config.public_endpoint.clone(),
            member_quota: config.image_member_quota,
            health_disable_file: config.health_disable_file.clone(),
            require_format_match: config.require_image_format_match,
            enabled_formats: config.enabled_formats.clone(),
            cache_max_age: config.image_cache_max_age,
            conversion: config.conversion.clone(),
        };
        let (auth, policy) = open_access(&config)?;
        reload_on_hangup(auth.clone(), policy.clone())?;
        let service = ImagesService::new(catalog, stores, settings, journal);
        // Before the port opens: the uploads that died with the last run of this process are
        // settled (killed, their leftovers removed) and nothing else is touched.
        let recovered =
            service
                .recover_interrupted()
                .await
                .map_err(|source| ServeError::DataDir {
                    path: config.data_dir.join(crate::journal::DIR_NAME),
                    source,
                })?;
        if recovered > 0 {
            crate::info!("settled {recovered} uploads interrupted by the last stop");
        }
        let listener = bind(&config, config.api_port, "api").await?;
        let service = Arc::new(service.with_access(auth, policy));
        servers.spawn(crate::server::serve(
            listener,
            service,
            crate::server::ClientLimits {
                max_headers: Some(crate::server::API_MAX_HEADERS),
                ..config.client_limits.clone()
            },
            stopped(stop_rx.clone()),
        ));
    }
    // Every listener is bound: a `Type=notify` unit is up.
    super::systemd::notify("READY=1");
    shutdown.await;
    super::systemd::notify("STOPPING=1");
    let _ = stop_tx.send(true);
    while servers.join_next().await.is_some() {}
    if let Some(registry) = registry {
        registry.flush().await.map_err(ServeError::Flush)?;
    }
    crate::info!("shut down cleanly");
    Ok(())
}

/// Raises the soft limit of open files to the hard limit: each connection is a descriptor, and
/// the common soft default (1024) is below `max_connections`. Says so when even the hard limit
/// is lower.
fn raise_open_files_limit(config: &Config) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            crate::warn!("cannot raise the open-files limit: {e}");
        }
    }
    let open_files = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let wanted = config.client_limits.max_connections as u64 + 256;
    if config.client_limits.max_connections > 0 && open_files < wanted {
        crate::warn!(
            "the open-files limit ({open_files}) is below max_connections ({}) plus the files \
             glint needs itself; raise LimitNOFILE or lower max_connections",
            config.client_limits.max_connections
        );
    }
}

/// The authenticator and policy the configuration asks for (§13; no-auth by default).
fn open_access(config: &Config) -> Result<(Arc<Authenticator>, Arc<PolicyFile>), ServeError> {
    let a = &config.auth;
    let policy = PolicyFile::open(a.policy_file.as_deref()).map_err(ServeError::Auth)?;
    if !a.enabled {
        return Ok((Arc::new(Authenticator::NoAuth), Arc::new(policy)));
    }
    let file = match &a.static_tokens_file {
        Some(path) => Some(TokensFile::open(path).map_err(ServeError::Auth)?),
        None => None,
    };
    let keystone = match &a.keystone {
        Some(settings) => Some(Box::new(
            Keystone::new(settings.clone(), &config.trust_roots)
                .map_err(|e| ServeError::Auth(SetupError(e.to_string())))?,
        )),
        None => None,
    };
    let auth = Authenticator::Tokens {
        file,
        keystone,
        settings: a.settings.clone(),
    };
    Ok((Arc::new(auth), Arc::new(policy)))
}

/// Reads the tokens file and the policy file again on every SIGHUP (what can change safely while
/// serving; listeners, stores and the registry stay as they are).
fn reload_on_hangup(auth: Arc<Authenticator>, policy: Arc<PolicyFile>) -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup()).map_err(|source| ServeError::Signal {
        signal: "SIGHUP",
        source,
    })?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            auth.reload();
            match policy.reload() {
                Ok(()) => crate::info!("policy reloaded"),
                Err(e) => crate::error!("policy not reloaded, the rules in force stay: {e}"),
            }
        }
    });
    Ok(())
}

fn open_registry(config: &Config) -> Result<Registry, ServeError> {
    Registry::open_with(
        &config.registry_dir(),
        config.registry_cache_size,
        config.registry_reserved_space,
    )
    .map_err(|source| ServeError::OpenRegistry {
        path: config.registry_dir(),
        source,
    })
}

/// Opens the filesystem store and sets up the configured network stores on one https client.
fn open_stores(config: &Config) -> Result<Stores, ServeError> {
    let filesystem = Filesystem::open(&config.filesystem_store_datadir).map_err(|source| {
        ServeError::OpenFilesystem {
            path: config.filesystem_store_datadir.clone(),
            source,
        }
    })?;
    let http = store::http_client::new(&config.trust_roots).map_err(ServeError::Tls)?;
    if let Some(s3) = &config.s3 {
        // Spooled parts have no name once created; only a crash in that instant leaves one.
        store::spool::clear(&s3.spool_dir).map_err(|source| ServeError::DataDir {
            path: s3.spool_dir.clone(),
            source,
        })?;
    }
    let s3 = config
        .s3
        .clone()
        .map(|c| S3::new(c, http.clone()))
        .transpose()
        .map_err(ServeError::S3)?;
    let swift = config.swift.clone().map(|c| Swift::new(c, http.clone()));
    Stores::new(filesystem, s3, swift, http, &config.default_store).map_err(ServeError::Stores)
}

async fn bind(config: &Config, port: u16, server: &'static str) -> Result<TcpListener, ServeError> {
    let addr = SocketAddr::new(config.bind_host, port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr,
            server,
            source,
        })?;
    let local = listener.local_addr().map_err(ServeError::LocalAddr)?;
    // Always printed: operators and tests learn the bound port (port 0) from this line.
    eprintln!("glint: {server} listening on http://{local}");
    Ok(listener)
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Installs the SIGINT and SIGTERM handlers now, and returns a future that resolves on either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let handler = |kind, signal_name| {
        signal(kind).map_err(|source| ServeError::Signal {
            signal: signal_name,
            source,
        })
    };
    let mut term = handler(SignalKind::terminate(), "SIGTERM")?;
    let mut int = handler(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        crate::info!("shutdown signal received; finishing in-flight requests");
    })
}

/// Why a server command could not start, or could not shut down cleanly.
#[derive(Debug)]
pub enum ServeError {
    /// A signal handler could not be installed.
    Signal {
        /// `SIGTERM` or `SIGINT`.
        signal: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The data directory could not be created.
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The registry database could not be opened (another glint may hold its lock).
    OpenRegistry {
        /// The database directory.
        path: PathBuf,
        /// Why.
        source: registry::Error,
    },
    /// The filesystem store could not be opened.
    OpenFilesystem {
        /// The store's directory.
        path: PathBuf,
        /// Why.
        source: store::Error,
    },
    /// The stores' https client could not be set up (an unreadable CA bundle).
    Tls(store::Error),
    /// The S3 store could not be set up.
    S3(store::Error),
    /// The stores refused the configuration (a default store that is not configured).
    Stores(store::Error),
    /// A listener could not be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Which server (`api` or `registry`).
        server: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The bound address could not be read back.
    LocalAddr(io::Error),
    /// Writing the registry to disk on shutdown failed.
    Flush(registry::Error),
    /// The policy file, tokens file or Keystone settings cannot be used.
    Auth(SetupError),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Signal { signal, source } => write!(f, "cannot handle {signal}: {source}"),
            ServeError::Auth(e) => e.fmt(f),
            ServeError::DataDir { path, source } => {
                write!(
                    f,
                    "cannot create data directory {}: {source}",
                    path.display()
                )
            }
            ServeError::OpenRegistry { path, source } => write!(
                f,
                "cannot open the registry database in {} (is another glint using it?): {source}",
                path.display()
            ),
            ServeError::OpenFilesystem { path, source } => write!(
                f,
                "cannot open the filesystem store in {}: {source}",
                path.display()
            ),
            ServeError::Tls(e) => write!(f, "cannot set up TLS for the stores: {e}"),
            ServeError::S3(e) => write!(f, "cannot set up the S3 store: {e}"),
            ServeError::Stores(e) => write!(f, "{e}"),
            ServeError::Bind {
                addr,
                server,
                source,
            } => write!(
                f,
                "cannot listen on {addr} for the {server} server: {source}"
            ),
            ServeError::LocalAddr(e) => write!(f, "{e}"),
            ServeError::Flush(e) => write!(f, "flushing the registry on shutdown failed: {e}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Signal { source, .. }
            | ServeError::DataDir { source, .. }
            | ServeError::Bind { source, .. } => Some(source),
            ServeError::LocalAddr(e) => Some(e),
            ServeError::OpenRegistry { source, .. } => Some(source),
            ServeError::OpenFilesystem { source, .. } => Some(source),
            ServeError::Tls(e) | ServeError::S3(e) | ServeError::Stores(e) => Some(e),
            ServeError::Flush(e) => Some(e),
            ServeError::Auth(e) => Some(e),
        }
    }
}
