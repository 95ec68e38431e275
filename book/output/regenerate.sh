#!/usr/bin/env bash
# Regenerates every program output the book shows, by running every other
# script in this directory (one per chapter: ch01-single.sh, ...). Each
# script builds what it runs, runs the real programs on loopback, and
# rewrites its chapter's `*.txt` files. Run it after changing a server, the
# client or their log lines, and commit the new outputs with the change.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$(basename "${BASH_SOURCE[0]}")"

failed=()
for script in "$here"/*.sh; do
    name="$(basename "$script")"
    [ "$name" = "$self" ] && continue
    echo "==> $name"
    if ! bash "$script"; then
        failed+=("$name")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
