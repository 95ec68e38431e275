#!/usr/bin/env bash
# Regenerates the size of chapter 6's runtime (book/ch06-runtime.md): the
# lines of chapters/ch06-runtime/src/runtime/, file by file, its unit tests
# (tests.rs) apart.
#
# Writes ch06-runtime-lines.txt. A line is blank if it holds only white
# space, a comment if its first non-blank characters are `//` (comments,
# `///` and `//!` docs, anchors), and code otherwise - a line of code with
# a comment after it is code. The layout is rustfmt's: the script checks
# that the crate is formatted before it counts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

cargo fmt --check -p ch06-runtime
dir=chapters/ch06-runtime/src/runtime
files=()
for file in "$dir"/*.rs; do
    [ "${file##*/}" = tests.rs ] || files+=("$file")
done
{
    echo "\$ # $dir/*.rs, tests.rs apart"
    awk '
        FNR == 1 { names[++n] = FILENAME }
        /^[[:space:]]*$/ { blank[FILENAME]++; next }
        /^[[:space:]]*\/\// { comment[FILENAME]++; next }
        { code[FILENAME]++ }
        function row(name, code, comment, blank) {
            printf "%-12s %6d %9d %6d %6d\n", name, code, comment, blank,
                code + comment + blank
        }
        END {
            printf "%-12s %6s %9s %6s %6s\n",
                "FILE", "CODE", "COMMENTS", "BLANK", "TOTAL"
            for (i = 1; i <= n; i++) {
                f = names[i]
                base = f
                sub(/.*\//, "", base)
                row(base, code[f], comment[f], blank[f])
                all_code += code[f]
                all_comment += comment[f]
                all_blank += blank[f]
            }
            row("all", all_code, all_comment, all_blank)
        }' "${files[@]}"
} >"$scratch/lines.txt"
mv "$scratch/lines.txt" "$out/ch06-runtime-lines.txt"
echo "wrote $out/ch06-runtime-lines.txt"
