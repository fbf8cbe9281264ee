// A peer MCP server on the mcp-use framework (npm, TypeScript): Streamable HTTP at
// http://127.0.0.1:$PORT/mcp with the peer matrix's tools (tests/common/peers.rs), one resource
// and one prompt. mcp-use serves every request statelessly (2026-07-28; the 2025 handshake is
// answered without a session).
//
// Usage: PORT=8123 node tests/peers/mcp_use_server.mjs   (resolves mcp-use from .cache/npm/mcp-use)
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";

// mcp-use posts anonymous usage events to its vendor and writes .mcp-use/usage.json in the
// working directory unless told not to; tests/common/peers.rs also sets the variable.
process.env.MCP_USE_ANONYMIZED_TELEMETRY = "false";
globalThis.__MCP_USE_ANONYMIZED_TELEMETRY__ = false;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(path.join(root, ".cache/npm/mcp-use/node_modules/"));
const load = async (name) => import(pathToFileURL(require.resolve(name)).href);
const { MCPServer } = await load("mcp-use");
const { z } = await load("zod");

const text = (t) => ({ content: [{ type: "text", text: t }] });
const server = new MCPServer({ name: "peer-mcp-use", version: "1.0.0" });

server.tool(
  { name: "notify", description: "Send a log (and a progress) notification carrying the nonce",
    inputSchema: z.object({ nonce: z.string() }) },
  async ({ nonce }, ctx) => {
    await ctx.reportProgress(1, 1, `nonce ${nonce}`);
    await ctx.sendLog("info", `nonce ${nonce}`);
    return text(`notified ${nonce}`);
  },
);
server.tool(
  { name: "slow", description: "Sleep ms milliseconds", inputSchema: z.object({ ms: z.number().int() }) },
  async ({ ms }) => {
    await new Promise((r) => setTimeout(r, ms));
    return text(`slept ${ms} ms`);
  },
);
server.tool(
  { name: "fail", description: "Always fails with an isError result", inputSchema: z.object({}) },
  async () => ({ isError: true, content: [{ type: "text", text: "this tool always fails" }] }),
);
server.resource(
  { name: "hello", uri: "peer://static/hello", mimeType: "text/plain" },
  async (uri) => ({ contents: [{ uri: uri.href, mimeType: "text/plain", text: "hello from the mcp-use peer" }] }),
);
server.prompt(
  { name: "greeting", description: "Say hello" },
  async () => ({ messages: [{ role: "user", content: { type: "text", text: "Say hello." } }] }),
);

const { url } = await server.listen(Number(process.env.PORT), { host: "127.0.0.1" });
console.log(`mcp-use peer listening on ${url}`);
