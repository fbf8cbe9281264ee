//! The closed set of error classes every failed MCP operation maps to.

/// Closed set of failure classes; the value of the `error_type` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorType {
    /// TCP connect refused or DNS failure.
    Connect,
    /// No complete answer within the request timeout.
    Timeout,
    /// TLS handshake or certificate failure.
    Tls,
    /// Connection reset or closed mid-exchange.
    Reset,
    /// HTTP 401 or 403.
    Auth,
    /// Any other HTTP 4xx.
    Http4xx,
    /// HTTP 5xx.
    Http5xx,
    /// A redirect that is not followed: to another origin, a loop, a chain over the limit, or
    /// any 3xx on a path that never follows one.
    Redirect,
    /// A Content-Type that is neither JSON nor SSE where a body was expected.
    ContentType,
    /// A body that is not valid JSON or not a JSON-RPC message.
    InvalidJson,
    /// An SSE stream that ended before the response or was malformed.
    InvalidSse,
    /// A response body over the configured size cap, a listing over its byte budget
    /// (`MAX_LISTING_BYTES`), or a response too dense to parse within `MAX_PARSED_BYTES`.
    BodyTooLarge,
    /// A JSON-RPC error response.
    JsonrpcError,
    /// A tools/call result with `isError: true`.
    ToolError,
    /// The server no longer knows the session (404, or 400 from some servers).
    SessionExpired,
    /// The operation was cancelled (shutdown or abandoned).
    Cancelled,
    /// The server broke a rule of the MCP transport that no other class covers: an
    /// `Mcp-Session-Id` that is not 1 to `MAX_SESSION_ID_BYTES` visible ASCII characters, or
    /// more server-to-client requests during one request than `MAX_SERVER_REQUESTS_PER_REQUEST`
    /// (or input requests in one `InputRequiredResult`).
    Protocol,
}

impl ErrorType {
    /// Every variant, in label order; used to pre-register series and in docs.
    pub const ALL: [ErrorType; 17] = [
        ErrorType::Connect,
        ErrorType::Timeout,
        ErrorType::Tls,
        ErrorType::Reset,
        ErrorType::Auth,
        ErrorType::Http4xx,
        ErrorType::Http5xx,
        ErrorType::Redirect,
        ErrorType::ContentType,
        ErrorType::InvalidJson,
        ErrorType::InvalidSse,
        ErrorType::BodyTooLarge,
        ErrorType::JsonrpcError,
        ErrorType::ToolError,
        ErrorType::SessionExpired,
        ErrorType::Cancelled,
        ErrorType::Protocol,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Connect => "connect",
            ErrorType::Timeout => "timeout",
            ErrorType::Tls => "tls",
            ErrorType::Reset => "reset",
            ErrorType::Auth => "auth",
            ErrorType::Http4xx => "http_4xx",
            ErrorType::Http5xx => "http_5xx",
            ErrorType::Redirect => "redirect",
            ErrorType::ContentType => "content_type",
            ErrorType::InvalidJson => "invalid_json",
            ErrorType::InvalidSse => "invalid_sse",
            ErrorType::BodyTooLarge => "body_too_large",
            ErrorType::JsonrpcError => "jsonrpc_error",
            ErrorType::ToolError => "tool_error",
            ErrorType::SessionExpired => "session_expired",
            ErrorType::Cancelled => "cancelled",
            ErrorType::Protocol => "protocol",
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed MCP operation, classified.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    #[error("connect failed: {0}")]
    Connect(String),
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("TLS failure: {0}")]
    Tls(String),
    #[error("connection reset: {0}")]
    Reset(String),
    /// An HTTP error status; `rpc_code` is the code of a JSON-RPC error object in its body (only
    /// over OTLP: the class stays the status's).
    #[error("HTTP {status}: {snippet}")]
    Http { status: u16, snippet: String, rpc_code: Option<i64> },
    /// A redirect not followed, with its status when known (the reason never holds a URL: it
    /// may carry a token).
    #[error("redirect not followed: {reason}")]
    Redirect { status: Option<u16>, reason: String },
    #[error("unexpected content type {0:?}")]
    ContentType(String),
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("invalid SSE: {0}")]
    InvalidSse(String),
    #[error("response body over {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// A response or listing over another size bound: a listing over its byte budget, a
    /// response whose parsed form would exceed the parse bound (classified `body_too_large`).
    #[error("{0}")]
    Oversized(String),
    #[error("JSON-RPC error {code}: {message}")]
    JsonRpc { code: i64, message: String },
    #[error("tool returned isError: {0}")]
    Tool(String),
    #[error("session expired (HTTP {status})")]
    SessionExpired { status: u16 },
    #[error("cancelled")]
    Cancelled,
    /// No access token could be had (discovery, token endpoint, a token for another server);
    /// the reason is bounded and printable and never holds a secret.
    #[error("authorization failed: {0}")]
    Auth(String),
    /// A transport rule broken (see [`ErrorType::Protocol`]); the reason holds no server text
    /// beyond a bounded, printable snippet.
    #[error("protocol violation: {0}")]
    Protocol(String),
}

impl McpError {
    /// The class this error is counted under.
    pub fn error_type(&self) -> ErrorType {
        match self {
            McpError::Connect(_) => ErrorType::Connect,
            McpError::Timeout(_) => ErrorType::Timeout,
            McpError::Tls(_) => ErrorType::Tls,
            McpError::Reset(_) => ErrorType::Reset,
            McpError::Http { status, .. } if *status == 401 || *status == 403 => ErrorType::Auth,
            McpError::Auth(_) => ErrorType::Auth,
            McpError::Http { status, .. } if *status >= 500 => ErrorType::Http5xx,
            McpError::Http { .. } => ErrorType::Http4xx,
            McpError::Redirect { .. } => ErrorType::Redirect,
            McpError::ContentType(_) => ErrorType::ContentType,
            McpError::InvalidJson(_) => ErrorType::InvalidJson,
            McpError::InvalidSse(_) => ErrorType::InvalidSse,
            McpError::BodyTooLarge { .. } | McpError::Oversized(_) => ErrorType::BodyTooLarge,
            McpError::JsonRpc { .. } => ErrorType::JsonrpcError,
            McpError::Tool(_) => ErrorType::ToolError,
            McpError::SessionExpired { .. } => ErrorType::SessionExpired,
            McpError::Cancelled => ErrorType::Cancelled,
            McpError::Protocol(_) => ErrorType::Protocol,
        }
    }

    /// The JSON-RPC error code, when the server sent one: a JSON-RPC error, or one in the body
    /// of an HTTP error status.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            McpError::JsonRpc { code, .. } => Some(*code),
            McpError::Http { rpc_code, .. } => *rpc_code,
            _ => None,
        }
    }

    /// The HTTP status, when the failure was an HTTP status.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            McpError::Http { status, .. } | McpError::SessionExpired { status } => Some(*status),
            McpError::Redirect { status, .. } => *status,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for t in ErrorType::ALL {
            let s = t.as_str();
            assert!(seen.insert(s), "duplicate label {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
    }

    #[test]
    fn http_status_classes() {
        let e = |status| McpError::Http { status, snippet: String::new(), rpc_code: Some(-32602) };
        assert_eq!(e(401).error_type(), ErrorType::Auth);
        assert_eq!(e(403).error_type(), ErrorType::Auth);
        assert_eq!(e(429).error_type(), ErrorType::Http4xx);
        assert_eq!(e(502).error_type(), ErrorType::Http5xx);
        assert_eq!(McpError::Redirect { status: Some(307), reason: String::new() }.error_type().as_str(), "redirect");
    }
}
