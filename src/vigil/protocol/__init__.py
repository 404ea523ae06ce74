"""Protocol adapters of the transports: AuthZEN requests and responses (:mod:`.authzen`), the
search API (:mod:`.search`), Envoy ext_authz routes and subjects (:mod:`.ext_authz`). Above the
engine, below the transports (HTTP server, CLI, later MCP); none imports a web framework."""
