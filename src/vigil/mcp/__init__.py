"""The MCP gateway (``vigil mcp proxy``): MCP over streamable HTTP and stdio in front of upstream MCP
servers, every call decided by the engine first (:mod:`vigil.protocol.mcp` maps, this package
moves bytes). See docs/mcp.md."""

from vigil.mcp.gateway import Gateway, UpstreamSpec
from vigil.mcp.identity import Agent, AnyOf, Authenticate, AuthenticationError, OAuthTokens, StaticTokens

__all__ = [
    "Agent",
    "AnyOf",
    "Authenticate",
    "AuthenticationError",
    "Gateway",
    "OAuthTokens",
    "StaticTokens",
    "UpstreamSpec",
]
