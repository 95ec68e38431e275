//! SVG plots of a [`Report`], drawn with plotters' SVG backend.
//!
//! Only the SVG backend is compiled in: plotters' default font support
//! needs the system's fonts, and the SVG's text is rendered by the
//! reader's browser anyway.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::report::{distinct, Report, Status};
use super::slow_clients::FirstAck;
use crate::models::MODELS;

const SIZE: (u32, u32) = (720, 420);

/// The models' colours, in the registry's (chapter) order: ten, so
/// that every model so far has its own.
const PALETTE: [RGBColor; 10] = [
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(31, 119, 180),
    RGBColor(140, 86, 75),
    RGBColor(255, 127, 14),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];

/// The same colour for a model in every plot: its place in the registry
/// picks it, grey for a chapter beyond the palette.
fn color_of(label: &str) -> RGBColor {
    MODELS
        .iter()
        .position(|m| m.label == label)
        .and_then(|i| PALETTE.get(i).copied())
        .unwrap_or(RGBColor(90, 90, 90))
}

/// Wall time against clients, one line per model.
pub fn sessions(report: &Report, kind: &str) -> String {
    let rows: Vec<_> = report
        .sessions
        .iter()
        .filter(|r| r.kind == kind && r.status == Status::Ok)
        .collect();
    let lines =
        lines_by_model(&rows, |r| r.model, |r| (r.clients as f64, r.wall_s));
    let work = rows.first().map_or(0, |r| r.work_ms);
    let messages = rows.first().map_or(0, |r| r.messages);
    draw(Chart {
        title: format!(
            "{messages} messages per client, {work} ms {kind} work each"
        ),
        x_desc: "concurrent clients",
        y_desc: "wall time (s)",
        lines,
        ranges: Vec::new(),
        x_log: false,
        y_log: false,
    })
}

/// Server CPU per message against connections, one line per model.
pub fn zero_cpu(report: &Report) -> String {
    zero(report, "server CPU per message (µs)", false, |r| {
        r.server_cpu_us_per_msg
    })
}

/// Messages per second against connections, one line per model.
pub fn zero_throughput(report: &Report) -> String {
    zero(report, "messages per second", false, |r| r.msgs_per_s)
}

fn zero(
    report: &Report,
    y_desc: &'static str,
    y_log: bool,
    value: impl Fn(&super::report::ZeroRow) -> f64,
) -> String {
    let rows: Vec<_> = report
        .zero
        .iter()
        .filter(|r| r.status == Status::Ok)
        .collect();
    let lines = lines_by_model(
        &rows,
        |r| r.model,
        |r| (r.connections as f64, value(r)),
    );
    draw(Chart {
        title: "zero work, closed loop".into(),
        x_desc: "concurrent connections",
        y_desc,
        lines,
        ranges: Vec::new(),
        x_log: true,
        y_log,
    })
}

/// Time to the ordinary client's first ack against K, one line per
/// model. A client that got no ack is drawn at the wait it gave up after
/// (the title says so); a refused or failed one is left out, and K = 0
/// (nothing to plot on a log axis) is in the table only.
pub fn slow_clients(report: &Report) -> String {
    let rows: Vec<_> = report.slow.iter().filter(|r| r.k > 0).collect();
    let wait_ms = rows.first().map_or(0, |r| r.wait_ms);
    let points: Vec<_> = rows
        .iter()
        .filter_map(|r| {
            let y = match r.first_ack {
                FirstAck::Acked(after) => after.as_secs_f64(),
                FirstAck::NoAck | FirstAck::NotConnected => {
                    r.wait_ms as f64 / 1000.0
                }
                FirstAck::Refused(_) | FirstAck::Failed(_) => return None,
            };
            Some((*r, y))
        })
        .collect();
    let points: Vec<_> = points.iter().collect();
    let lines =
        lines_by_model(&points, |(r, _)| r.model, |(r, y)| (r.k as f64, *y));
    draw(Chart {
        title: format!(
            "first ack behind K silent + K half-message clients (at {} s: \
             no ack yet)",
            wait_ms as f64 / 1000.0
        ),
        x_desc: "K",
        y_desc: "time to first ack (s)",
        lines,
        ranges: Vec::new(),
        x_log: true,
        y_log: false,
    })
}

/// One line of points per model, in the order the models first appear in
/// `rows`, each line's points in the rows' order.
pub(super) fn lines_by_model<R>(
    rows: &[&R],
    model: impl Fn(&R) -> &'static str,
    point: impl Fn(&R) -> (f64, f64),
) -> Vec<(&'static str, Vec<(f64, f64)>)> {
    distinct(rows.iter().map(|r| model(r)))
        .into_iter()
        .map(|m| {
            let points = rows
                .iter()
                .filter(|r| model(r) == m)
                .map(|r| point(r))
                .collect();
            (m, points)
        })
        .collect()
}

/// A bar at `x` from the lowest round's value to the highest's:
/// `(x, lowest, highest)`.
pub(super) type Bar = (f64, f64, f64);

/// One line chart.
pub(super) struct Chart {
    pub(super) title: String,
    pub(super) x_desc: &'static str,
    pub(super) y_desc: &'static str,
    pub(super) lines: Vec<(&'static str, Vec<(f64, f64)>)>,
    /// Per model, where rounds were measured: at each x, the lowest and
    /// highest round, drawn as a vertical bar through the median's
    /// point.
    pub(super) ranges: Vec<(&'static str, Vec<Bar>)>,
    pub(super) x_log: bool,
    pub(super) y_log: bool,
}

/// Draws `chart` as an SVG document.
pub(super) fn draw(chart: Chart) -> String {
    let mut svg = String::new();
    let (x0, x1) = x_range(&chart);
    // Headroom above the highest point, for the legend.
    let y1 = y_top(&chart) * 1.45;
    let drawn = match (chart.x_log, chart.y_log) {
        (true, true) => {
            let y0 = y_bottom(&chart) / 2.0;
            let x = (x0..x1).log_scale();
            render(&mut svg, &chart, x, (y0..y1 * 2.0).log_scale())
        }
        (true, false) => {
            render(&mut svg, &chart, (x0..x1).log_scale(), 0.0..y1)
        }
        (false, _) => render(&mut svg, &chart, 0.0..x1, 0.0..y1),
    };
    match drawn {
        Ok(()) => svg,
        Err(e) => format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" \
             height=\"40\"><text x=\"10\" y=\"25\">plot failed: {}</text>\
             </svg>\n",
            e.replace(['<', '>', '&'], " ")
        ),
    }
}

fn x_range(chart: &Chart) -> (f64, f64) {
    let xs = chart.lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let max = xs.fold(1.0, f64::max);
    if chart.x_log {
        (0.8, max * 1.3)
    } else {
        (0.0, max * 1.05)
    }
}

fn y_top(chart: &Chart) -> f64 {
    let ys = chart.lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let highs = chart.ranges.iter().flat_map(|(_, r)| r.iter().map(|q| q.2));
    ys.chain(highs).fold(0.0, f64::max).max(1e-3)
}

fn y_bottom(chart: &Chart) -> f64 {
    let ys = chart.lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    ys.filter(|y| *y > 0.0)
        .fold(f64::MAX, f64::min)
        .min(y_top(chart))
}

fn render<X, Y>(
    svg: &mut String,
    chart: &Chart,
    x: X,
    y: Y,
) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    let text = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| text(&e))?;
    let mut area = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(|e| text(&e))?;
    area.configure_mesh()
        .x_desc(chart.x_desc)
        .y_desc(chart.y_desc)
        .x_label_formatter(&|v| {
            // Whole numbers of clients and connections print as such.
            if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        })
        // Only the labelled grid lines: the light ones of a log axis
        // crowd the plot.
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(|e| text(&e))?;
    for (label, points) in &chart.lines {
        let color = color_of(label);
        area.draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(|e| text(&e))?
        .label(*label)
        .legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
        });
        // Prefork and threaded often coincide: prefork's points are
        // larger rings, so both stay visible.
        let ring = *label == "prefork";
        area.draw_series(points.iter().map(|&p| {
            if ring {
                Circle::new(p, 6, color.stroke_width(2))
            } else {
                Circle::new(p, 3, color.filled())
            }
        }))
        .map_err(|e| text(&e))?;
    }
    for (label, ranges) in &chart.ranges {
        let color = color_of(label);
        area.draw_series(ranges.iter().map(|&(x, low, high)| {
            PathElement::new(vec![(x, low), (x, high)], color.stroke_width(2))
        }))
        .map_err(|e| text(&e))?;
    }
    area.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| text(&e))?;
    root.present().map_err(|e| text(&e))?;
    Ok(())
}
