"""Replace the text between a pair of HTML comment markers in a markdown file (how the benchmarks update the docs)."""

from __future__ import annotations

from pathlib import Path


def replace_marked(path: Path, key: str, text: str) -> bool:
    """Put `text` between `<!-- key:begin -->` and `<!-- key:end -->` in `path`; False (nothing written) when
    `path` lacks either marker."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    current = path.read_text() if path.exists() else ""
    if begin not in current or end not in current:
        return False
    head, rest = current.split(begin, 1)
    path.write_text(head + begin + "\n" + text + end + rest.split(end, 1)[1])
    return True
