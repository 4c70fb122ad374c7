//! The server commands: `serve`, `api` and `registry`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::UsageError;
use crate::api::catalog::Catalog;
use crate::api::images::{ApiSettings, ImagesService};
use crate::api::registry::RegistryService;
use crate::client::registry::RegistryClient;
use crate::config::{App, Config, RawConfig};
use crate::model::Status;
use crate::patch::ImagePatch;
use crate::registry::{ListQuery, Registry, UpdateOptions};
use crate::store::{Filesystem, Stores, Swift, S3};

/// Usage of the server commands.
pub const USAGE: &str = "\
Server commands:
  serve      run the whole image service in one process: the Images API and the registry
  api        run the Images API alone, over a remote registry (--registry-url)
  registry   run the Registry API alone

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

/// Runs a server command with its arguments.
pub fn run(app: App, args: &[String]) -> Result<ExitCode, UsageError> {
    let raw = parse_args(app, args)?;
    let config = Config::resolve(&raw).map_err(|e| UsageError(e.0))?;
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
        raw.load_file(path, app).map_err(|e| UsageError(e.0))?;
    }
    raw.load_env(std::env::vars());
    for (option, setting) in flags.settings() {
        raw.set_flag(option, setting);
    }
    Ok(raw)
}

/// Opens what `app` needs, binds its listeners and serves until SIGINT or SIGTERM, then drains
/// in-flight requests and flushes the database.
async fn run_servers(app: App, config: Config) -> Result<(), String> {
    // Listen for signals before anything is announced: a SIGTERM that arrives right after the
    // "listening" line must drain and flush, not kill the process.
    let shutdown = shutdown_signal()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        format!(
            "cannot create data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    let registry = match app {
        App::Api => None,
        App::Serve | App::Registry => Some(Arc::new(open_registry(&config)?)),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    if let Some(registry) = &registry {
        let listener = bind(&config, config.registry_port, "registry").await?;
        let service = Arc::new(RegistryService::new(registry.clone(), config.limits));
        servers.spawn(crate::server::serve(
            listener,
            service,
            None,
            stopped(stop_rx.clone()),
        ));
    }
    if app != App::Registry {
        let filesystem = Filesystem::open(&config.filesystem_store_datadir).map_err(|e| {
            format!(
                "cannot open the filesystem store in {}: {e}",
                config.filesystem_store_datadir.display()
            )
        })?;
        let http = crate::store::http_client::new(&config.trust_roots)
            .map_err(|e| format!("cannot set up TLS for the stores: {e}"))?;
        let s3 = config
            .s3
            .clone()
            .map(|c| S3::new(c, http.clone()))
            .transpose()
            .map_err(|e| format!("cannot set up the S3 store: {e}"))?;
        let swift = config.swift.clone().map(|c| Swift::new(c, http.clone()));
        let stores = Arc::new(
            Stores::new(filesystem, s3, swift, http, &config.default_store)
                .map_err(|e| e.to_string())?,
        );
        let catalog = match &registry {
            Some(registry) => {
                recover_interrupted_uploads(registry).await?;
                Catalog::Local(registry.clone())
            }
            None => Catalog::Remote(RegistryClient::new(&config.registry_url)),
        };
        let settings = ApiSettings {
            limits: config.limits,
            size_cap: config.image_size_cap,
            property_quota: config.image_property_quota,
            public_endpoint: config.public_endpoint.clone(),
            member_quota: config.image_member_quota,
        };
        let listener = bind(&config, config.api_port, "api").await?;
        let service = Arc::new(ImagesService::new(catalog, stores, settings));
        servers.spawn(crate::server::serve(
            listener,
            service,
            Some(crate::server::API_MAX_HEADERS),
            stopped(stop_rx.clone()),
        ));
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    while servers.join_next().await.is_some() {}
    if let Some(registry) = registry {
        registry
            .flush()
            .await
            .map_err(|e| format!("flushing the registry on shutdown failed: {e}"))?;
    }
    crate::info!("shut down cleanly");
    Ok(())
}

fn open_registry(config: &Config) -> Result<Registry, String> {
    Registry::open(&config.registry_dir()).map_err(|e| {
        format!(
            "cannot open the registry database in {} (is another glint using it?): {e}",
            config.registry_dir().display()
        )
    })
}

async fn bind(config: &Config, port: u16, what: &str) -> Result<TcpListener, String> {
    let addr = SocketAddr::new(config.bind_host, port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for the {what} server: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // Always printed: operators and tests learn the bound port (port 0) from this line.
    eprintln!("glint: {what} listening on http://{local}");
    Ok(listener)
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Images left in `saving` by a crash can never finish: their upload died with the process.
/// They become `killed`; their partial files were removed when the store opened.
async fn recover_interrupted_uploads(registry: &Registry) -> Result<(), String> {
    let mut query = ListQuery::new(crate::registry::Limits {
        default: 1000,
        max: 1000,
    });
    query.filters.status = Some(Status::Saving.as_str().to_string());
    query.filters.visibility = crate::registry::Visibility::All;
    query.sort_key = crate::registry::SortKey::Id;
    loop {
        let page = registry.list(&query).map_err(|e| e.to_string())?;
        for image in &page {
            let killed = ImagePatch {
                status: Some(Status::Killed),
                ..Default::default()
            };
            let options = UpdateOptions {
                purge_props: false,
                from_state: Some(Status::Saving),
            };
            match registry.update(&image.id, killed, options).await {
                Ok(_) => crate::warn!(
                    "image {} was saving when glint stopped; now killed",
                    image.id
                ),
                Err(e) => crate::warn!("could not kill interrupted upload {}: {e}", image.id),
            }
        }
        match page.last() {
            Some(last) if page.len() == query.limit => query.marker = Some(last.id),
            _ => return Ok(()),
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers now, and returns a future that resolves on either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        crate::info!("shutdown signal received; finishing in-flight requests");
    })
}
