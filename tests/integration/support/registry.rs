//! The Registry API served in-process on `127.0.0.1:0` over a temporary sled directory
//! ([`TestServer`]), and a client of the Registry API ([`RegistryClient`]) that it and the real
//! `glint registry` are spoken to with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use glint::api::registry::RegistryService;
use glint::registry::{Limits, Registry};

use super::http::{Http, Payload, Reply};

/// A client of the Registry API (paths such as `/images/detail`), on the tests' one [`Http`].
pub struct RegistryClient {
    /// The HTTP client.
    http: Http,
}

impl RegistryClient {
    /// A client of the registry at `addr`.
    pub fn new(addr: SocketAddr) -> RegistryClient {
        RegistryClient {
            http: Http::new(addr),
        }
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, &[], Payload::Empty)
    }

    /// `POST path` with a JSON body given as text (so malformed bodies can be sent too).
    pub fn post_raw(&self, path: &str, body: impl Into<Payload>) -> Reply {
        self.request("POST", path, &[("content-type", "application/json")], body)
    }

    /// `PUT path` with a JSON body and extra headers.
    pub fn put_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.request("PUT", path, &all, body.to_string())
    }

    /// `POST /images` with `{"image": image}`: the raw reply.
    pub fn try_create(&self, image: Value) -> Reply {
        self.post_raw("/images", json!({ "image": image }).to_string())
    }

    /// `POST /images` with `{"image": image}`; asserts 200 and returns the stored record.
    #[track_caller]
    pub fn create(&self, image: Value) -> Value {
        self.try_create(image).json(200)["image"].clone()
    }

    /// `PUT /images/{id}` with `{"image": image}` (upsert, no purge); returns the stored record.
    #[track_caller]
    pub fn update(&self, id: &str, image: Value) -> Value {
        self.put_json(&format!("/images/{id}"), &[], &json!({ "image": image }))
            .json(200)["image"]
            .clone()
    }
}

/// `request`, `get`, `list` and `list_ids` are the [`Http`] client's.
impl std::ops::Deref for RegistryClient {
    type Target = Http;

    fn deref(&self) -> &Http {
        &self.http
    }
}

/// The Registry API served in-process on `127.0.0.1:0` over a temporary sled directory. Dropping
/// it shuts the server down, waits for it, closes the database and removes the directory.
pub struct TestServer {
    /// Speaks to the server.
    client: RegistryClient,
    /// Fires the server's shutdown future.
    shutdown: Option<oneshot::Sender<()>>,
    /// Runs the accept loop; joined on drop.
    task: Option<tokio::task::JoinHandle<()>>,
    /// The server's runtime, separate from the client's so neither can starve the other.
    rt: Option<Runtime>,
    /// The sled directory; declared last so it is removed after the server has stopped.
    _dir: TempDir,
}

impl TestServer {
    /// A server with the default limits (25 / 1000) and an empty registry.
    pub fn start() -> TestServer {
        TestServer::start_with(Limits::default(), |_| {})
    }

    /// A server with `limits` whose registry `seed` fills before the first request.
    pub fn start_with(limits: Limits, seed: impl FnOnce(&Registry)) -> TestServer {
        TestServer::start_trusting(limits, seed, Vec::new())
    }

    /// Like [`TestServer::start_with`], believing the viewer headers of `trusted` peers
    /// (`registry_trusted_clients`).
    pub fn start_trusting(
        limits: Limits,
        seed: impl FnOnce(&Registry),
        trusted: Vec<std::net::IpAddr>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::open(&dir.path().join("registry")).unwrap());
        seed(&registry);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let service =
            Arc::new(RegistryService::new(registry.clone(), limits).with_trusted_clients(trusted));
        let task = rt.spawn(async move {
            glint::server::serve(listener, service, Default::default(), async {
                let _ = rx.await;
            })
            .await;
            registry.flush().await.unwrap();
        });
        TestServer {
            client: RegistryClient::new(addr),
            shutdown: Some(tx),
            task: Some(task),
            rt: Some(rt),
            _dir: dir,
        }
    }
}

impl std::ops::Deref for TestServer {
    type Target = RegistryClient;

    fn deref(&self) -> &RegistryClient {
        &self.client
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let (Some(rt), Some(task)) = (self.rt.take(), self.task.take()) {
            let stopped =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await });
            // Do not panic while already unwinding from a failed assertion.
            if !std::thread::panicking() {
                assert!(
                    matches!(stopped, Ok(Ok(()))),
                    "server did not stop cleanly: {stopped:?}"
                );
            }
        }
    }
}
