"""The entity store shares equal attribute records and ancestor sets between entities (fewer
distinct objects for a decision to read), and only truly equal ones: Cedar's types and an
address's text count, records inside attributes opt out."""

from __future__ import annotations

from vigil.policy.entities import EntityStore


def _store(*entities: tuple[str, dict[str, object], list[str]]) -> EntityStore:
    return EntityStore.from_json(
        [
            {
                "uid": {"type": "Doc", "id": eid},
                "attrs": attrs,
                "parents": [{"type": "Team", "id": p} for p in parents],
            }
            for eid, attrs, parents in entities
        ]
        + [{"uid": {"type": "Team", "id": t}, "attrs": {}, "parents": []} for t in ("a", "b")]
    )


def test_equal_attributes_and_ancestors_are_one_object() -> None:
    s = _store(
        ("1", {"env": "prod", "level": 3}, ["a"]),
        ("2", {"env": "prod", "level": 3}, ["a"]),
        ("3", {"env": "dev", "level": 3}, ["b"]),
    )
    one, two, three = (s.get(("Doc", i)) for i in "123")
    assert one is not None and two is not None and three is not None
    assert one.attrs is two.attrs and one.ancestors is two.ancestors
    assert one.attrs is not three.attrs and one.ancestors is not three.ancestors
    assert dict(three.attrs) == {"env": "dev", "level": 3}


def test_only_truly_equal_attributes_are_shared() -> None:
    s = _store(
        ("bool", {"x": True}, []),
        ("long", {"x": 1}, []),
        ("ip1", {"ip": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}}, []),
        ("ip2", {"ip": {"__extn": {"fn": "ip", "arg": "10.0.0.1/32"}}}, []),
        ("rec1", {"r": {"a": 1}}, []),
        ("rec2", {"r": {"a": 1}}, []),
        ("order1", {"a": 1, "b": 2}, []),
        ("order2", {"b": 2, "a": 1}, []),
    )

    def attrs(eid: str) -> object:
        e = s.get(("Doc", eid))
        assert e is not None
        return e.attrs

    assert attrs("bool")["x"] is True and attrs("long")["x"] == 1  # type: ignore[index]
    assert attrs("bool") is not attrs("long")  # True == 1 in Python only
    assert attrs("ip1") is not attrs("ip2")  # equal addresses, written differently
    assert attrs("rec1") is not attrs("rec2")  # a record inside: not shared (still equal)
    assert attrs("rec1") == attrs("rec2")
    assert attrs("order1") is not attrs("order2")  # attribute order is kept as written
