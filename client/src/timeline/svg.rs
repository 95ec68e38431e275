//! The timeline as an SVG swimlane chart, written as text.
//!
//! Time runs left to right on a labelled axis; each client connection is
//! a row, each message two bars on it: the whole send-to-ack time in the
//! *waiting* colour, and the part the server worked on it in the *served*
//! colour over it. With a server log, a second panel has a row per worker.
//!
//! The chart brings its own light background, so it reads the same on
//! the book's light and dark themes. Its text is sized for the book too:
//! a page column is about 750 px, so the 960 px picture is shown at
//! about four fifths, and 14 px labels still read as 11 px there. Rows are 18 px high while they fit;
//! past that each panel keeps a fixed height and rows shrink, down to a
//! fraction of a pixel, where 1,000 clients become a density picture and
//! per-row labels give way to the first and last client's. Shapes are
//! drawn with crisp edges: antialiased, a served bar a fraction of a
//! pixel high would blend with the waiting bar under it and with its
//! neighbours into a grey that is neither colour.

use std::fmt::Write;

use super::scale::{self, Tick};
use super::{Timeline, WorkerRow};

/// Width of the whole picture.
const WIDTH: f64 = 960.0;
/// Left of the plot: room for row labels.
const LEFT: f64 = 120.0;
/// Right of the plot.
const RIGHT: f64 = 24.0;
/// Width of the plot, where time is drawn.
const PLOT: f64 = WIDTH - LEFT - RIGHT;
/// A row's height while rows fit.
const ROW: f64 = 18.0;
/// The tallest the clients' panel gets; more rows shrink to fit.
const CLIENTS_MAX: f64 = 560.0;
/// The tallest the workers' panel gets.
const WORKERS_MAX: f64 = 280.0;
/// Rows at least this high get their own label.
const LABEL_MIN: f64 = 12.0;
/// Height of the curve of waiting clients under the workers.
const STRIP: f64 = 36.0;
/// Ticks on the time axis, at most.
const MAX_TICKS: usize = 10;

/// The palette: a light card of our own, so that the text contrasts with
/// it whatever the page around it.
const BACKGROUND: &str = "#fbfaf6";
const BORDER: &str = "#c8c3b4";
const INK: &str = "#1d1d1f";
const MUTED: &str = "#55524a";
const GRID: &str = "#e2ddd0";
const WAITING: &str = "#f0c05a";
const SERVED: &str = "#2a64a8";

/// The timeline as a standalone SVG document.
pub fn render(timeline: &Timeline) -> String {
    let mut out = String::with_capacity(4096 + timeline.rows.len() * 256);
    let ticks = scale::ticks(timeline.span, MAX_TICKS);
    let span = timeline.span.as_secs_f64().max(0.001);
    let x = |secs: f64| LEFT + PLOT * secs / span;

    let clients_top = 108.0;
    let rows = timeline.rows.len();
    let row_h = row_height(rows, CLIENTS_MAX);
    let clients_bottom = clients_top + rows as f64 * row_h;
    let workers_top = clients_bottom + 82.0;
    let lanes: usize = timeline.workers.iter().map(|w| w.lanes).sum();
    let lane_h = row_height(lanes, WORKERS_MAX);
    let height = if timeline.workers.is_empty() {
        clients_bottom + 44.0
    } else {
        workers_top + lanes as f64 * lane_h + STRIP + 52.0
    };

    // Writing to a String cannot fail: the `let _` below are for that.
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" \
         height=\"{h}\" viewBox=\"0 0 {WIDTH} {h}\" \
         font-family=\"sans-serif\" shape-rendering=\"crispEdges\">\n\
         <rect width=\"{WIDTH}\" height=\"{h}\" rx=\"6\" \
         fill=\"{BACKGROUND}\" stroke=\"{BORDER}\"/>\n",
        h = num(height)
    );
    header(&mut out, timeline);

    clients_panel(&mut out, timeline, &ticks, &x, clients_top, row_h);
    if !timeline.workers.is_empty() {
        workers_panel(&mut out, timeline, &ticks, &x, workers_top, lane_h);
    }
    out.push_str("</svg>\n");
    out
}

/// The clients' panel from `top`: a row of height `h` per client, each
/// message a waiting bar with its served part over it; the time axis
/// under it.
fn clients_panel(
    out: &mut String,
    timeline: &Timeline,
    ticks: &[Tick],
    x: &impl Fn(f64) -> f64,
    top: f64,
    h: f64,
) {
    let title = "Clients: one row per connection, in the order first served";
    panel_title(out, top, title);
    let bottom = top + timeline.rows.len() as f64 * h;
    grid(out, ticks, x, top, bottom);
    for (i, row) in timeline.rows.iter().enumerate() {
        let (y, bar) = bar(top + i as f64 * h, h);
        let _ = write!(out, "<g data-client=\"{}\">", row.client);
        for m in &row.messages {
            let (sent, acked) = (m.sent.as_secs_f64(), m.acked.as_secs_f64());
            rect(out, "wait", x(sent), x(acked), y, bar, WAITING);
            let served = m.served;
            let (start, end) =
                (served.start.as_secs_f64(), served.end.as_secs_f64());
            rect(out, "served", x(start), x(end), y, bar, SERVED);
        }
        out.push_str("</g>\n");
    }
    let labels: Vec<String> = timeline
        .rows
        .iter()
        .map(|r| format!("client {}", r.client))
        .collect();
    row_labels(out, h, top, &labels);
    axis(out, ticks, x, bottom);
}

/// The workers' panel from `top`: lanes of height `h` for each worker,
/// the curve of waiting clients under them, and the time axis.
fn workers_panel(
    out: &mut String,
    timeline: &Timeline,
    ticks: &[Tick],
    x: &impl Fn(f64) -> f64,
    top: f64,
    h: f64,
) {
    let title = "Server workers (from its log): whom each served when; \
                 a gap is a free worker";
    panel_title(out, top, title);
    let lanes: usize = timeline.workers.iter().map(|w| w.lanes).sum();
    let bottom = top + lanes as f64 * h;
    grid(out, ticks, x, top, bottom);
    let mut y = top;
    for worker in &timeline.workers {
        worker_row(out, worker, y, h, x);
        y += worker.lanes as f64 * h;
    }
    let strip = bottom + 8.0;
    grid(out, ticks, x, strip, strip + STRIP);
    waiting_strip(out, timeline, strip, x);
    axis(out, ticks, x, strip + STRIP);
}

/// A panel's title, over its `top`.
fn panel_title(out: &mut String, top: f64, title: &str) {
    let _ = writeln!(
        out,
        "<text class=\"panel\" x=\"16\" y=\"{}\" font-size=\"15\" \
         font-weight=\"bold\" fill=\"{INK}\">{title}</text>",
        num(top - 10.0)
    );
}

/// The title, the legend and what the split is based on.
fn header(out: &mut String, timeline: &Timeline) {
    let _ = writeln!(
        out,
        "<text class=\"title\" x=\"16\" y=\"28\" font-size=\"20\" \
         font-weight=\"bold\" fill=\"{INK}\">{}</text>",
        escape(&timeline.title)
    );
    let _ = writeln!(
        out,
        "<g class=\"legend\" font-size=\"14\" fill=\"{INK}\">\
         <rect x=\"16\" y=\"41\" width=\"14\" height=\"12\" \
         fill=\"{WAITING}\"/><text x=\"36\" y=\"52\">waiting (sent, not \
         being worked on)</text>\
         <rect x=\"300\" y=\"41\" width=\"14\" height=\"12\" \
         fill=\"{SERVED}\"/><text x=\"320\" y=\"52\">served (the server \
         working on it)</text></g>"
    );
    let _ = writeln!(
        out,
        "<text class=\"basis\" x=\"16\" y=\"73\" font-size=\"13\" \
         fill=\"{MUTED}\">{}</text>",
        escape(&timeline.basis.explain())
    );
}

/// Row height for `rows` rows in at most `max` pixels: whole pixels
/// while rows get one or more, so that their edges fall on pixels (rows
/// of 1.87 px would blur into stripes), fractions below that.
fn row_height(rows: usize, max: f64) -> f64 {
    let fit = ROW.min(max / rows.max(1) as f64);
    if fit >= 1.0 {
        fit.floor()
    } else {
        fit
    }
}

/// The bar inside a row at `y` of height `h`: a gap between rows while
/// they are tall enough to see one, none once they are a density.
fn bar(y: f64, h: f64) -> (f64, f64) {
    if h >= 4.0 {
        let bar = h * 2.0 / 3.0;
        (y + (h - bar) / 2.0, bar)
    } else {
        (y, h)
    }
}

/// One bar from `x0` to `x1`.
fn rect(
    out: &mut String,
    class: &str,
    x0: f64,
    x1: f64,
    y: f64,
    h: f64,
    fill: &str,
) {
    let _ = write!(
        out,
        "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" \
         height=\"{}\" fill=\"{fill}\"/>",
        num(x0),
        num(y),
        num((x1 - x0).max(0.0)),
        num(h)
    );
}

/// Labels for rows of height `h` from `top`: one each while they fit,
/// else the first and the last.
fn row_labels(out: &mut String, h: f64, top: f64, labels: &[String]) {
    let label = |out: &mut String, y: f64, text: &str| {
        let _ = writeln!(
            out,
            "<text class=\"label\" x=\"{}\" y=\"{}\" font-size=\"14\" \
             text-anchor=\"end\" fill=\"{INK}\">{}</text>",
            num(LEFT - 8.0),
            num(y),
            escape(text)
        );
    };
    if h >= LABEL_MIN {
        for (i, text) in labels.iter().enumerate() {
            label(out, top + (i as f64 + 0.5) * h + 5.0, text);
        }
    } else if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
        label(out, top + 9.0, first);
        label(out, top + labels.len() as f64 * h, last);
    }
}

/// One worker's lanes from `y`: each job a served bar, with its client's
/// number on it where there is room.
fn worker_row(
    out: &mut String,
    worker: &WorkerRow,
    y: f64,
    h: f64,
    x: &impl Fn(f64) -> f64,
) {
    let block = worker.lanes as f64 * h;
    let _ = write!(out, "<g data-worker=\"{}\">", escape(&worker.name));
    if block >= 10.0 {
        let _ = write!(
            out,
            "<text class=\"label\" x=\"{}\" y=\"{}\" font-size=\"14\" \
             text-anchor=\"end\" fill=\"{INK}\">{}</text>",
            num(LEFT - 8.0),
            num(y + h.max(10.0) / 2.0 + 5.0),
            escape(&worker.name)
        );
    }
    for job in &worker.jobs {
        let (top, bar) = bar(y + job.lane as f64 * h, h);
        let x0 = x(job.span.start.as_secs_f64());
        let x1 = x(job.span.end.as_secs_f64());
        rect(out, "job", x0, x1, top, bar, SERVED);
        let text = job.client.to_string();
        // About 7.8 px a digit at 12 px, and a margin.
        if h >= LABEL_MIN && x1 - x0 >= 7.8 * text.len() as f64 + 4.0 {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" font-size=\"12\" \
                 text-anchor=\"middle\" fill=\"#ffffff\">{text}</text>",
                num((x0 + x1) / 2.0),
                num(top + bar / 2.0 + 4.0)
            );
        }
    }
    out.push_str("</g>\n");
    // A line between workers, where there is room to see one.
    if block >= 3.0 {
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" \
             stroke=\"{GRID}\"/>",
            num(LEFT + PLOT),
            y = num(y + block)
        );
    }
}

/// Under the workers, how many clients were waiting, as a step curve
/// `STRIP` high from `top`: where it is up and every worker busy, nobody
/// was free.
fn waiting_strip(
    out: &mut String,
    timeline: &Timeline,
    top: f64,
    x: &impl Fn(f64) -> f64,
) {
    let steps = timeline.waiting();
    // The scale is the most clients waiting for a pixel's time or more:
    // at the start every client waits a moment before the server reads
    // its first message, a spike too thin to see that would squash the
    // rest of the curve. Spikes above the scale are drawn clipped.
    let pixel = timeline.span.as_secs_f64() / PLOT;
    let held = |i: usize| {
        let next = steps.get(i + 1).map_or(timeline.span, |s| s.0);
        (next - steps[i].0).as_secs_f64() >= pixel
    };
    // None held that long (an event loop reads every message at once):
    // the curve is flat, and the label says so rather than count a
    // spike nobody can see.
    let most = (0..steps.len())
        .filter(|&i| held(i))
        .map(|i| steps[i].1)
        .max()
        .unwrap_or(0);
    let bottom = top + STRIP;
    let y = |n: usize| bottom - STRIP * n.min(most) as f64 / most.max(1) as f64;
    let note = match most {
        0 => "(none)".to_string(),
        n => format!("(most {n})"),
    };
    let _ = write!(
        out,
        "<text class=\"label\" x=\"{}\" y=\"{}\" font-size=\"14\" \
         text-anchor=\"end\" fill=\"{INK}\">clients waiting</text>\
         <text class=\"label\" x=\"{}\" y=\"{}\" font-size=\"12\" \
         text-anchor=\"end\" fill=\"{MUTED}\">{note}</text>\
         <path class=\"waiting\" fill=\"{WAITING}\" d=\"M{} {}",
        num(LEFT - 8.0),
        num(top + 14.0),
        num(LEFT - 8.0),
        num(top + 27.0),
        num(LEFT),
        num(bottom)
    );
    // Up or down to each step's count, then across to the next step.
    for (i, &(_, n)) in steps.iter().enumerate() {
        let next = steps.get(i + 1).map_or(timeline.span, |s| s.0);
        let _ = write!(out, " V{} H{}", num(y(n)), num(x(next.as_secs_f64())));
    }
    let _ = writeln!(out, " V{} Z\"/>", num(bottom));
}

/// Vertical lines at the ticks, behind a panel's bars.
fn grid(
    out: &mut String,
    ticks: &[Tick],
    x: &impl Fn(f64) -> f64,
    top: f64,
    bottom: f64,
) {
    for tick in ticks {
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\" \
             stroke=\"{GRID}\"/>",
            num(top),
            num(bottom),
            x = num(x(tick.at))
        );
    }
}

/// The time axis under a panel: a line, tick marks, labels.
fn axis(out: &mut String, ticks: &[Tick], x: &impl Fn(f64) -> f64, y: f64) {
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" \
         stroke=\"{MUTED}\"/>",
        num(LEFT + PLOT),
        y = num(y + 2.0)
    );
    for tick in ticks {
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\" \
             stroke=\"{MUTED}\"/><text class=\"tick\" x=\"{x}\" y=\"{}\" \
             font-size=\"14\" text-anchor=\"middle\" \
             fill=\"{INK}\">{}</text>",
            num(y + 2.0),
            num(y + 7.0),
            num(y + 22.0),
            escape(&tick.label),
            x = num(x(tick.at))
        );
    }
}

/// A coordinate: two decimals at most, so that sub-pixel rows still
/// stack, and no more bytes than that.
fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Text made safe for XML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{Basis, Job, Message, Row, Span};
    use std::time::{Duration, Instant};

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// `rows[c]` lists client c+1's messages as (sent, served start,
    /// acked) in ms, the served part lasting to the ack.
    fn timeline(span: u64, rows: &[&[(u64, u64, u64)]]) -> Timeline {
        Timeline {
            title: "a <test> run".to_string(),
            span: ms(span),
            basis: Basis::GivenWork(ms(100)),
            rows: rows
                .iter()
                .enumerate()
                .map(|(c, messages)| Row {
                    client: c + 1,
                    messages: messages
                        .iter()
                        .enumerate()
                        .map(|(number, &(sent, start, acked))| Message {
                            number,
                            sent: ms(sent),
                            acked: ms(acked),
                            served: Span {
                                start: ms(start),
                                end: ms(acked),
                            },
                            worker: None,
                        })
                        .collect(),
                })
                .collect(),
            workers: Vec::new(),
        }
    }

    /// The value of attribute `name` in each element of `class`.
    fn attrs(svg: &str, class: &str, name: &str) -> Vec<f64> {
        let needle = format!("class=\"{class}\"");
        svg.match_indices(&needle)
            .map(|(i, _)| {
                let rest = &svg[i..];
                let rest = rest.split_once('>').unwrap().0;
                let key = format!(" {name}=\"");
                let at = rest.find(&key).unwrap() + key.len();
                rest[at..].split('"').next().unwrap().parse().unwrap()
            })
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| (a - b).abs() < 0.01)
    }

    /// Two clients of a 1 s run: two labelled rows; every bar starts and
    /// ends where its times fall on the 816 px plot; ticks every 100 ms;
    /// the title (escaped), the legend and the basis are there.
    #[test]
    fn rows_bars_ticks_and_legend() {
        let t = timeline(
            1000,
            &[&[(0, 400, 500)], &[(0, 100, 200), (250, 900, 1000)]],
        );
        let svg = render(&t);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<g data-client=").count(), 2);
        assert!(svg.contains(">client 1</text>"));
        assert!(svg.contains(">client 2</text>"));
        let px = |ms: f64| LEFT + PLOT * ms / 1000.0;
        let wait_x = attrs(&svg, "wait", "x");
        let wait_w = attrs(&svg, "wait", "width");
        assert!(close(&wait_x, &[px(0.0), px(0.0), px(250.0)]));
        assert!(close(
            &wait_w,
            &[px(500.0) - LEFT, px(200.0) - LEFT, px(750.0) - LEFT]
        ));
        let served_x = attrs(&svg, "served", "x");
        let served_w = attrs(&svg, "served", "width");
        assert!(close(&served_x, &[px(400.0), px(100.0), px(900.0)]));
        assert!(close(&served_w, &[81.6, 81.6, 81.6]), "{served_w:?}");
        // Rows are 18 px from the top of the panel, bars 12 px in them.
        let ys = attrs(&svg, "wait", "y");
        assert!(close(&ys, &[111.0, 129.0, 129.0]), "{ys:?}");
        let ticks: Vec<_> = svg
            .match_indices("class=\"tick\"")
            .map(|(i, _)| {
                let rest = &svg[i..];
                let text = rest.split_once('>').unwrap().1;
                text.split_once('<').unwrap().0.to_string()
            })
            .collect();
        assert_eq!(ticks.len(), 11);
        assert_eq!(ticks[0], "0.0 s");
        assert_eq!(ticks[5], "0.5 s");
        assert_eq!(ticks[10], "1.0 s");
        let tick_x = attrs(&svg, "tick", "x");
        assert!(close(&tick_x[5..6], &[px(500.0)]));
        assert!(svg.contains(">a &lt;test&gt; run</text>"));
        assert!(svg.contains("waiting (sent, not being worked on)"));
        assert!(svg.contains("served (the server working on it)"));
        assert!(svg.contains("the --work-ms given"));
        assert!(!svg.contains("Server workers"));
    }

    /// With workers: a panel, a label and a bar per job, the client's
    /// number on bars wide enough for it.
    #[test]
    fn worker_panel() {
        let mut t = timeline(1000, &[&[(0, 0, 500)], &[(0, 500, 1000)]]);
        let job = |client, start, end| Job {
            client,
            number: 0,
            span: Span {
                start: ms(start),
                end: ms(end),
            },
            lane: 0,
        };
        t.workers = vec![WorkerRow {
            name: "worker-1".to_string(),
            jobs: vec![job(1, 0, 500), job(2, 500, 1000)],
            lanes: 1,
        }];
        let svg = render(&t);
        assert!(svg.contains("Server workers"));
        assert!(svg.contains(">worker-1</text>"));
        assert_eq!(attrs(&svg, "job", "width"), [408.0, 408.0]);
        assert!(svg.contains("fill=\"#ffffff\">2</text>"));
        // Client 2 waited 0-500 ms: the curve is up (1 of 1) to x(500),
        // then down for the rest.
        assert!(svg.contains(">(most 1)</text>"));
        let path = svg.split("class=\"waiting\"").nth(1).unwrap();
        let d = path.split(" d=\"").nth(1).unwrap().split('"').next();
        let (top, bottom) = (svg_top(&svg), svg_top(&svg) + STRIP);
        assert_eq!(
            d.unwrap(),
            format!(
                "M120 {b} V{t} H528 V{b} H936 V{b} Z",
                b = num(bottom),
                t = num(top)
            )
        );
    }

    /// Nobody waiting for as long as a pixel (every client served at
    /// once): the curve stays flat and says `(none)`, not a count of a
    /// spike too thin to draw.
    #[test]
    fn nobody_waiting() {
        // Client 2's message was read 1 ms after it was sent: 1 ms of a
        // 1 s axis is under a pixel.
        let mut t = timeline(1000, &[&[(0, 0, 500)], &[(0, 1, 500)]]);
        let job = |client| Job {
            client,
            number: 0,
            span: Span {
                start: ms(0),
                end: ms(500),
            },
            lane: client - 1,
        };
        t.workers = vec![WorkerRow {
            name: "main".to_string(),
            jobs: vec![job(1), job(2)],
            lanes: 2,
        }];
        let svg = render(&t);
        assert!(svg.contains(">(none)</text>"), "{svg}");
        let path = svg.split("class=\"waiting\"").nth(1).unwrap();
        let d = path.split(" d=\"").nth(1).unwrap().split('"').next();
        let heights: Vec<&str> = d
            .unwrap()
            .split(' ')
            .filter_map(|step| step.strip_prefix('V'))
            .collect();
        assert!(heights.windows(2).all(|w| w[0] == w[1]), "{heights:?}");
    }

    /// The top of the waiting curve: 8 px under the last worker lane.
    fn svg_top(svg: &str) -> f64 {
        let lanes = attrs(svg, "job", "y");
        let heights = attrs(svg, "job", "height");
        // A lane is 18 px, its bar 12 px in the middle of it.
        lanes.last().unwrap() + heights.last().unwrap() + 3.0 + 8.0
    }

    /// 1,000 clients of 3 messages each: rows shrink to fit the panel,
    /// only the first and last are labelled, every bar is drawn. (Run it
    /// with `--nocapture` to see how long rendering takes.)
    #[test]
    fn a_thousand_clients() {
        let messages: Vec<[(u64, u64, u64); 3]> = (0..1000u64)
            .map(|c| {
                [
                    (0, c * 3, c * 3 + 1),
                    (c * 3 + 1, c * 3 + 1, c * 3 + 2),
                    (c * 3 + 2, c * 3 + 2, c * 3 + 3),
                ]
            })
            .collect();
        let rows: Vec<&[(u64, u64, u64)]> =
            messages.iter().map(|m| m.as_slice()).collect();
        let t = timeline(3000, &rows);
        let began = Instant::now();
        let svg = render(&t);
        println!(
            "1,000 x 3 rendered in {:?}, {} bytes",
            began.elapsed(),
            svg.len()
        );
        assert_eq!(svg.matches("<g data-client=").count(), 1000);
        assert_eq!(svg.matches("class=\"served\"").count(), 3000);
        assert_eq!(svg.matches("class=\"label\"").count(), 2);
        assert!(svg.contains(">client 1000</text>"));
        let heights = attrs(&svg, "wait", "height");
        assert!(heights.iter().all(|&h| (h - 0.56).abs() < 0.01));
        let height: f64 = svg
            .split("height=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(height < 800.0, "{height}");
    }
}
