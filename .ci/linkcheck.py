#!/usr/bin/env python3
"""Checks every internal link and image in the built book.

Usage: python3 .ci/linkcheck.py [target/book]

Reads every HTML page mdBook wrote, and for each `href` and `src` that
stays inside the site checks that the file exists and, when the link has a
`#fragment`, that the target page has an element with that id. External
links (http:, https:, mailto:) are not fetched: CI has no network, and
their health is not this book's to guarantee. Standard library only.
"""

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

EXTERNAL = ("http", "https", "mailto", "javascript", "data", "tel")


class Page(HTMLParser):
    """Collects a page's ids, links and base href."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.links = []  # (line, attribute, url)
        self.base = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "base" and attrs.get("href"):
            self.base = attrs["href"]
        for key in ("href", "src"):
            if key in attrs and attrs[key] is not None:
                # <link rel=...> to fonts and styles count too: a missing
                # stylesheet is a broken page.
                self.links.append((self.getpos()[0], key, attrs[key]))


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/book")
    root = root.resolve()
    pages = {p: parse(p) for p in sorted(root.rglob("*.html"))}
    if not pages:
        print(f"linkcheck: no HTML pages under {root}", file=sys.stderr)
        return 1
    problems = []
    checked = 0
    for path, page in pages.items():
        for line, attr, url in page.links:
            parts = urlsplit(url)
            if parts.scheme in EXTERNAL or url.startswith("//"):
                continue
            checked += 1
            where = f"{path.relative_to(root)}:{line}: {attr}={url!r}"
            # mdBook's 404 page sets <base href="/">: its links are
            # relative to the site root, wherever it is served.
            if page.base and page.base.startswith("/"):
                directory = root
            else:
                directory = path.parent
            if parts.path.startswith("/"):
                target = root / unquote(parts.path).lstrip("/")
            elif parts.path:
                target = directory / unquote(parts.path)
            else:
                target = path
            target = target.resolve()
            if target.is_dir():
                target = target / "index.html"
            if root not in target.parents and target != root:
                problems.append(f"{where}: points outside the site")
                continue
            if not target.is_file():
                problems.append(f"{where}: no such file")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if fragment not in ids:
                    problems.append(f"{where}: no id {fragment!r} there")
    for problem in problems:
        print(f"linkcheck: {problem}", file=sys.stderr)
    print(
        f"linkcheck: {len(pages)} pages, {checked} internal links and "
        f"images, {len(problems)} broken"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
