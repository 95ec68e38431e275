#!/usr/bin/env bash
# Regenerates the program output shown in chapter 8 (book/ch08-uring.md):
#
#   ch08-uring-server.txt   the loop's log under 3 clients (one thread)
#   ch08-uring-client.txt   those 3 clients' timeline: they overlap
#   ch08-uring-c10k.txt     10,000 connections: server RSS and CPU (release)
#   ch08-uring-strace.txt   strace -c of chapter 4's server and this one,
#                           1,000 connections x 50 messages each
#   ch08-uring-strace.md    the same as a table: calls per message
#   ch08-uring-cpu.md       server CPU per message, 1,000 connections,
#                           server and load pinned to a core each,
#                           chapter 4 and chapter 8 taking turns
#   ch08-uring-perf.txt     where that CPU goes: kernel against user space,
#                           and the busiest functions (only if perf works)
#
# Also draws the chapter's pictures (server.bash's timeline_pictures and
# slow_client_run): book/images/ch08-uring-timeline{,-scale}.svg and
# book/images/ch08-uring-slow-clients.svg.
#
# The CPU figures need two cores: the server runs on CPU 1, the load on
# CPU 0. Other work on the machine shows up as noise between rounds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=server.bash
source book/output/server.bash

cargo build --quiet -p ch08-uring -p client -p server-models
cargo build --quiet --release -p ch04-epoll -p ch08-uring --bins --examples

CLIENTS=1000
rounds=target/release/examples/rounds

# What slow clients do to this model.
slow_client_run ch08-uring

# 1. Chapter 1's run: 3 clients x 3 messages, 200 ms of sleep work.
three_clients_run ch08-uring

# 2. 10,000 connections on the release build (chapter 4's example, which
# takes any server binary).
{
    echo "\$ cargo run --release -p ch04-epoll --example c10k --" \
        "target/release/ch08-uring 10000"
    target/release/examples/c10k target/release/ch08-uring 10000
} >"$scratch/c10k.txt"
mv "$scratch/c10k.txt" "$out/ch08-uring-c10k.txt"

# 3. System calls per message: both servers under strace -f -c, the same
# load. Connection setup and teardown are counted too (50 messages per
# connection).
if command -v strace >/dev/null; then
    per_message=50
    for server in ch04-epoll ch08-uring; do
        taskset -c 0 "$rounds" "target/release/$server" "$CLIENTS" \
            "$per_message" --strace "$scratch/strace-$server.txt" >/dev/null
    done
    {
        for server in ch04-epoll ch08-uring; do
            echo "\$ strace -f -c $server   # $CLIENTS connections x" \
                "$per_message messages"
            cat "$scratch/strace-$server.txt"
            echo
        done
    } >"$out/ch08-uring-strace.txt"
    # One row per system call either server made, in calls per message,
    # the busiest first; then the sums.
    {
        echo "| system call | chapter 4 (epoll) | chapter 8 (io_uring) |"
        echo "| --- | ---: | ---: |"
        awk -v messages=$((CLIENTS * per_message)) '
            FNR == 1 { server++ }
            # "% time seconds usecs/call calls [errors] syscall"
            $4 ~ /^[0-9]+$/ && $NF ~ /^[a-z_0-9]+$/ && $NF != "total" {
                count[$NF, server] = $4
                names[$NF] = 1
                total[server] += $4
            }
            END {
                for (name in names) {
                    a = count[name, 1] / messages
                    b = count[name, 2] / messages
                    if (a >= 0.001 || b >= 0.001)
                        printf "%f\t| `%s` | %.3f | %.3f |\n", a + b, name, a, b
                }
                printf "999999\t| **all** | **%.3f** | **%.3f** |\n",
                    total[1] / messages, total[2] / messages
            }' "$scratch/strace-ch04-epoll.txt" \
            "$scratch/strace-ch08-uring.txt" | sort -g -r | cut -f 2 |
            # The sums sorted first; they go last.
            awk 'NR == 1 { all = $0; next } { print } END { print all }'
    } >"$out/ch08-uring-strace.md"
else
    echo "no strace; kept $out/ch08-uring-strace.*" >&2
fi

# 4. Server CPU per message, pinned, in alternating rounds.
turns=5
per_message=100
{
    echo "| round | chapter 4 (epoll), µs | chapter 8 (io_uring), µs |"
    echo "| ---: | ---: | ---: |"
    for turn in $(seq "$turns"); do
        row="| $turn"
        for server in ch04-epoll ch08-uring; do
            us=$(taskset -c 0 "$rounds" "target/release/$server" "$CLIENTS" \
                "$per_message" | sed -n 's/.* \([0-9.]*\) us per message/\1/p')
            echo "$us" >>"$scratch/cpu-$server.txt"
            row="$row | $us"
        done
        echo "$row |"
    done
    median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    a=$(median "$scratch/cpu-ch04-epoll.txt")
    b=$(median "$scratch/cpu-ch08-uring.txt")
    echo "| **median** | **$a** | **$b** |"
    echo
    echo "$CLIENTS connections x $per_message messages per round, server" \
        "on CPU 1, load on CPU 0; chapter 8 / chapter 4 =" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')."
} >"$out/ch08-uring-cpu.md"

# 5. Where the CPU goes: perf samples on the server's core.
if perf stat -e cpu-clock true >/dev/null 2>&1; then
    {
        for server in ch04-epoll ch08-uring; do
            perf record --quiet -e cpu-clock -C 1 -o "$scratch/perf.data" \
                -- taskset -c 0 "$rounds" "target/release/$server" \
                "$CLIENTS" "$per_message" >/dev/null 2>&1
            echo "\$ perf record -e cpu-clock -C 1 -- taskset -c 0 rounds" \
                "$server $CLIENTS $per_message   # perf report --comm $server"
            perf report -i "$scratch/perf.data" --comm "$server" \
                --sort sym --percentage relative --stdio 2>/dev/null |
                awk '/%/ && !/^#/' >"$scratch/perf-$server.txt"
            awk '{ share[$2] += $1 } END {
                printf "samples in the kernel [k]: %.0f%%, in user space" \
                    " [.]: %.0f%%\n", share["[k]"], share["[.]"] }' \
                "$scratch/perf-$server.txt"
            echo "its busiest functions:"
            awk 'n++ < 12' "$scratch/perf-$server.txt"
            echo
        done
    } >"$out/ch08-uring-perf.txt"
else
    echo "perf cannot sample; kept $out/ch08-uring-perf.txt" >&2
fi

echo "wrote $out/ch08-uring-{server,client,c10k,strace,cpu,perf}.*"

# The picture beside the chapter's diagram.
timeline_pictures ch08-uring
echo "wrote book/images/ch08-uring-timeline{,-scale}.svg"
