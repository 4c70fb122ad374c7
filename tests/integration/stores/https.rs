//! https locations through rustls: a throwaway CA and a certificate for 127.0.0.1 are made with
//! the `openssl` command, a Python TLS file server serves them on loopback, and glint checks the
//! certificate against `https_ca_certificates_file` (and refuses it without).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::register;
use crate::support::services::vars;
use crate::support::{md5_hex, test_data, ImageServer};

/// A Python https file server on 127.0.0.1, killed on drop.
struct TlsOrigin {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a CA and a server certificate for IP 127.0.0.1, and starts the server on a free port.
fn tls_origin() -> TlsOrigin {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(d));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=glint-test-ca",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "1",
        "-extfile",
        "ext",
    ]);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = format!(
        "import http.server, ssl, functools\n\
         h = functools.partial(http.server.SimpleHTTPRequestHandler, directory={dir:?})\n\
         s = http.server.ThreadingHTTPServer(('127.0.0.1', {port}), h)\n\
         c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('srv.pem', 'srv.key')\n\
         s.socket = c.wrap_socket(s.socket, server_side=True)\n\
         s.serve_forever()\n",
        dir = d.to_str().unwrap()
    );
    let child = Command::new("python3")
        .args(["-c", &script])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 is needed for the https test");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the https test server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    TlsOrigin { child, port, dir }
}

#[test]
fn https_location_is_verified_against_the_configured_ca_and_streams_identical_bytes() {
    let origin = tls_origin();
    let data = test_data(700_000, 99);
    std::fs::write(origin.dir.path().join("disk.img"), &data).unwrap();
    let url = format!("https://127.0.0.1:{}/disk.img", origin.port);
    let ca = origin.dir.path().join("ca.pem");

    let trusting = ImageServer::serve(
        &vars(&[("GLINT_HTTPS_CA_CERTIFICATES_FILE", ca.to_str().unwrap())]),
        false,
    );
    let image = register(&trusting, "disk", &url).json(201)["image"].clone();
    assert_eq!(
        (image["status"].as_str(), image["size"].as_u64()),
        (Some("active"), Some(data.len() as u64)),
        "{image}"
    );
    let got = trusting.download_hashed(image["id"].as_str().unwrap(), true);
    assert_eq!(got.status.as_u16(), 200);
    assert_eq!(got.md5, md5_hex(&data));

    // Without the CA, the system store does not know it: a clear 503, nothing created.
    let system_only = ImageServer::serve(&[], false);
    let reply = register(&system_only, "disk", &url);
    assert_eq!(reply.status.as_u16(), 503, "{}", reply.text());
    assert!(reply.text().contains("certificate"), "{}", reply.text());
}
