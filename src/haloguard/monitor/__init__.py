"""Output-side monitoring (seed 003): guarded generation and the exchange classifier.

* :mod:`haloguard.monitor.generate` — a KV-cached decode loop that scores an activation
  probe every step and continues / pauses / escalates / refuses.
* :mod:`haloguard.monitor.exchange` — the three-class exchange classifier (safe compliance,
  safe refusal, unsafe compliance) consulted on pauses and for the final check; also
  behind ``POST /v1/classify`` (assistant turns) and ``/v1/monitor``.
"""

from __future__ import annotations

from haloguard.monitor.exchange import (
                                        LABELS,
                                        ExchangeClassifier,
                                        ExchangeResult,
                                        load_exchange_classifier,
                                        train_exchange,
)
from haloguard.monitor.generate import (
                                        DEFAULT_REFUSAL,
                                        GuardConfig,
                                        GuardedResult,
                                        guarded_generate,
                                        plain_generate,
)

__all__ = [
                                        "DEFAULT_REFUSAL",
                                        "LABELS",
                                        "ExchangeClassifier",
                                        "ExchangeResult",
                                        "GuardConfig",
                                        "GuardedResult",
                                        "guarded_generate",
                                        "load_exchange_classifier",
                                        "plain_generate",
                                        "train_exchange",
]
