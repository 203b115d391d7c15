//! Error answers: plain text by default, a Google API error object for
//! clients that ask for JSON.

use tonic::Code;

/// `text/plain; charset=utf-8`, the content type of error answers by default.
pub(super) const TEXT: &str = "text/plain; charset=utf-8";

/// Whether an `Accept` header asks for JSON: a media range `application/json`
/// or `application/<anything>+json` whose quality is not 0 and not below that
/// of any `text/plain` or `text/*` range (on a tie the range listed first
/// wins). `*/*` alone, or no header, leaves the default plain text.
pub fn accepts_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    // (quality, position) of the best JSON and the best plain-text range.
    let mut json: Option<(f32, usize)> = None;
    let mut text: Option<(f32, usize)> = None;
    for (position, range) in accept.split(',').enumerate() {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, q)| {
                q.trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| q.is_finite())
                    .unwrap_or(0.0)
            });
        let slot = if media == "application/json"
            || media
                .strip_prefix("application/")
                .is_some_and(|sub| sub.ends_with("+json"))
        {
            &mut json
        } else if media == "text/plain" || media == "text/*" {
            &mut text
        } else {
            continue;
        };
        if slot.is_none_or(|(best, _)| quality > best) {
            *slot = Some((quality, position));
        }
    }
    match (json, text) {
        (Some((q, _)), _) if q <= 0.0 => false,
        (Some(_), None) => true,
        (Some((qj, pj)), Some((qt, pt))) => qj > qt || (qj == qt && pj < pt),
        (None, _) => false,
    }
}

/// An error answer's `(content type, body)`: `message` as plain text, or, when
/// `accept` asks for JSON ([`accepts_json`]), the error object of Google APIs:
/// `{"error":{"code":<HTTP status>,"message":"...","status":"<google.rpc.Code name>"}}`.
///
/// `code` is the gRPC code the same error gets over gRPC; the dev proxy uses
/// `INVALID_ARGUMENT` for 400, `RESOURCE_EXHAUSTED` for 413 (what gRPC
/// answers for a message over the size limit), `NOT_FOUND` for a path no rule
/// matches, `UNIMPLEMENTED` (404) for what it does not serve, `UNKNOWN` (500)
/// for a user function failure and `INTERNAL` (500) for its own failures.
pub fn error_body(
    accept: Option<&str>,
    status: http::StatusCode,
    code: Code,
    message: &str,
) -> (&'static str, Vec<u8>) {
    if !accepts_json(accept) {
        return (TEXT, message.as_bytes().to_vec());
    }
    let body = serde_json::json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "status": code_name(code),
        }
    });
    (super::response::JSON, body.to_string().into_bytes())
}

/// The `google.rpc.Code` enum value name of `code`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
