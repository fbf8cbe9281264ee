"""An independent protected MCP server: the official Python SDK 1.x (FastMCP) as an OAuth resource
server (its own auth support: protected resource metadata, 401/403 Bearer challenges, required
scopes), with access tokens checked as JWTs against an authorization server's keys (PyJWT, which
the SDK depends on). Streamable HTTP at http://127.0.0.1:$PORT/mcp; the tools of
tests/peers/python_sdk_server.py.

Usage: PORT=8123 ISSUER=http://127.0.0.1:9000 .cache/py/mcp1/bin/python tests/peers/python_sdk_protected_server.py
"""

import os

import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.fastmcp import FastMCP

PORT = int(os.environ["PORT"])
ISSUER = os.environ["ISSUER"].rstrip("/")
RESOURCE = f"http://127.0.0.1:{PORT}/mcp"
KEYS = jwt.PyJWKClient(f"{ISSUER}/jwks", timeout=10)


class JwtVerifier(TokenVerifier):
    """A JWT access token (RFC 9068) signed by the issuer's keys, for this resource, not expired."""

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            key = KEYS.get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=["RS256", "ES256"], audience=RESOURCE, issuer=ISSUER)
        except Exception:
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id", "")),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=claims.get("exp"),
            resource=RESOURCE,
        )


server = FastMCP(
    "peer-python-sdk-protected",
    token_verifier=JwtVerifier(),
    auth=AuthSettings(issuer_url=ISSUER, resource_server_url=RESOURCE, required_scopes=["mcp:read"]),
)


@server.tool()
async def echo(message: str) -> str:
    """Echo the message."""
    return message


@server.resource("peer://static/hello")
def hello() -> str:
    return "hello from the protected python sdk peer"


if __name__ == "__main__":
    server.settings.host = "127.0.0.1"
    server.settings.port = PORT
    server.run("streamable-http")
