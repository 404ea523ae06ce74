"""The MCP gateway (``vigil mcp proxy``): MCP over streamable HTTP and stdio in front of upstream MCP
servers, every call decided by the engine first (:mod:`vigil.protocol.mcp` maps, this package
moves bytes). See docs/mcp.md."""

from vigil.mcp.gateway import Gateway, UpstreamSpec
from vigil.mcp.identity import Authenticate, AuthenticationError, StaticTokens

__all__ = ["Authenticate", "AuthenticationError", "Gateway", "StaticTokens", "UpstreamSpec"]
