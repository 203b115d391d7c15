//! The requests a sample prints when it starts, runnable as tests.
//!
//! A sample lists its requests once, as [`Example`]s: its `main` prints them
//! with [`banner`] (the `curl` command a user copies, then what it answers),
//! and its tests run the same list against a dev proxy with [`check`], so
//! the printed answers cannot go stale. An answer that follows the request
//! only after a while (a read model updated from an event log, say) is
//! marked [`eventually`](Example::eventually): the check re-sends the
//! request until it answers as printed.
//!
//! ```
//! use cloudstate_devproxy::local::examples::{Example, banner};
//!
//! let examples = [
//!     Example::post("/cart/alice/items/add")
//!         .json(r#"{"productId":"apple","quantity":2}"#)
//!         .expect_json("{}"),
//!     Example::get("/carts/alice").expect_json(r#"{"items":[{"productId":"apple","quantity":2}]}"#),
//!     Example::get("/carts/alice/watch").expect_lines([r#"{"items":[]}"#]),
//!     Example::post("/cart/alice/items/kiwi/remove").expect_failure(500, "Cannot remove kiwi"),
//!     Example::get("/top").expect_json(r#"{"products":["apple"]}"#).eventually(),
//! ];
//! assert_eq!(
//!     examples[3].curl("http://127.0.0.1:9000"),
//!     "curl -X POST http://127.0.0.1:9000/cart/alice/items/kiwi/remove"
//! );
//! assert_eq!(examples[2].curl("http://127.0.0.1:9000"), "curl -N http://127.0.0.1:9000/carts/alice/watch");
//! let text = banner("Cart ready", "http://127.0.0.1:9000", &examples);
//! assert!(text.contains("  curl http://127.0.0.1:9000/carts/alice\n  # → {\"items\""));
//! assert!(text.contains("  # → (shortly) {\"products\":[\"apple\"]}\n"));
//! ```

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long [`check`] waits for each part of an answer before it reports
/// the example as unanswered (a guard against a hung call, not a timing check).
const PATIENCE: Duration = Duration::from_secs(10);

/// How long [`check`] re-sends an [`eventually`](Example::eventually)
/// example before it reports the last answer as the mismatch.
const EVENTUALLY: Duration = Duration::from_secs(10);

/// The pause between two sends of an `eventually` example.
const RESEND_EVERY: Duration = Duration::from_millis(100);

/// The longest banner line before a request body goes on a line of its own.
const WIDTH: usize = 80;

/// One HTTP request a user can copy, and what it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path and query, from the first `/`.
    pub path: String,
    /// Request headers besides `Content-Type`, which a body sets.
    pub headers: Vec<(String, String)>,
    /// A JSON request body.
    pub body: Option<String>,
    /// What the request answers.
    pub expect: Expect,
    /// Whether the answer may come only after a while: [`check`] re-sends
    /// the request until it matches or 10 seconds have passed, and the
    /// banner prints `# → (shortly) ...`.
    pub eventually: bool,
}

/// What an [`Example`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `200` with this JSON document (compared as JSON, not as text).
    Json(String),
    /// A server-streaming call: `200` and these first lines of
    /// newline-delimited JSON, each compared as JSON; the client then hangs
    /// up, which cancels the call.
    Lines(Vec<String>),
    /// A failure: this status and exactly this body text.
    Failure {
        /// The HTTP status.
        status: u16,
        /// The body.
        text: String,
    },
}

impl Example {
    /// A request with `method` to `path`, expected to answer `{}` (the
    /// answer of a method returning `google.protobuf.Empty`).
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: None,
            expect: Expect::Json("{}".to_owned()),
            eventually: false,
        }
    }

    /// A `GET` of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path)
    }

    /// A `POST` to `path`, without a body unless [`json`](Self::json) adds one.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new("POST", path)
    }

    /// Sends `body` as `application/json`.
    #[must_use]
    pub fn json(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Adds a request header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Expects `200` with the JSON document `json`.
    #[must_use]
    pub fn expect_json(mut self, json: impl Into<String>) -> Self {
        self.expect = Expect::Json(json.into());
        self
    }

    /// Expects a stream whose first lines are the JSON documents `lines`.
    #[must_use]
    pub fn expect_lines<I: IntoIterator<Item = S>, S: Into<String>>(mut self, lines: I) -> Self {
        self.expect = Expect::Lines(lines.into_iter().map(Into::into).collect());
        self
    }

    /// Expects a failure: `status` with the body `text`.
    #[must_use]
    pub fn expect_failure(mut self, status: u16, text: impl Into<String>) -> Self {
        self.expect = Expect::Failure {
            status,
            text: text.into(),
        };
        self
    }

    /// The answer comes eventually, not necessarily at once: for state
    /// updated asynchronously, such as a read model fed by an event log.
    #[must_use]
    pub fn eventually(mut self) -> Self {
        self.eventually = true;
        self
    }

    /// Whether the answer is a stream (printed with `curl -N`, which shows
    /// each line as it arrives).
    pub fn is_streamed(&self) -> bool {
        matches!(self.expect, Expect::Lines(_))
    }

    /// The `curl` command that sends this request to the proxy at `base`
    /// (`http://127.0.0.1:9000`), on one line, quoted for a POSIX shell.
    pub fn curl(&self, base: &str) -> String {
        let mut command = String::from("curl");
        if self.is_streamed() {
            command.push_str(" -N");
        }
        if self.method != "GET" || self.body.is_some() {
            let _ = write!(command, " -X {}", self.method);
        }
        let _ = write!(command, " {}", shell_word(&format!("{base}{}", self.path)));
        for (name, value) in &self.headers {
            let _ = write!(command, " -H {}", quoted(&format!("{name}: {value}")));
        }
        if let Some(body) = &self.body {
            let _ = write!(
                command,
                " -H 'Content-Type: application/json' -d {}",
                quoted(body)
            );
        }
        command
    }

    /// What the request answers, as the banner prints it after `# → `: the
    /// JSON, the streamed lines separated by ` ⏎ `, or `status: text`;
    /// after `(shortly) ` when it comes [`eventually`](Self::eventually).
    pub fn expected(&self) -> String {
        let answer = match &self.expect {
            Expect::Json(json) => json.clone(),
            Expect::Lines(lines) => lines.join(" ⏎ "),
            Expect::Failure { status, text } => format!("{status}: {text}"),
        };
        if self.eventually {
            format!("(shortly) {answer}")
        } else {
            answer
        }
    }

    /// Sends the request to the proxy at `addr` and compares the answer with
    /// [`expect`](Self::expect).
    ///
    /// An [`eventually`](Self::eventually) example is re-sent until it
    /// answers as expected, for up to 10 seconds.
    ///
    /// # Errors
    /// A message naming the request, what was expected and what came (or
    /// that nothing came within 10 seconds); for an `eventually` example,
    /// the last answer once 10 seconds have passed.
    pub async fn check(&self, addr: SocketAddr) -> Result<(), String> {
        self.check_within(addr, EVENTUALLY).await
    }

    /// [`check`](Self::check), re-sending an `eventually` example for up to `within`.
    async fn check_within(&self, addr: SocketAddr, within: Duration) -> Result<(), String> {
        if !self.eventually {
            return self.check_once(addr).await;
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.check_once(addr).await {
                Ok(()) => return Ok(()),
                Err(mismatch) if tokio::time::Instant::now() >= deadline => {
                    return Err(format!(
                        "{mismatch}\n  (the last of the answers while re-sending it for {} s)",
                        within.as_secs()
                    ));
                }
                Err(_) => tokio::time::sleep(RESEND_EVERY).await,
            }
        }
    }

    /// One send of the request, its answer compared with [`expect`](Self::expect).
    async fn check_once(&self, addr: SocketAddr) -> Result<(), String> {
        let what = format!("{} {}", self.method, self.path);
        let mut answer = self.send(addr).await.map_err(|e| format!("{what}: {e}"))?;
        let mismatch =
            |got: &str| format!("{what}\n  expected: {}\n  got:      {got}", self.expected());
        match &self.expect {
            Expect::Json(expected) => {
                let status = answer.status;
                let body = answer.text().await.map_err(|e| format!("{what}: {e}"))?;
                if status != 200 {
                    return Err(mismatch(&format!("{status}: {body}")));
                }
                if !same_json(expected, &body)? {
                    return Err(mismatch(&body));
                }
            }
            Expect::Lines(expected) => {
                if answer.status != 200 {
                    let status = answer.status;
                    let body = answer.text().await.map_err(|e| format!("{what}: {e}"))?;
                    return Err(mismatch(&format!("{status}: {body}")));
                }
                let mut got = Vec::new();
                for line in expected {
                    let next = answer.line().await.map_err(|e| format!("{what}: {e}"))?;
                    let Some(next) = next else {
                        got.push("(end of stream)".to_owned());
                        return Err(mismatch(&got.join(" ⏎ ")));
                    };
                    let same = same_json(line, &next)?;
                    got.push(next);
                    if !same {
                        return Err(mismatch(&got.join(" ⏎ ")));
                    }
                }
                // Dropping the connection hangs up, as curl does on Ctrl-C.
            }
            Expect::Failure { status, text } => {
                let got_status = answer.status;
                let body = answer.text().await.map_err(|e| format!("{what}: {e}"))?;
                if (got_status, body.as_str()) != (*status, text.as_str()) {
                    return Err(mismatch(&format!("{got_status}: {body}")));
                }
            }
        }
        Ok(())
    }

    /// Sends the request to `addr` over HTTP/1.1 and returns the answer once
    /// its head has arrived: its body can then be read whole, or line by
    /// line while a stream goes on. Dropping it closes the connection.
    ///
    /// # Errors
    /// The connection failed, or the answer is not HTTP or took longer than
    /// 10 seconds to start.
    pub async fn send(&self, addr: SocketAddr) -> Result<Answer, String> {
        let mut request = format!(
            "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
            self.method, self.path
        );
        for (name, value) in &self.headers {
            let _ = write!(request, "{name}: {value}\r\n");
        }
        let body = self.body.as_deref().unwrap_or("");
        if self.body.is_some() {
            request.push_str("Content-Type: application/json\r\n");
        }
        let _ = write!(request, "Content-Length: {}\r\n\r\n{body}", body.len());
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("cannot send the request: {e}"))?;
        let mut reader = BufReader::new(stream);
        let status_line = patient(read_line(&mut reader)).await?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not an HTTP status line: [{}]", status_line.trim_end()))?;
        let mut headers = Vec::new();
        loop {
            let line = patient(read_line(&mut reader)).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let framing = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            Framing::Chunked { left: 0 }
        } else if let Some(length) = header("content-length").and_then(|v| v.parse().ok()) {
            Framing::Length(length)
        } else {
            Framing::UntilClose
        };
        Ok(Answer {
            status,
            content_type: header("content-type").unwrap_or_default(),
            reader,
            framing,
            pending: Vec::new(),
            done: false,
        })
    }
}

/// An HTTP answer whose body is read as it arrives.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, empty when there is none.
    pub content_type: String,
    reader: BufReader<TcpStream>,
    framing: Framing,
    /// Body bytes read but not handed out yet.
    pending: Vec<u8>,
    done: bool,
}

#[derive(Debug)]
enum Framing {
    /// `Transfer-Encoding: chunked`, with `left` bytes of the current chunk to read.
    Chunked { left: usize },
    /// `Content-Length`: that many bytes left.
    Length(usize),
    /// Neither: the body ends with the connection.
    UntilClose,
}

impl Answer {
    /// The next line of the body without its `\n`; `None` at its end (a
    /// last line without `\n` is still a line).
    ///
    /// # Errors
    /// The connection failed, the chunked framing is broken, a line is not
    /// UTF-8, or nothing came within 10 seconds.
    pub async fn line(&mut self) -> Result<Option<String>, String> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return utf8(&line[..end]).map(Some);
            }
            if self.done {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.pending);
                return utf8(&rest).map(Some);
            }
            patient(self.fill()).await?;
        }
    }

    /// The rest of the body, to its end.
    ///
    /// # Errors
    /// As [`line`](Self::line).
    pub async fn text(mut self) -> Result<String, String> {
        while !self.done {
            patient(self.fill()).await?;
        }
        utf8(&self.pending)
    }

    /// Reads more of the body into `pending`, or marks its end.
    async fn fill(&mut self) -> Result<(), String> {
        let io = |e: std::io::Error| format!("reading the answer failed: {e}");
        match &mut self.framing {
            Framing::Chunked { left } if *left == 0 => {
                let size_line = read_line(&mut self.reader).await?;
                let size = size_line.trim();
                if size.is_empty() {
                    // The CRLF that ends the previous chunk.
                    return Ok(());
                }
                let size = size.split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size, 16)
                    .map_err(|_| format!("not a chunk size: [{size}]"))?;
                if size == 0 {
                    self.done = true;
                } else {
                    *left = size;
                }
            }
            Framing::Chunked { left } | Framing::Length(left) => {
                if *left == 0 {
                    self.done = true;
                    return Ok(());
                }
                let mut buffer = vec![0; (*left).min(16 * 1024)];
                let n = self.reader.read(&mut buffer).await.map_err(io)?;
                if n == 0 {
                    return Err("the connection closed in the middle of the body".to_owned());
                }
                self.pending.extend_from_slice(&buffer[..n]);
                *left -= n;
            }
            Framing::UntilClose => {
                let mut buffer = vec![0; 16 * 1024];
                let n = self.reader.read(&mut buffer).await.map_err(io)?;
                self.pending.extend_from_slice(&buffer[..n]);
                self.done = n == 0;
            }
        }
        Ok(())
    }
}

/// What a sample prints once it serves: `title` with where the proxy is,
/// then each example's `curl` command followed by a `# → ` line with its
/// answer. A command longer than 80 columns puts its body on a second line.
pub fn banner(title: &str, base: &str, examples: &[Example]) -> String {
    let mut text = format!("\n{title}: gRPC and HTTP/JSON on {base}\n\n");
    for example in examples {
        let command = example.curl(base);
        match command.split_once(" -d '") {
            Some((head, body)) if command.len() + 2 > WIDTH => {
                let _ = writeln!(text, "  {head} \\\n       -d '{body}");
            }
            _ => {
                let _ = writeln!(text, "  {command}");
            }
        }
        let _ = writeln!(text, "  # → {}", example.expected());
    }
    text
}

/// Runs `examples` in order against the dev proxy at `addr`.
///
/// # Errors
/// The first example that answers otherwise than printed, with what it
/// answered.
pub async fn check(addr: SocketAddr, examples: &[Example]) -> Result<(), String> {
    for example in examples {
        example.check(addr).await?;
    }
    Ok(())
}

/// Whether the JSON texts `expected` (from the example) and `got` (from the
/// proxy) are the same document.
fn same_json(expected: &str, got: &str) -> Result<bool, String> {
    let expected: serde_json::Value = serde_json::from_str(expected)
        .map_err(|e| format!("the example's expected JSON [{expected}] is invalid: {e}"))?;
    Ok(serde_json::from_str::<serde_json::Value>(got).is_ok_and(|got| got == expected))
}

async fn read_line(reader: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = String::new();
    let n = reader
        .read_line(&mut line)
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?;
    if n == 0 {
        return Err("the connection closed before the answer was complete".to_owned());
    }
    Ok(line)
}

async fn patient<T>(
    step: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(PATIENCE, step)
        .await
        .map_err(|_| format!("no answer within {} s", PATIENCE.as_secs()))?
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "the answer is not UTF-8".to_owned())
}

/// `text` as one shell word: as it is when only safe characters make it up,
/// else single-quoted.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_owned()
    } else {
        quoted(text)
    }
}

/// `text` single-quoted for a POSIX shell (a `'` inside becomes `'\''`).
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://127.0.0.1:9000";

    #[test]
    fn a_get_is_the_bare_url() {
        assert_eq!(
            Example::get("/carts/alice").curl(BASE),
            "curl http://127.0.0.1:9000/carts/alice"
        );
    }

    #[test]
    fn a_post_names_its_method_and_its_body_its_content_type() {
        assert_eq!(
            Example::post("/cart/alice/items/apple/remove").curl(BASE),
            "curl -X POST http://127.0.0.1:9000/cart/alice/items/apple/remove"
        );
        assert_eq!(
            Example::post("/likes/post-1")
                .json(r#"{"consistency":"ALL"}"#)
                .curl(BASE),
            r#"curl -X POST http://127.0.0.1:9000/likes/post-1 -H 'Content-Type: application/json' -d '{"consistency":"ALL"}'"#
        );
    }

    #[test]
    fn other_methods_with_a_body_are_named() {
        assert_eq!(
            Example::new("PUT", "/x").json("{}").curl(BASE),
            "curl -X PUT http://127.0.0.1:9000/x -H 'Content-Type: application/json' -d '{}'"
        );
    }

    #[test]
    fn a_streamed_call_is_not_buffered_by_curl() {
        let watch = Example::get("/rooms/lobby/connect/ann").expect_lines([r#"{"users":["ann"]}"#]);
        assert!(watch.is_streamed());
        assert_eq!(
            watch.curl(BASE),
            "curl -N http://127.0.0.1:9000/rooms/lobby/connect/ann"
        );
        assert_eq!(watch.expected(), r#"{"users":["ann"]}"#);
    }

    #[test]
    fn headers_come_after_the_url_and_quotes_are_escaped() {
        let example = Example::post("/users/ann/friends/add")
            .header("x-crdt-replica", "2")
            .json(r#"{"friend":"o'brien"}"#);
        assert_eq!(
            example.curl(BASE),
            r#"curl -X POST http://127.0.0.1:9000/users/ann/friends/add -H 'x-crdt-replica: 2' -H 'Content-Type: application/json' -d '{"friend":"o'\''brien"}'"#
        );
    }

    #[test]
    fn a_url_with_shell_characters_is_quoted() {
        assert_eq!(
            Example::get("/search?q=a&limit=2").curl(BASE),
            "curl 'http://127.0.0.1:9000/search?q=a&limit=2'"
        );
    }

    #[test]
    fn the_banner_prints_each_command_then_its_answer() {
        let examples = [
            Example::post("/cart/alice/items/add")
                .json(r#"{"productId":"apple","name":"Apple","quantity":2}"#),
            Example::get("/carts/alice").expect_json(r#"{"items":[]}"#),
            Example::get("/rooms/lobby/monitor")
                .expect_lines([r#"{"users":[]}"#, r#"{"users":["ann"]}"#]),
            Example::post("/cart/alice/items/kiwi/remove")
                .expect_failure(500, "Cannot remove kiwi"),
        ];
        let text = banner("Cart ready", BASE, &examples);
        assert_eq!(
            text,
            "\nCart ready: gRPC and HTTP/JSON on http://127.0.0.1:9000\n\n\
             \x20 curl -X POST http://127.0.0.1:9000/cart/alice/items/add -H 'Content-Type: application/json' \\\n\
             \x20      -d '{\"productId\":\"apple\",\"name\":\"Apple\",\"quantity\":2}'\n\
             \x20 # → {}\n\
             \x20 curl http://127.0.0.1:9000/carts/alice\n\
             \x20 # → {\"items\":[]}\n\
             \x20 curl -N http://127.0.0.1:9000/rooms/lobby/monitor\n\
             \x20 # → {\"users\":[]} ⏎ {\"users\":[\"ann\"]}\n\
             \x20 curl -X POST http://127.0.0.1:9000/cart/alice/items/kiwi/remove\n\
             \x20 # → 500: Cannot remove kiwi\n"
        );
    }

    #[test]
    fn a_short_body_stays_on_the_command_line() {
        let text = banner("T", "http://h", &[Example::post("/a").json("{}")]);
        assert!(
            text.contains(
                "  curl -X POST http://h/a -H 'Content-Type: application/json' -d '{}'\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn json_is_compared_as_documents() {
        assert_eq!(
            same_json(r#"{"a":1,"b":[2]}"#, r#"{ "b": [2], "a": 1 }"#),
            Ok(true)
        );
        assert_eq!(same_json(r#"{"a":1}"#, r#"{"a":"1"}"#), Ok(false));
        assert_eq!(same_json(r#"{"a":1}"#, "not json"), Ok(false));
        assert!(
            same_json("{oops", "{}")
                .unwrap_err()
                .contains("[{oops] is invalid")
        );
    }

    /// A server on port 0 that answers one connection with `pieces`, written
    /// one by one, then keeps the connection open until the client hangs up.
    async fn serve(pieces: &'static [&'static str]) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buffer).await.unwrap();
                request.extend_from_slice(&buffer[..n]);
            }
            for piece in pieces {
                stream.write_all(piece.as_bytes()).await.unwrap();
                stream.flush().await.unwrap();
            }
            let _ = stream.read(&mut buffer).await;
        });
        addr
    }

    const STREAM_HEAD: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";

    #[tokio::test]
    async fn streamed_lines_are_read_across_chunks_while_the_stream_stays_open() {
        let addr = serve(&[STREAM_HEAD, "5\r\n{\"a\":\r\n", "6\r\n1}\n{}\n\r\n"]).await;
        let example = Example::get("/s").expect_lines([r#"{"a": 1}"#, "{}"]);
        assert_eq!(example.check(addr).await, Ok(()));
    }

    #[tokio::test]
    async fn a_different_line_is_reported_with_what_came() {
        let addr = serve(&[STREAM_HEAD, "8\r\n{\"a\":2}\n\r\n"]).await;
        let error = Example::get("/s")
            .expect_lines([r#"{"a":1}"#])
            .check(addr)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            "GET /s\n  expected: {\"a\":1}\n  got:      {\"a\":2}"
        );
    }

    #[tokio::test]
    async fn a_failure_compares_status_and_text() {
        const NOPE: &str = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nnope";
        let addr = serve(&[NOPE]).await;
        assert_eq!(
            Example::post("/f")
                .expect_failure(500, "nope")
                .check(addr)
                .await,
            Ok(())
        );
        let addr = serve(&[NOPE]).await;
        let error = Example::post("/f").check(addr).await.unwrap_err();
        assert_eq!(error, "POST /f\n  expected: {}\n  got:      500: nope");
    }

    /// A server on port 0 that answers its n-th connection with the JSON
    /// body `bodies[n]` (the last one once they run out), counting them.
    async fn serve_each(
        bodies: &'static [&'static str],
    ) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = std::sync::Arc::new(AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&served);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buffer = [0; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    let n = stream.read(&mut buffer).await.unwrap();
                    request.extend_from_slice(&buffer[..n]);
                }
                let n = count.fetch_add(1, Ordering::SeqCst);
                let body = bodies[n.min(bodies.len() - 1)];
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (addr, served)
    }

    #[tokio::test]
    async fn an_eventual_answer_is_asked_again_until_it_matches() {
        use std::sync::atomic::Ordering;
        let bodies = &[r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":2}"#];
        let (addr, served) = serve_each(bodies).await;
        let example = Example::get("/n").expect_json(r#"{"n":2}"#).eventually();
        assert_eq!(example.check(addr).await, Ok(()));
        assert_eq!(
            served.load(Ordering::SeqCst),
            3,
            "sent until the third answer"
        );

        // Without `eventually`, the first answer is the one compared.
        let (addr, _) = serve_each(bodies).await;
        let error = Example::get("/n")
            .expect_json(r#"{"n":2}"#)
            .check(addr)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            "GET /n\n  expected: {\"n\":2}\n  got:      {\"n\":0}"
        );
    }

    #[tokio::test]
    async fn an_eventual_answer_that_never_comes_reports_the_last_one() {
        let (addr, _) = serve_each(&[r#"{"n":0}"#, r#"{"n":1}"#]).await;
        let example = Example::get("/n").expect_json(r#"{"n":2}"#).eventually();
        let error = example
            .check_within(addr, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            error.starts_with("GET /n\n  expected: (shortly) {\"n\":2}\n  got:      {\"n\":1}\n"),
            "{error}"
        );
    }

    #[test]
    fn the_banner_says_an_eventual_answer_comes_shortly() {
        let example = Example::get("/top").expect_json("{}").eventually();
        assert!(example.eventually && !example.is_streamed());
        assert_eq!(example.expected(), "(shortly) {}");
        let text = banner("T", "http://h", &[example]);
        assert!(
            text.ends_with("  curl http://h/top\n  # → (shortly) {}\n"),
            "{text}"
        );
        assert_eq!(Example::get("/top").expected(), "{}");
    }

    #[tokio::test]
    async fn a_json_body_is_read_to_its_length() {
        let addr = serve(&["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{\"b\": [] }"]).await;
        assert_eq!(
            Example::get("/j")
                .expect_json(r#"{"b":[]}"#)
                .check(addr)
                .await,
            Ok(())
        );
    }
}
