#!/usr/bin/env python3
"""Counts the main-text words of each page of the book.

Main text is what a reader reads straight through: prose, headings, lists
and tables. Left out: fenced code blocks (listings and program output),
`{{#include}}` lines, HTML comments, and everything inside
<details>...</details> (the asides a reader opens only if they want the
minutiae). Usage, from the repository root:

    python3 book/wordcount.py            # every page in book/SUMMARY.md
    python3 book/wordcount.py book/ch02-prefork.md ...
    python3 book/wordcount.py --max 3300 book/ch0[234]*.md
                                         # exit 1 if a page is over
"""

import re
import sys
from pathlib import Path

BOOK = Path(__file__).resolve().parent


def main_text(markdown: str) -> str:
    """The page's main text, with code, includes and asides removed."""
    text = re.sub(r"<!--.*?-->", " ", markdown, flags=re.S)
    kept = []
    fence = None  # the opening fence (``` or ~~~, with its length)
    details = 0  # how deep inside <details> blocks we are
    for line in text.splitlines():
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = None
            continue
        opening = re.match(r"(`{3,}|~{3,})", stripped)
        if opening:
            fence = opening.group(1)
            continue
        details += len(re.findall(r"<details\b", stripped))
        closed = len(re.findall(r"</details>", stripped))
        if details or closed:
            details = max(0, details - closed)
            continue
        if re.match(r"\{\{#", stripped):
            continue
        kept.append(line)
    return "\n".join(kept)


def words(text: str) -> int:
    """Words as a reader counts them: runs of letters or digits, with
    inline code and link targets counting as they read."""
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets are not read
    text = re.sub(r"<[^>]+>", " ", text)  # nor HTML tags
    return len(re.findall(r"[A-Za-z0-9][A-Za-z0-9'’_.-]*", text))


def pages() -> list[Path]:
    """Every page SUMMARY.md links, in its order."""
    summary = (BOOK / "SUMMARY.md").read_text()
    return [BOOK / p for p in re.findall(r"\]\(([^)]+\.md)\)", summary)]


def main(argv: list[str]) -> int:
    limit = None
    if argv[:1] == ["--max"]:
        limit = int(argv[1])
        argv = argv[2:]
    paths = [Path(a) for a in argv] or pages()
    over = []
    for path in paths:
        count = words(main_text(path.read_text()))
        print(f"{count:6d}  {path.name}")
        if limit is not None and count > limit:
            over.append(path.name)
    if over:
        print(f"over {limit} words: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
