"""Operator use cases on runtime state: approval tickets (:mod:`.approvals`), quarantines
(:mod:`.quarantine`), and the desk the CLI and the admin API call (:mod:`.service`). Below the
engine: it uses them, they never use it."""
