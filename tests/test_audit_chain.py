"""The audit log's tamper evidence: every line chains the SHA-256 of the line before it, signed
checkpoints, rotation, and ``vigil audit verify`` naming the first broken line and why."""

from __future__ import annotations

import hashlib
import itertools
import os
import stat
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.audit_helpers import chained_log, log_lines, record, rewrite, verify_cli
from vigil.audit import keys
from vigil.audit.keys import load_or_create_key, public_key_path
from vigil.audit.logfile import GENESIS, AuditFile
from vigil.audit.sink import JsonlSink
from vigil.audit.verify import verify_log
from vigil.cli.main import app


def test_every_line_chains_the_previous_lines_bytes_and_checkpoints_are_signed(tmp_path: Path) -> None:
    path, key = chained_log(tmp_path, 10, every=4)
    lines = log_lines(path)
    events = [orjson.loads(x) for x in lines]
    assert events[0]["prev"] == GENESIS
    for before, line in itertools.pairwise(lines):
        assert orjson.loads(line)["prev"] == hashlib.sha256(before).hexdigest()
    kinds = [e["type"] for e in events]
    # a checkpoint after events 4 and 8, and one at close for the last two
    assert kinds == ["decision"] * 4 + ["checkpoint"] + ["decision"] * 4 + ["checkpoint"] + [
        "decision"
    ] * 2 + ["checkpoint"]
    assert [e["seq"] for e in events if e["type"] == "decision"] == list(range(1, 11))
    cp = events[4]
    assert cp["seq"] == 4 and cp["hash"] == cp["prev"] == hashlib.sha256(lines[3]).hexdigest()
    # the key: 0600, its public key beside it
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert public_key_path(key).read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    code, out = verify_cli(path, key)
    assert code == 0, out
    assert "intact: 10 events, 3 checkpoints" in out


def _broken(path: Path, key: Path, change: Callable[[list[bytes]], object]) -> str:
    """Hand-edit the log's lines with ``change``; returns verify's output, checking it exits 1."""
    lines = log_lines(path)
    change(lines)
    rewrite(path, lines)
    code, out = verify_cli(path, key)
    assert code == 1, out
    return out


def _deny(i: int) -> Callable[[list[bytes]], object]:
    return lambda lines: lines.__setitem__(i, lines[i].replace(b'"decision":"allow"', b'"decision":"deny"'))


def _swap(lines: list[bytes]) -> None:
    lines[1], lines[2] = lines[2], lines[1]


@pytest.mark.parametrize(
    ("n", "change", "named"),
    [
        (10, _deny(2), ":3: edited"),
        (110, _deny(99), ":100: edited"),  # `:100:` is an emoji code to rich: printed as text
        (10, lambda lines: lines.pop(2), ":3: removed"),
        (10, _swap, ":2: reordered"),
    ],
)
def test_an_edited_removed_or_reordered_line_is_named(
    tmp_path: Path, n: int, change: Callable[[list[bytes]], object], named: str
) -> None:
    path, key = chained_log(tmp_path, n, every=4 if n < 100 else 1_000)
    assert f"{path}{named}" in _broken(path, key, change)


def test_an_inserted_line_is_named_even_when_it_chains_correctly(tmp_path: Path) -> None:
    path, key = chained_log(tmp_path)
    forged = orjson.loads(log_lines(path)[1])
    forged["id"] = "forged"
    forged["prev"] = hashlib.sha256(log_lines(path)[1]).hexdigest()
    out = _broken(path, key, lambda lines: lines.insert(2, orjson.dumps(forged)))
    assert f"{path}:3: inserted" in out  # its sequence number repeats
    forged["seq"] = 3  # numbered as the next event: the line after it no longer chains
    out = _broken(path, key, lambda lines: lines.__setitem__(2, orjson.dumps(forged)))
    assert f"{path}:3: inserted" in out


def test_a_checkpoint_signed_with_another_key_is_refused(tmp_path: Path) -> None:
    """A forger who edits a line and rebuilds the whole chain after it still cannot sign."""
    path, key = chained_log(tmp_path, 4, every=4)
    lines = log_lines(path)
    other = tmp_path / "other.key"
    forger = AuditFile(tmp_path / "forged.jsonl", signing_key=load_or_create_key(other), checkpoint_events=4)
    edited = lines[0].replace(b'"decision":"allow"', b'"decision":"deny"')
    # rebuild: strip the chain fields and write the events again through the forger's file
    chunk = b"".join(x[: x.rindex(b',"seq":')] + b"}\n" for x in [edited, *lines[1:4]])
    forger.write([chunk])
    forger.close()
    code, out = verify_cli(tmp_path / "forged.jsonl", key)
    assert code == 1
    assert "forged.jsonl:5: checkpoint signed by another key" in out
    # same key_id claimed, wrong signature
    forged = log_lines(tmp_path / "forged.jsonl")
    cp = orjson.loads(forged[4])
    cp["key_id"] = orjson.loads(lines[4])["key_id"]
    forged[4] = orjson.dumps(cp)
    rewrite(tmp_path / "forged.jsonl", forged)
    code, out = verify_cli(tmp_path / "forged.jsonl", key)
    assert code == 1 and "signature does not verify" in out


def test_truncation_after_the_last_checkpoint_is_a_warning_with_the_count(tmp_path: Path) -> None:
    path, key = chained_log(tmp_path, 10, every=4)
    lines = log_lines(path)
    rewrite(path, lines[:-2])  # drop the last event and the final checkpoint
    code, out = verify_cli(path, key)
    assert code == 0
    assert "1 event(s) after the last checkpoint are not signed" in out


def test_rotation_continues_the_chain_and_verify_reads_every_file(tmp_path: Path) -> None:
    path, key = chained_log(tmp_path, 30, every=1_000, rotate_bytes=2_000)
    files = sorted(tmp_path.glob("audit.jsonl*"))
    assert len(files) >= 3
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        # every file ends with a checkpoint: rotation signs what it closes
        assert orjson.loads(log_lines(f)[-1])["type"] == "checkpoint"
    code, out = verify_cli(path, key)
    assert code == 0, out
    assert "intact: 30 events" in out
    seqs = []
    for f in reversed(files[1:]):  # .N ... .1
        seqs += [orjson.loads(x)["seq"] for x in log_lines(f) if b'"checkpoint"' not in x]
    seqs += [orjson.loads(x)["seq"] for x in log_lines(path) if b'"checkpoint"' not in x]
    assert seqs == list(range(1, 31))
    # a rotated file removed: the chain breaks at the next file's first line
    os.remove(files[2] if len(files) > 3 else files[1])
    code, out = verify_cli(path, key)
    assert code == 1


def test_a_reopened_log_continues_the_chain(tmp_path: Path) -> None:
    path, key = chained_log(tmp_path, 3)
    sink = JsonlSink(path, batch=1, flush_interval_s=60, signing_key=key)
    sink.emit(record(3))
    sink.close()
    code, out = verify_cli(path, key)
    assert code == 0, out
    assert "intact: 4 events" in out


def test_a_partial_last_line_is_cut_before_appending(tmp_path: Path) -> None:
    path, key = chained_log(tmp_path, 3)
    with open(path, "ab") as f:
        f.write(b'{"v":1,"type":"decision","id":"torn')
    sink = JsonlSink(path, batch=1, flush_interval_s=60, signing_key=key)
    sink.emit(record(3))
    sink.close()
    code, out = verify_cli(path, key)
    assert code == 0, out


def test_masked_fields_are_masked_before_hashing(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    sink = JsonlSink(tmp_path / "a.jsonl", mask=["context.token"], signing_key=key)
    sink.emit(record(1, context={"token": "secret", "n": 1}))
    sink.close()
    data = (tmp_path / "a.jsonl").read_bytes()
    assert b"secret" not in data and b'"token":"***"' in data
    assert verify_cli(tmp_path / "a.jsonl", key)[0] == 0


def test_a_large_context_is_replaced_by_its_size_and_hash(tmp_path: Path) -> None:
    big = {f"k{i}": i for i in range(60_000)}
    sink = JsonlSink(tmp_path / "a.jsonl", signing_key=tmp_path / "k.key", max_context_bytes=16_384)
    sink.emit(record(1, context=big))
    sink.emit(record(2))
    sink.close()
    lines = log_lines(tmp_path / "a.jsonl")
    assert len(lines[0]) < 2_000
    encoded = orjson.dumps(big)
    assert orjson.loads(lines[0])["context"] == {
        "__truncated": {"bytes": len(encoded), "sha256": hashlib.sha256(encoded).hexdigest()}
    }
    assert orjson.loads(lines[1])["context"] == {"n": 2}
    assert verify_cli(tmp_path / "a.jsonl", tmp_path / "k.key")[0] == 0


def test_chain_off_writes_plain_lines(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "a.jsonl", chain=False, signing_key=tmp_path / "k.key")
    sink.emit(record(1))
    sink.close()
    line = orjson.loads(log_lines(tmp_path / "a.jsonl")[0])
    assert "prev" not in line and "seq" not in line
    assert not (tmp_path / "k.key").exists()


def test_an_existing_key_is_used_and_a_bad_one_refused(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    first = load_or_create_key(key)
    again = load_or_create_key(key)
    assert keys.key_id(first.public_key()) == keys.key_id(again.public_key())
    key.write_bytes(b"not a key")
    with pytest.raises(keys.AuditKeyError):
        load_or_create_key(key)


def test_verify_without_a_key_checks_the_chain_and_warns(tmp_path: Path) -> None:
    path, _ = chained_log(tmp_path, 3)
    result = verify_log(path, None)
    assert result.ok and any("not checked" in w for w in result.warnings)
    assert not verify_log(tmp_path / "missing.jsonl", None).ok
    assert isinstance(Ed25519PrivateKey.generate(), Ed25519PrivateKey)


def test_verify_reads_the_log_and_key_from_a_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / ".vigil").mkdir(parents=True)
    (ws / "vigil.toml").write_text('[audit]\npath = "logs/a.jsonl"\nsigning_key = "keys/k.key"\n')
    sink = JsonlSink(ws / "logs" / "a.jsonl", signing_key=ws / "keys" / "k.key")
    sink.emit(record(1))
    sink.close()
    result = CliRunner().invoke(app, ["audit", "verify", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert "intact: 1 events, 1 checkpoints" in result.output
    lines = log_lines(ws / "logs" / "a.jsonl")
    rewrite(ws / "logs" / "a.jsonl", [lines[0].replace(b'"n":1', b'"n":2'), lines[1]])
    result = CliRunner().invoke(app, ["audit", "verify", "--workspace", str(ws)])
    assert result.exit_code == 1 and "a.jsonl:1: edited" in result.output.replace("\n", "")


@pytest.mark.parametrize("rotate_bytes", [0, 3_000])
def test_two_writers_on_one_log_keep_one_chain(tmp_path: Path, rotate_bytes: int) -> None:
    """A server and the CLI (or a replay) appending to one log: each write follows the other's."""
    key = tmp_path / "keys" / "audit-signing.key"
    path = tmp_path / "audit.jsonl"
    options: dict[str, object] = {"batch": 1, "flush_interval_s": 60, "signing_key": key}
    a = JsonlSink(path, checkpoint_events=3, rotate_bytes=rotate_bytes, **options)  # type: ignore[arg-type]
    b = JsonlSink(path, checkpoint_events=5, rotate_bytes=rotate_bytes, mark=b',"replay":true', **options)  # type: ignore[arg-type]
    for i in range(40):
        sink = a if i % 3 else b
        assert sink.emit(record(i))
        sink.flush()
    a.close()
    b.close()
    code, out = verify_cli(path, key)
    assert code == 0, out
    assert "intact: 40 events" in out
    events = [
        orjson.loads(x)
        for f in sorted(tmp_path.glob("audit.jsonl*"), key=lambda p: -len(p.suffixes))
        for x in log_lines(f)
    ]
    events = [e for e in events if e["type"] != "checkpoint"]
    assert sorted(e["seq"] for e in events) == list(range(1, 41))
    assert sum(e.get("replay") is True for e in events) == 14  # i % 3 == 0: b's lines, marked


_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_events = st.lists(
    st.dictionaries(
        st.sampled_from(["id", "a", "context", "reasons"]),
        st.one_of(_texts, st.integers(-(2**63), 2**63 - 1)),
        min_size=1,
    ),
    min_size=0,
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    chunks=st.lists(_events, min_size=1, max_size=4),
    mark=st.sampled_from([b"", b',"replay":true']),
    cap=st.sampled_from([16_384, 40]),
)
def test_the_c_chain_writes_the_bytes_of_the_python_chain(
    tmp_path_factory: pytest.TempPathFactory,
    chunks: list[list[dict[str, object]]],
    mark: bytes,
    cap: int,
) -> None:
    """``audit/_chain.pyx`` (no GIL) and the Python loop give the same file, head and seq, lines
    over the context cap included (the C path hands those chunks to the Python one)."""
    from vigil.audit import logfile

    fast_chain = logfile._chain_block
    if fast_chain is None:
        pytest.skip("the C chain is not built here (pure build or no OpenSSL headers)")
    d = tmp_path_factory.mktemp("chain")
    data = [b"".join(orjson.dumps(e) + b"\n" for e in chunk) for chunk in chunks]
    key = Ed25519PrivateKey.generate()
    written = []
    for fast in (True, False):
        logfile._chain_block = fast_chain if fast else None
        try:
            f = AuditFile(
                d / f"{fast}.jsonl",
                signing_key=key,
                checkpoint_events=5,
                max_context_bytes=cap,
                mark=mark,
                clock=lambda: 1.8e9,  # checkpoints (Ed25519: deterministic) then match too
            )
            for chunk in data:
                f.write([chunk])
            written.append((f.head, f.seq, f._head_len, (d / f"{fast}.jsonl").read_bytes()))
            f.close()
        finally:
            logfile._chain_block = fast_chain
    assert written[0] == written[1]
