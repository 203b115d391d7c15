//! Runs the benchmark binary on a tiny load: both servers start, every
//! command gets its reply, the report is printed and the exit status is 0.

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
