"""The parts of bench/RESULTS.md that runs of their own write (`--fleet`, `--replicas`): each
between two marks, replaced by its next run and kept by every other run."""

from __future__ import annotations

from pathlib import Path

MARKS = {
    "fleet": ("<!-- fleet: written by bench/fleet.py -->", "<!-- /fleet -->"),
    "replicas": ("<!-- replicas: written by bench/replicas.py -->", "<!-- /replicas -->"),
}


def write_section(name: str, section: str, output: Path) -> None:
    """Put the section (its marks included) into the report, replacing an older one."""
    start, end = MARKS[name]
    text = output.read_text() if output.exists() else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    output.write_text(text)


def kept_sections(text: str) -> str:
    """The sections of `text`, to append to a report that does not measure them."""
    kept = ""
    for start, end in MARKS.values():
        if start in text and end in text:
            kept += "\n" + start + text.split(start, 1)[1].split(end, 1)[0] + end + "\n"
    return kept
