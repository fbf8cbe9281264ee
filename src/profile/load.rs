//! The load profile (mixed workload): presets, the weighted operation mix and its workload.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::engine::Workload;
use super::stats::RequestResult;
use crate::mcp::McpClient;

/// What one mix entry does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpKind {
    ToolCall { tool: String, arguments: Value },
    ResourceRead { uri: String },
    PromptGet { prompt: String, arguments: Value },
    ToolsList,
    ResourcesList,
    PromptsList,
}

impl OpKind {
    /// The MCP method (thresholds may be scoped by it).
    pub fn method(&self) -> &'static str {
        match self {
            OpKind::ToolCall { .. } => "tools/call",
            OpKind::ResourceRead { .. } => "resources/read",
            OpKind::PromptGet { .. } => "prompts/get",
            OpKind::ToolsList => "tools/list",
            OpKind::ResourcesList => "resources/list",
            OpKind::PromptsList => "prompts/list",
        }
    }
}

/// One weighted entry of the mix; `name` is the bounded `operation` label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MixEntry {
    pub name: String,
    pub weight: u32,
    #[serde(flatten)]
    pub kind: OpKind,
}

/// Names of the default mix entries.
pub const DEFAULT_OPERATIONS: [&str; 7] =
    ["fast_tool", "slow_tool", "resource_read", "prompt_get", "tools_list", "resources_list", "prompts_list"];

/// The default mix, matching the reference target (`echo`, `slow`, `canary://static/hello`,
/// `greeting`): mostly fast calls, some CPU-heavy ones, reads, prompts and list calls.
pub fn default_mix() -> Vec<MixEntry> {
    let e = |name: &str, weight, kind| MixEntry { name: name.into(), weight, kind };
    vec![
        e("fast_tool", 40, OpKind::ToolCall { tool: "echo".into(), arguments: json!({"message": "load"}) }),
        e("slow_tool", 10, OpKind::ToolCall { tool: "slow".into(), arguments: json!({"ms": 10}) }),
        e("resource_read", 20, OpKind::ResourceRead { uri: "canary://static/hello".into() }),
        e("prompt_get", 15, OpKind::PromptGet { prompt: "greeting".into(), arguments: json!({"name": "load"}) }),
        e("tools_list", 5, OpKind::ToolsList),
        e("resources_list", 5, OpKind::ResourcesList),
        e("prompts_list", 5, OpKind::PromptsList),
    ]
}

/// A built-in population shape with the pass targets of DESIGN.md §2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub clients: u32,
    pub duration: Duration,
    pub rpm: f64,
    pub ramp_up: Duration,
    pub thresholds: &'static [&'static str],
}

pub const PRESETS: [Preset; 3] = [
    Preset {
        name: "light",
        clients: 100,
        duration: Duration::from_secs(300),
        rpm: 10.0,
        ramp_up: Duration::from_secs(30),
        thresholds: &["p95 < 50ms", "error_rate < 0.1%"],
    },
    Preset {
        name: "moderate",
        clients: 1000,
        duration: Duration::from_secs(1800),
        rpm: 20.0,
        ramp_up: Duration::from_secs(120),
        thresholds: &["p95 < 100ms", "error_rate < 0.5%"],
    },
    Preset {
        name: "heavy",
        clients: 10000,
        duration: Duration::from_secs(3600),
        rpm: 15.0,
        ramp_up: Duration::from_secs(300),
        thresholds: &["p95 < 200ms", "error_rate < 1%"],
    },
];

pub fn preset(name: &str) -> Option<Preset> {
    PRESETS.iter().copied().find(|p| p.name == name)
}

/// Weighted picker over the mix.
pub struct LoadWorkload {
    mix: Vec<MixEntry>,
    /// Cumulative weights, normalised to 1.
    cumulative: Vec<f64>,
}

impl LoadWorkload {
    /// `mix` must have a positive total weight (validated by the caller).
    pub fn new(mix: Vec<MixEntry>) -> Self {
        let total: f64 = mix.iter().map(|e| f64::from(e.weight)).sum::<f64>().max(1.0);
        let mut acc = 0.0;
        let cumulative = mix
            .iter()
            .map(|e| {
                acc += f64::from(e.weight) / total;
                acc
            })
            .collect();
        Self { mix, cumulative }
    }

    pub fn mix(&self) -> &[MixEntry] {
        &self.mix
    }
}

impl Workload for LoadWorkload {
    fn pick(&self, unit: f64) -> usize {
        let i = self.cumulative.partition_point(|c| *c <= unit);
        // Skip zero-weight entries that share a boundary; clamp for rounding at 1.0.
        i.min(self.mix.len().saturating_sub(1))
    }

    fn execute<'a>(&'a self, client: &'a McpClient, op: usize) -> BoxFuture<'a, RequestResult> {
        async move {
            let Some(entry) = self.mix.get(op) else { return RequestResult::Success };
            let result = match &entry.kind {
                OpKind::ToolCall { tool, arguments } => match client.call_tool(tool, arguments.clone(), None).await {
                    Ok(r) if r.is_error => return RequestResult::Failed(crate::mcp::ErrorType::ToolError),
                    other => other.map(|_| ()),
                },
                OpKind::ResourceRead { uri } => client.read_resource(uri).await.map(|_| ()),
                OpKind::PromptGet { prompt, arguments } => {
                    client.get_prompt(prompt, arguments.clone()).await.map(|_| ())
                }
                OpKind::ToolsList => client.list_tools().await.map(|_| ()),
                OpKind::ResourcesList => client.list_resources().await.map(|_| ()),
                OpKind::PromptsList => client.list_prompts().await.map(|_| ()),
            };
            match result {
                Ok(()) => RequestResult::Success,
                Err(e) => RequestResult::Failed(e.error_type()),
            }
        }
        .boxed()
    }
}

/// Set a mix's weights from `name=weight,...`: the named operations make the whole mix (as a
/// user reads `--mix fast_tool=1`), every operation it does not name gets weight 0.
pub fn apply_weights(mix: &mut [MixEntry], spec: &str) -> Result<(), String> {
    for entry in mix.iter_mut() {
        entry.weight = 0;
    }
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part.split_once('=').ok_or_else(|| format!("--mix entry {part:?} is not NAME=WEIGHT"))?;
        let weight: u32 =
            weight.trim().parse().map_err(|_| format!("--mix weight of {name:?} is not a whole number: {weight:?}"))?;
        let known: Vec<&str> = mix.iter().map(|e| e.name.as_str()).collect::<Vec<_>>();
        let known = known.join(", ");
        let entry = mix
            .iter_mut()
            .find(|e| e.name == name.trim())
            .ok_or_else(|| format!("--mix names unknown operation {name:?}; known: {known}"))?;
        entry.weight = weight;
    }
    if mix.iter().all(|e| e.weight == 0) {
        return Err("--mix leaves no operation with a positive weight".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_weights() {
        let w = LoadWorkload::new(default_mix());
        let mut counts = [0u32; 7];
        for i in 0..10_000 {
            counts[w.pick(f64::from(i) / 10_000.0)] += 1;
        }
        for (got, want) in counts.iter().zip([4000, 1000, 2000, 1500, 500, 500, 500]) {
            assert!(got.abs_diff(want) <= 1, "{counts:?}");
        }
        assert_eq!(w.pick(0.999_999_9), 6);
    }

    #[test]
    fn zero_weights_are_never_picked() {
        let mut mix = default_mix();
        apply_weights(
            &mut mix,
            "fast_tool=1, slow_tool=0,resource_read=0,prompt_get=0,tools_list=0,resources_list=0,prompts_list=0",
        )
        .unwrap();
        let w = LoadWorkload::new(mix);
        assert!((0..100).all(|i| w.pick(f64::from(i) / 100.0) == 0));
    }

    #[test]
    fn a_mix_names_every_operation_it_runs() {
        let mut mix = default_mix();
        apply_weights(&mut mix, "fast_tool=3, resource_read=1").unwrap();
        let weights: Vec<(&str, u32)> = mix.iter().map(|e| (e.name.as_str(), e.weight)).collect();
        assert_eq!(
            weights,
            [
                ("fast_tool", 3),
                ("slow_tool", 0),
                ("resource_read", 1),
                ("prompt_get", 0),
                ("tools_list", 0),
                ("resources_list", 0),
                ("prompts_list", 0)
            ]
        );
    }

    #[test]
    fn weight_errors_name_the_problem() {
        let mut mix = default_mix();
        assert!(apply_weights(&mut mix, "nope=1").unwrap_err().contains("unknown operation \"nope\""));
        assert!(apply_weights(&mut mix, "fast_tool").unwrap_err().contains("NAME=WEIGHT"));
        assert!(apply_weights(&mut mix, "fast_tool=x").unwrap_err().contains("whole number"));
        let all_zero = DEFAULT_OPERATIONS.map(|n| format!("{n}=0")).join(",");
        assert!(apply_weights(&mut mix, &all_zero).unwrap_err().contains("no operation"));
    }

    #[test]
    fn presets_match_the_design() {
        let p = |n| preset(n).unwrap();
        assert_eq!((p("light").clients, p("light").duration.as_secs(), p("light").rpm), (100, 300, 10.0));
        assert_eq!((p("moderate").clients, p("moderate").duration.as_secs(), p("moderate").rpm), (1000, 1800, 20.0));
        assert_eq!((p("heavy").clients, p("heavy").duration.as_secs(), p("heavy").rpm), (10000, 3600, 15.0));
        for preset in PRESETS {
            for t in preset.thresholds {
                super::super::threshold::Threshold::parse(t).unwrap();
            }
        }
    }
}
