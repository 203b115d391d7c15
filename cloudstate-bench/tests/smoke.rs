//! Runs the benchmark binary on a tiny load, in its default mode, through
//! the dev proxy, replaying a journal and measuring memory: the servers
//! start, every command gets its answer, the report is printed and the exit
//! status is 0.

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

fn run(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_cloudstate-bench"))
        .args(args)
        .output()
        .expect("run cloudstate-bench");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// The value in the column after `label` on the line starting with it.
fn figure(stdout: &str, label: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no figure for [{label}] in:\n{stdout}"))
}

#[test]
fn a_tiny_replay() {
    // The cart's reply is checked to hold every replayed unit.
    let stdout = run(&["--replay", "300", "--rounds", "1", "--threads", "2"]);
    assert!(stdout.contains("--replay 300"), "{stdout}");
    assert!(figure(&stdout, "cart ") > 0.0);
    assert!(figure(&stdout, "echo ") > 0.0);
    assert!(
        stdout.contains("target: cart replay >= 1000000 events/s:"),
        "{stdout}"
    );
}

#[test]
fn a_tiny_memory_run_in_child_processes() {
    let stdout = run(&[
        "--idle-streams",
        "20",
        "--commands",
        "40",
        "--concurrency",
        "4",
        "--rounds",
        "1",
        "--threads",
        "2",
    ]);
    for server in ["cart ", "echo "] {
        // Fresh RSS of a child server: a few MiB at least.
        assert!(figure(&stdout, server) > 1_000.0, "{stdout}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some("4") && l.trim_end().ends_with('x')),
        "no C=4 line with a ratio:\n{stdout}"
    );
    assert!(
        stdout.contains("target: cart memory per idle stream <= 8 KiB:"),
        "{stdout}"
    );
}
