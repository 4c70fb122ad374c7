//! The real python-glanceclient v1 (2.17.1) against `glint serve`, through
//! `scripts/glanceclient-smoke.sh`: create with data, list, get, download and compare, update,
//! delete. Set `GLINT_SKIP_PYTHON` to skip it (no Python, no package index); when it runs, a
//! failing script fails the test.

use std::path::Path;
use std::process::Command;

#[test]
fn glanceclient_smoke() {
    if std::env::var_os("GLINT_SKIP_PYTHON").is_some() {
        eprintln!("glanceclient_smoke: skipped (GLINT_SKIP_PYTHON is set)");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/glanceclient-smoke.sh");
    let output = Command::new("bash")
        .arg(&script)
        .env("GLINT_BIN", env!("CARGO_BIN_EXE_glint"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        output.status
    );
    assert!(
        stdout.contains("glanceclient smoke test passed"),
        "the script ended without its last check:\n{stdout}\n{stderr}"
    );
}
