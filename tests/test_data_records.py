"""Record type and JSONL helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from haloguard.data.records import Record, read_jsonl, write_jsonl


def test_roundtrip(tmp_path: Path) -> None:
    rows = [
        Record(id="a:0", text="héllo", label="safe", lang="fr", source="a", meta={"k": [1, 2]}),
        Record(id="b:0", messages=({"role": "user", "content": "hi"},), label="unsafe",
               category="violence", overlay="jailbreak"),
    ]
    assert write_jsonl(tmp_path / "x.jsonl", iter(rows)) == 2
    back = read_jsonl(tmp_path / "x.jsonl")
    assert [r.to_dict() for r in back] == [r.to_dict() for r in rows]
    assert Record.from_dict(rows[0].to_dict()) == rows[0]
    assert back[1].content == "hi"


def test_frozen_and_validated() -> None:
    r = Record(id="x", text="t")
    with pytest.raises(AttributeError):
        r.text = "u"  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.meta["k"] = 1  # type: ignore[index]
    with pytest.raises(ValueError, match="label"):
        Record(id="x", text="t", label="harmful")
    with pytest.raises(ValueError, match="overlay"):
        Record(id="x", text="t", overlay="dan")
    with pytest.raises(ValueError, match="neither"):
        Record(id="x")


def test_unknown_keys_go_to_meta_and_bad_json_names_line(tmp_path: Path) -> None:
    r = Record.from_dict({"id": "1", "text": "t", "kind": "harmful"})
    assert r.meta["kind"] == "harmful"
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": "1", "text": "t"}\n{oops\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_jsonl(p)
