//! Wire types, method names, header names and protocol versions; pure functions only.

use super::McpError;
use serde_json::{Map, Value, json};

/// The latest, stateless revision.
pub const LATEST_PROTOCOL: &str = "2026-07-28";
/// The session-based revisions, newest first; the first is offered by `initialize`.
pub const SESSION_PROTOCOLS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// HTTP header names.
pub const HEADER_SESSION_ID: &str = "mcp-session-id";
pub const HEADER_PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const HEADER_METHOD: &str = "mcp-method";
pub const HEADER_NAME: &str = "mcp-name";
pub const HEADER_LAST_EVENT_ID: &str = "last-event-id";
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// `Accept` of a client that takes JSON responses only (servers may answer 406).
pub const ACCEPT_JSON: &str = "application/json";

/// `_meta` keys of the stateless revision.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// Opts a 2026-07-28 request into `notifications/message` at or above this level; a server must
/// send none for a request without it (it replaces `logging/setLevel`).
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// The method of log notifications.
pub const LOG_MESSAGE: &str = "notifications/message";

/// JSON-RPC "method not found".
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC "invalid params": among others an unknown tool or bad tool arguments (the spec's
/// answer to a tools/call naming no tool the server has).
pub const INVALID_PARAMS: i64 = -32602;
/// Synthetic code (never sent by a server) for an `InputRequiredResult` the canary cannot satisfy:
/// the client does not answer multi-round-trip input requests (sampling, elicitation, roots).
pub const INPUT_REQUIRED_CODE: i64 = -32099;
/// Synthetic code for a server that does not speak the pinned or any acceptable version.
pub const UNSUPPORTED_VERSION_CODE: i64 = -32098;

/// Method names.
pub mod method {
    pub const DISCOVER: &str = "server/discover";
    pub const INITIALIZE: &str = "initialize";
    pub const INITIALIZED: &str = "notifications/initialized";
    pub const PING: &str = "ping";
    pub const TOOLS_LIST: &str = "tools/list";
    pub const TOOLS_CALL: &str = "tools/call";
    pub const RESOURCES_LIST: &str = "resources/list";
    pub const RESOURCES_READ: &str = "resources/read";
    pub const RESOURCE_TEMPLATES_LIST: &str = "resources/templates/list";
    pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
    pub const PROMPTS_LIST: &str = "prompts/list";
    pub const PROMPTS_GET: &str = "prompts/get";
    pub const COMPLETE: &str = "completion/complete";
    pub const LISTEN: &str = "subscriptions/listen";
    pub const ROOTS_LIST: &str = "roots/list";
}

/// A log level as the specification names them (RFC 5424 severities), least severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub const ALL: [LogLevel; 8] = [
        Self::Debug,
        Self::Info,
        Self::Notice,
        Self::Warning,
        Self::Error,
        Self::Critical,
        Self::Alert,
        Self::Emergency,
    ];

    /// The wire name (`"debug"`, ..., `"emergency"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
            Self::Alert => "alert",
            Self::Emergency => "emergency",
        }
    }

    /// The level to ask for when waiting for notifications of `method`: `Debug` (every log
    /// message the server would send) for `notifications/message`, `None` for any other method.
    pub fn to_receive(method: &str) -> Option<Self> {
        (method == LOG_MESSAGE).then_some(Self::Debug)
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| format!("unknown log level {:?}", snippet(s, 20)))
    }
}

/// Which protocol family carries the operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28: no session, `_meta` on every request.
    Stateless,
    /// 2025-*: `initialize` handshake, optional `Mcp-Session-Id`.
    Session,
}

/// The era a version string belongs to, if it is one this client speaks.
pub fn era_of(version: &str) -> Option<Era> {
    if version == LATEST_PROTOCOL {
        Some(Era::Stateless)
    } else if SESSION_PROTOCOLS.contains(&version) {
        Some(Era::Session)
    } else {
        None
    }
}

/// Accept the version an `initialize` answered with: the offered one when pinned, else any session revision.
pub fn accept_session_version(answered: &str, pinned: Option<&str>) -> Result<String, McpError> {
    let ok = match pinned {
        Some(p) => answered == p,
        None => SESSION_PROTOCOLS.contains(&answered),
    };
    if ok {
        Ok(answered.to_string())
    } else {
        Err(McpError::JsonRpc {
            code: UNSUPPORTED_VERSION_CODE,
            message: format!("server answered unsupported protocol version {:?}", snippet(answered, 40)),
        })
    }
}

/// Whether a `server/discover` result lists the stateless revision.
pub fn discover_lists_latest(result: &Value) -> bool {
    result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .is_some_and(|v| v.iter().any(|s| s.as_str() == Some(LATEST_PROTOCOL)))
}

/// Whether a discover failure means "this server does not speak the stateless revision".
pub fn discover_unsupported(err: &McpError) -> bool {
    matches!(err, McpError::Http { status: 400 | 404 | 405, .. } | McpError::JsonRpc { code: METHOD_NOT_FOUND, .. })
}

/// A JSON-RPC request (or notification, when `id` is `None`).
pub fn request(id: Option<i64>, method: &str, params: Value) -> Value {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), json!("2.0"));
    if let Some(id) = id {
        m.insert("id".into(), json!(id));
    }
    m.insert("method".into(), json!(method));
    if !params.is_null() {
        m.insert("params".into(), params);
    }
    Value::Object(m)
}

/// Who the client is, as the stateless revision's `_meta` keys say on every request.
#[derive(Clone, Copy, Debug)]
pub struct MetaFields<'a> {
    pub capabilities: &'a Value,
    pub client_name: &'a str,
    pub client_version: &'a str,
    /// Adds `io.modelcontextprotocol/logLevel` (log notifications opted into).
    pub log_level: Option<LogLevel>,
}

/// Add the stateless revision's `_meta` keys to `params` (an object, or null).
pub fn with_stateless_meta(params: Value, fields: MetaFields<'_>) -> Value {
    let mut obj = match params {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    let meta = obj.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(META_PROTOCOL_VERSION.into(), json!(LATEST_PROTOCOL));
        meta.insert(META_CLIENT_CAPABILITIES.into(), fields.capabilities.clone());
        meta.insert(META_CLIENT_INFO.into(), json!({"name": fields.client_name, "version": fields.client_version}));
        if let Some(level) = fields.log_level {
            meta.insert(META_LOG_LEVEL.into(), json!(level.as_str()));
        }
    }
    Value::Object(obj)
}

/// A JSON-RPC request serialised straight from its parts. With `meta` (the stateless revision's
/// `_meta` keys, built once per client) the keys are written into `params._meta` during
/// serialisation, so a request neither clones nor rebuilds them; the wire form is the same as
/// `request(id, method, with_stateless_meta(params, ..))`.
pub struct Outgoing<'a> {
    pub id: Option<i64>,
    pub method: &'a str,
    pub params: &'a Value,
    pub meta: Option<&'a Map<String, Value>>,
}

impl serde::Serialize for Outgoing<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("jsonrpc", "2.0")?;
        if let Some(id) = self.id {
            m.serialize_entry("id", &id)?;
        }
        m.serialize_entry("method", self.method)?;
        match self.meta {
            Some(meta) => m.serialize_entry("params", &WithMeta { params: self.params, meta })?,
            None if !self.params.is_null() => m.serialize_entry("params", self.params)?,
            None => {}
        }
        m.end()
    }
}

/// `params` (an object, or null) with `meta`'s keys added to its `_meta`.
struct WithMeta<'a> {
    params: &'a Value,
    meta: &'a Map<String, Value>,
}

impl serde::Serialize for WithMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let empty = Map::new();
        let params = self.params.as_object().unwrap_or(&empty);
        let mut m = s.serialize_map(None)?;
        for (k, v) in params.iter().filter(|(k, _)| *k != "_meta") {
            m.serialize_entry(k, v)?;
        }
        match params.get("_meta").and_then(Value::as_object) {
            Some(own) => {
                let mut merged = own.clone();
                merged.extend(self.meta.iter().map(|(k, v)| (k.clone(), v.clone())));
                m.serialize_entry("_meta", &merged)?;
            }
            None => m.serialize_entry("_meta", self.meta)?,
        }
        m.end()
    }
}

/// `meta` (a request's own `_meta` keys, if any) with the W3C trace context added under the
/// unprefixed keys SEP-414 reserves for it.
pub fn with_trace(
    meta: Option<&Map<String, Value>>,
    traceparent: &str,
    tracestate: Option<&str>,
) -> Map<String, Value> {
    let mut out = meta.cloned().unwrap_or_default();
    out.insert(META_TRACEPARENT.into(), Value::String(traceparent.into()));
    if let Some(state) = tracestate.filter(|s| !s.is_empty()) {
        out.insert(META_TRACESTATE.into(), Value::String(state.into()));
    }
    out
}

/// `_meta` key of the W3C `traceparent` (SEP-414: unprefixed).
pub const META_TRACEPARENT: &str = "traceparent";
/// `_meta` key of the W3C `tracestate` (SEP-414: unprefixed).
pub const META_TRACESTATE: &str = "tracestate";

/// The stateless revision's `_meta` keys for a client.
pub fn stateless_meta(fields: MetaFields<'_>) -> Map<String, Value> {
    match with_stateless_meta(Value::Null, fields) {
        Value::Object(mut o) => match o.remove("_meta") {
            Some(Value::Object(meta)) => meta,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

/// `initialize` params offering `version` and declaring `capabilities`.
pub fn initialize_params(version: &str, capabilities: &Value, client_name: &str, client_version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "clientInfo": {"name": client_name, "version": client_version},
    })
}

/// The `Mcp-Name` header value for the methods that carry one.
pub fn mcp_name(method: &str, params: &Value) -> Option<String> {
    let key = match method {
        method::TOOLS_CALL | method::PROMPTS_GET => "name",
        method::RESOURCES_READ => "uri",
        _ => return None,
    };
    params.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A message the server sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// A response; `id` is kept raw (servers send numbers, strings or null).
    Response {
        id: Value,
        outcome: Result<Value, (i64, String)>,
    },
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
}

/// Classify a JSON value as a JSON-RPC message.
pub fn parse_message(v: Value) -> Result<Incoming, McpError> {
    let Value::Object(mut o) = v else {
        return Err(McpError::InvalidJson("not a JSON-RPC object".into()));
    };
    let method = o.get("method").and_then(Value::as_str).map(str::to_string);
    let params = o.remove("params").unwrap_or(Value::Null);
    match (method, o.remove("id")) {
        (Some(method), Some(id)) if !id.is_null() => Ok(Incoming::Request { id, method, params }),
        (Some(method), _) => Ok(Incoming::Notification { method, params }),
        (None, id) => {
            let id = id.unwrap_or(Value::Null);
            if let Some(result) = o.remove("result") {
                Ok(Incoming::Response { id, outcome: Ok(result) })
            } else if let Some(err) = o.remove("error") {
                let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
                let message = err.get("message").and_then(Value::as_str).unwrap_or("");
                Ok(Incoming::Response { id, outcome: Err((code, snippet(message, 200))) })
            } else {
                Err(McpError::InvalidJson("JSON-RPC message without method, result or error".into()))
            }
        }
    }
}

/// Estimated parsed size (`listing::parsed_size`: the text plus `VALUE_NODE_BYTES` a JSON value)
/// a message part may have to be read whole into a `serde_json::Value` (a call's, read's or
/// get's result, an id, an error, a notification's params). A denser one fails as
/// `body_too_large` (`McpError::Oversized`) however short its text: 4 MiB of `[0,0,...]` would
/// take over 64 MiB. List pages are never read whole (`listing`).
pub const MAX_PARSED_BYTES: usize = 8 * 1024 * 1024;
/// Texts up to this length are parsed without estimating first: none can cost more than 32
/// bytes a byte parsed, so they stay under `MAX_PARSED_BYTES`.
const PARSE_WITHOUT_ESTIMATE: usize = MAX_PARSED_BYTES / 32;

fn invalid_json(e: serde_json::Error, text: &str) -> McpError {
    McpError::InvalidJson(format!("{e}: {}", snippet(prefix(text, 400), 80)))
}

/// Parse JSON text into a `Value`, refusing text whose parsed form would exceed
/// `MAX_PARSED_BYTES`.
pub fn parse_value(text: &str) -> Result<Value, McpError> {
    if text.len() > PARSE_WITHOUT_ESTIMATE {
        let size = super::listing::parsed_size(text).map_err(|e| invalid_json(e, text))?;
        if size > MAX_PARSED_BYTES {
            return Err(McpError::Oversized(format!(
                "a JSON value of {} bytes would take about {} MiB parsed, over the {} MiB bound",
                text.len(),
                size >> 20,
                MAX_PARSED_BYTES >> 20
            )));
        }
    }
    serde_json::from_str(text).map_err(|e| invalid_json(e, text))
}

/// A response's result, still as JSON text (a part of the message it came in, not a copy).
#[derive(Clone, Debug)]
pub struct RawResult {
    text: String,
    range: std::ops::Range<usize>,
}

impl RawResult {
    /// The result's JSON text.
    pub fn get(&self) -> &str {
        &self.text[self.range.clone()]
    }

    /// The result parsed (`parse_value`: bounded).
    pub fn value(&self) -> Result<Value, McpError> {
        parse_value(self.get())
    }
}

/// A message the server sent, its result (if a response) left as text.
#[derive(Debug)]
pub enum RawIncoming {
    Response { id: Value, outcome: Result<RawResult, (i64, String)> },
    Request { id: Value, method: String, params: Value },
    Notification { method: String, params: Value },
}

/// The top-level members of a JSON-RPC message, as text.
#[derive(Default)]
struct Envelope<'a> {
    id: Option<&'a serde_json::value::RawValue>,
    method: Option<&'a serde_json::value::RawValue>,
    params: Option<&'a serde_json::value::RawValue>,
    result: Option<&'a serde_json::value::RawValue>,
    error: Option<&'a serde_json::value::RawValue>,
}

impl<'de> serde::Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON-RPC object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
                let mut e = Envelope::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "id" => &mut e.id,
                        "method" => &mut e.method,
                        "params" => &mut e.params,
                        "result" => &mut e.result,
                        "error" => &mut e.error,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(e)
            }
        }
        d.deserialize_map(V)
    }
}

/// Classify a JSON-RPC message from its text (the whole body or SSE data, which it takes): as
/// `parse_message`, but the result of a response stays text, and every other part is parsed
/// bounded (`parse_value`).
pub fn parse_raw(text: String) -> Result<RawIncoming, McpError> {
    let e: Envelope = serde_json::from_str(&text).map_err(|e| invalid_json(e, &text))?;
    let part = |raw: Option<&serde_json::value::RawValue>| raw.map_or(Ok(Value::Null), |r| parse_value(r.get()));
    let method = e.method.and_then(|m| serde_json::from_str::<String>(m.get()).ok());
    match (method, e.id) {
        (Some(method), Some(id)) if id.get() != "null" => {
            Ok(RawIncoming::Request { id: parse_value(id.get())?, method, params: part(e.params)? })
        }
        (Some(method), _) => Ok(RawIncoming::Notification { method, params: part(e.params)? }),
        (None, id) => {
            let id = part(id)?;
            if let Some(result) = e.result {
                let start = result.get().as_ptr() as usize - text.as_ptr() as usize;
                let range = start..start + result.get().len();
                Ok(RawIncoming::Response { id, outcome: Ok(RawResult { text, range }) })
            } else if let Some(err) = e.error {
                let err = parse_value(err.get())?;
                let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
                let message = err.get("message").and_then(Value::as_str).unwrap_or("");
                Ok(RawIncoming::Response { id, outcome: Err((code, snippet(message, 200))) })
            } else {
                Err(McpError::InvalidJson("JSON-RPC message without method, result or error".into()))
            }
        }
    }
}

/// Whether a response id is ours (servers may echo numbers as strings).
pub fn id_matches(id: &Value, ours: i64) -> bool {
    id.as_i64() == Some(ours) || id.as_str().and_then(|s| s.parse::<i64>().ok()) == Some(ours)
}

/// The tool a probe may call when none is configured (the canary script, `check`, the capability
/// matrix): the first listed tool annotated `readOnlyHint: true` whose input schema requires no
/// argument, called with `{}`. Production safety first: a tool without that annotation may have
/// side effects and is never picked; configure one to call it.
pub fn read_only_tool(tools: &[Value]) -> Option<&str> {
    tools.iter().find_map(read_only_name)
}

/// `tool`'s name when it is one [`read_only_tool`] picks.
pub fn read_only_name(tool: &Value) -> Option<&str> {
    let read_only = tool.pointer("/annotations/readOnlyHint").and_then(Value::as_bool) == Some(true);
    let required = tool.pointer("/inputSchema/required").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
    if read_only && !required { tool.get("name").and_then(Value::as_str) } else { None }
}

/// Turn a response outcome into a result. An `InputRequiredResult` is a result here: the client
/// answers it ([`input_required`], [`answer_input_requests`]) or turns it into an error
/// ([`input_required_error`]).
pub fn into_result(outcome: Result<Value, (i64, String)>) -> Result<Value, McpError> {
    outcome.map_err(|(code, message)| McpError::JsonRpc { code, message })
}

/// Bound on the rounds of one request answering `InputRequiredResult`s (the server asks, the
/// client re-sends with the answers); a server still asking after these is an error.
pub const MAX_INPUT_ROUNDS: usize = 4;

/// Server-to-client requests (`ping`, `roots/list`, `sampling/createMessage`, ...) answered
/// during one client request: on its POST's SSE stream (resumptions included), or in one
/// `InputRequiredResult`. Each answer on a stream is a POST of its own, so without a bound a
/// server could make every probe request send thousands. One more fails the request as
/// `error_type="protocol"`: nothing more is answered and the stream is dropped.
pub const MAX_SERVER_REQUESTS_PER_REQUEST: usize = 32;

/// What an `InputRequiredResult` (2026-07-28) asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct InputRequired {
    /// Server-assigned key to request (`{"method": ..., "params": ...}`).
    pub requests: Map<String, Value>,
    /// Opaque state to echo verbatim on the retry.
    pub request_state: Option<Value>,
}

/// The input requests of `result` when it is an `InputRequiredResult`; `None` when complete.
pub fn input_required(result: &Value) -> Option<InputRequired> {
    if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
        return None;
    }
    Some(InputRequired {
        requests: result.get("inputRequests").and_then(Value::as_object).cloned().unwrap_or_default(),
        request_state: result.get("requestState").cloned(),
    })
}

/// The client capability (`roots`, `sampling`, `elicitation`) an input request needs.
pub fn input_capability(method: &str) -> Option<&'static str> {
    match method {
        method::ROOTS_LIST => Some("roots"),
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        _ => None,
    }
}

/// The error a request ends with when its input requests cannot be answered.
pub fn input_required_error(why: impl std::fmt::Display) -> McpError {
    McpError::JsonRpc { code: INPUT_REQUIRED_CODE, message: format!("server returned input_required: {why}") }
}

/// Answer every input request with `answer` (the session's server-request policy, which sees
/// every request), provided the session declared the capability it needs (`declared` is the
/// client capabilities object). An undeclared capability, an unknown method or a refused answer
/// makes the whole request an error: a server must not ask for what the client did not declare.
pub fn answer_input_requests(
    input: &InputRequired,
    declared: &Value,
    answer: impl Fn(&str, &Value) -> Result<Value, (i64, String)>,
) -> Result<Map<String, Value>, McpError> {
    if input.requests.is_empty() && input.request_state.is_none() {
        return Err(input_required_error("neither inputRequests nor requestState"));
    }
    if input.requests.len() > MAX_SERVER_REQUESTS_PER_REQUEST {
        return Err(McpError::Protocol(format!(
            "{} input requests in one result, over {MAX_SERVER_REQUESTS_PER_REQUEST}",
            input.requests.len()
        )));
    }
    let mut responses = Map::new();
    for (key, request) in &input.requests {
        let method = request.get("method").and_then(Value::as_str).unwrap_or_default();
        let params = request.get("params").cloned().unwrap_or(Value::Null);
        let outcome = answer(method, &params);
        let capability = input_capability(method)
            .ok_or_else(|| input_required_error(format!("unsupported input request {:?}", snippet(method, 60))))?;
        if declared.get(capability).is_none_or(Value::is_null) {
            return Err(input_required_error(format!("{method} although the client did not declare {capability}")));
        }
        let result = outcome.map_err(|(_, message)| {
            input_required_error(format!("{method} not answered: {}", snippet(&message, 100)))
        })?;
        responses.insert(key.clone(), result);
    }
    Ok(responses)
}

/// `params` of the retried request: the original ones with `inputResponses` and the echoed
/// `requestState`.
pub fn with_input_responses(params: &Value, responses: Map<String, Value>, state: Option<Value>) -> Value {
    let mut out = match params {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    out.insert("inputResponses".into(), Value::Object(responses));
    match state {
        Some(state) => out.insert("requestState".into(), state),
        None => out.remove("requestState"),
    };
    Value::Object(out)
}

/// The default policy for server-to-client requests: ping and roots/list succeed, everything
/// else is -32601.
pub fn default_server_answer(method: &str, _params: &Value) -> Result<Value, (i64, String)> {
    match method {
        method::PING => Ok(json!({})),
        method::ROOTS_LIST => Ok(json!({"roots": []})),
        _ => Err((METHOD_NOT_FOUND, "Method not found".into())),
    }
}

/// The JSON-RPC response to a server-to-client request.
pub fn answer_server_request(id: &Value, outcome: Result<Value, (i64, String)>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
    }
}

/// At most `max_bytes` of `s`, cut on a character boundary.
pub fn prefix(s: &str, max_bytes: usize) -> &str {
    let mut end = s.len().min(max_bytes);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// At most `max` characters of `s` and `…` when cut, for error messages (control characters as
/// in [`printable`]).
pub fn snippet(s: &str, max: usize) -> String {
    printable(s.trim(), max.saturating_add(1))
}

/// Text a server sent, fit for a terminal, a log or a label: at most `max` characters (the last
/// one `…` when cut, on a character boundary), every control character (C0, DEL, C1: so also the
/// ESC of an ANSI sequence) as `?`.
pub fn printable(s: &str, max: usize) -> String {
    let clean = |c: char| if c.is_control() { '?' } else { c };
    match s.char_indices().nth(max) {
        None => s.chars().map(clean).collect(),
        Some(_) => s.chars().take(max.saturating_sub(1)).map(clean).chain(std::iter::once('…')).collect(),
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_json_is_quoted_up_to_a_character_boundary() {
        // Found by fuzzing (props.rs): a 4-byte character across byte 400 of a bad message.
        let text = format!("[{}\u{af715}", "x".repeat(397));
        assert!(matches!(parse_raw(text), Err(McpError::InvalidJson(_))));
    }

    #[test]
    fn eras() {
        assert_eq!(era_of("2026-07-28"), Some(Era::Stateless));
        assert_eq!(era_of("2025-06-18"), Some(Era::Session));
        assert_eq!(era_of("2024-11-05"), None);
    }

    #[test]
    fn session_version_negotiation() {
        assert_eq!(accept_session_version("2025-06-18", None).unwrap(), "2025-06-18");
        assert!(accept_session_version("2024-11-05", None).is_err());
        assert!(accept_session_version("2025-06-18", Some("2025-11-25")).is_err());
        assert_eq!(accept_session_version("2025-03-26", Some("2025-03-26")).unwrap(), "2025-03-26");
    }

    #[test]
    fn discover_support() {
        assert!(discover_lists_latest(&json!({"supportedVersions": ["2025-11-25", "2026-07-28"]})));
        assert!(!discover_lists_latest(&json!({"supportedVersions": ["2025-11-25"]})));
        assert!(!discover_lists_latest(&json!({})));
        assert!(discover_unsupported(&McpError::Http { status: 405, snippet: String::new(), rpc_code: None }));
        assert!(discover_unsupported(&McpError::JsonRpc { code: -32601, message: String::new() }));
        assert!(!discover_unsupported(&McpError::Http { status: 500, snippet: String::new(), rpc_code: None }));
    }

    fn fields(capabilities: &Value, log_level: Option<LogLevel>) -> MetaFields<'_> {
        MetaFields { capabilities, client_name: "c", client_version: "1", log_level }
    }

    #[test]
    fn trace_context_joins_the_request_meta_unprefixed() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let caps = json!({});
        let own = stateless_meta(fields(&caps, None));
        let meta = with_trace(Some(&own), tp, Some("rojo=1"));
        let params = json!({"name": "echo", "_meta": {"progressToken": "t"}});
        let sent =
            serde_json::to_value(Outgoing { id: Some(3), method: "tools/call", params: &params, meta: Some(&meta) })
                .unwrap();
        assert_eq!(sent["params"]["_meta"][META_TRACEPARENT], tp);
        assert_eq!(sent["params"]["_meta"][META_TRACESTATE], "rojo=1");
        assert_eq!(sent["params"]["_meta"]["progressToken"], "t", "the request's own _meta is kept");
        assert_eq!(sent["params"]["_meta"][META_PROTOCOL_VERSION], "2026-07-28", "the era's keys are kept");
        assert_eq!(sent["params"]["name"], "echo");
        // A notification without params gets a _meta of its own; an empty tracestate is left out.
        let meta = with_trace(None, tp, Some(""));
        let sent = serde_json::to_value(Outgoing {
            id: None,
            method: "notifications/initialized",
            params: &Value::Null,
            meta: Some(&meta),
        })
        .unwrap();
        assert_eq!(sent["params"]["_meta"], json!({"traceparent": tp}));
        // Without a context nothing is added.
        let sent =
            serde_json::to_value(Outgoing { id: Some(1), method: "ping", params: &json!({}), meta: None }).unwrap();
        assert!(sent["params"].get("_meta").is_none(), "{sent}");
    }

    #[test]
    fn meta_is_added_and_kept() {
        let empty = json!({});
        let p = with_stateless_meta(json!({"name": "echo", "_meta": {"progressToken": "t"}}), fields(&empty, None));
        // The serialised form writes the same keys without building them per request.
        let caps = json!({"roots": {}});
        for level in [None, Some(LogLevel::Warning)] {
            let meta = stateless_meta(fields(&caps, level));
            for params in [json!({"name": "echo", "_meta": {"progressToken": "t"}}), json!({"uri": "u"}), Value::Null] {
                let built = request(Some(7), "tools/call", with_stateless_meta(params.clone(), fields(&caps, level)));
                let out = Outgoing { id: Some(7), method: "tools/call", params: &params, meta: Some(&meta) };
                assert_eq!(serde_json::to_value(&out).unwrap(), built);
            }
        }
        let plain = Outgoing { id: None, method: "x", params: &Value::Null, meta: None };
        assert_eq!(serde_json::to_value(&plain).unwrap(), request(None, "x", Value::Null));
        assert_eq!(p["_meta"][META_PROTOCOL_VERSION], "2026-07-28");
        assert_eq!(p["_meta"]["progressToken"], "t");
        assert_eq!(p["_meta"][META_CLIENT_INFO]["name"], "c");
        assert!(p["_meta"].get(META_LOG_LEVEL).is_none(), "no opt-in unless asked: {p}");
        assert_eq!(with_stateless_meta(Value::Null, fields(&caps, None))["_meta"][META_CLIENT_CAPABILITIES], caps);
        let opted = with_stateless_meta(Value::Null, fields(&caps, Some(LogLevel::Notice)));
        assert_eq!(opted["_meta"][META_LOG_LEVEL], "notice");
        assert_eq!(initialize_params("2025-06-18", &caps, "c", "1")["capabilities"], caps);
    }

    #[test]
    fn log_levels_by_name_and_severity() {
        for level in LogLevel::ALL {
            assert_eq!(level.as_str().parse::<LogLevel>(), Ok(level));
        }
        assert!(LogLevel::Debug < LogLevel::Info && LogLevel::Alert < LogLevel::Emergency);
        assert!("loud".parse::<LogLevel>().is_err());
        assert_eq!(LogLevel::to_receive("notifications/message"), Some(LogLevel::Debug));
        assert_eq!(LogLevel::to_receive("notifications/resources/updated"), None);
    }

    #[test]
    fn message_kinds() {
        let r = parse_message(json!({"jsonrpc": "2.0", "id": 3, "result": {"a": 1}})).unwrap();
        assert!(matches!(r, Incoming::Response { ref id, outcome: Ok(_) } if id_matches(id, 3)));
        let e = parse_message(json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": "x"}}));
        assert!(matches!(e.unwrap(), Incoming::Response { outcome: Err((-32000, _)), .. }));
        let q = parse_message(json!({"jsonrpc": "2.0", "id": "s1", "method": "ping"})).unwrap();
        assert!(matches!(q, Incoming::Request { .. }));
        let n = parse_message(json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}})).unwrap();
        assert!(matches!(n, Incoming::Notification { .. }));
        assert!(parse_message(json!([1, 2])).is_err());
        assert!(parse_message(json!({"jsonrpc": "2.0", "id": 1})).is_err());
        assert!(id_matches(&json!("7"), 7));
    }

    #[test]
    fn input_required_is_recognised_complete_is_not() {
        let r = json!({"resultType": "input_required", "inputRequests": {"k": {"method": "roots/list"}},
            "requestState": "s1"});
        let input = input_required(&r).unwrap();
        assert_eq!((input.requests.len(), input.request_state), (1, Some(json!("s1"))));
        assert!(input_required(&json!({"resultType": "complete", "tools": []})).is_none());
        assert!(input_required(&json!({"tools": []})).is_none());
        assert!(into_result(Ok(r)).is_ok());
        assert_eq!(into_result(Err((-32000, "x".into()))).unwrap_err().rpc_code(), Some(-32000));
    }

    #[test]
    fn input_requests_are_answered_only_under_declared_capabilities() {
        let input = input_required(&json!({"resultType": "input_required", "inputRequests": {
            "s": {"method": "sampling/createMessage", "params": {"maxTokens": 8}},
            "r": {"method": "roots/list"},
        }, "requestState": {"opaque": [1]}}))
        .unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let answer = |m: &str, p: &Value| {
            seen.lock().unwrap().push(m.to_string());
            match m {
                "sampling/createMessage" => Ok(json!({"model": "m", "maxTokens": p["maxTokens"]})),
                _ => Ok(json!({"roots": []})),
            }
        };
        let both = json!({"sampling": {}, "roots": {}});
        let responses = answer_input_requests(&input, &both, answer).unwrap();
        assert_eq!(Value::Object(responses.clone()), json!({"s": {"model": "m", "maxTokens": 8}, "r": {"roots": []}}));
        // The retry keeps the arguments, adds the answers and echoes the state verbatim.
        let retry =
            with_input_responses(&json!({"name": "t", "arguments": {"a": 1}}), responses, input.request_state.clone());
        assert_eq!(retry["arguments"], json!({"a": 1}));
        assert_eq!(retry["inputResponses"]["r"], json!({"roots": []}));
        assert_eq!(retry["requestState"], json!({"opaque": [1]}));
        let again = with_input_responses(&retry, Map::new(), None);
        assert!(again.get("requestState").is_none(), "no stale state on a later round");

        // Undeclared: an error, classified as before; the policy still saw the request.
        seen.lock().unwrap().clear();
        let e = answer_input_requests(&input, &json!({"roots": {}}), answer).unwrap_err();
        assert_eq!(e.rpc_code(), Some(INPUT_REQUIRED_CODE));
        assert!(e.to_string().contains("did not declare sampling"), "{e}");
        assert_eq!(seen.lock().unwrap().as_slice(), ["roots/list", "sampling/createMessage"]);
        // A refusal by the policy, an unknown method, nothing asked at all.
        let refused = |_: &str, _: &Value| Err((METHOD_NOT_FOUND, "Method not found".into()));
        assert!(answer_input_requests(&input, &both, refused).unwrap_err().to_string().contains("not answered"));
        let ping = input_required(&json!({"resultType": "input_required", "inputRequests": {"p": {"method": "ping"}}}));
        let e = answer_input_requests(&ping.unwrap(), &both, answer).unwrap_err();
        assert!(e.to_string().contains("unsupported input request"), "{e}");
        let empty = input_required(&json!({"resultType": "input_required"})).unwrap();
        assert!(answer_input_requests(&empty, &both, answer).is_err());
    }

    #[test]
    fn a_flood_of_input_requests_is_a_protocol_error_and_none_is_answered() {
        let many = |n: usize| {
            let requests: Map<String, Value> =
                (0..n).map(|i| (format!("r{i}"), json!({"method": "roots/list"}))).collect();
            input_required(&json!({"resultType": "input_required", "inputRequests": requests})).unwrap()
        };
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let answer = |_: &str, _: &Value| {
            asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(json!({"roots": []}))
        };
        let roots = json!({"roots": {}});
        let cap = MAX_SERVER_REQUESTS_PER_REQUEST;
        assert_eq!(answer_input_requests(&many(cap), &roots, answer).unwrap().len(), cap);
        asked.store(0, std::sync::atomic::Ordering::Relaxed);
        let e = answer_input_requests(&many(2_000), &roots, answer).unwrap_err();
        assert_eq!(e.error_type(), crate::mcp::ErrorType::Protocol, "{e}");
        assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    fn names_and_answers() {
        assert_eq!(mcp_name("tools/call", &json!({"name": "echo"})).as_deref(), Some("echo"));
        assert_eq!(mcp_name("resources/read", &json!({"uri": "a://b"})).as_deref(), Some("a://b"));
        assert_eq!(mcp_name("tools/list", &json!({})), None);
        let answer = |m: &str| answer_server_request(&json!(1), default_server_answer(m, &Value::Null));
        assert_eq!(answer("sampling/createMessage")["error"]["code"], -32601);
        assert_eq!(answer("roots/list")["result"]["roots"], json!([]));
        assert_eq!(snippet(&"x".repeat(500), 200).chars().count(), 201);
    }

    #[test]
    fn only_read_only_tools_without_required_arguments_are_picked() {
        let tools = vec![
            json!({"name": "delete-all", "inputSchema": {"type": "object"}}),
            json!({"name": "lookup", "annotations": {"readOnlyHint": true},
                   "inputSchema": {"type": "object", "required": ["id"]}}),
            json!({"name": "writer", "annotations": {"readOnlyHint": false}, "inputSchema": {"type": "object"}}),
            json!({"name": "status", "annotations": {"readOnlyHint": true}, "inputSchema": {"type": "object"}}),
        ];
        assert_eq!(read_only_tool(&tools), Some("status"));
        assert_eq!(read_only_tool(&tools[..3]), None, "no annotated tool without arguments: no call");
        assert_eq!(read_only_tool(&[]), None);
    }

    #[test]
    fn dense_json_is_refused_before_it_is_parsed() {
        // 4 MiB of zeros would be 2 million Values (over 64 MiB): refused by its estimate.
        let dense = format!("[{}0]", "0,".repeat(2 * 1024 * 1024 - 1));
        let e = parse_value(&dense).unwrap_err();
        assert_eq!(e.error_type(), crate::mcp::ErrorType::BodyTooLarge);
        assert!(e.to_string().contains("over the 8 MiB bound"), "{e}");
        // As long a text of one string is cheap to parse: accepted.
        let text = format!("\"{}\"", "x".repeat(4 * 1024 * 1024));
        assert_eq!(parse_value(&text).unwrap().as_str().map(str::len), Some(4 * 1024 * 1024));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse_value(&deep).unwrap_err().error_type(), crate::mcp::ErrorType::InvalidJson);
    }

    #[test]
    fn raw_messages_keep_the_result_as_text() {
        let text = r#"{"jsonrpc":"2.0","id":3,"result":{"tools": [ ]},"extra":[1]}"#.to_string();
        let RawIncoming::Response { id, outcome: Ok(result) } = parse_raw(text).unwrap() else { panic!() };
        assert!(id_matches(&id, 3));
        assert_eq!(result.get(), r#"{"tools": [ ]}"#);
        assert_eq!(result.value().unwrap(), json!({"tools": []}));
        let null = parse_raw(r#"{"id":"4","result":null}"#.into()).unwrap();
        assert!(matches!(null, RawIncoming::Response { outcome: Ok(ref r), .. } if r.get() == "null"));
        let err = parse_raw(r#"{"id":null,"error":{"code":-32000,"message":"no"}}"#.into()).unwrap();
        assert!(matches!(err, RawIncoming::Response { outcome: Err((-32000, ref m)), .. } if m == "no"));
        let q = parse_raw(r#"{"id":7,"method":"roots/list","params":{}}"#.into()).unwrap();
        assert!(matches!(q, RawIncoming::Request { ref method, .. } if method == "roots/list"));
        let n = parse_raw(r#"{"method":"notifications/x","id":null}"#.into()).unwrap();
        assert!(matches!(n, RawIncoming::Notification { params: Value::Null, .. }));
        for bad in ["[1]", "{\"id\":1}", "{\"id\":1,\"result\":", "\"x\""] {
            assert_eq!(parse_raw(bad.into()).unwrap_err().error_type(), crate::mcp::ErrorType::InvalidJson, "{bad}");
        }
    }
}
