"""The sentence bar of an embedded artifact, chosen on its validation split.

A Guard scores the sentences of a multi-window text alone (``haloguard.windows.sentence_units``)
so a single harmful request appended to pages of filler is not diluted away; a sentence
decides only when its unsafe probability reaches the artifact's ``sentence_threshold``.
That bar is the lowest value, not below the operating threshold, at which sentence
scoring flags at most ``extra_fpr`` of the long benign validation rows that the windows
alone pass.  It is chosen on ``val.jsonl`` only, like the operating threshold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: share of the long benign validation rows sentence scoring may add to the flagged ones
SENTENCE_EXTRA_FPR = 0.005


def choose_sentence_threshold(model_dir: str | Path, val_path: str | Path,
                              extra_fpr: float = SENTENCE_EXTRA_FPR,
                              log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Choose the bar on ``val_path`` and write it into ``model_dir/embedded.json``.

    Returns ``{"sentence_threshold", "long_benign_rows", "flagged_by_windows",
    "added_at_bar", "rule"}``.  With no long benign validation rows the bar is 1.0
    (sentences never decide on their own evidence).
    """
    from haloguard.backends.embedded import EmbeddedBackend
    from haloguard.guard import Guard

    model_dir = Path(model_dir)
    backend = EmbeddedBackend(model_dir)
    backend.sentence_threshold = None  # judge the windows alone first
    guard = Guard(backend, canonicalize=False)
    thr = guard.threshold
    texts = []
    with open(val_path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("label") == "safe" and row.get("text"):
                texts.append(row["text"])
    long_texts = [t for t in texts if len(guard._windows(t)[0]) > 1]
    window_p = [v.p_unsafe for v in guard.classify_batch(long_texts)] if long_texts else []
    from haloguard.windows import sentence_units

    passed = [t for t, p in zip(long_texts, window_p) if p < thr]
    units = [(i, s) for i, t in enumerate(passed) for _, s in sentence_units(t)]
    scores = backend.score([({"role": "user", "content": s},) for _, s in units]) if units else []
    best = [0.0] * len(passed)
    for (i, _), sc in zip(units, scores):
        best[i] = max(best[i], float(guard.calibrator(sc.p_unsafe)))
    allowed = math.floor(extra_fpr * len(long_texts))
    ranked = sorted(best, reverse=True)
    if not long_texts:
        bar = 1.0
    elif allowed >= len(ranked):
        bar = thr
    else:
        bar = max(thr, min(1.0, ranked[allowed] + 1e-6))
    added = sum(b >= bar for b in best)
    rule = (f"lowest bar >= the threshold at which sentences scored alone flag at most "
            f"{extra_fpr:g} of the long (multi-window) benign rows of {Path(val_path).name} "
            f"that the windows pass")
    meta_path = model_dir / "embedded.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["sentence_threshold"] = round(float(bar), 6)
    meta["sentence_threshold_rule"] = rule
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    out = {"sentence_threshold": round(float(bar), 6), "long_benign_rows": len(long_texts),
           "flagged_by_windows": len(long_texts) - len(passed), "added_at_bar": added,
           "rule": rule}
    log(f"sentence threshold {bar:.4f}: {len(long_texts)} long benign val rows, "
        f"{len(long_texts) - len(passed)} flagged by windows, {added} more by sentences")
    return out
