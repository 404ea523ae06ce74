"""Types of the C chain (``_chain.pyx``), for mypy."""

def chain_block(
    chunk: bytes, mark: bytes, seq: int, head: bytes, cap: int
) -> tuple[bytes, int, int, bytes, int] | None: ...
