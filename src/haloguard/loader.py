"""``load_guard``: build a Guard from a model name, path, hub id or URL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from haloguard.backends.registry import create_backend
from haloguard.calibration import load_calibration
from haloguard.constitution import Constitution, load_constitution
from haloguard.guard import Guard
from haloguard.windows import WindowConfig

log = logging.getLogger("haloguard")

#: a model directory trained for its own policy carries it (``haloguard train embedded
#: --constitution``); ``load_guard`` uses it unless a constitution is given
MODEL_CONSTITUTION = "constitution.yaml"


def load_guard(
    model: str | None = None,
    backend: str | None = None,
    threshold: float | None = None,
    constitution: str | Path | Constitution | None = None,
    *,
    calibration: str | Path | None = None,
    canonicalize: bool = True,
    view_policy: str = "readable",
    window_length: int | None = None,
    window_stride: int | None = None,
    **backend_kwargs: Any,
) -> Guard:
    """Load a guard.

    ``model`` is a registry name (default ``"embedded"``), a local path, a hub id or an
    ``http(s)://`` URL of a remote guard; ``backend`` overrides detection.  A model
    directory holding a ``calibration.json`` (written by ``haloguard train``) gets that
    calibrator and threshold unless ``calibration``/``threshold`` are given.  Extra keyword
    arguments go to the backend (e.g. ``device``, ``dtype``, ``template``).  ``view_policy``
    is the Guard's (``"readable"`` or ``"max"``: which decoded views decide the label).
    A model directory holding a ``constitution.yaml`` (a model trained for its own policy)
    gets that policy unless ``constitution`` is given.
    """
    if constitution is None and model and Path(model).is_dir() \
            and (Path(model) / MODEL_CONSTITUTION).is_file():
        constitution = Path(model) / MODEL_CONSTITUTION
    cons = constitution if isinstance(constitution, Constitution) else load_constitution(constitution)
    be = create_backend(model, backend, constitution=cons, **backend_kwargs)
    _check_categories(be, cons)
    cal = None
    if calibration is None and model and Path(model).is_dir() and (Path(model) / "calibration.json").exists():
        calibration = Path(model) / "calibration.json"  # written by `haloguard train ...`
    if calibration is not None:
        cal, cal_thr = load_calibration(calibration)
        if threshold is None:
            threshold = cal_thr
    window = None
    if window_length is not None or window_stride is not None:
        window = WindowConfig(window_length or be.window_length, window_stride or be.window_stride)
    return Guard(be, threshold=threshold, constitution=cons, calibrator=cal,
                 canonicalize=canonicalize, window=window, view_policy=view_policy)


def _check_categories(backend: Any, cons: Constitution) -> None:
    """Warn (one line) when a backend with fixed category heads and the constitution disagree."""
    heads = getattr(backend, "categories", None)
    if not heads:
        return
    missing = [c for c in cons.runtime_categories if c not in heads]
    extra = [c for c in heads if c not in cons.runtime_categories]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no category head for {', '.join(missing)} (they score 0)")
        if extra:
            parts.append(f"heads for {', '.join(extra)} are ignored")
        log.warning("model %s was not trained for constitution %r: %s; train one for it with "
                    "`haloguard train embedded --constitution FILE`",
                    getattr(backend, "model_id", "?"), cons.name, "; ".join(parts))
