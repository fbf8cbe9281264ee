//! The reference MCP server (`mcp-canary target`), built on rmcp.
