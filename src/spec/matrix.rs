//! Parameters of the capability matrix.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Parameters of the capability matrix (`run matrix` flags, `[profiles.matrix]` keys).
#[derive(clap::Args, Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatrixSpec {
    /// Tool called in every cell (default: `echo` if listed, else the first tool without required arguments).
    #[arg(long)]
    pub tool: Option<String>,
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub tool_args: String,
    /// Wait this long at the end of each SSE cell for requests the server sends on its own stream.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "600ms")]
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
    /// Cells run at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

impl Default for MatrixSpec {
    fn default() -> Self {
        Self { tool: None, tool_args: "{}".into(), settle: Duration::from_millis(600), concurrency: 4 }
    }
}
