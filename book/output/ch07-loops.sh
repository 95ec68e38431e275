#!/usr/bin/env bash
# Regenerates the program output shown in chapter 7 (book/ch07-loops.md):
#
#   ch07-loops-server.txt   the server's log under 3 clients: each line
#                           names the loop (thread) that did the work, and
#                           each loop prints its counts when it stops
#   ch07-loops-client.txt   those 3 clients' timeline: they overlap
#
# Also draws the chapter's pictures (server.bash's timeline_pictures and
# slow_client_run): book/images/ch07-loops-timeline.svg,
# ch07-loops-timeline-scale.svg on the time axis every model shares, and
# ch07-loops-slow-clients.svg. The server runs with its defaults: a loop
# per CPU, --balance shared.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

cargo build --quiet -p ch07-loops -p client -p server-models

# What slow clients do to this model: three silent connections, then
# three ordinary clients, drawn to book/images/ch07-loops-slow-clients.svg.
slow_client_run ch07-loops

# Three clients at once, then SIGTERM: every loop drains, prints its
# counts, and the server exits 0.
three_clients_run ch07-loops
echo "wrote $out/ch07-loops-server.txt, ch07-loops-client.txt"

# The picture beside the chapter's diagram.
timeline_pictures ch07-loops
echo "wrote book/images/ch07-loops-timeline{,-scale}.svg"
