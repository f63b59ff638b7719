"""Red-teaming: run prompts through attacks against a guard, report bypasses, export them
as training records, and loop (attack -> augment -> retrain -> re-evaluate)."""

from __future__ import annotations

from haloguard.redteam.runner import Attempt, Prompt, RedteamResult, read_prompts, run_redteam

__all__ = ["Attempt", "Prompt", "RedteamResult", "read_prompts", "run_redteam"]
