#!/usr/bin/env bash
# Regenerates the program output shown in chapter 1 (book/ch01-single.md):
# the single server under 3 concurrent clients, and the server's own log.
#
# Writes ch01-single-server.txt (the server's stdout and stderr) and
# ch01-single-client.txt (the client's timeline and summary). Short work
# (200 ms per message) keeps the run to a couple of seconds; the shape of
# the output is what the chapter discusses, not the exact times.
#
# Also draws the chapter's picture (server.bash's timeline_pictures):
# book/images/ch01-single-timeline.svg, and ch01-single-timeline-scale.svg
# on the time axis all five models share.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

cargo build --quiet -p ch01-single -p client -p server-models

# What slow clients do to this model: three silent connections, then
# three ordinary clients, drawn to book/images/ch01-single-slow-clients.svg.
slow_client_run ch01-single

# Three clients at once, then SIGTERM: the server finishes what it has,
# logs, and exits 0.
three_clients_run ch01-single
echo "wrote $out/ch01-single-server.txt, ch01-single-client.txt"

# The picture beside the chapter's diagram.
timeline_pictures ch01-single
echo "wrote book/images/ch01-single-timeline{,-scale}.svg"
