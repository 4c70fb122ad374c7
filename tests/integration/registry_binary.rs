//! The real `glint` executable: signals and graceful exit, durability after `kill -9`, and
//! configuration from the environment, a config file and the command line.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::glint::registry_args;
use crate::support::{id_of, run_glint, GlintProcess, RegistryClient};

/// How long a signalled server may take to exit when nothing is in flight. The drain timeout is
/// 30 s, so a server that waits for idle connections fails this bound.
const PROMPT_EXIT: Duration = Duration::from_secs(10);

#[track_caller]
fn assert_exits_0_promptly(process: &mut GlintProcess) {
    let start = Instant::now();
    let status = process
        .wait_exit(PROMPT_EXIT)
        .unwrap_or_else(|| panic!("still running after {PROMPT_EXIT:?}:\n{}", process.stderr()));
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        process.stderr()
    );
    assert!(start.elapsed() < PROMPT_EXIT);
}

#[test]
fn sigterm_while_idle_exits_0_promptly_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (mut glint, addr) = GlintProcess::start_registry(dir.path(), &[], &[]);
    let client = RegistryClient::new(addr);
    let image = client.create(json!({"name": "before-sigterm"}));
    glint.signal("TERM");
    assert_exits_0_promptly(&mut glint);
    let (_glint, addr) = GlintProcess::start_registry(dir.path(), &[], &[]);
    let shown = RegistryClient::new(addr)
        .get(&format!("/images/{}", id_of(&image)))
        .json(200);
    assert_eq!(shown["image"], image);
}

#[test]
fn sigterm_right_after_the_listening_line_exits_0() {
    // "Listening" is the readiness signal supervisors act on: from then on SIGTERM must mean a
    // graceful stop, never the default action (death by signal, no flush).
    let dir = tempfile::tempdir().unwrap();
    let (mut glint, _addr) = GlintProcess::start_registry(dir.path(), &[], &[]);
    glint.signal("TERM");
    assert_exits_0_promptly(&mut glint);
}

#[test]
fn sigint_while_idle_exits_0_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut glint, addr) = GlintProcess::start_registry(dir.path(), &["-v"], &[]);
    RegistryClient::new(addr).get("/images").json(200);
    glint.signal("INT");
    assert_exits_0_promptly(&mut glint);
}

/// Reads one whole HTTP/1.1 response with a `Content-Length` from `stream`.
fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed mid-response: {text:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn sigterm_with_an_idle_keep_alive_connection_exits_0_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut glint, addr) = GlintProcess::start_registry(dir.path(), &[], &[]);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /images HTTP/1.1\r\nHost: glint\r\n\r\n")
        .unwrap();
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    // The connection is now open and idle (keep-alive).
    glint.signal("TERM");
    assert_exits_0_promptly(&mut glint);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "unexpected bytes after shutdown: {rest:?}");
}

/// `kill -9` the server, restart it on the same data directory, and check that every
/// acknowledged record is there as acknowledged, and that the indexes agree with the records.
fn kill_restart_and_check(
    mut glint: GlintProcess,
    data_dir: &std::path::Path,
    acknowledged: &BTreeMap<String, Value>,
) -> (GlintProcess, RegistryClient) {
    glint.kill9();
    drop(glint);
    let (glint, addr) = GlintProcess::start_registry(data_dir, &[], &[]);
    let client = RegistryClient::new(addr);
    for (id, image) in acknowledged {
        let shown = client.get(&format!("/images/{id}")).json(200);
        assert_eq!(&shown["image"], image, "image {id} after kill -9");
    }
    let every = client.list_ids("/images?is_public=None&changes-since=2000-01-01&limit=100");
    assert_eq!(every.len(), acknowledged.len(), "rows after kill -9");
    for (id, image) in acknowledged {
        let name = image["name"].as_str().unwrap();
        let by_name = client.list_ids(&format!("/images?is_public=None&name={name}"));
        let want = if image["deleted"] == true {
            vec![]
        } else {
            vec![id.clone()]
        };
        assert_eq!(by_name, want, "name index of {name} after kill -9");
    }
    (glint, client)
}

#[test]
fn kill_9_loses_no_acknowledged_create_update_or_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (glint, addr) = GlintProcess::start_registry(dir.path(), &[], &[]);
    let client = RegistryClient::new(addr);
    let mut acknowledged: BTreeMap<String, Value> = BTreeMap::new();
    // Each phase holds one kind of write and ends in kill -9, so a kind that acknowledges
    // before it is durable cannot hide behind a later write's flush.
    for i in 0..24 {
        let image = client.create(json!({
            "name": format!("durable-{i:02}"),
            "is_public": i % 2 == 0,
            "disk_format": "raw",
            "container_format": "bare",
            "size": i * 1000,
            "properties": {"batch": "one", "index": i.to_string()}
        }));
        acknowledged.insert(id_of(&image), image);
    }
    let (glint, client) = kill_restart_and_check(glint, dir.path(), &acknowledged);

    let ids: Vec<String> = acknowledged.keys().cloned().collect();
    for (n, id) in ids.iter().enumerate().take(12) {
        let image = client.update(
            id,
            json!({"name": format!("renamed-{n:02}"), "status": "queued",
                   "properties": {"batch": "two"}}),
        );
        acknowledged.insert(id.clone(), image);
    }
    let (glint, client) = kill_restart_and_check(glint, dir.path(), &acknowledged);
    let renamed = client.list_ids("/images?is_public=None&property-batch=two&status=queued");
    assert_eq!(renamed.len(), 12);

    for id in ids.iter().skip(18) {
        let image = client.delete(&format!("/images/{id}")).json(200)["image"].clone();
        acknowledged.insert(id.clone(), image);
    }
    let (_glint, client) = kill_restart_and_check(glint, dir.path(), &acknowledged);
    assert_eq!(
        client.list_ids("/images?is_public=None&limit=100").len(),
        18
    );
}

#[test]
fn an_invalid_port_in_the_environment_exits_non_zero_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (status, stderr) = run_glint(
        &["registry", "--bind-host", "127.0.0.1", "--data-dir", data],
        &[("GLINT_REGISTRY_PORT", "http")],
    );
    assert!(!status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("registry_port")
            && stderr.contains("GLINT_REGISTRY_PORT")
            && stderr.contains("'http'"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn an_invalid_value_in_the_config_file_exits_non_zero_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("glance-registry.conf");
    std::fs::write(&config, "[DEFAULT]\nverbose = perhaps\n").unwrap();
    let data = dir.path().join("data");
    let mut args = registry_args(data.to_str().unwrap());
    args.extend(["--config-file", config.to_str().unwrap()]);
    let (status, stderr) = run_glint(&args, &[]);
    assert!(!status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("verbose") && stderr.contains("'perhaps'"),
        "{stderr}"
    );
}

/// A port that was free a moment ago on the loopback interface.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn config_file_sets_the_port_and_the_page_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("glance-registry.conf");
    std::fs::write(
        &config,
        format!(
            "# an operator's glance-registry.conf\n[DEFAULT]\nbind_host = 127.0.0.1\n\
             bind_port = {port}\nlimit_param_default = 3\nsql_connection = sqlite:///x\n\n\
             [app:glance-registry]\napi_limit_max = 4\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut glint = GlintProcess::spawn(
        &[
            "registry",
            "--config-file",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    let addr = glint.wait_listening("registry");
    assert_eq!(addr.to_string(), format!("127.0.0.1:{port}"));
    let client = RegistryClient::new(addr);
    for i in 0..6 {
        client.create(json!({"name": format!("image-{i}"), "is_public": true}));
    }
    assert_eq!(client.list_ids("/images").len(), 3, "limit_param_default");
    assert_eq!(client.list_ids("/images?limit=2").len(), 2);
    assert_eq!(
        client.list_ids("/images?limit=100").len(),
        4,
        "api_limit_max"
    );
    glint.signal("TERM");
    assert_exits_0_promptly(&mut glint);
}

#[test]
fn environment_overrides_the_config_file_and_flags_override_both() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("glint.conf");
    std::fs::write(
        &config,
        "[DEFAULT]\nlimit_param_default = 3\nregistry_port = 1\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let (_glint, addr) = GlintProcess::start_registry(
        &data,
        &["--config-file", config.to_str().unwrap()],
        &[
            ("GLINT_LIMIT_PARAM_DEFAULT", "2"),
            ("GLINT_REGISTRY_PORT", "2"),
        ],
    );
    assert!(addr.port() > 2, "the --registry-port flag wins: {addr}");
    let client = RegistryClient::new(addr);
    for i in 0..4 {
        client.create(json!({"name": format!("image-{i}"), "is_public": true}));
    }
    assert_eq!(client.list_ids("/images").len(), 2);
}

#[test]
fn an_unknown_command_line_option_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // Safe settings first, so that a parser that wrongly accepted the option would still only
    // listen on loopback (and be killed by run_glint's deadline).
    let safe = registry_args(data);
    let (status, stderr) = run_glint(&[&safe[..], &["--frobnicate"]].concat(), &[]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown option '--frobnicate'"), "{stderr}");
    let (status, stderr) = run_glint(&[&safe[..], &["--api-port", "1"]].concat(), &[]);
    assert_eq!(
        status.code(),
        Some(2),
        "--api-port is for serve only: {stderr}"
    );
    let (status, stderr) = run_glint(&["frobnicate"], &[]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown command 'frobnicate'"), "{stderr}");
}
