"""Importers: other systems' logs turned into replayable AuthZEN requests (``vigil import ...``)."""

from vigil.importers.cloudtrail import CloudTrailError, access_kind, action_name, to_request
from vigil.importers.files import (
    ImportedRecord,
    ImportSummary,
    import_cloudtrail,
    read_records,
    write_workspace,
)

__all__ = [
    "CloudTrailError",
    "ImportSummary",
    "ImportedRecord",
    "access_kind",
    "action_name",
    "import_cloudtrail",
    "read_records",
    "to_request",
    "write_workspace",
]
