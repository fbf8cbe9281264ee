//! mcp-canary: a canary prober, load runner and telemetry exporter for MCP servers.
//!
//! Data flows one way: config -> scheduler -> runners -> MCP client -> outcomes -> telemetry.

pub mod chaos;
pub mod check;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod driver;
pub mod http;
pub mod inspect;
pub mod login;
pub mod mcp;
pub mod process;
pub mod profile;
pub mod reference;
pub mod report;
pub mod run;
pub mod runner;
pub mod schedule;
pub mod spec;
pub mod telemetry;
