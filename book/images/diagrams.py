#!/usr/bin/env python3
"""Draws the book's model diagrams: book/images/ch0N-*.svg.

Run it from anywhere (`python3 book/images/diagrams.py`) after changing a
diagram, and commit the SVGs it writes. Standard library only.

The pictures must read in mdBook's light themes and its dark ones. An SVG
shown with <img> cannot see the page's colours, so: the background is
transparent, every word sits in white on a filled shape of a mid-dark
colour (readable on any page), and lines are a mid grey that shows on white
and on near-black alike.
"""

from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent

FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
GREY = "#6b7280"  # lines, region outlines, small labels
CLIENT = "#7c4dbb"  # clients (outside the server)
KERNEL = "#16817f"  # queues, and what the kernel holds (backlog, epoll)
PROCESS = "#2f67b1"  # a process or the thread that runs the model
WORKER = "#2b7d4f"  # the code that serves one session
WARN = "#b0471f"  # rejection, errors


class Svg:
    """A diagram under construction: shapes are appended in paint order."""

    def __init__(self, width, height, title, desc):
        self.width = width
        self.height = height
        self.title = title
        self.desc = desc
        self.parts = []

    def region(self, x, y, w, h, label):
        """A dashed outline (a process, the kernel) with a label tab."""
        self.parts.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="10" '
            f'fill="none" stroke="{GREY}" stroke-width="1.5" '
            f'stroke-dasharray="6 4"/>'
        )
        self.pill(x + 12, y - 11, label, GREY, anchor="start")

    def box(self, x, y, w, h, lines, fill, size=14):
        """A filled box with centred white text, one entry per line."""
        self.parts.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" '
            f'fill="{fill}"/>'
        )
        lines = [lines] if isinstance(lines, str) else lines
        step = size + 4
        top = y + h / 2 - step * (len(lines) - 1) / 2
        for i, line in enumerate(lines):
            bold = ' font-weight="600"' if i == 0 else ""
            self.text(x + w / 2, top + i * step, line, size, bold)

    def pill(self, x, y, label, fill, anchor="middle", size=12):
        """A small rounded label; `x` is its centre or, with "start", its
        left edge."""
        w = 7.2 * len(label) * size / 12 + 14
        left = x - w / 2 if anchor == "middle" else x
        self.parts.append(
            f'<rect x="{left:.1f}" y="{y}" width="{w:.1f}" height="22" '
            f'rx="11" fill="{fill}"/>'
        )
        self.text(left + w / 2, y + 11, label, size)

    def text(self, x, y, label, size, extra=""):
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" '
            f'fill="#ffffff" text-anchor="middle" '
            f'dominant-baseline="central"{extra}>{escape(label)}</text>'
        )

    def arrow(self, *points, dashed=False):
        """A grey polyline through `points`, with a head at the end."""
        path = " ".join(f"{x},{y}" for x, y in points)
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        self.parts.append(
            f'<polyline points="{path}" fill="none" stroke="{GREY}" '
            f'stroke-width="2"{dash} marker-end="url(#head)"/>'
        )

    def write(self, name):
        svg = [
            f'<svg xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {self.width} {self.height}" '
            f'width="{self.width}" height="{self.height}" '
            f'font-family="{FONT}" role="img" '
            f'aria-labelledby="title desc">',
            f'<title id="title">{escape(self.title)}</title>',
            f'<desc id="desc">{escape(self.desc)}</desc>',
            "<defs>",
            '<marker id="head" viewBox="0 0 10 10" refX="9" refY="5" '
            'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{GREY}"/></marker>',
            "</defs>",
            *self.parts,
            "</svg>",
        ]
        (HERE / name).write_text("\n".join(svg) + "\n")
        print(f"wrote book/images/{name}")


def clients(svg, x, ys, names, w=110, h=36):
    for y, name in zip(ys, names):
        svg.box(x, y, w, h, name, CLIENT)


def single():
    svg = Svg(
        780,
        330,
        "The single server",
        "One process with one thread. Clients B and C have connected and "
        "wait in the kernel's listen backlog while the thread serves client "
        "A's whole session; then it closes A and accepts the next one.",
    )
    clients(svg, 20, [56, 110, 226], ["client B", "client C", "client A"])
    svg.region(170, 30, 220, 280, "kernel")
    svg.box(190, 50, 180, 108, [], KERNEL)
    svg.text(280, 70, "listen backlog", 14, ' font-weight="600"')
    svg.box(200, 88, 160, 28, "B: connected, waiting", PROCESS, 12)
    svg.box(200, 122, 160, 28, "C: connected, waiting", PROCESS, 12)
    svg.pill(280, 166, "at most 128 waiting", GREY)
    svg.arrow((130, 74), (196, 102))
    svg.arrow((130, 128), (196, 136))
    svg.region(420, 30, 340, 280, "process: one thread")
    svg.box(450, 56, 150, 40, ["accept()", "one connection"], PROCESS, 12)
    svg.box(
        450,
        130,
        230,
        88,
        ["serve the whole session", "read, frame, work W, ack", "x M messages",
         "until goodbye"],
        WORKER,
        12,
    )
    svg.box(450, 252, 150, 36, "close", PROCESS, 13)
    svg.arrow((370, 90), (446, 76))
    svg.arrow((525, 96), (525, 126))
    svg.arrow((525, 218), (525, 248))
    svg.arrow((600, 270), (735, 270), (735, 76), (604, 76))
    svg.pill(735, 160, "next", GREY)
    svg.arrow((130, 244), (330, 244), (446, 196))
    svg.pill(250, 233, "A: being served", GREY)
    svg.write("ch01-single.svg")


def prefork():
    svg = Svg(
        780,
        420,
        "The prefork server",
        "A master process forks N worker processes that share one listening "
        "socket. Each worker accepts one connection from the shared backlog "
        "and serves it to the end, like the single server. The master only "
        "supervises: it replaces workers that die and forwards signals.",
    )
    clients(svg, 20, [110, 170, 230, 290], ["client A", "client B",
                                             "client C", "client D"])
    svg.region(160, 90, 200, 270, "kernel")
    svg.box(178, 120, 164, 150, [], KERNEL)
    svg.text(260, 140, "one listening socket", 13, ' font-weight="600"')
    svg.text(260, 160, "and its backlog,", 12)
    svg.text(260, 177, "shared by every worker", 12)
    svg.box(192, 200, 136, 26, "D: waiting", PROCESS, 12)
    svg.pill(260, 300, "inherited across fork()", GREY)
    for y in (128, 188, 248):
        svg.arrow((130, y), (174, min(max(y, 150), 240)))
    svg.arrow((130, 308), (188, 226))
    svg.box(420, 20, 330, 62,
            ["master process", "fork() N workers, replace any that dies,",
             "forward SIGTERM; serves no client"], PROCESS, 12)
    ys = [120, 210, 300]
    for i, y in enumerate(ys):
        svg.region(420, y, 330, 66, f"worker process {i + 1}")
        svg.box(436, y + 14, 110, 40, ["accept()", "next client"],
                PROCESS, 12)
        svg.box(566, y + 14, 170, 40,
                ["serve whole session", "read, work, ack"], WORKER, 12)
        svg.arrow((546, y + 34), (562, y + 34))
        svg.arrow((342, 170 + (i - 1) * 30), (432, y + 34))
    svg.arrow((440, 82), (440, 108), dashed=True)
    svg.pill(480, 86, "fork", GREY)
    svg.pill(585, 384, "N clients served at once, one per process", GREY)
    svg.write("ch02-prefork.svg")


def threaded():
    svg = Svg(
        780,
        380,
        "The thread pool server",
        "One process. The acceptor thread accepts connections and pushes "
        "them onto a bounded queue; when the queue is full (client F) it "
        "answers err server busy and closes. N worker threads pop connections and "
        "serve each session to the end.",
    )
    clients(svg, 20, [70, 130, 190, 290], ["client A", "client B",
                                            "client C", "client F"])
    svg.region(160, 40, 600, 320, "one process")
    svg.box(176, 120, 144, 64, ["acceptor", "main thread: accept()"],
            PROCESS, 12)
    for y in (88, 148, 208):
        svg.arrow((130, y), (172, 152))
    svg.box(340, 100, 150, 104, [], KERNEL)
    svg.text(415, 118, "accept queue", 13, ' font-weight="600"')
    svg.text(415, 136, "at most --queue", 12)
    svg.box(355, 150, 120, 22, "conn D", PROCESS, 11)
    svg.box(355, 176, 120, 22, "conn E", PROCESS, 11)
    svg.arrow((320, 152), (336, 152))
    svg.pill(415, 236, "Mutex + Condvar", GREY)
    for i, y in enumerate((70, 150, 230)):
        svg.box(530, y, 210, 56,
                [f"worker thread {i + 1}", "pop, serve whole session"],
                WORKER, 12)
        svg.arrow((490, 152), (526, y + 28))
    svg.pill(635, 306, "idle workers block, never spin", GREY)
    svg.box(180, 290, 180, 48,
            ["queue full:", "reply err server busy, close"], WARN, 12)
    svg.arrow((240, 184), (240, 286))
    svg.arrow((130, 300), (172, 176))
    svg.arrow((176, 326), (134, 318), dashed=True)
    svg.write("ch03-threaded.svg")


def many_clients_and_epoll(svg, interest):
    """The left half of the event-loop pictures (chapters 4 and 5): many
    clients, and the kernel's epoll instance and socket buffers; `interest`
    is the two lines that say what the interest list holds."""
    clients(svg, 20, [60, 115, 170, 225, 280],
            ["client A", "client B", "client C", "client D", "...10,000"])
    svg.region(160, 30, 190, 340, "kernel")
    svg.box(178, 56, 154, 150, [], KERNEL)
    svg.text(255, 76, "epoll instance", 13, ' font-weight="600"')
    svg.text(255, 98, "interest list:", 12)
    svg.text(255, 116, interest[0], 12)
    svg.text(255, 134, interest[1], 12)
    svg.text(255, 170, "ready list:", 12, ' font-weight="600"')
    svg.text(255, 188, "what can proceed now", 12)
    for y in (78, 133, 188, 243, 298):
        svg.arrow((130, y), (174, min(max(y, 80), 200)))
    svg.box(178, 270, 154, 74, ["socket buffers", "bytes in, acks out,",
                                "one pair per client"], KERNEL, 12)


def epoll():
    svg = Svg(
        780,
        390,
        "The epoll event loop",
        "One thread runs a loop around epoll_wait. The kernel reports which "
        "descriptors are ready: the listener and client sockets. For "
        "each, the loop does only what cannot block: accept, read and frame "
        "what arrived, start a timer for a message's work, write an ack "
        "when its deadline passes. Every connection is a state in a table, "
        "every pending deadline an entry in a heap.",
    )
    many_clients_and_epoll(svg, ["listener", "every client socket"])
    svg.pill(255, 228, "non-blocking sockets", GREY)
    svg.region(380, 30, 380, 340, "one process, one thread")
    svg.box(400, 56, 200, 48, ["epoll_wait()", "until ready or a timer is due"],
            PROCESS, 12)
    svg.arrow((332, 120), (396, 84))
    svg.box(400, 136, 340, 110, [], WORKER)
    svg.text(570, 154, "for each ready event", 13, ' font-weight="600"')
    svg.text(570, 176, "listener: accept all pending", 12)
    svg.text(570, 194, "socket: read, frame, start a work timer", 12)
    svg.text(570, 212, "due timer: work done, queue the ack", 12)
    svg.text(570, 230, "writable: send pending acks", 12)
    svg.arrow((485, 104), (485, 132))
    svg.arrow((740, 190), (755, 190), (755, 80), (604, 80))
    svg.box(400, 270, 340, 90, [], KERNEL)
    svg.text(570, 286, "state, not stacks", 13, ' font-weight="600"')
    svg.text(570, 306, "connections: A reading, B working until t,", 12)
    svg.text(570, 324, "C sending an ack, D idle since t", 12)
    svg.text(570, 344, "timers: a min-heap of deadlines", 12)
    svg.arrow((570, 246), (570, 266))
    svg.write("ch04-epoll.svg")


def tokio():
    svg = Svg(
        780,
        430,
        "The tokio server",
        "One runtime thread runs tokio's reactor, scheduler and timer wheel. "
        "The reactor waits in epoll_wait through mio and wakes the tasks "
        "whose sockets are ready; the scheduler polls each woken task, one "
        "per connection, a state machine the compiler wrote from the "
        "session's async fn; the timer wheel wakes tasks whose sleep or "
        "idle limit is due. Spin work goes to a separate pool of blocking "
        "threads.",
    )
    many_clients_and_epoll(
        svg, ["listener, client sockets", "(edge-triggered, mio)"])
    svg.region(380, 30, 380, 260, "one runtime thread (current-thread)")
    svg.box(400, 56, 160, 60, ["reactor", "epoll_wait, wakers"],
            PROCESS, 12)
    svg.box(580, 56, 160, 60, ["timer wheel", "sleeps, idle limits"],
            PROCESS, 12)
    svg.arrow((332, 120), (396, 90))
    svg.box(400, 150, 340, 120, [], WORKER)
    svg.text(570, 168, "scheduler: poll each woken task", 13,
             ' font-weight="600"')
    svg.text(570, 192, "one task per connection:", 12)
    svg.text(570, 210, "the session future, a state machine", 12)
    svg.text(570, 228, "with a state per .await (about 1.2 KB)", 12)
    svg.text(570, 250, "+ the shared read buffer, while ready", 12)
    svg.arrow((480, 116), (480, 146))
    svg.arrow((660, 116), (660, 146))
    svg.region(380, 320, 380, 90, "blocking pool (spawn_blocking)")
    svg.box(400, 340, 340, 50, ["spin work", "threads made for blocking, "
                                "results awaited"], WARN, 12)
    svg.arrow((690, 270), (690, 336), dashed=True)
    svg.write("ch05-tokio.svg")


def runtime():
    svg = Svg(
        780,
        390,
        "The hand-made runtime",
        "One thread runs block_on's loop: the executor polls each task on "
        "the ready queue, one task per connection, the state machine the "
        "compiler wrote from the session's async fn; then the reactor waits "
        "in epoll_wait through chapter 4's Poller until a socket is ready "
        "or the earliest timer is due, and wakes the tasks concerned by "
        "calling their wakers, which put them back on the ready queue. Spin "
        "work runs in place and holds every task.",
    )
    many_clients_and_epoll(
        svg, ["listener, client sockets", "(level-triggered)"])
    svg.region(380, 30, 380, 340, "one thread: block_on's loop")
    svg.box(400, 56, 160, 60, ["reactor", "sources: token -> wakers"],
            PROCESS, 12)
    svg.box(580, 56, 160, 60, ["timers", "deadline -> waker"],
            PROCESS, 12)
    svg.arrow((332, 120), (396, 90))
    svg.box(400, 150, 340, 200, [], WORKER)
    svg.text(570, 168, "executor: ready queue of task numbers", 13,
             ' font-weight="600"')
    svg.text(570, 192, "waker.wake() pushes the task's number;", 12)
    svg.text(570, 210, "the loop polls each task once per wake", 12)
    svg.text(570, 234, "one task per connection: the session", 12)
    svg.text(570, 252, "future (744 bytes), no buffer while idle", 12)
    svg.text(570, 276, "spin work: runs in place, all wait", 12)
    svg.arrow((480, 116), (480, 146))
    svg.arrow((660, 116), (660, 146))
    svg.write("ch06-runtime.svg")


def loops():
    svg = Svg(
        780,
        430,
        "Many event loops",
        "One process runs N threads, each chapter 4's event loop on an epoll "
        "instance of its own. A connection belongs to the loop that accepted "
        "it. Who accepts is the choice: shared, one listening socket in "
        "every loop's epoll, so a connection wakes every idle loop; "
        "exclusive, the same socket added with EPOLLEXCLUSIVE, so it wakes "
        "one; reuseport, a listening socket per loop on the same port, and "
        "the kernel hashes each connection to one of them.",
    )
    clients(svg, 20, [70, 125, 180, 235, 290],
            ["client A", "client B", "client C", "client D", "..."])
    svg.region(160, 30, 230, 380, "kernel")
    svg.box(178, 50, 194, 96, [], KERNEL)
    svg.text(275, 68, "shared / exclusive", 13, ' font-weight="600"')
    svg.text(275, 90, "one listening socket,", 12)
    svg.text(275, 108, "one backlog, in every", 12)
    svg.text(275, 126, "loop's epoll", 12)
    svg.box(178, 166, 194, 96, [], KERNEL)
    svg.text(275, 184, "reuseport", 13, ' font-weight="600"')
    svg.text(275, 206, "a listening socket per", 12)
    svg.text(275, 224, "loop; a hash of the ports", 12)
    svg.text(275, 242, "picks one per connection", 12)
    svg.box(178, 282, 194, 110, [], KERNEL)
    svg.text(275, 300, "epoll instances", 13, ' font-weight="600"')
    svg.text(275, 322, "one per loop: its listener,", 12)
    svg.text(275, 340, "its own clients' sockets", 12)
    svg.text(275, 364, "shared: all woken", 12)
    svg.text(275, 382, "exclusive: one woken", 12)
    for y in (88, 143, 198, 253, 308):
        svg.arrow((130, y), (174, min(max(y, 100), 214)))
    svg.region(410, 30, 350, 380, "one process, N threads")
    for i, y in enumerate((56, 156, 256)):
        name = f"loop-{i}" if i < 2 else "loop-N-1"
        svg.box(430, y, 310, 80, [], WORKER)
        svg.text(585, y + 18, f"{name}: chapter 4's event loop", 13,
                 ' font-weight="600"')
        svg.text(585, y + 40, "epoll_wait, accept, read, timers, acks", 12)
        svg.text(585, y + 60, "its connections stay with it", 12)
        svg.arrow((372, 337), (426, y + 40))
    svg.pill(585, 360, "spin work holds one loop, not all", GREY)
    svg.write("ch07-loops.svg")


def uring():
    svg = Svg(
        780,
        390,
        "The io_uring event loop",
        "One thread runs a loop around io_uring_enter. Each call hands the "
        "kernel the turn's requests from the submission ring (accept, "
        "receive, send, cancel) and waits for results in the completion "
        "ring. For each completion the loop frames what arrived in a "
        "buffer of the pool, starts a timer for a message's work, and asks "
        "for the next send. Connections are states in a table; every "
        "request in flight is an entry in a table of operations that holds "
        "its socket; the kernel fills buffers of a pool it was lent once.",
    )
    clients(svg, 20, [60, 115, 170, 225, 280],
            ["client A", "client B", "client C", "client D", "...10,000"])
    svg.region(160, 30, 190, 340, "kernel")
    svg.box(178, 56, 154, 62, ["submission ring", "requests: accept,",
                               "recv, send, cancel"], KERNEL, 12)
    svg.box(178, 140, 154, 62, ["completion ring", "op 7: 11 bytes, buf 12",
                                "op 9: 3 bytes sent"], KERNEL, 12)
    for y in (78, 133, 188, 243, 298):
        svg.arrow((130, y), (174, min(max(y, 230), 300)))
    svg.box(178, 226, 154, 74, ["socket buffers", "bytes in, acks out,",
                                "one pair per client"], KERNEL, 12)
    svg.arrow((255, 222), (255, 206))
    svg.arrow((255, 122), (255, 136))
    svg.region(380, 30, 380, 340, "one process, one thread")
    svg.box(400, 56, 200, 48, ["io_uring_enter()", "submit all, wait for one"],
            PROCESS, 12)
    svg.arrow((396, 72), (336, 86))
    svg.arrow((336, 170), (396, 96))
    svg.box(400, 136, 340, 110, [], WORKER)
    svg.text(570, 154, "for each completion", 13, ' font-weight="600"')
    svg.text(570, 176, "accept: a new client, ask for its recv", 12)
    svg.text(570, 194, "recv: frame, start a work timer, return the buffer", 12)
    svg.text(570, 212, "send: ask for the rest, or the next", 12)
    svg.text(570, 230, "due timer: work done, ask to send the ack", 12)
    svg.arrow((485, 104), (485, 132))
    svg.arrow((740, 190), (755, 190), (755, 80), (604, 80))
    svg.box(400, 270, 340, 90, [], KERNEL)
    svg.text(570, 286, "state, and what the kernel holds", 13,
             ' font-weight="600"')
    svg.text(570, 306, "connections, timers: as in chapter 4", 12)
    svg.text(570, 324, "operations: op 7 = recv for B, holds B's socket", 12)
    svg.text(570, 344, "pool: buffers lent to the kernel once", 12)
    svg.arrow((570, 246), (570, 266))
    svg.write("ch08-uring.svg")


if __name__ == "__main__":
    single()
    prefork()
    threaded()
    epoll()
    tokio()
    runtime()
    loops()
    uring()
