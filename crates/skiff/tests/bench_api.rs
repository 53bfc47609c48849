//! `skiff bench api` end to end at toy sizes: it starts a server, drives every phase over
//! HTTPS and prints its report. Timings are never asserted (shared machines); only that each
//! headline line is there and nothing failed.

use std::process::Command;

#[test]
fn bench_api_runs_every_phase_and_reports_them() {
    let out = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args([
            "bench",
            "api",
            "--creates",
            "200",
            "--clients",
            "8",
            "--watchers",
            "20",
            "--watch-events",
            "5",
            "--rate",
            "200",
            "--seconds",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run skiff bench api");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for headline in [
        "# skiff bench api",
        "machine: ",
        "| cold start: spawn to /readyz OK |",
        "| cold start: spawn to first successful ",
        "| idle RSS ",
        "| creates through HTTPS, 8 clients |",
        "| create latency p50 / p99 / max |",
        "| RSS with 200 ConfigMaps |",
        "| store reference: ",
        "| single-object GET at 200/s ",
        "| single-object PUT at 200/s ",
        "| watch fan-out: 20 watches opened |",
        "| watch fan-out latency p50 / p99 / max (100 deliveries, 0 missing) |",
        "| server RSS at the end / peak |",
    ] {
        assert!(stdout.contains(headline), "no {headline:?} in:\n{stdout}");
    }
}
