//! The sequence diagram of a run as a standalone SVG picture (`--svg FILE`).
//!
//! Two vertical lifelines, the left host (the client) and the right host
//! (the server), headed by their labels; time runs downward. Each segment is
//! an arrow drawn diagonally from the sender's lifeline at the moment it was
//! sent to the receiver's lifeline at the moment it arrived, labelled along
//! the arrow with its flags and numbers. The arrival is the receiver's first
//! not yet paired `recv` event of the same segment (same flags, numbers and
//! window); a segment that never arrived valid ends where the receiver
//! dropped a segment, if it did, or one row further down. A segment the link
//! lost is a dashed arrow that stops halfway with a cross; a duplicated one
//! gets a second arrow to its second arrival. Retransmissions are purple.
//! State changes are boxes beside the lifeline of their host; drops are
//! red crosses on the lifeline.
//!
//! Times range from microseconds to a minute of TIME-WAIT, so the vertical
//! axis is not linear: each event gets its own row, in time order, labelled
//! with its time on the left; a pause of a second or more is drawn as a
//! break in the lifelines that says how long it lasted.

use std::fmt::Write as _;

use synack::record::Record;
use synack_core::{Instant, SegmentInfo, State, TraceKind};

use crate::diagram::{
    fates_of, format_pause, format_time, seg_class, segment_label, segment_notes, side_of,
    DiagramOptions, Fates, SegClass, Side, PAUSE,
};

/// Height of one row, in pixels.
const ROW_H: f64 = 30.0;
/// Extra height of a pause.
const PAUSE_H: f64 = 46.0;
/// x of the time axis.
const AXIS_X: f64 = 78.0;
/// x of the left lifeline.
const LEFT_X: f64 = 270.0;
/// x of the right lifeline.
const RIGHT_X: f64 = 830.0;
/// Width of the picture.
const WIDTH: f64 = 1060.0;
/// y of the host boxes' top edge.
const HEADER_Y: f64 = 16.0;
/// Height of the host boxes.
const HEADER_H: f64 = 36.0;
/// y of the initial-state boxes.
const INITIAL_Y: f64 = 82.0;
/// y of the first row.
const FIRST_ROW_Y: f64 = 122.0;
/// How far across a lost segment's arrow goes.
const LOST_REACH: f64 = 0.55;
/// Average advance of a character of the 12 px monospace font.
const CHAR_W: f64 = 7.25;

const FONT_MONO: &str = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace";
const FONT_SANS: &str = "'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif";

const COLOR_SYN: &str = "#2e7d32";
const COLOR_FIN: &str = "#e65100";
const COLOR_RST: &str = "#c62828";
const COLOR_DATA: &str = "#1565c0";
const COLOR_ACK: &str = "#455a64";
const COLOR_RTX: &str = "#8e24aa";
const COLOR_LOST: &str = "#d32f2f";
const COLOR_STATE: &str = "#00695c";
const COLOR_STATE_FILL: &str = "#e0f2f1";
const COLOR_LIFELINE: &str = "#90a4ae";
const COLOR_MUTED: &str = "#78909c";

/// Renders the run as an SVG document (see the [module
/// documentation](self)). Only records of `opts.left_host` and
/// `opts.right_host` are drawn; `opts.color` is ignored (the picture is
/// always in colour). The same input gives the same text.
pub fn render_svg(records: &[Record], opts: &DiagramOptions) -> String {
    let run = Run::build(records, opts);
    let mut svg = Svg::default();
    let bottom = run.bottom();
    let legend_y = bottom + 40.0;
    let height = legend_y + 36.0;

    let _ = write!(
        svg.out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT_MONO}" font-size="12">"#,
        w = num(WIDTH),
        h = num(height),
    );
    svg.out.push('\n');
    let _ = writeln!(
        svg.out,
        r#"<title>TCP sequence diagram: {} and {}</title>"#,
        escape(&opts.left_label),
        escape(&opts.right_label)
    );
    let _ = writeln!(
        svg.out,
        r##"<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>"##,
        num(WIDTH),
        num(height)
    );

    run.draw_axis(&mut svg, bottom);
    run.draw_lifelines(&mut svg, bottom);
    draw_header(&mut svg, opts);
    run.draw_initial_states(&mut svg);
    let mut placed = Vec::new();
    for arrow in &run.arrows {
        run.draw_arrow(&mut svg, arrow, &mut placed);
    }
    for mark in &run.marks {
        run.draw_mark(&mut svg, mark);
    }
    draw_legend(&mut svg, legend_y);
    svg.out.push_str("</svg>\n");
    svg.out
}

/// A row: one point in time, one event.
struct Row {
    at: Instant,
    y: f64,
}

/// A pause drawn between two rows.
struct Pause {
    /// y of its top and bottom.
    top: f64,
    bottom: f64,
    /// How long it lasted.
    len: std::time::Duration,
}

/// Where a segment's arrow ends.
#[derive(Clone, Copy, PartialEq)]
enum End {
    /// At the receiver, at this row.
    Row(usize),
    /// Lost on the way.
    Lost,
    /// Not known: one row further down.
    Unknown,
}

/// A segment sent.
struct Arrow {
    from: Side,
    row: usize,
    seg: SegmentInfo,
    rtx: bool,
    fates: Fates,
    /// Rows of its arrivals (two when duplicated), or of the drop of it.
    arrivals: Vec<usize>,
}

impl Arrow {
    /// How many valid arrivals (`recv` events) it can have: none when lost
    /// or corrupted (the receiver drops a corrupted segment), two when
    /// duplicated.
    fn max_arrivals(&self) -> usize {
        if self.fates.lost || self.fates.corrupted {
            0
        } else if self.fates.duplicated {
            2
        } else {
            1
        }
    }

    fn color(&self) -> &'static str {
        if self.rtx {
            return COLOR_RTX;
        }
        match seg_class(&self.seg) {
            SegClass::Rst => COLOR_RST,
            SegClass::Syn => COLOR_SYN,
            SegClass::Fin => COLOR_FIN,
            SegClass::Data => COLOR_DATA,
            SegClass::Ack => COLOR_ACK,
        }
    }
}

/// A state change or a drop, on one lifeline.
enum Mark {
    State {
        row: usize,
        side: Side,
        from: State,
        to: State,
    },
    Drop {
        row: usize,
        side: Side,
        reason: &'static str,
    },
}

/// The run, laid out in rows.
struct Run {
    rows: Vec<Row>,
    pauses: Vec<Pause>,
    arrows: Vec<Arrow>,
    marks: Vec<Mark>,
    /// The state each side started in (the `from` of its first change).
    initial: [Option<State>; 2],
}

impl Run {
    fn build(records: &[Record], opts: &DiagramOptions) -> Run {
        let mut run = Run {
            rows: Vec::new(),
            pauses: Vec::new(),
            arrows: Vec::new(),
            marks: Vec::new(),
            initial: [None, None],
        };
        let mut drops: Vec<(usize, Side, bool)> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let Record::Trace { host, event } = record else {
                continue;
            };
            let Some(side) = side_of(*host, opts) else {
                continue;
            };
            match event.kind {
                TraceKind::Send { seg, rtx } => {
                    let row = run.add_row(event.at);
                    run.arrows.push(Arrow {
                        from: side,
                        row,
                        seg,
                        rtx,
                        fates: fates_of(records, i, *host),
                        arrivals: Vec::new(),
                    });
                }
                TraceKind::Recv { seg } => {
                    let matching = run.arrows.iter().position(|a| {
                        a.from != side && a.seg == seg && a.arrivals.len() < a.max_arrivals()
                    });
                    if let Some(k) = matching {
                        let row = run.add_row(event.at);
                        run.arrows[k].arrivals.push(row);
                    }
                }
                TraceKind::State { from, to } => {
                    let slot = &mut run.initial[side as usize];
                    if slot.is_none() {
                        *slot = Some(from);
                    }
                    let row = run.add_row(event.at);
                    run.marks.push(Mark::State {
                        row,
                        side,
                        from,
                        to,
                    });
                }
                TraceKind::Drop { reason } => {
                    let row = run.add_row(event.at);
                    run.marks.push(Mark::Drop { row, side, reason });
                    drops.push((row, side, false));
                }
                TraceKind::Cwnd { .. } => {}
            }
        }
        // A segment that never arrived valid ends at the first later drop
        // on the other side that no other segment ended at.
        for arrow in &mut run.arrows {
            if arrow.arrivals.is_empty() && !arrow.fates.lost {
                let drop = drops
                    .iter_mut()
                    .find(|(row, side, used)| !*used && *side != arrow.from && *row > arrow.row);
                if let Some((row, _, used)) = drop {
                    *used = true;
                    arrow.arrivals.push(*row);
                }
            }
        }
        run
    }

    fn add_row(&mut self, at: Instant) -> usize {
        let y = match self.rows.last() {
            None => FIRST_ROW_Y,
            Some(prev) => {
                let len = at.saturating_since(prev.at);
                if len >= PAUSE {
                    let top = prev.y + ROW_H * 0.5;
                    let bottom = top + PAUSE_H;
                    self.pauses.push(Pause { top, bottom, len });
                    prev.y + ROW_H + PAUSE_H
                } else {
                    prev.y + ROW_H
                }
            }
        };
        self.rows.push(Row { at, y });
        self.rows.len() - 1
    }

    /// The y below the last row.
    fn bottom(&self) -> f64 {
        self.rows.last().map_or(FIRST_ROW_Y, |r| r.y) + ROW_H
    }

    fn draw_axis(&self, svg: &mut Svg, bottom: f64) {
        let _ = writeln!(
            svg.out,
            r#"<text x="{}" y="{}" text-anchor="end" font-family="{FONT_SANS}" font-size="11" fill="{COLOR_MUTED}">time</text>"#,
            num(AXIS_X - 8.0),
            num(INITIAL_Y + 4.0),
        );
        let mut segments = vec![(FIRST_ROW_Y - ROW_H * 0.5, bottom)];
        self.cut(&mut segments);
        for (top, bot) in segments {
            svg.line(AXIS_X, top, AXIS_X, bot, "#cfd8dc", 1.0, None);
        }
        // Rows of the same instant form a group: one label at its first
        // row, a bar on the axis down to its last.
        let mut start = 0;
        while start < self.rows.len() {
            let at = self.rows[start].at;
            let mut end = start;
            while end + 1 < self.rows.len() && self.rows[end + 1].at == at {
                end += 1;
            }
            let (top, bot) = (self.rows[start].y, self.rows[end].y);
            if end > start {
                svg.line(AXIS_X, top, AXIS_X, bot, "#b0bec5", 3.0, None);
            }
            svg.line(AXIS_X - 4.0, top, AXIS_X + 4.0, top, "#b0bec5", 1.0, None);
            // A faint guide to the lifeline.
            svg.line(AXIS_X + 6.0, top, LEFT_X - 4.0, top, "#eceff1", 1.0, None);
            let label = axis_time(at);
            let _ = writeln!(
                svg.out,
                r#"<text x="{}" y="{}" text-anchor="end" font-size="11" fill="{COLOR_MUTED}">{}</text>"#,
                num(AXIS_X - 8.0),
                num(top + 4.0),
                escape(&label)
            );
            start = end + 1;
        }
    }

    /// Splits vertical extents around the pauses.
    fn cut(&self, segments: &mut Vec<(f64, f64)>) {
        for p in &self.pauses {
            let mut next = Vec::new();
            for &(top, bot) in segments.iter() {
                if p.top > top && p.bottom < bot {
                    next.push((top, p.top));
                    next.push((p.bottom, bot));
                } else {
                    next.push((top, bot));
                }
            }
            *segments = next;
        }
    }

    fn draw_lifelines(&self, svg: &mut Svg, bottom: f64) {
        for x in [LEFT_X, RIGHT_X] {
            let mut segments = vec![(HEADER_Y + HEADER_H, bottom)];
            self.cut(&mut segments);
            for (top, bot) in segments {
                svg.line(x, top, x, bot, COLOR_LIFELINE, 2.0, None);
            }
            for p in &self.pauses {
                svg.line(x, p.top, x, p.bottom, COLOR_LIFELINE, 2.0, Some("2 5"));
                // The break: two short slanted strokes.
                for dy in [-3.0, 3.0] {
                    let y = (p.top + p.bottom) / 2.0 + dy;
                    svg.line(
                        x - 7.0,
                        y + 3.0,
                        x + 7.0,
                        y - 3.0,
                        COLOR_LIFELINE,
                        1.5,
                        None,
                    );
                }
            }
            // The end of the lifeline.
            svg.line(x - 8.0, bottom, x + 8.0, bottom, COLOR_LIFELINE, 2.0, None);
        }
        for p in &self.pauses {
            let _ = writeln!(
                svg.out,
                r#"<text x="{}" y="{}" text-anchor="middle" font-family="{FONT_SANS}" font-size="12" font-style="italic" fill="{COLOR_MUTED}">⋯ {} ⋯</text>"#,
                num((LEFT_X + RIGHT_X) / 2.0),
                num((p.top + p.bottom) / 2.0 + 4.0),
                escape(&format_pause(p.len))
            );
        }
    }

    fn draw_initial_states(&self, svg: &mut Svg) {
        for (side, state) in [Side::Left, Side::Right].into_iter().zip(self.initial) {
            if let Some(state) = state {
                state_box(svg, side, INITIAL_Y, state.name(), None, true);
            }
        }
    }

    /// Draws a segment's arrow (or arrows, when duplicated) and its label,
    /// placed where it overlaps none of the labels in `placed` if it can.
    fn draw_arrow(&self, svg: &mut Svg, arrow: &Arrow, placed: &mut Vec<LabelBox>) {
        let (x0, x1) = match arrow.from {
            Side::Left => (LEFT_X, RIGHT_X),
            Side::Right => (RIGHT_X, LEFT_X),
        };
        let y0 = self.rows[arrow.row].y;
        let color = arrow.color();
        let mut label = segment_label(&arrow.seg);
        for note in segment_notes(arrow.rtx, arrow.fates) {
            label.push_str(&note);
        }
        let ends: Vec<End> = if arrow.fates.lost {
            vec![End::Lost]
        } else if arrow.arrivals.is_empty() {
            vec![End::Unknown]
        } else {
            arrow.arrivals.iter().map(|&r| End::Row(r)).collect()
        };
        let _ = writeln!(svg.out, r#"<g class="segment">"#);
        let _ = writeln!(svg.out, "<title>{}</title>", escape(&label));
        for (k, end) in ends.iter().enumerate() {
            let (ex, ey) = match *end {
                End::Row(r) => (x1, self.rows[r].y),
                End::Unknown => (x1, y0 + ROW_H),
                End::Lost => (x0 + (x1 - x0) * LOST_REACH, y0 + ROW_H * LOST_REACH),
            };
            // Leave the lifelines visible: start and stop a little off them.
            let (sx, sy) = along(x0, y0, ex, ey, 2.0);
            if *end == End::Lost {
                svg.line(sx, sy, ex, ey, color, 1.6, Some("6 4"));
                cross(svg, ex, ey, 6.0, COLOR_LOST, 2.4);
            } else {
                let (tx, ty) = along(ex, ey, x0, y0, 2.0);
                svg.line(sx, sy, tx, ty, color, 1.6, None);
                arrow_head(svg, x0, y0, tx, ty, color);
            }
            // The second copy of a duplicated segment gets a short label.
            let text = if k == 0 {
                label.as_str()
            } else {
                "(duplicate)"
            };
            let italic = arrow.fates.lost;
            let line = ((x0, y0), (ex, ey));
            draw_label(svg, placed, text, line, color, italic);
        }
        svg.out.push_str("</g>\n");
    }

    fn draw_mark(&self, svg: &mut Svg, mark: &Mark) {
        match *mark {
            Mark::State {
                row,
                side,
                from,
                to,
            } => {
                let title = format!("{} → {}", from.name(), to.name());
                state_box(svg, side, self.rows[row].y, to.name(), Some(&title), false);
            }
            Mark::Drop { row, side, reason } => {
                let y = self.rows[row].y;
                let x = side_x(side);
                cross(svg, x, y, 6.0, COLOR_LOST, 2.4);
                let (tx, anchor) = match side {
                    Side::Left => (x - 14.0, "end"),
                    Side::Right => (x + 14.0, "start"),
                };
                let _ = writeln!(
                    svg.out,
                    r#"<text x="{}" y="{}" text-anchor="{anchor}" font-size="11" font-style="italic" fill="{COLOR_LOST}">drop: {}</text>"#,
                    num(tx),
                    num(y + 4.0),
                    escape(reason)
                );
            }
        }
    }
}

/// A row's time on the axis: `1.010s` as in the terminal diagram, with
/// more decimals (up to microseconds) when the time is not a whole
/// millisecond.
fn axis_time(at: Instant) -> String {
    let us = at.micros();
    // (Not `is_multiple_of`: the workspace supports Rust 1.85.)
    let sub_ms = us % 1000;
    if sub_ms == 0 {
        return format_time(at);
    }
    let frac = format!("{:06}", us % 1_000_000);
    format!("{}.{}s", us / 1_000_000, frac.trim_end_matches('0'))
}

fn side_x(side: Side) -> f64 {
    match side {
        Side::Left => LEFT_X,
        Side::Right => RIGHT_X,
    }
}

/// The point `d` pixels from (x0, y0) towards (x1, y1).
fn along(x0: f64, y0: f64, x1: f64, y1: f64, d: f64) -> (f64, f64) {
    let (dx, dy) = (x1 - x0, y1 - y0);
    let len = (dx * dx + dy * dy).sqrt().max(1e-9);
    (x0 + dx / len * d, y0 + dy / len * d)
}

/// A filled arrow head with its tip at (tx, ty), pointing away from (x0, y0).
fn arrow_head(svg: &mut Svg, x0: f64, y0: f64, tx: f64, ty: f64, color: &str) {
    let (dx, dy) = (tx - x0, ty - y0);
    let len = (dx * dx + dy * dy).sqrt().max(1e-9);
    let (ux, uy) = (dx / len, dy / len);
    let (bx, by) = (tx - ux * 11.0, ty - uy * 11.0);
    let (nx, ny) = (-uy * 4.5, ux * 4.5);
    let _ = writeln!(
        svg.out,
        r#"<path d="M{} {} L{} {} L{} {} Z" fill="{color}"/>"#,
        num(tx),
        num(ty),
        num(bx + nx),
        num(by + ny),
        num(bx - nx),
        num(by - ny)
    );
}

/// A cross centred on (x, y).
fn cross(svg: &mut Svg, x: f64, y: f64, r: f64, color: &str, width: f64) {
    svg.line(x - r, y - r, x + r, y + r, color, width, None);
    svg.line(x - r, y + r, x + r, y - r, color, width, None);
}

/// Where a label was put: a rectangle turned by `angle`, for overlap tests.
struct LabelBox {
    cx: f64,
    cy: f64,
    /// Half its width and height.
    hw: f64,
    hh: f64,
    /// Its rotation, in radians.
    angle: f64,
}

impl LabelBox {
    /// True when the two rectangles overlap (separating axis test).
    fn overlaps(&self, other: &LabelBox) -> bool {
        let axes = [
            (self.angle.cos(), self.angle.sin()),
            (-self.angle.sin(), self.angle.cos()),
            (other.angle.cos(), other.angle.sin()),
            (-other.angle.sin(), other.angle.cos()),
        ];
        axes.iter().all(|&(ax, ay)| {
            let (a0, a1) = self.project(ax, ay);
            let (b0, b1) = other.project(ax, ay);
            a0 < b1 && b0 < a1
        })
    }

    /// The extent of the rectangle along the unit axis (ax, ay).
    fn project(&self, ax: f64, ay: f64) -> (f64, f64) {
        let (c, s) = (self.angle.cos(), self.angle.sin());
        let centre = self.cx * ax + self.cy * ay;
        let reach = self.hw * (c * ax + s * ay).abs() + self.hh * (-s * ax + c * ay).abs();
        (centre - reach, centre + reach)
    }
}

/// A segment's label along the line of its arrow (from the sender's point
/// to the end point), just above it and between the lifelines. It goes in
/// the middle if that overlaps no label already `placed`, else near the
/// sender, near the receiver, or between; failing all, where it overlaps
/// the fewest.
fn draw_label(
    svg: &mut Svg,
    placed: &mut Vec<LabelBox>,
    text: &str,
    ((x0, y0), (x1, y1)): ((f64, f64), (f64, f64)),
    color: &str,
    italic: bool,
) {
    // Read left to right whichever way the arrow points.
    let ((lx, ly), (rx, ry)) = if x0 <= x1 {
        ((x0, y0), (x1, y1))
    } else {
        ((x1, y1), (x0, y0))
    };
    let angle = (ry - ly).atan2(rx - lx);
    let hw = text.chars().count() as f64 * CHAR_W / 2.0 + 2.0;
    // Half the width the label takes across the page.
    let across = hw * angle.cos();
    let (min, max) = (LEFT_X + 12.0 + across, RIGHT_X - 12.0 - across);
    let fit = |cx: f64| {
        if min <= max {
            cx.clamp(min, max)
        } else {
            (LEFT_X + RIGHT_X) / 2.0
        }
    };
    let near_sender = if x0 <= x1 { min } else { max };
    let near_receiver = if x0 <= x1 { max } else { min };
    let mid = (lx + rx) / 2.0;
    let spots = [
        fit(mid),
        fit(near_sender),
        fit(near_receiver),
        fit(lx + (rx - lx) * 0.3),
        fit(lx + (rx - lx) * 0.7),
    ];
    // Above the line first, then below it; the middle first, then the ends.
    let candidates = spots[..3]
        .iter()
        .map(|&cx| (cx, true))
        .chain(spots[..3].iter().map(|&cx| (cx, false)))
        .chain(spots[3..].iter().flat_map(|&cx| [(cx, true), (cx, false)]));
    let slope = if rx > lx { (ry - ly) / (rx - lx) } else { 0.0 };
    let label_box = |cx: f64, above: bool| {
        let cy = ly + (cx - lx) * slope;
        // The text's box is centred 9.5 px off the line.
        let off = if above { -9.5 } else { 9.5 };
        LabelBox {
            cx: cx - off * angle.sin(),
            cy: cy + off * angle.cos(),
            hw,
            hh: 7.5,
            angle,
        }
    };
    let overlaps = |b: &LabelBox| placed.iter().filter(|p| p.overlaps(b)).count();
    let mut best = (usize::MAX, mid, true);
    for (cx, above) in candidates {
        let n = overlaps(&label_box(cx, above));
        if n < best.0 {
            best = (n, cx, above);
        }
        if n == 0 {
            break;
        }
    }
    let (_, cx, above) = best;
    let cy = ly + (cx - lx) * slope;
    placed.push(label_box(cx, above));
    let style = if italic {
        r#" font-style="italic""#
    } else {
        ""
    };
    let _ = writeln!(
        svg.out,
        r##"<text transform="translate({} {}) rotate({})" y="{}" text-anchor="middle" fill="{color}" stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"{style}>{}</text>"##,
        num(cx),
        num(cy),
        num(angle.to_degrees()),
        if above { -5 } else { 14 },
        escape(text)
    );
}

/// A state box beside the lifeline of `side`, centred on `y`, joined to the
/// lifeline by a dot.
fn state_box(svg: &mut Svg, side: Side, y: f64, name: &str, title: Option<&str>, initial: bool) {
    let x = side_x(side);
    let w = name.chars().count() as f64 * 7.6 + 16.0;
    let h = 20.0;
    let bx = match side {
        Side::Left => x - 12.0 - w,
        Side::Right => x + 12.0,
    };
    let (fill, stroke, text) = if initial {
        ("#f5f5f5", COLOR_MUTED, "#455a64")
    } else {
        (COLOR_STATE_FILL, COLOR_STATE, COLOR_STATE)
    };
    svg.out.push_str("<g class=\"state\">");
    if let Some(title) = title {
        let _ = write!(svg.out, "<title>{}</title>", escape(title));
    }
    svg.out.push('\n');
    let near = match side {
        Side::Left => bx + w,
        Side::Right => bx,
    };
    svg.line(near, y, x, y, stroke, 1.5, None);
    let _ = writeln!(
        svg.out,
        r#"<rect x="{}" y="{}" width="{}" height="{}" rx="4" fill="{fill}" stroke="{stroke}" stroke-width="1.2"/>"#,
        num(bx),
        num(y - h / 2.0),
        num(w),
        num(h)
    );
    let _ = writeln!(
        svg.out,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12.5" font-weight="bold" fill="{text}">{}</text>"#,
        num(bx + w / 2.0),
        num(y + 4.5),
        escape(name)
    );
    if !initial {
        let _ = writeln!(
            svg.out,
            r#"<circle cx="{}" cy="{}" r="4" fill="{stroke}"/>"#,
            num(x),
            num(y)
        );
    }
    svg.out.push_str("</g>\n");
}

/// The two host labels in boxes over their lifelines.
fn draw_header(svg: &mut Svg, opts: &DiagramOptions) {
    for (x, label) in [(LEFT_X, &opts.left_label), (RIGHT_X, &opts.right_label)] {
        let w = label.chars().count() as f64 * 8.0 + 28.0;
        let _ = writeln!(
            svg.out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" rx="6" fill="#263238"/>"##,
            num(x - w / 2.0),
            num(HEADER_Y),
            num(w),
            num(HEADER_H)
        );
        let _ = writeln!(
            svg.out,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="13" font-weight="bold" fill="#ffffff">{}</text>"##,
            num(x),
            num(HEADER_Y + HEADER_H / 2.0 + 4.5),
            escape(label)
        );
    }
}

/// What the colours and marks mean.
fn draw_legend(svg: &mut Svg, y: f64) {
    let items: [(&str, &str, Option<&str>); 7] = [
        ("SYN", COLOR_SYN, None),
        ("FIN", COLOR_FIN, None),
        ("RST", COLOR_RST, None),
        ("data", COLOR_DATA, None),
        ("ACK", COLOR_ACK, None),
        ("retransmission", COLOR_RTX, None),
        ("lost", COLOR_ACK, Some("6 4")),
    ];
    let mut x = AXIS_X - 40.0;
    for (name, color, dash) in items {
        svg.line(x, y, x + 28.0, y, color, 1.8, dash);
        if dash.is_some() {
            cross(svg, x + 30.0, y, 4.0, COLOR_LOST, 2.0);
        } else {
            arrow_head(svg, x, y, x + 30.0, y, color);
        }
        let _ = writeln!(
            svg.out,
            r##"<text x="{}" y="{}" font-family="{FONT_SANS}" font-size="12" fill="#37474f">{}</text>"##,
            num(x + 40.0),
            num(y + 4.0),
            escape(name)
        );
        x += 40.0 + name.len() as f64 * 7.5 + 28.0;
    }
    let state_x = x;
    let _ = writeln!(
        svg.out,
        r#"<rect x="{}" y="{}" width="22" height="14" rx="3" fill="{COLOR_STATE_FILL}" stroke="{COLOR_STATE}"/>"#,
        num(state_x),
        num(y - 7.0)
    );
    let _ = writeln!(
        svg.out,
        r##"<text x="{}" y="{}" font-family="{FONT_SANS}" font-size="12" fill="#37474f">state change</text>"##,
        num(state_x + 30.0),
        num(y + 4.0)
    );
}

/// The document being written.
#[derive(Default)]
struct Svg {
    out: String,
}

impl Svg {
    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
        color: &str,
        width: f64,
        dash: Option<&str>,
    ) {
        let dash = dash
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let _ = writeln!(
            self.out,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="{}"{dash}/>"#,
            num(x0),
            num(y0),
            num(x1),
            num(y1),
            num(width)
        );
    }
}

/// A coordinate with at most one decimal, without a trailing `.0`.
pub(crate) fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// Escapes text for XML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::tests::{basic_run, lossy_run};

    fn opts() -> DiagramOptions {
        DiagramOptions {
            left_label: "client 10.0.0.1:49152".to_owned(),
            right_label: "server 10.0.0.2:7".to_owned(),
            ..DiagramOptions::default()
        }
    }

    /// Checks that every tag is closed in order (a small XML well-formedness
    /// check: no comments, CDATA or processing instructions are written).
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            assert!(!text.contains('>'), "stray > in text {text:?}");
            check_entities(text);
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "< inside a tag: {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else {
                let name: String = tag
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '/')
                    .collect();
                assert!(!name.is_empty(), "empty tag name");
                check_attributes(tag);
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert!(rest.trim().is_empty());
    }

    fn check_entities(text: &str) {
        for (i, _) in text.match_indices('&') {
            let ent = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| ent.starts_with(e)),
                "bad entity at {ent:?}"
            );
        }
    }

    fn check_attributes(tag: &str) {
        // Attribute values are in double quotes: an even number of them.
        assert_eq!(tag.matches('"').count() % 2, 0, "odd quotes in {tag:?}");
        for value in tag.split('"').skip(1).step_by(2) {
            check_entities(value);
        }
    }

    #[test]
    fn well_formed_with_labels() {
        let svg = render_svg(&basic_run(), &opts());
        std::fs::write(std::env::temp_dir().join("synack-test.svg"), &svg).unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("</svg>").count(), 1);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_well_formed(&svg);
        for needle in [
            "client 10.0.0.1:49152",
            "server 10.0.0.2:7",
            "S seq=1000 len=0 win=65535 (lost)",
            "S seq=1000 len=0 win=65535 (retransmission)",
            "SA seq=5000 ack=1001 len=0 win=65535",
            ">SYN-SENT<",
            ">SYN-RECEIVED<",
            ">TIME-WAIT<",
            ">LISTEN<",
            "59.990 s later",
            ">61.100s<",
        ] {
            assert!(svg.contains(needle), "missing {needle:?}");
        }
        // One arrow per segment sent.
        assert_eq!(svg.matches("<g class=\"segment\">").count(), 11);
        // The lost SYN is dashed and retransmissions are purple.
        assert!(svg.contains(COLOR_RTX));
        assert!(svg.contains("stroke-dasharray=\"6 4\""));
    }

    #[test]
    fn escapes_markup() {
        let o = DiagramOptions {
            left_label: "a<b> & \"c\"".to_owned(),
            right_label: "server's".to_owned(),
            ..DiagramOptions::default()
        };
        let svg = render_svg(&basic_run(), &o);
        assert_well_formed(&svg);
        assert!(svg.contains("a&lt;b&gt; &amp; &quot;c&quot;"));
        assert!(svg.contains("server&apos;s"));
        assert!(!svg.contains("a<b>"));
        assert_eq!(escape("<&>"), "&lt;&amp;&gt;");
    }

    #[test]
    fn arrivals_pair_with_receives() {
        let run = Run::build(&basic_run(), &opts());
        // The lost SYN has no arrival; every other segment arrived once.
        assert!(run.arrows[0].fates.lost && run.arrows[0].arrivals.is_empty());
        for a in &run.arrows[1..] {
            assert_eq!(a.arrivals.len(), 1);
            assert!(a.arrivals[0] > a.row);
            assert!(run.rows[a.arrivals[0]].at > run.rows[a.row].at);
        }
        // Rows go down in time order.
        for w in run.rows.windows(2) {
            assert!(w[0].at <= w[1].at && w[0].y < w[1].y);
        }
        assert_eq!(run.pauses.len(), 2);
    }

    #[test]
    fn lossy_run_arrows() {
        let records = lossy_run();
        let svg = render_svg(&records, &opts());
        std::fs::write(std::env::temp_dir().join("synack-lossy.svg"), &svg).unwrap();
        assert_well_formed(&svg);
        assert!(svg.contains("drop: bad checksum"));
        assert!(svg.contains("(duplicate)"));
        let run = Run::build(&records, &opts());
        let by_seq = |seq: u32, rtx: bool| {
            run.arrows
                .iter()
                .find(|a| a.seg.seq == seq && a.rtx == rtx && a.from == Side::Left)
                .unwrap()
        };
        // Lost: no arrival. Duplicated: two. Corrupted: ends at the drop.
        assert!(by_seq(2000, false).arrivals.is_empty());
        assert_eq!(by_seq(3000, false).arrivals.len(), 2);
        let corrupted = by_seq(4000, false);
        assert_eq!(corrupted.arrivals.len(), 1);
        assert!(run.marks.iter().any(|m| matches!(
            m,
            Mark::Drop { row, .. } if *row == corrupted.arrivals[0]
        )));
        // The retransmissions arrived.
        assert_eq!(by_seq(2000, true).arrivals.len(), 1);
        assert_eq!(by_seq(4000, true).arrivals.len(), 1);
        // Three identical duplicate ACKs pair with three receives, in order.
        let acks: Vec<&Arrow> = run
            .arrows
            .iter()
            .filter(|a| a.from == Side::Right && a.seg.ack == 2000)
            .collect();
        assert_eq!(acks.len(), 3);
        assert!(acks[0].arrivals[0] < acks[1].arrivals[0]);
        assert!(acks[1].arrivals[0] < acks[2].arrivals[0]);
    }

    #[test]
    fn deterministic_and_empty_run() {
        let r = basic_run();
        assert_eq!(render_svg(&r, &opts()), render_svg(&r, &opts()));
        let empty = render_svg(&[], &opts());
        assert_well_formed(&empty);
        assert!(empty.contains("client 10.0.0.1:49152"));
    }

    #[test]
    fn axis_times() {
        assert_eq!(axis_time(Instant::from_millis(1010)), "1.010s");
        assert_eq!(axis_time(Instant::from_micros(10_250)), "0.01025s");
        assert_eq!(axis_time(Instant::from_micros(61_000_001)), "61.000001s");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.04), "12");
        assert_eq!(num(12.25), "12.3");
        assert_eq!(num(-3.5), "-3.5");
    }
}
