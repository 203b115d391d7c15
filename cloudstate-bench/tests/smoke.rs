//! Runs the benchmark binary on a tiny load, in its default mode and through
//! the dev proxy: the servers start, every command gets its answer, the
//! report is printed and the exit status is 0.

use std::process::Command;

#[test]
fn a_tiny_run_prints_the_report() {
    let output = Command::new(env!("CARGO_BIN_EXE_cloudstate-bench"))
        .args([
            "--commands",
            "40",
            "--concurrency",
            "1,4",
            "--warmup",
            "8",
            "--rounds",
            "1",
            "--threads",
            "2",
        ])
        .output()
        .expect("run cloudstate-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("cart cmd/s"), "{stdout}");
    assert!(stdout.contains("target: cart throughput >= 0.7x echo at C=256: not measured"));
    assert!(stdout.contains("target: cart p99 <= 2.0x echo p99 at C=4:"));
}

#[test]
fn a_tiny_run_through_the_dev_proxy() {
    let output = Command::new(env!("CARGO_BIN_EXE_cloudstate-bench"))
        .args([
            "--through-proxy",
            "--commands",
            "40",
            "--concurrency",
            "1,4",
            "--warmup",
            "8",
            "--rounds",
            "1",
            "--threads",
            "2",
        ])
        .output()
        .expect("run cloudstate-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("behind the embedded dev proxy"), "{stdout}");
    for mode in ["uf-only", "grpc", "http"] {
        for c in [1, 4] {
            let line = stdout.lines().find(|l| {
                l.split_whitespace()
                    .take(2)
                    .eq([c.to_string().as_str(), mode])
            });
            assert!(line.is_some(), "no {mode} line at C={c}:\n{stdout}");
        }
    }
}
