#!/usr/bin/env bash
# Regenerates the program output shown in chapter 5 (book/ch05-tokio.md):
# the tokio server under 3 concurrent clients, then SIGTERM.
#
# Writes ch05-tokio-server.txt (the server's stdout and stderr) and
# ch05-tokio-client.txt (the client's timeline and summary). The run is
# chapter 1's, so the two outputs compare line for line: same clients,
# same work, but here every client is served at once, by one thread.
#
# Also draws the chapter's picture (server.bash's timeline_pictures):
# book/images/ch05-tokio-timeline.svg, and ch05-tokio-timeline-scale.svg
# on the time axis all five models share.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

cargo build --quiet -p ch05-tokio -p client -p server-models

# What slow clients do to this model: three silent connections, then
# three ordinary clients, drawn to book/images/ch05-tokio-slow-clients.svg.
slow_client_run ch05-tokio

# Three clients at once, then SIGTERM: tokio's signal handler flips the
# stop switch; the server stops accepting, lets connections finish, and
# exits 0.
three_clients_run ch05-tokio
echo "wrote $out/ch05-tokio-server.txt, ch05-tokio-client.txt"

# The picture beside the chapter's diagram.
timeline_pictures ch05-tokio
echo "wrote book/images/ch05-tokio-timeline{,-scale}.svg"
