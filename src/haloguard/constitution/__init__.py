"""The constitution as data: policies → categories → subcategories, with label mappings."""

from .loader import load_constitution, parse_constitution, parse_text
from .render import PROMPT_STYLES
from .schema import (
    RUNTIME_CATEGORIES,
    Category,
    Constitution,
    ConstitutionError,
    Mapping,
    Overlay,
    OverlayEntry,
    Policy,
    Subcategory,
    normalize_label,
)

__all__ = [
    "PROMPT_STYLES",
    "RUNTIME_CATEGORIES",
    "Category",
    "Constitution",
    "ConstitutionError",
    "Mapping",
    "Overlay",
    "OverlayEntry",
    "Policy",
    "Subcategory",
    "load_constitution",
    "normalize_label",
    "parse_constitution",
    "parse_text",
]
