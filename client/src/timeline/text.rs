//! The timeline as text: one line per client, time across the line, one
//! character for each stretch of it: waiting, served, or nothing.
//!
//! ```text
//! 3 clients x 1 message, work 200 ms
//! client 1 |##########                    |
//! client 2 |..........##########          |
//! client 3 |....................##########|
//!          +---------+---------+---------+
//!          0 ms      200 ms    400 ms
//! ```
//!
//! (chapter 1, one client at a time.) Rows come in the order the server
//! first served the clients, as in [`Timeline::rows`]. A character
//! stands for a stretch of time, so it shows what happened most in it:
//! served if the server worked on the message at least as long as it
//! waited there, waiting if it waited longer, blank if the client had no
//! message out. More clients than lines are grouped, several to a line,
//! and the chart says so. With a server log, a line per worker follows,
//! each character how many clients it served at once, blank where it
//! was free.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::time::Duration;

use super::scale;
use super::{Row, Timeline};

/// Which characters to draw with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `#` served, `.` waiting: any terminal, file or book page.
    Ascii,
    /// `█` served, `░` waiting: solid bars, for a UTF-8 terminal.
    Blocks,
}

/// How to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// The characters.
    pub charset: Charset,
    /// Whether to colour them with ANSI escapes.
    pub colour: bool,
}

impl Style {
    /// Plain ASCII, no colour: for files, pipes and the book.
    pub const PLAIN: Style = Style {
        charset: Charset::Ascii,
        colour: false,
    };

    /// What suits stdout: blocks, in colour unless `NO_COLOR` is set
    /// (to anything but ""), on a terminal; [`Style::PLAIN`] elsewhere.
    pub fn for_stdout() -> Style {
        let no_color = std::env::var_os("NO_COLOR");
        Style::choose(std::io::stdout().is_terminal(), no_color.as_deref())
    }

    /// [`Style::for_stdout`]'s choice, for a terminal or not and the
    /// value of `NO_COLOR` (no-color.org: set and not empty means no
    /// colour).
    pub fn choose(terminal: bool, no_color: Option<&OsStr>) -> Style {
        if !terminal {
            return Style::PLAIN;
        }
        Style {
            charset: Charset::Blocks,
            colour: no_color.is_none_or(OsStr::is_empty),
        }
    }

    /// The character for each state.
    fn glyph(&self, state: State) -> char {
        match (self.charset, state) {
            (_, State::Idle) => ' ',
            (Charset::Ascii, State::Waiting) => '.',
            (Charset::Ascii, State::Served) => '#',
            (Charset::Blocks, State::Waiting) => '░',
            (Charset::Blocks, State::Served) => '█',
        }
    }
}

/// What a character shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Waiting,
    Served,
}

impl State {
    /// The ANSI colour it is drawn in, if any.
    fn colour(self) -> Option<&'static str> {
        match self {
            State::Idle => None,
            State::Waiting => Some("\x1b[33m"),
            State::Served => Some("\x1b[34m"),
        }
    }
}

/// The size and look of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Characters per line, labels included (at least room for 10
    /// characters of time is kept).
    pub width: usize,
    /// Lines for clients, at most: more clients are grouped.
    pub max_rows: usize,
    /// Characters and colour.
    pub style: Style,
}

/// The whole chart: title, one line per client (or group), the time
/// scale, and a legend saying what the characters mean.
pub fn render(timeline: &Timeline, options: &Options) -> String {
    let mut out = format!("{}\n", timeline.title);
    out.push_str(&sketch(timeline, options));
    out.push_str(&legend(timeline, options));
    out
}

/// What the characters mean and where the split between served and
/// waiting comes from, in lines of at most `options.width`: the end of
/// [`render`], for a caller of [`sketch`] to print once.
pub fn legend(timeline: &Timeline, options: &Options) -> String {
    let style = &options.style;
    let glyph = |state| paint(style, state, &style.glyph(state).to_string());
    let legend = format!(
        "{} served, {} waiting: {}",
        glyph(State::Served),
        glyph(State::Waiting),
        timeline.basis.explain()
    );
    let mut out = String::new();
    for line in wrap(&legend, options.width.max(20)) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A few lines for a timeline: its client lines (at most
/// `options.max_rows`, more clients grouped), its worker lines if it has
/// a server log, and the time scale, without
/// the title and legend of [`render`]: for a caller that prints several
/// runs and says once what the characters mean, as the tour does.
pub fn sketch(timeline: &Timeline, options: &Options) -> String {
    let mut out = String::new();
    for line in chart(timeline, options) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The client lines and the scale under them, and a note when clients
/// are grouped.
fn chart(timeline: &Timeline, options: &Options) -> Vec<String> {
    let rows = &timeline.rows;
    let per_line = rows.len().div_ceil(options.max_rows.max(1)).max(1);
    let groups: Vec<&[Row]> = rows.chunks(per_line).collect();
    // A group is named by its clients' places in the order first
    // served (`#1-8`, the first 8 served): their numbers need not be
    // consecutive.
    let labels: Vec<String> = groups
        .iter()
        .enumerate()
        .map(|(i, group)| match group {
            [one] if per_line == 1 => format!("client {}", one.client),
            _ => {
                let first = i * per_line + 1;
                format!("#{first}-{}", first + group.len() - 1)
            }
        })
        .collect();
    let names = timeline.workers.iter().map(|w| &w.name);
    let label_width = labels.iter().chain(names).map(String::len).max();
    let label_width = label_width.unwrap_or(0);
    let cells = options.width.saturating_sub(label_width + 3).max(10);
    let span = timeline.span.as_secs_f64().max(0.001);
    let per_cell = span / cells as f64;

    let mut lines = Vec::with_capacity(groups.len() + 3);
    for (group, label) in groups.iter().zip(&labels) {
        let mut waiting = vec![0.0; cells];
        let mut served = vec![0.0; cells];
        for m in group.iter().flat_map(|row| &row.messages) {
            let at = |d: Duration| d.as_secs_f64() / per_cell;
            let (sent, acked) = (at(m.sent), at(m.acked));
            let (start, end) = (at(m.served.start), at(m.served.end));
            cover(&mut waiting, sent, start);
            cover(&mut served, start, end);
            cover(&mut waiting, end, acked);
        }
        let states: Vec<State> = waiting
            .iter()
            .zip(&served)
            .map(|(&w, &s)| state(w, s))
            .collect();
        lines.push(format!(
            "{label:>label_width$} |{}|",
            paint_run(&options.style, &states)
        ));
    }
    if !timeline.workers.is_empty() {
        lines.push(format!(
            "{:label_width$} |server workers (its log): how many clients \
             each served at once",
            ""
        ));
    }
    for worker in &timeline.workers {
        let mut busy = vec![0.0; cells];
        for job in &worker.jobs {
            let at = |d: Duration| d.as_secs_f64() / per_cell;
            cover(&mut busy, at(job.span.start), at(job.span.end));
        }
        let text: String = busy.iter().map(|&b| at_once(b)).collect();
        let text = match text.trim() {
            "" => text,
            _ => paint(&options.style, State::Served, &text),
        };
        lines.push(format!("{:>label_width$} |{text}|", worker.name));
    }
    let (axis, marks) = scale_lines(timeline.span, cells, label_width);
    lines.push(axis);
    lines.push(marks);
    if per_line > 1 {
        let note = format!(
            "({} clients, {per_line} to a line in the order first served, \
             #1-{per_line} the first {per_line}: a character shows whether \
             they were served or waiting more)",
            rows.len()
        );
        lines.extend(wrap(&note, options.width.max(20)));
    }
    lines
}

/// Adds the part of `from..to` (in cells) that falls in each cell.
fn cover(cells: &mut [f64], from: f64, to: f64) {
    if to <= from {
        return;
    }
    let first = from.floor().max(0.0) as usize;
    let last = (to.ceil() as usize).min(cells.len());
    for (i, cell) in cells.iter_mut().enumerate().take(last).skip(first) {
        let i = i as f64;
        *cell += to.min(i + 1.0) - from.max(i);
    }
}

/// What a cell shows, from how long (in cells) its messages waited and
/// were served in it. Rounding leaves slivers of a millionth of a cell
/// at the ends of bars: they are not something that happened.
fn state(waiting: f64, served: f64) -> State {
    const SLIVER: f64 = 1e-6;
    if served > SLIVER && served >= waiting {
        State::Served
    } else if waiting > SLIVER {
        State::Waiting
    } else {
        State::Idle
    }
}

/// A worker's character for a cell where it served `busy` cells' worth
/// of clients (2.0: two clients all along): how many at once, at least
/// 1 if any, `+` from 10; blank if none.
fn at_once(busy: f64) -> char {
    const SLIVER: f64 = 1e-6;
    match busy.round().max(1.0) as u32 {
        _ if busy <= SLIVER => ' ',
        n @ 1..=9 => char::from_digit(n, 10).unwrap_or('+'),
        _ => '+',
    }
}

/// The characters for `states`, one colour escape per run of a state.
fn paint_run(style: &Style, states: &[State]) -> String {
    let mut out = String::with_capacity(states.len() * 2);
    let mut rest = states;
    while let Some(&first) = rest.first() {
        let run = rest.iter().take_while(|&&s| s == first).count();
        let text: String =
            std::iter::repeat_n(style.glyph(first), run).collect();
        out.push_str(&paint(style, first, &text));
        rest = &rest[run..];
    }
    out
}

/// `text` in `state`'s colour, if colour is on.
fn paint(style: &Style, state: State, text: &str) -> String {
    match state.colour() {
        Some(code) if style.colour => format!("{code}{text}\x1b[0m"),
        _ => text.to_string(),
    }
}

/// The axis under the chart (`+` at each tick, `-` between) and the tick
/// labels under it; a label that would run into the previous one is left
/// out.
fn scale_lines(
    span: Duration,
    cells: usize,
    label_width: usize,
) -> (String, String) {
    let secs = span.as_secs_f64().max(0.001);
    // The axis runs from the left `|` (cell boundary 0) to the right
    // one (boundary `cells`); a label needs ~8 characters.
    let ticks = scale::ticks(span, (cells / 8).max(1));
    let indent = label_width + 1;
    let mut axis: Vec<char> = vec!['-'; cells + 1];
    let mut marks = String::new();
    for tick in &ticks {
        let boundary = (tick.at / secs * cells as f64).round() as usize;
        if boundary > cells {
            continue;
        }
        axis[boundary] = '+';
        // A label starts at its tick; one that would run off the end
        // ends there instead.
        let end = indent + cells + 1;
        let column =
            (indent + boundary).min(end.saturating_sub(tick.label.len()));
        if marks.is_empty() || marks.len() < column {
            let pad = column - marks.len();
            marks.push_str(&" ".repeat(pad));
            marks.push_str(&tick.label);
        }
    }
    let axis: String = axis.into_iter().collect();
    (format!("{}{axis}", " ".repeat(indent)), marks)
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let len = line.chars().count() + 1 + word.chars().count();
        if !line.is_empty() && len > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::tests::report;
    use crate::timeline::{Job, Span, WorkerRow};
    use std::time::UNIX_EPOCH;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// A one-at-a-time server, three clients of one 100 ms message:
    /// a staircase. The plot is 20 characters, 50 ms each.
    fn staircase() -> Timeline {
        let report =
            report(UNIX_EPOCH, &[&[(0, 100)], &[(0, 200)], &[(0, 300)]]);
        let mut timeline = Timeline::from_report(&report, Some(ms(100)));
        timeline.span = ms(1000);
        timeline
    }

    /// At a fixed width and no colour, the chart is exactly this.
    #[test]
    fn plain_chart() {
        let options = Options {
            width: 31,
            max_rows: 10,
            style: Style::PLAIN,
        };
        let text = render(&staircase(), &options);
        let expected = "\
3 clients x 1 message, work 100 ms
client 1 |##                  |
client 2 |..##                |
client 3 |....##              |
         +---------+---------+
         0.0 s     0.5 s 1.0 s
# served, . waiting: served =
the last 100 ms of each latency
(the --work-ms given), waiting
= the rest
";
        assert_eq!(text, expected);
    }

    /// Colour wraps each run of a state in one escape, and blocks draw
    /// the bars.
    #[test]
    fn coloured_blocks() {
        let options = Options {
            width: 31,
            max_rows: 10,
            style: Style {
                charset: Charset::Blocks,
                colour: true,
            },
        };
        let text = render(&staircase(), &options);
        let line = text.lines().nth(2).unwrap();
        let waiting = "\x1b[33m░░\x1b[0m";
        let served = "\x1b[34m██\x1b[0m";
        assert_eq!(
            line,
            format!("client 2 |{waiting}{served}{}|", " ".repeat(16))
        );
        assert!(!render(
            &staircase(),
            &Options {
                style: Style::PLAIN,
                ..options
            }
        )
        .contains('\x1b'));
    }

    /// The module's example is what `render` draws.
    #[test]
    fn module_example() {
        let report =
            report(UNIX_EPOCH, &[&[(0, 200)], &[(0, 400)], &[(0, 600)]]);
        let timeline = Timeline::from_report(&report, Some(ms(200)));
        let options = Options {
            width: 41,
            max_rows: 10,
            style: Style::PLAIN,
        };
        let text = render(&timeline, &options);
        let example = include_str!("text.rs")
            .lines()
            .skip_while(|l| *l != "//! ```text")
            .skip(1)
            .take_while(|l| *l != "//! ```")
            .map(|l| format!("{}\n", l.strip_prefix("//! ").unwrap_or("")))
            .collect::<String>();
        assert!(text.starts_with(&example), "{text}");
    }

    /// With workers from a server log, a line per worker says how many
    /// clients it served at once, blank where it was free.
    #[test]
    fn worker_lines() {
        let mut timeline = staircase();
        let job = |client, start, end, lane| Job {
            client,
            number: 0,
            span: Span {
                start: ms(start),
                end: ms(end),
            },
            lane,
        };
        timeline.workers = vec![
            WorkerRow {
                name: "worker-1".to_string(),
                jobs: vec![job(1, 0, 100, 0), job(3, 200, 300, 0)],
                lanes: 1,
            },
            WorkerRow {
                name: "loop".to_string(),
                jobs: vec![job(2, 100, 300, 0), job(9, 100, 200, 1)],
                lanes: 2,
            },
        ];
        let options = Options {
            width: 31,
            max_rows: 10,
            style: Style::PLAIN,
        };
        let text = render(&timeline, &options);
        let lines: Vec<&str> = text.lines().skip(4).take(3).collect();
        assert_eq!(
            lines,
            [
                "         |server workers (its log): how many clients each \
                 served at once",
                "worker-1 |11  11              |",
                "    loop |  2211              |",
            ]
        );
    }

    /// Colour and blocks on a terminal only, and no colour there if
    /// NO_COLOR is set to something.
    #[test]
    fn style_for_stdout() {
        let blocks = |colour| Style {
            charset: Charset::Blocks,
            colour,
        };
        let set = OsStr::new("1");
        assert_eq!(Style::choose(false, None), Style::PLAIN);
        assert_eq!(Style::choose(false, Some(set)), Style::PLAIN);
        assert_eq!(Style::choose(true, None), blocks(true));
        assert_eq!(Style::choose(true, Some(OsStr::new(""))), blocks(true));
        assert_eq!(Style::choose(true, Some(set)), blocks(false));
    }

    /// More clients than lines: grouped, labelled by place, and said so;
    /// a group's character is the commoner state.
    #[test]
    fn grouped_sketch() {
        let report = report(
            UNIX_EPOCH,
            &[&[(0, 100)], &[(0, 200)], &[(0, 300)], &[(0, 400)]],
        );
        let timeline = Timeline::from_report(&report, Some(ms(100)));
        let options = Options {
            width: 30,
            max_rows: 2,
            style: Style::PLAIN,
        };
        let text = sketch(&timeline, &options);
        let expected = "\
#1-2 |############           |
#3-4 |............###########|
     +-----------+----------+
     0 ms        200 ms
(4 clients, 2 to a line in the
order first served, #1-2 the
first 2: a character shows
whether they were served or
waiting more)
";
        assert_eq!(text, expected);
    }
}
