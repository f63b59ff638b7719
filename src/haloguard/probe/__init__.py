"""Activation probes (seed 003): collect hidden states, train linear probes, sweep layers.

* :mod:`haloguard.probe.exchanges` — a small deterministic *proxy* exchange dataset
  (prompt + response, three labels) built offline from the authored corpus.
* :mod:`haloguard.probe.collect` — hidden states of any HF causal LM at chosen layers and
  token positions over chat-templated exchanges, saved as ``.npz``.
* :mod:`haloguard.probe.train` — a standardised, temperature-calibrated logistic probe
  (numpy at inference time, a ``.npz`` + ``.json`` artifact).
* :mod:`haloguard.probe.sweep` — AUROC per layer on held-out exchanges, plot + JSON.

Heavy imports (torch, transformers, scikit-learn, matplotlib) stay inside functions.
"""

from __future__ import annotations

from haloguard.probe.train import LinearProbe, load_probe

__all__ = ["LinearProbe", "load_probe"]
