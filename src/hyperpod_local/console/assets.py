"""The console's static files: hand-written, shipped in the package (assets/, package data in
pyproject.toml), read when the app is built. Nothing comes from a CDN."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str


_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_FILES = ("index.html", "console.css", "console.js", "grid.js", "favicon.svg")


def _read(name: str) -> Asset:
    body = resources.files("hyperpod_local.console").joinpath("assets", name).read_bytes()
    return Asset(body, _TYPES[name[name.rindex(".") :]])


def load_assets() -> dict[str, Asset]:
    """Each asset by the path it is served at."""
    page = _read("index.html")
    found = {"/console": page, "/console/": page}
    found.update({f"/console/assets/{name}": _read(name) for name in _FILES})
    return found
