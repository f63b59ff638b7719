"""``load_guard``: build a Guard from a model name, path, hub id or URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haloguard.backends.registry import create_backend
from haloguard.calibration import load_calibration
from haloguard.constitution import Constitution, load_constitution
from haloguard.guard import Guard
from haloguard.windows import WindowConfig


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
    """
    cons = constitution if isinstance(constitution, Constitution) else load_constitution(constitution)
    be = create_backend(model, backend, constitution=cons, **backend_kwargs)
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
