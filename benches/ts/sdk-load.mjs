// Load loop written with the official TypeScript MCP SDK client, as users of the scale-testing
// guide run it: N clients, each with its own session over Streamable HTTP, each calling the
// `echo` tool at a fixed rate (open model: calls are started on a timer, not after the previous
// answer) for a fixed duration. Prints one JSON line: {"calls": n, "errors": n}.
//
// node sdk-load.mjs URL CLIENTS RPM SECONDS   (benches/load.rs copies it next to the node_modules
// that scripts/install-test-servers.sh fills, so that ESM resolution finds the SDK)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, clients, rpm, seconds] = process.argv.slice(2);
const n = Number(clients);
const periodMs = 60000 / Number(rpm);
const endAt = Date.now() + Number(seconds) * 1000;
let calls = 0;
let errors = 0;

async function session(i) {
  const client = new Client({ name: "sdk-load", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  const pending = new Set();
  // Stagger the sessions over one period so requests do not arrive in lockstep.
  await new Promise((r) => setTimeout(r, (periodMs * i) / n));
  while (Date.now() < endAt) {
    const call = client
      .callTool({ name: "echo", arguments: { message: "load" } })
      .then(() => { calls += 1; }, () => { errors += 1; })
      .finally(() => pending.delete(call));
    pending.add(call);
    await new Promise((r) => setTimeout(r, periodMs));
  }
  await Promise.allSettled([...pending]);
  await client.close();
}

await Promise.all(Array.from({ length: n }, (_, i) => session(i)));
console.log(JSON.stringify({ calls, errors }));
