//! Tools of the reference target that ask the client for something through a client capability,
//! under the official "everything" server's names: `get-roots-list` (roots),
//! `trigger-sampling-request` (sampling) and `trigger-elicitation-request` (elicitation).
//! A 2026-07-28 client is asked with an `InputRequiredResult` and answered on its retry (the
//! answer under `inputResponses`); a 2025 session gets a server-to-client request on the POST's
//! stream. A client that did not declare the capability is never asked: it gets an `isError`
//! result, as a server that respects capabilities answers.

// Server-to-client sampling and roots are deprecated by SEP-2577, but the 2025 revisions this
// target serves still carry them, and the capability matrix exercises them.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock, InputRequest,
        InputRequiredResult, JsonObject, ProtocolVersion, Tool,
    },
    schemars::{self, JsonSchema},
    service::RequestContext,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The key of the one input request each tool makes.
const KEY: &str = "answer";

#[derive(Debug, Default, Deserialize, JsonSchema)]
struct SamplingArgs {
    /// Text of the user message sent for sampling.
    #[serde(default)]
    prompt: Option<String>,
    /// Tokens asked for (default 16).
    #[serde(default, rename = "maxTokens")]
    max_tokens: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
struct NoArgs {}

/// A client capability one of these tools uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    Roots,
    Sampling,
    Elicitation,
}

impl Ask {
    fn of_tool(name: &str) -> Option<Self> {
        match name {
            "get-roots-list" => Some(Self::Roots),
            "trigger-sampling-request" => Some(Self::Sampling),
            "trigger-elicitation-request" => Some(Self::Elicitation),
            _ => None,
        }
    }

    fn capability(self) -> &'static str {
        match self {
            Self::Roots => "roots",
            Self::Sampling => "sampling",
            Self::Elicitation => "elicitation",
        }
    }

    fn declared(self, caps: &ClientCapabilities) -> bool {
        match self {
            Self::Roots => caps.roots.is_some(),
            Self::Sampling => caps.sampling.is_some(),
            Self::Elicitation => caps.elicitation.is_some(),
        }
    }

    /// The request, as JSON `{"method", "params"}`.
    fn request(self, arguments: Option<&JsonObject>) -> Result<Value, McpError> {
        Ok(match self {
            Self::Roots => json!({"method": "roots/list"}),
            Self::Sampling => {
                let args: SamplingArgs = serde_json::from_value(Value::Object(arguments.cloned().unwrap_or_default()))
                    .map_err(|e| McpError::invalid_params(format!("invalid arguments: {e}"), None))?;
                json!({"method": "sampling/createMessage", "params": {
                    "messages": [{"role": "user", "content": {"type": "text",
                        "text": args.prompt.unwrap_or_else(|| "mcp-canary".into())}}],
                    "maxTokens": args.max_tokens.unwrap_or(16),
                }})
            }
            Self::Elicitation => json!({"method": "elicitation/create", "params": {
                "mode": "form",
                "message": "mcp-canary reference target: proceed?",
                "requestedSchema": {"type": "object", "properties": {"proceed": {"type": "boolean"}}},
            }}),
        })
    }
}

/// The three tools, for `tools/list`.
pub(crate) fn tools() -> Vec<Tool> {
    let empty = || Arc::new(JsonObject::new());
    vec![
        Tool::new("get-roots-list", "Asks the client for its roots (roots capability).", empty())
            .with_input_schema::<NoArgs>(),
        Tool::new("trigger-sampling-request", "Asks the client to sample a message (sampling capability).", empty())
            .with_input_schema::<SamplingArgs>(),
        Tool::new("trigger-elicitation-request", "Asks the client a form question (elicitation capability).", empty())
            .with_input_schema::<NoArgs>(),
    ]
}

fn text(t: String) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(t)]).into()
}

fn refuse(t: String) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(t)]).into()
}

/// What the client answered, in a line.
fn describe(ask: Ask, answer: &Value) -> String {
    match ask {
        Ask::Roots => format!("client has {} roots", answer["roots"].as_array().map_or(0, Vec::len)),
        Ask::Sampling => {
            format!("client sampled: {}", answer.pointer("/content/text").and_then(Value::as_str).unwrap_or(""))
        }
        Ask::Elicitation => format!("client answered: {}", answer["action"].as_str().unwrap_or("")),
    }
}

/// Handle `tools/call` of one of these tools; `None` for any other tool.
pub(crate) async fn call(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Option<Result<CallToolResponse, McpError>> {
    let ask = Ask::of_tool(request.name.as_ref())?;
    Some(answer(ask, request, context).await)
}

async fn answer(
    ask: Ask,
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let declared = context.client_capabilities().is_some_and(|c| ask.declared(&c));
    if !declared {
        return Ok(refuse(format!("the client did not declare the {} capability", ask.capability())));
    }
    let wire = ask.request(request.arguments.as_ref())?;
    let stateless = context.protocol_version().is_some_and(|v| v == ProtocolVersion::V_2026_07_28);
    if stateless {
        if let Some(answer) = request.input_responses.as_ref().and_then(|r| r.get(KEY)) {
            return Ok(text(describe(ask, answer)));
        }
        let input: InputRequest = serde_json::from_value(wire)
            .map_err(|e| McpError::internal_error(format!("input request not built: {e}"), None))?;
        let requests = [(KEY.to_string(), input)].into_iter().collect();
        return Ok(InputRequiredResult::from_input_requests(requests).into());
    }
    let params = wire.get("params").cloned().unwrap_or(Value::Null);
    let bad = |e: serde_json::Error| McpError::internal_error(format!("request not built: {e}"), None);
    let answered = match ask {
        Ask::Roots => context.peer.list_roots().await.map(|r| serde_json::to_value(r).unwrap_or_default()),
        Ask::Sampling => context
            .peer
            .create_message(serde_json::from_value(params).map_err(bad)?)
            .await
            .map(|r| serde_json::to_value(r).unwrap_or_default()),
        Ask::Elicitation => context
            .peer
            .create_elicitation(serde_json::from_value(params).map_err(bad)?)
            .await
            .map(|r| serde_json::to_value(r).unwrap_or_default()),
    };
    Ok(match answered {
        Ok(answer) => text(describe(ask, &answer)),
        Err(e) => refuse(format!("{} request failed: {e}", ask.capability())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_valid_input_requests() {
        for ask in [Ask::Roots, Ask::Sampling, Ask::Elicitation] {
            let wire = ask.request(None).unwrap();
            let parsed: InputRequest = serde_json::from_value(wire.clone()).unwrap();
            assert_eq!(serde_json::to_value(parsed).unwrap()["method"], wire["method"], "{ask:?}");
        }
        assert_eq!(Ask::of_tool("trigger-sampling-request"), Some(Ask::Sampling));
        assert_eq!(Ask::of_tool("echo"), None);
        let names: Vec<String> = tools().iter().map(|t| t.name.to_string()).collect();
        assert!(names.iter().all(|n| Ask::of_tool(n).is_some()), "{names:?}");
    }
}
