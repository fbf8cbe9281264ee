"""A peer MCP server on the official Python SDK, 1.x (FastMCP) or 2.x (MCPServer), whichever the
running virtualenv holds: Streamable HTTP at http://127.0.0.1:$PORT/mcp with the peer matrix's
tools (tests/common/peers.rs), one resource and one prompt.

Usage: PORT=8123 .cache/py/mcp2/bin/python tests/peers/python_sdk_server.py
"""

import os
from importlib.metadata import version

import anyio

try:  # 2.x renamed FastMCP to MCPServer (mcp/server/fastmcp.py in 2.x raises on import).
    from mcp.server.mcpserver import Context, MCPServer as Server
except ImportError:
    from mcp.server.fastmcp import Context, FastMCP as Server

PORT = int(os.environ["PORT"])
# 1.x reports its own package version; 2.x reports "" unless told.
server = Server("peer-python-sdk", version=version("mcp")) if Server.__name__ == "MCPServer" else Server("peer-python-sdk")


@server.tool()
async def notify(nonce: str, ctx: Context) -> str:
    """Send a log notification (and a progress notification, when asked) carrying the nonce."""
    await ctx.report_progress(1, 1, f"nonce {nonce}")
    await ctx.info(f"nonce {nonce}")
    return f"notified {nonce}"


@server.tool()
async def slow(ms: int) -> str:
    """Sleep `ms` milliseconds, then answer."""
    await anyio.sleep(ms / 1000)
    return f"slept {ms} ms"


@server.tool()
async def fail() -> str:
    """Always fail: an isError result."""
    raise ValueError("this tool always fails")


@server.resource("peer://static/hello")
def hello() -> str:
    return "hello from the python sdk peer"


@server.prompt()
def greeting() -> str:
    return "Say hello."


if __name__ == "__main__":
    if Server.__name__ == "MCPServer":
        server.run("streamable-http", host="127.0.0.1", port=PORT)
    else:
        server.settings.host = "127.0.0.1"
        server.settings.port = PORT
        server.run("streamable-http")
