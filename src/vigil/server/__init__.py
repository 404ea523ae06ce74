"""vigil's HTTP service: AuthZEN 1.0, Envoy ext_authz, admin and operations endpoints.

Thin handlers only (:mod:`vigil.server.app`); the logic lives in :mod:`vigil.protocol.authzen`,
:mod:`vigil.protocol.search` and :mod:`vigil.protocol.ext_authz`, which never import a web framework.
"""

from vigil.server.app import ServerConfig, VigilApp
from vigil.server.run import ServeError, build_app, serve

__all__ = ["ServeError", "ServerConfig", "VigilApp", "build_app", "serve"]
