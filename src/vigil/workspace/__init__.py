"""Workspaces: a folder of settings, Cedar policies, an optional schema and entities."""

from vigil.workspace.loader import Workspace, load_workspace
from vigil.workspace.settings import Settings, parse_settings

__all__ = ["Settings", "Workspace", "load_workspace", "parse_settings"]
