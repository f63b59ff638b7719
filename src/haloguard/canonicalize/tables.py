"""Static mapping tables shared by decoders and encoders."""

from __future__ import annotations

MORSE: dict[str, str] = {
    "a": ".-", "b": "-...", "c": "-.-.", "d": "-..", "e": ".", "f": "..-.", "g": "--.",
    "h": "....", "i": "..", "j": ".---", "k": "-.-", "l": ".-..", "m": "--", "n": "-.",
    "o": "---", "p": ".--.", "q": "--.-", "r": ".-.", "s": "...", "t": "-", "u": "..-",
    "v": "...-", "w": ".--", "x": "-..-", "y": "-.--", "z": "--..",
    "0": "-----", "1": ".----", "2": "..---", "3": "...--", "4": "....-", "5": ".....",
    "6": "-....", "7": "--...", "8": "---..", "9": "----.",
    ".": ".-.-.-", ",": "--..--", "?": "..--..", "'": ".----.", "!": "-.-.--", "/": "-..-.",
    "(": "-.--.", ")": "-.--.-", "&": ".-...", ":": "---...", ";": "-.-.-.", "=": "-...-",
    "+": ".-.-.", "-": "-....-", "\"": ".-..-.", "@": ".--.-.",
}
MORSE_REV: dict[str, str] = {v: k for k, v in MORSE.items()}

# Leetspeak decode maps (symbol -> letter), by level.
LEET_BASIC: dict[str, str] = {"4": "a", "3": "e", "1": "i", "0": "o", "5": "s", "7": "t"}
LEET_EXTENDED: dict[str, str] = {
    "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "(": "c", "<": "c", "8": "b",
    "9": "g", "6": "g", "2": "z", "€": "e", "£": "l", "¥": "y", "#": "h",
}
# Multi-character (aggressive) forms; matched longest first.
LEET_AGGRESSIVE: dict[str, str] = {
    "|-|": "h", "]-[": "h", ")-(": "h", "}{": "h",
    "/\\/\\": "m", "|\\/|": "m", "^^": "m",
    "|\\|": "n", "/\\/": "n",
    "\\/\\/": "w", "\\^/": "w", "\\x/": "w",
    "\\/": "v",
    "/\\": "a",
    "|<": "k", "|{": "k",
    "|)": "d", "|]": "d",
    "|>": "p", "|*": "p",
    "|2": "r",
    "()": "o",
    "ph": "f",
}

# Encoder choices (letter -> symbol), by level.
LEET_ENCODE_BASIC: dict[str, str] = {v: k for k, v in LEET_BASIC.items()}
LEET_ENCODE_EXTENDED: dict[str, str] = {
    **LEET_ENCODE_BASIC, "a": "@", "s": "$", "l": "|", "t": "+", "c": "(", "b": "8", "g": "9",
}
LEET_ENCODE_AGGRESSIVE: dict[str, str] = {
    **LEET_ENCODE_EXTENDED, "h": "|-|", "m": "/\\/\\", "v": "\\/", "k": "|<", "f": "ph",
    "n": "|\\|", "w": "\\^/", "d": "|)",
}
