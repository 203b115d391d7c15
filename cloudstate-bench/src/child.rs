//! A server in a child process of its own (this binary with `--serve`), so
//! that its resident memory is measured apart from the load generator's.
//!
//! The child prints the address it listens on as its first line of output and
//! serves until its standard input closes, so it does not outlive the parent.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// What a child serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    /// The shopping cart (cloudstate-sdk).
    Cart,
    /// The raw tonic echo.
    Echo,
}

impl Served {
    /// The `--serve` value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Cart => "cart",
            Self::Echo => "echo",
        }
    }
}

/// The first line a serving child prints, before its address.
pub(crate) const LISTENING: &str = "listening on ";

/// A running child server.
pub(crate) struct ChildServer {
    process: Child,
    stdin: Option<ChildStdin>,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rss {
    /// `VmRSS`: resident now, KiB.
    pub(crate) now_kib: u64,
    /// `VmHWM`: the most it has been resident, KiB.
    pub(crate) peak_kib: u64,
}

impl ChildServer {
    /// Starts `served` in a child process with `threads` tokio workers (one
    /// per CPU when `None`), and waits for its address.
    pub(crate) async fn spawn(served: Served, threads: Option<usize>) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut command = Command::new(exe);
        command.args(["--serve", served.name()]);
        if let Some(threads) = threads {
            command.args(["--threads", &threads.to_string()]);
        }
        let mut process = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {} server: {e}", served.name()))?;
        let stdin = process.stdin.take();
        let stdout = process.stdout.take().ok_or("no stdout from the child")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            read.map(|_| line)
        });
        let line = tokio::time::timeout(Duration::from_secs(30), line)
            .await
            .map_err(|_| format!("the {} server did not start within 30 s", served.name()))?
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reading the {} server's address: {e}", served.name()))?;
        let addr = line
            .trim()
            .strip_prefix(LISTENING)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the {} server said [{}]", served.name(), line.trim()))?;
        Ok(Self {
            process,
            stdin,
            addr,
        })
    }

    /// Its resident memory now.
    pub(crate) fn rss(&self) -> Result<Rss, String> {
        rss_of(&format!("/proc/{}/status", self.process.id()))
    }

    /// Closes its input, which stops it, and waits for it to end.
    pub(crate) async fn stop(mut self) {
        drop(self.stdin.take());
        let mut process = self.process;
        let waited = tokio::task::spawn_blocking(move || {
            for _ in 0..100 {
                if let Ok(Some(_)) = process.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("child server did not stop within 5 s: killing it");
            let _ = process.kill();
            let _ = process.wait();
        });
        let _ = waited.await;
    }
}

/// `VmRSS` and `VmHWM` of a `/proc/*/status` file.
pub(crate) fn rss_of(path: &str) -> Result<Rss, String> {
    let status = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| format!("{path}: no {name}"))
    };
    Ok(Rss {
        now_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// The `--serve` mode: serve until standard input closes.
pub(crate) async fn serve(served: Served, echo_nodelay: bool) -> Result<(), String> {
    let server = match served {
        Served::Cart => crate::start_cart().await?,
        Served::Echo => crate::start_echo(echo_nodelay).await?,
    };
    println!("{LISTENING}{}", server.addr);
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = [0_u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    });
    let _ = stdin_closed.await;
    server.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_of_this_process() {
        let rss = rss_of("/proc/self/status").unwrap();
        assert!(rss.now_kib > 0 && rss.peak_kib >= rss.now_kib, "{rss:?}");
        assert!(rss_of("/proc/self/no-such-file").is_err());
    }
}
