"""Validation of guard inputs: a text or an OpenAI-style conversation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from haloguard.backends.base import Conversation
from haloguard.errors import InputError

ROLES = ("system", "user", "assistant", "tool", "developer")


def to_conversation(text: Any = None, messages: Any = None) -> Conversation:
    """Validate ``text`` or ``messages`` and return a conversation (tuple of messages).

    Raises :class:`InputError` with a one-line message naming the problem.
    """
    if text is not None and messages is not None:
        raise InputError("give either text or messages, not both")
    if messages is None:
        if text is None:
            raise InputError("no input: give a text or messages")
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"text is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InputError("text is empty or whitespace-only")
        return ({"role": "user", "content": text},)
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InputError(f"messages must be a list of {{role, content}} objects, got {type(messages).__name__}")
    if not messages:
        raise InputError("messages is empty")
    conv = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise InputError(f"messages[{i}] must be an object with role and content")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise InputError(f"messages[{i}].role must be one of {', '.join(ROLES)}, got {role!r}")
        if isinstance(content, list):  # OpenAI content parts
            parts = [p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
            content = "\n".join(parts)
        if not isinstance(content, str):
            raise InputError(f"messages[{i}].content must be a string")
        conv.append({"role": str(role), "content": content})
    users = [i for i, m in enumerate(conv) if m["role"] == "user"]
    if not users:
        raise InputError("messages has no user turn")
    if not conv[users[-1]]["content"].strip():
        raise InputError(f"messages[{users[-1]}] (the last user turn) is empty")
    return tuple(conv)


def coerce_item(item: Any) -> Conversation:
    """Accept a str, a list of messages, or a mapping with ``text``/``query``/``messages``."""
    if isinstance(item, Mapping):
        if "messages" in item and item["messages"] is not None:
            return to_conversation(messages=item["messages"])
        for key in ("text", "query", "prompt"):
            if key in item:
                return to_conversation(text=item[key])
        raise InputError("row has neither 'text' nor 'messages'")
    if isinstance(item, (str, bytes)):
        return to_conversation(text=item)
    if isinstance(item, Sequence):
        return to_conversation(messages=item)
    raise InputError(f"cannot classify an input of type {type(item).__name__}")
