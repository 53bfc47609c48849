//! The binary from outside: exit codes and one-line errors for bad datastores.

use std::process::Command;

fn skiff(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(args)
        .output()
        .expect("run skiff");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn datastore_status_reports_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (code, stdout, stderr) =
        skiff(&["datastore", "status", "--datastore", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("revision: 0"), "{stdout}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the database holds secrets");
}

#[test]
fn a_corrupt_datastore_fails_at_startup_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, vec![0xAB; 4096]).unwrap();
    let (code, _, stderr) = skiff(&["datastore", "status", "--datastore", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("not a database"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), vec![0xAB; 4096]);
}

#[test]
fn an_unknown_datastore_scheme_is_a_clear_error() {
    let (code, _, stderr) = skiff(&["datastore", "status", "--datastore", "mysql://db/x"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unsupported scheme \"mysql\""), "{stderr}");
}

#[test]
fn an_unreachable_postgres_fails_without_showing_the_password() {
    let (code, _, stderr) = skiff(&[
        "datastore",
        "status",
        "--datastore",
        "postgres://skiff:topsecret@127.0.0.1:1/skiff",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("postgres://skiff:***@127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("topsecret"), "{stderr}");
}

#[test]
fn compacting_beyond_the_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let datastore = path.to_str().unwrap();
    assert_eq!(
        skiff(&["datastore", "status", "--datastore", datastore]).0,
        0
    );
    let (code, _, stderr) = skiff(&[
        "datastore",
        "compact",
        "--datastore",
        datastore,
        "--revision",
        "5",
    ]);
    assert_eq!(code, 1, "revision 5 is in the future of an empty store");
    assert!(stderr.contains("in the future"), "{stderr}");
}

#[test]
fn agent_without_simulate_says_what_is_missing_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["agent", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--simulate"), "{stderr}");
}
