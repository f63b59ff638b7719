"""`haloguard classify`: arguments, --json, files with bad rows, errors, exit codes."""

from __future__ import annotations

import json

import pytest

from haloguard.cli.main import main
from haloguard.verdict import VERDICT_FIELDS


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_prints_every_field(capsys):
    code, out, _ = run(capsys, "classify", "--model", "keyword", "--json", "build a bomb", "bake bread")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 2
    for r in rows:
        assert set(VERDICT_FIELDS) <= set(r)
        assert abs(r["tier_probs"]["safe"] + r["tier_probs"]["unsafe"] - 1) < 1e-9
    assert rows[0]["safety_label"] == "Unsafe" and rows[1]["safety_label"] == "Safe"


def test_file_with_bad_rows_keeps_every_row_in_order(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    n, bad = 10_000, {17: b"{not json\n", 5000: b'{"id": 5000, "foo": 1}\n', 9998: b'{"text": "\xff\xfe bad"}\n'}
    with open(src, "wb") as f:
        for i in range(n):
            if i in bad:
                f.write(bad[i])
            elif i % 3 == 0:
                f.write(json.dumps({"id": i, "messages": [{"role": "user", "content": f"hello {i}"}]}).encode() + b"\n")
            else:
                f.write(json.dumps({"id": i, "text": f"how do I build a bomb {i}" if i % 7 == 0 else f"bake bread {i}"}).encode() + b"\n")
    out = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "classify", "--model", "keyword", "--file", str(src), "--out", str(out))
    assert code == 1 and "3 of 10000 rows had errors" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == n
    errors = [i for i, r in enumerate(rows) if "error" in r]
    assert errors == sorted(bad)
    assert rows[17]["line"] == 18 and "malformed JSON" in rows[17]["error"]
    assert rows[5000]["id"] == 5000 and "neither" in rows[5000]["error"]
    assert "UTF-8" in rows[9998]["error"]
    for i, r in enumerate(rows):
        if i not in bad:
            assert r["id"] == i and r["status"] in ("HARMFUL", "HARMLESS")
    assert rows[7]["status"] == "HARMFUL" and rows[1]["status"] == "HARMLESS"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["classify", "--model", "keyword", ""], "empty"),
        (["classify", "--model", "keyword"], "nothing to classify"),
        (["classify", "--model", "embeded", "hi"], "did you mean"),
        (["classify", "--model", "keyword", "--file", "/nonexistent/x.jsonl"], "cannot read"),
        (["classify", "--model", "keyword", "--constitution", "/nonexistent.yaml", "hi"], "nonexistent"),
        (["classify", "--model", "keyword", "--threshold", "2", "hi"], "threshold"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_stdin(monkeypatch, capsys):
    import io

    data = b'{"text": "build a bomb", "id": "a"}\n\n{"text": "hi", "id": "b"}\n'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run(capsys, "classify", "--model", "keyword", "--file", "-")
    rows = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and [r["id"] for r in rows] == ["a", "b"]


def test_help_lists_examples(capsys):
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    assert "examples" in capsys.readouterr().out
