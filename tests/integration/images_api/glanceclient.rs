//! The real clients against `glint serve`, through `scripts/glanceclient-smoke.sh`:
//! python-glanceclient v1 (2.17.1: create with data, list, get, download and compare, update,
//! delete), and for v2 glanceclient's library and CLI and the `openstack image` CLI
//! (scripts/v2_clients_smoke.py). Set `GLINT_SKIP_PYTHON` to skip it (no Python, no package index); when it runs, a
//! failing script fails the test.

use std::path::Path;
use std::process::Command;

#[test]
fn glanceclient_smoke() {
    run_smoke(
        "scripts/glanceclient_smoke.py",
        "glanceclient smoke test passed",
    );
}

/// glanceclient v2 (library and CLI) and `openstack image` (scripts/v2_clients_smoke.py).
#[test]
fn v2_clients_smoke() {
    run_smoke(
        "scripts/v2_clients_smoke.py",
        "v2 clients smoke test passed",
    );
}

/// glanceclient v1 and v2 and both CLIs with real Keystone tokens
/// (scripts/identity_clients_smoke.py against `glint serve` with `flavor = keystone`).
#[test]
fn identity_clients_smoke() {
    let Some(vars) = crate::support::service_vars(
        "Keystone",
        "start-keystone.sh",
        &crate::support::services::KEYSTONE_SERVICE_VARS,
    ) else {
        return;
    };
    let env = [
        ("SMOKE_GLINT_FLAVOR", "keystone"),
        ("SMOKE_GLINT_KEYSTONE_AUTHTOKEN_AUTH_URL", vars[0].as_str()),
        ("SMOKE_GLINT_KEYSTONE_AUTHTOKEN_USERNAME", vars[1].as_str()),
        ("SMOKE_GLINT_KEYSTONE_AUTHTOKEN_PASSWORD", vars[2].as_str()),
        (
            "SMOKE_GLINT_KEYSTONE_AUTHTOKEN_PROJECT_NAME",
            vars[3].as_str(),
        ),
    ];
    run_smoke_with(
        "scripts/identity_clients_smoke.py",
        "identity clients smoke test passed",
        &env,
    );
}

fn run_smoke(python_script: &str, last_line: &str) {
    run_smoke_with(python_script, last_line, &[]);
}

fn run_smoke_with(python_script: &str, last_line: &str, env: &[(&str, &str)]) {
    if std::env::var_os("GLINT_SKIP_PYTHON").is_some() {
        eprintln!("{python_script}: skipped (GLINT_SKIP_PYTHON is set)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/glanceclient-smoke.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(root.join(python_script))
        .env("GLINT_BIN", env!("CARGO_BIN_EXE_glint"))
        .envs(env.iter().copied())
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
        stdout.contains(last_line),
        "the script ended without its last check:\n{stdout}\n{stderr}"
    );
}
