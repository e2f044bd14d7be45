//! The terminal sequence diagram of a run (`synack demo`).
//!
//! Two lifelines, the left host (the client) and the right host (the
//! server); time runs downward, one row per thing that happened:
//!
//! - a segment sent: an arrow from the sender's lifeline to the receiver's,
//!   labelled with its flags, `seq`, `ack` (only when the ACK flag is set),
//!   `len` and `win`, then `(retransmission)` and what the link did to it
//!   (`(lost)`, `(duplicated)`, `(corrupted)`); a lost segment's arrow stops
//!   short of the receiver with a `✗`;
//! - a state change: `●` on the lifeline of the host where it happened, with
//!   `FROM → TO` beside it;
//! - a segment the receiver discarded: `✗ drop: REASON` on its lifeline;
//! - a pause of a second or more (a retransmission timeout, TIME-WAIT): a
//!   `┊` row saying how long it lasted.
//!
//! Segments received produce no row: the arrow of the send shows them.
//! Records of hosts other than the two shown are skipped. With colour on,
//! SYN segments are green, FIN yellow, RST red, data blue, lost segments dim,
//! state changes bold cyan; with colour off the text has no escape codes.

use std::time::Duration;

use synack::record::{HostId, LinkFate, Record};
use synack_core::{Instant, SegmentInfo, TraceKind};

use crate::explain::Narrator;

/// What to draw and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagramOptions {
    /// Colour with ANSI escape codes (for a terminal); plain text when false.
    pub color: bool,
    /// Heading of the left lifeline, e.g. `"client 10.0.0.1:49152"`.
    pub left_label: String,
    /// Heading of the right lifeline, e.g. `"server 10.0.0.2:7"`.
    pub right_label: String,
    /// The host drawn on the left.
    pub left_host: HostId,
    /// The host drawn on the right.
    pub right_host: HostId,
    /// Add a line under each segment and state change saying why it
    /// happened (`--explain`).
    pub explain: bool,
}

impl Default for DiagramOptions {
    /// No colour, `client` (host 0) on the left, `server` (host 1) on the right.
    fn default() -> Self {
        DiagramOptions {
            color: false,
            left_label: "client".to_owned(),
            right_label: "server".to_owned(),
            left_host: HostId(0),
            right_host: HostId(1),
            explain: false,
        }
    }
}

// ---------------------------------------------------------------------------
// The view of a run that both the terminal and the SVG diagrams draw.

/// A lifeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
}

/// The side a host is drawn on, if it is drawn.
pub(crate) fn side_of(host: HostId, opts: &DiagramOptions) -> Option<Side> {
    if host == opts.left_host {
        Some(Side::Left)
    } else if host == opts.right_host {
        Some(Side::Right)
    } else {
        None
    }
}

/// What the link did to one segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fates {
    pub lost: bool,
    pub duplicated: bool,
    pub corrupted: bool,
    /// Held in the network this much longer than the link's delay.
    pub held: Option<Duration>,
}

/// The link's verdicts on the segment sent by `host` in `records[send]`:
/// the link records from that host that follow it, up to that host's next
/// send.
pub(crate) fn fates_of(records: &[Record], send: usize, host: HostId) -> Fates {
    let mut fates = Fates::default();
    for r in &records[send + 1..] {
        match r {
            Record::Link { from, fate, .. } if *from == host => match fate {
                LinkFate::Lost => fates.lost = true,
                LinkFate::Duplicated => fates.duplicated = true,
                LinkFate::Corrupted => fates.corrupted = true,
                LinkFate::Delayed(d) => fates.held = Some(*d),
            },
            Record::Trace { host: h, event: ev }
                if *h == host && matches!(ev.kind, TraceKind::Send { .. }) =>
            {
                break
            }
            _ => {}
        }
    }
    fates
}

/// `SA seq=1 ack=2 len=0 win=65535`: the flags (`-` when none), then the
/// raw numbers; `ack` only when the ACK flag is set.
pub(crate) fn segment_label(seg: &SegmentInfo) -> String {
    let mut letters = [0u8; 6];
    let flags = match seg.flags.letters(&mut letters) {
        "" => "-",
        f => f,
    };
    let mut s = format!("{flags} seq={}", seg.seq);
    if seg.flags.ack() {
        s.push_str(&format!(" ack={}", seg.ack));
    }
    s.push_str(&format!(" len={} win={}", seg.len, seg.win));
    s
}

/// The notes that follow a segment's label, each with a leading space:
/// ` (retransmission)`, ` (lost)`, ` (duplicated)`, ` (corrupted)`,
/// ` (held up 3.000 s)`.
pub(crate) fn segment_notes(rtx: bool, fates: Fates) -> Vec<String> {
    let mut notes = Vec::new();
    if rtx {
        notes.push(" (retransmission)".to_owned());
    }
    if fates.lost {
        notes.push(" (lost)".to_owned());
    }
    if fates.duplicated {
        notes.push(" (duplicated)".to_owned());
    }
    if fates.corrupted {
        notes.push(" (corrupted)".to_owned());
    }
    if let Some(d) = fates.held {
        let ms = d.as_millis();
        notes.push(format!(" (held up {}.{:03} s)", ms / 1000, ms % 1000));
    }
    notes
}

/// The kind of a segment, which decides its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SegClass {
    Rst,
    Syn,
    Fin,
    Data,
    Ack,
}

/// RST before SYN before FIN before data before a bare ACK.
pub(crate) fn seg_class(seg: &SegmentInfo) -> SegClass {
    if seg.flags.rst() {
        SegClass::Rst
    } else if seg.flags.syn() {
        SegClass::Syn
    } else if seg.flags.fin() {
        SegClass::Fin
    } else if seg.len > 0 {
        SegClass::Data
    } else {
        SegClass::Ack
    }
}

/// `1.234s`: seconds with three decimals (rounded down to the millisecond).
pub(crate) fn format_time(at: Instant) -> String {
    let ms = at.micros() / 1000;
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// A pause at least this long between two rows is shown as such.
pub(crate) const PAUSE: Duration = Duration::from_secs(1);

/// `59.990 s later`: the length of a pause.
pub(crate) fn format_pause(d: Duration) -> String {
    let ms = d.as_millis();
    format!("{}.{:03} s later", ms / 1000, ms % 1000)
}

// ---------------------------------------------------------------------------
// The terminal rendering.

/// Room between the lifelines, in columns.
const INNER: usize = 72;
/// Columns between the time and the left lifeline.
const TIME_GAP: usize = 2;
/// How far short of the receiver a lost segment's arrow stops.
const LOST_SHORT: usize = 8;
/// Shortest piece of arrow shaft on either side of a label.
const MIN_SHAFT: usize = 2;

/// ANSI SGR parameters ("" for plain text).
type Sgr = &'static str;

const PLAIN: Sgr = "";
const LIFELINE: Sgr = "2";
const HEADER: Sgr = "1";
const STATE: Sgr = "1;36";
const DROP: Sgr = "31";
const PAUSE_STYLE: Sgr = "2;3";
const NOTE_RTX: Sgr = "35";
const NOTE_LOST: Sgr = "1;31";
const EXPLAIN: Sgr = "2;3";
const REMARK: Sgr = "1;33";

fn seg_sgr(class: SegClass, lost: bool) -> Sgr {
    match (class, lost) {
        (SegClass::Rst, false) => "31",
        (SegClass::Syn, false) => "32",
        (SegClass::Fin, false) => "33",
        (SegClass::Data, false) => "94",
        (SegClass::Ack, false) => PLAIN,
        (SegClass::Rst, true) => "2;31",
        (SegClass::Syn, true) => "2;32",
        (SegClass::Fin, true) => "2;33",
        (SegClass::Data, true) => "2;94",
        (SegClass::Ack, true) => "2",
    }
}

/// One line of output: pieces of text, each with its style.
#[derive(Default)]
struct Line {
    spans: Vec<(String, Sgr)>,
}

impl Line {
    fn push(&mut self, text: impl Into<String>, sgr: Sgr) -> &mut Self {
        self.spans.push((text.into(), sgr));
        self
    }

    fn width(&self) -> usize {
        self.spans.iter().map(|(t, _)| t.chars().count()).sum()
    }

    fn pad_to(&mut self, width: usize) -> &mut Self {
        let w = self.width();
        if w < width {
            self.push(" ".repeat(width - w), PLAIN);
        }
        self
    }

    fn render(&self, color: bool, out: &mut String) {
        let start = out.len();
        for (text, sgr) in &self.spans {
            if color && !sgr.is_empty() && !text.trim().is_empty() {
                out.push_str("\x1b[");
                out.push_str(sgr);
                out.push('m');
                out.push_str(text);
                out.push_str("\x1b[0m");
            } else {
                out.push_str(text);
            }
        }
        let trimmed = out[start..].trim_end().len();
        out.truncate(start + trimmed);
        out.push('\n');
    }
}

/// Column geometry of one diagram.
struct Layout {
    /// Column of the left lifeline.
    left: usize,
    /// Columns between the lifelines.
    inner: usize,
}

impl Layout {
    /// Starts a row: the time (or blanks) up to the left lifeline.
    fn row(&self, at: Option<Instant>) -> Line {
        let mut line = Line::default();
        let time = at.map(format_time).unwrap_or_default();
        let w = self.left - TIME_GAP;
        line.push(format!("{time:>w$}"), PLAIN);
        line.pad_to(self.left);
        line
    }
}

/// Renders the run as a two-column sequence diagram for a terminal: a
/// heading with the two labels, then one line per segment sent, state
/// change, drop and long pause, in the order of `records` (see the [module
/// documentation](self)). Only records of `opts.left_host` and
/// `opts.right_host` are drawn; the same input gives the same text.
pub fn render(records: &[Record], opts: &DiagramOptions) -> String {
    let lw = opts.left_label.chars().count() + 4;
    let rw = opts.right_label.chars().count() + 4;
    // Room for the longest time (`61.100s`; more after 100 s).
    let time_w = records
        .last()
        .map_or(0, |r| format_time(r.at()).chars().count())
        .max(8);
    let layout = Layout {
        left: (lw / 2).max(time_w + TIME_GAP),
        inner: INNER.max(lw / 2 + rw / 2 + 4),
    };
    let mut out = String::new();
    render_header(&layout, opts, &mut out);

    let mut last_at: Option<Instant> = None;
    let mut narrator = Narrator::default();
    // Segments the link held up, drawn again when they finally arrive.
    // (sender, segment, earliest arrival): a retransmitted copy of the same
    // segment may arrive before the held one.
    let mut held: Vec<(HostId, SegmentInfo, Instant)> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let why = narrator.explain(records, i);
        let (host, event) = match record {
            // The window is drawn as its own plot, not on the lifelines.
            Record::Trace { event, .. } if matches!(event.kind, TraceKind::Cwnd { .. }) => continue,
            Record::Trace { host, event } => (host, event),
            Record::Note { at, host, text } => {
                if let Some(side) = side_of(*host, opts) {
                    pause_row(&layout, opts, last_at, *at, &mut out);
                    last_at = Some(*at);
                    let mut line = layout.row(Some(*at));
                    side_row(&layout, &mut line, side, "◆", REMARK, text, REMARK);
                    line.render(opts.color, &mut out);
                }
                continue;
            }
            Record::Link { .. } => continue,
        };
        let Some(side) = side_of(*host, opts) else {
            continue;
        };
        if let TraceKind::Recv { seg } = event.kind {
            let due = |(h, s, t): &(HostId, SegmentInfo, Instant)| {
                h != host && *s == seg && *t <= event.at
            };
            if let Some(k) = held.iter().position(due) {
                held.remove(k);
                pause_row(&layout, opts, last_at, event.at, &mut out);
                last_at = Some(event.at);
                let mut line = layout.row(Some(event.at));
                let label = segment_label(&seg);
                let short = label.split(" len=").next().unwrap_or(&label);
                let text = format!("the held-up {short} arrives");
                side_row(&layout, &mut line, side, "◆", REMARK, &text, REMARK);
                line.render(opts.color, &mut out);
            }
            continue;
        }
        pause_row(&layout, opts, last_at, event.at, &mut out);
        last_at = Some(event.at);

        let mut line = layout.row(Some(event.at));
        match event.kind {
            TraceKind::Send { seg, rtx } => {
                let fates = fates_of(records, i, *host);
                if let Some(d) = fates.held {
                    held.push((*host, seg, event.at + d));
                }
                segment_row(&layout, &mut line, side, &seg, rtx, fates);
            }
            TraceKind::State { from, to } => {
                let text = format!("{} → {}", from.name(), to.name());
                side_row(&layout, &mut line, side, "●", STATE, &text, STATE);
            }
            TraceKind::Drop { reason } => {
                let text = format!("drop: {reason}");
                side_row(&layout, &mut line, side, "✗", DROP, &text, DROP);
            }
            TraceKind::Recv { .. } | TraceKind::Cwnd { .. } => continue,
        }
        line.render(opts.color, &mut out);
        if let (true, Some(why)) = (opts.explain, why) {
            explain_rows(&layout, opts, side, &why, &mut out);
        }
    }
    out
}

/// A `┊` row saying how long nothing happened, when that was a second or
/// more.
fn pause_row(
    layout: &Layout,
    opts: &DiagramOptions,
    last_at: Option<Instant>,
    at: Instant,
    out: &mut String,
) {
    {
        if let Some(prev) = last_at {
            let pause = at.saturating_since(prev);
            if pause >= PAUSE {
                let mut line = layout.row(None);
                let text = format!("··· {} ···", format_pause(pause));
                let pad = layout.inner.saturating_sub(text.chars().count()) / 2;
                line.push("┊", LIFELINE)
                    .push(" ".repeat(pad), PLAIN)
                    .push(text, PAUSE_STYLE)
                    .pad_to(layout.left + 1 + layout.inner)
                    .push("┊", LIFELINE);
                line.render(opts.color, out);
            }
        }
    }
}

/// The explanation of the row above, between the lifelines, wrapped to fit:
/// flush left under a left-side row, flush right under a right-side one.
fn explain_rows(layout: &Layout, opts: &DiagramOptions, side: Side, why: &str, out: &mut String) {
    const MARGIN: usize = 1;
    let room = layout.inner.saturating_sub(2 * MARGIN + 2);
    for (k, text) in wrap(why, room).into_iter().enumerate() {
        let mut line = layout.row(None);
        line.push("│", LIFELINE);
        let w = text.chars().count() + 2;
        let (left_mark, right_mark) = if k == 0 {
            ("↳ ", " ↲")
        } else {
            ("  ", "  ")
        };
        match side {
            Side::Left => {
                line.push(" ".repeat(MARGIN), PLAIN)
                    .push(left_mark, EXPLAIN)
                    .push(text, EXPLAIN);
            }
            Side::Right => {
                line.pad_to(layout.left + 1 + layout.inner.saturating_sub(w + MARGIN))
                    .push(text, EXPLAIN)
                    .push(right_mark, EXPLAIN);
            }
        }
        line.pad_to(layout.left + 1 + layout.inner)
            .push("│", LIFELINE);
        line.render(opts.color, out);
    }
}

/// `text` cut into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let n = cur.chars().count();
        if n > 0 && n + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The two labels in boxes, each centred over its lifeline.
fn render_header(layout: &Layout, opts: &DiagramOptions, out: &mut String) {
    let right = layout.left + 1 + layout.inner;
    let boxed = |label: &str| -> [String; 3] {
        let w = label.chars().count() + 2;
        let half = w / 2;
        [
            format!("┌{}┐", "─".repeat(w)),
            format!("│ {label} │"),
            format!("└{}┬{}┘", "─".repeat(half), "─".repeat(w - half - 1)),
        ]
    };
    let l = boxed(&opts.left_label);
    let r = boxed(&opts.right_label);
    // The `┬` sits at offset 1 + half of the box's inner width.
    let l_start = layout.left - (1 + (opts.left_label.chars().count() + 2) / 2);
    let r_start = right - (1 + (opts.right_label.chars().count() + 2) / 2);
    for k in 0..3 {
        let mut line = Line::default();
        line.push(" ".repeat(l_start), PLAIN)
            .push(l[k].clone(), HEADER)
            .pad_to(r_start)
            .push(r[k].clone(), HEADER);
        line.render(opts.color, out);
    }
}

/// A segment's arrow between the lifelines.
fn segment_row(
    layout: &Layout,
    line: &mut Line,
    side: Side,
    seg: &SegmentInfo,
    rtx: bool,
    fates: Fates,
) {
    let style = seg_sgr(seg_class(seg), fates.lost);
    let label = format!(" {}", segment_label(seg));
    let notes = segment_notes(rtx, fates);
    // The label, its notes and a space before the shaft goes on.
    let text_w = label.chars().count() + notes.iter().map(|n| n.chars().count()).sum::<usize>() + 1;
    let short = if fates.lost { LOST_SHORT } else { 0 };
    // Shaft plus text plus the head (one column).
    let room = layout.inner.saturating_sub(short + 1);
    let shaft = room.saturating_sub(text_w);
    let near = (shaft / 2).max(MIN_SHAFT);
    let far = shaft.saturating_sub(near).max(MIN_SHAFT);

    let push_text = |line: &mut Line| {
        line.push(label.clone(), style);
        for note in &notes {
            let sgr = if note.contains("retransmission") {
                NOTE_RTX
            } else {
                NOTE_LOST
            };
            // The leading space stays unstyled.
            line.push(" ", PLAIN).push(&note[1..], sgr);
        }
        line.push(" ", PLAIN);
    };
    let head_style = if fates.lost { NOTE_LOST } else { style };
    match side {
        Side::Left => {
            line.push("├", style).push("─".repeat(near), style);
            push_text(line);
            line.push("─".repeat(far), style);
            line.push(if fates.lost { "✗" } else { "▶" }, head_style);
            line.pad_to(layout.left + 1 + layout.inner);
            line.push("│", LIFELINE);
        }
        Side::Right => {
            line.push("│", LIFELINE);
            line.push(" ".repeat(short), PLAIN);
            line.push(if fates.lost { "✗" } else { "◀" }, head_style);
            line.push("─".repeat(far), style);
            push_text(line);
            line.push("─".repeat(near), style);
            line.pad_to(layout.left + 1 + layout.inner);
            line.push("┤", style);
        }
    }
}

/// A mark on one lifeline with a note beside it, inside the diagram.
fn side_row(
    layout: &Layout,
    line: &mut Line,
    side: Side,
    mark: &str,
    mark_sgr: Sgr,
    text: &str,
    text_sgr: Sgr,
) {
    match side {
        Side::Left => {
            line.push(mark, mark_sgr)
                .push(" ", PLAIN)
                .push(text, text_sgr);
            line.pad_to(layout.left + 1 + layout.inner);
            line.push("│", LIFELINE);
        }
        Side::Right => {
            line.push("│", LIFELINE);
            let w = text.chars().count() + 1;
            line.pad_to(layout.left + 1 + layout.inner.saturating_sub(w));
            line.push(text, text_sgr)
                .push(" ", PLAIN)
                .push(mark, mark_sgr);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::SocketAddr;
    use synack_core::{ConnTuple, State, TraceEvent};
    use synack_wire::TcpFlags;

    const C: HostId = HostId(0);
    const S: HostId = HostId(1);

    fn conn(host: HostId) -> Option<ConnTuple> {
        let a: SocketAddr = "10.0.0.1:49152".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:7".parse().unwrap();
        Some(if host == C {
            ConnTuple {
                local: a,
                remote: b,
            }
        } else {
            ConnTuple {
                local: b,
                remote: a,
            }
        })
    }

    fn ev(host: HostId, ms: u64, kind: TraceKind) -> Record {
        Record::Trace {
            host,
            event: TraceEvent {
                at: Instant::from_micros(ms * 1000),
                conn: conn(host),
                kind,
            },
        }
    }

    fn state(host: HostId, ms: u64, from: State, to: State) -> Record {
        ev(host, ms, TraceKind::State { from, to })
    }

    fn seg(flags: TcpFlags, seq: u32, ack: u32, len: u32) -> SegmentInfo {
        SegmentInfo {
            flags,
            seq,
            ack,
            len,
            win: 65535,
        }
    }

    /// A send at `ms` and its arrival at the peer 10 ms later.
    fn hop(from: HostId, ms: u64, s: SegmentInfo, rtx: bool) -> [Record; 2] {
        let to = if from == C { S } else { C };
        [
            ev(from, ms, TraceKind::Send { seg: s, rtx }),
            ev(to, ms + 10, TraceKind::Recv { seg: s }),
        ]
    }

    fn sa() -> TcpFlags {
        TcpFlags::SYN | TcpFlags::ACK
    }
    fn a() -> TcpFlags {
        TcpFlags::ACK
    }
    fn pa() -> TcpFlags {
        TcpFlags::PSH | TcpFlags::ACK
    }
    fn fa() -> TcpFlags {
        TcpFlags::FIN | TcpFlags::ACK
    }

    /// Handshake with a lost and retransmitted SYN, an echo of 5 bytes, a
    /// close by the client, TIME-WAIT running out. Used by the SVG tests too.
    pub(crate) fn basic_run() -> Vec<Record> {
        use State::*;
        let mut r = vec![
            state(C, 0, Closed, SynSent),
            ev(
                C,
                0,
                TraceKind::Send {
                    seg: seg(TcpFlags::SYN, 1000, 0, 0),
                    rtx: false,
                },
            ),
            Record::Link {
                at: Instant::ZERO,
                from: C,
                fate: LinkFate::Lost,
            },
        ];
        r.extend(hop(C, 1000, seg(TcpFlags::SYN, 1000, 0, 0), true));
        r.push(state(S, 1010, Listen, SynReceived));
        r.extend(hop(S, 1010, seg(sa(), 5000, 1001, 0), false));
        r.push(state(C, 1020, SynSent, Established));
        r.extend(hop(C, 1020, seg(a(), 1001, 5001, 0), false));
        r.push(state(S, 1030, SynReceived, Established));
        r.extend(hop(C, 1040, seg(pa(), 1001, 5001, 5), false));
        r.extend(hop(S, 1050, seg(pa(), 5001, 1006, 5), false));
        r.extend(hop(C, 1060, seg(a(), 1006, 5006, 0), false));
        r.push(state(C, 1070, Established, FinWait1));
        r.extend(hop(C, 1070, seg(fa(), 1006, 5006, 0), false));
        r.push(state(S, 1080, Established, CloseWait));
        r.extend(hop(S, 1080, seg(a(), 5006, 1007, 0), false));
        r.push(state(C, 1090, FinWait1, FinWait2));
        r.push(state(S, 1090, CloseWait, LastAck));
        r.extend(hop(S, 1090, seg(fa(), 5006, 1007, 0), false));
        r.push(state(C, 1100, FinWait2, TimeWait));
        r.extend(hop(C, 1100, seg(a(), 1007, 5007, 0), false));
        r.push(state(S, 1110, LastAck, Closed));
        r.push(state(C, 61_100, TimeWait, Closed));
        r
    }

    /// Data both ways over a link that loses, duplicates and corrupts;
    /// ends in a reset. Times in microseconds.
    pub(crate) fn lossy_run() -> Vec<Record> {
        let us = |host: HostId, us: u64, kind: TraceKind| match ev(host, 0, kind) {
            Record::Trace { host, mut event } => {
                event.at = Instant::from_micros(us);
                Record::Trace { host, event }
            }
            link => link,
        };
        let data = |seq: u32| seg(pa(), seq, 7000, 1000);
        let ack = |n: u32| seg(a(), 7000, n, 0);
        let link = |at: u64, from: HostId, fate: LinkFate| Record::Link {
            at: Instant::from_micros(at),
            from,
            fate,
        };
        let send = |s: SegmentInfo, rtx: bool| TraceKind::Send { seg: s, rtx };
        let recv = |s: SegmentInfo| TraceKind::Recv { seg: s };
        vec![
            us(C, 0, send(data(1000), false)),
            us(C, 100, send(data(2000), false)),
            link(100, C, LinkFate::Lost),
            us(C, 200, send(data(3000), false)),
            link(200, C, LinkFate::Duplicated),
            us(C, 300, send(data(4000), false)),
            link(300, C, LinkFate::Corrupted),
            us(S, 5000, send(seg(pa(), 7000, 1000, 500), false)),
            us(S, 10_000, recv(data(1000))),
            us(S, 10_000, send(ack(2000), false)),
            us(C, 10_000, recv(seg(pa(), 7000, 1000, 500))),
            us(S, 10_200, recv(data(3000))),
            us(S, 10_200, send(ack(2000), false)),
            us(S, 10_250, recv(data(3000))),
            us(S, 10_250, send(ack(2000), false)),
            us(
                S,
                10_300,
                TraceKind::Drop {
                    reason: "bad checksum",
                },
            ),
            us(C, 20_000, recv(ack(2000))),
            us(C, 20_000, send(data(2000), true)),
            us(C, 20_200, recv(ack(2000))),
            us(C, 20_250, recv(ack(2000))),
            us(S, 30_000, recv(data(2000))),
            us(S, 30_000, send(ack(4000), false)),
            us(C, 40_000, recv(ack(4000))),
            us(C, 40_000, send(data(4000), true)),
            us(S, 50_000, recv(data(4000))),
            us(S, 50_000, send(seg(TcpFlags::RST, 7000, 0, 0), false)),
            us(C, 60_000, recv(seg(TcpFlags::RST, 7000, 0, 0))),
            state(C, 60, State::Established, State::Closed),
        ]
    }

    fn opts(color: bool) -> DiagramOptions {
        DiagramOptions {
            color,
            left_label: "client 10.0.0.1:49152".to_owned(),
            right_label: "server 10.0.0.2:7".to_owned(),
            ..DiagramOptions::default()
        }
    }

    fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
    }

    #[test]
    fn plain_handshake_and_close() {
        let text = render(&basic_run(), &opts(false));
        println!("{text}");
        assert!(!text.contains('\x1b'));
        assert!(text.lines().next().unwrap().contains('┌'));
        assert!(text.contains("client 10.0.0.1:49152"));
        assert!(text.contains("server 10.0.0.2:7"));

        // The first SYN went left to right and was lost.
        let syn = line_with(&text, "S seq=1000 len=0 win=65535 (lost)");
        assert!(syn.trim_start().starts_with("0.000s"));
        assert!(syn.contains('✗') && !syn.contains('▶'));
        assert!(!syn.contains("retransmission"));
        // Its retransmission a second later arrived.
        let rtx = line_with(&text, "(retransmission)");
        assert!(rtx.contains("1.000s") && rtx.contains("S seq=1000 len=0"));
        assert!(rtx.ends_with("▶│"), "{rtx:?}");
        assert!(!rtx.contains("(lost)"));
        // The SYN-ACK goes right to left and shows its ack.
        let synack = line_with(&text, "SA seq=5000 ack=1001 len=0 win=65535");
        assert!(synack.contains("│◀─") && synack.ends_with('┤'));
        // A bare SYN shows no ack.
        assert!(!syn.contains("ack="));

        // State changes on their own side.
        let c = line_with(&text, "CLOSED → SYN-SENT");
        let s = line_with(&text, "LISTEN → SYN-RECEIVED");
        assert!(c.find('●').unwrap() < c.find("CLOSED").unwrap());
        assert!(s.ends_with('●'));
        assert!(s.find("LISTEN").unwrap() > c.find("CLOSED").unwrap() + 20);
        line_with(&text, "FIN-WAIT-2 → TIME-WAIT");
        line_with(&text, "LAST-ACK → CLOSED");
        // The TIME-WAIT pause, then the last change.
        line_with(&text, "59.990 s later");
        assert!(line_with(&text, "TIME-WAIT → CLOSED").contains("61.100s"));
        // Received segments give no rows: one per send, state change, pause.
        let sends = 11;
        let states = 11;
        assert_eq!(text.lines().count(), 3 + sends + states + 2);
        for l in text.lines().skip(3) {
            assert!(l.chars().count() <= 100, "too wide: {l:?}");
        }
    }

    #[test]
    fn explain_adds_a_line_under_rows() {
        let mut o = opts(false);
        let plain = render(&basic_run(), &o);
        o.explain = true;
        let text = render(&basic_run(), &o);
        println!("{text}");
        // Every line of the plain diagram is still there, in order.
        let mut rest = text.lines();
        for l in plain.lines() {
            assert!(rest.any(|m| m == l), "{l:?} missing");
        }
        let below = |needle: &str| {
            let lines: Vec<&str> = text.lines().collect();
            let k = lines.iter().position(|l| l.contains(needle)).unwrap();
            lines[k + 1].to_owned()
        };
        assert!(below("SA seq=5000").contains("two messages in one"));
        assert!(below("(retransmission)").contains("the SYN again after 1 s"));
        assert!(below("ESTABLISHED → CLOSE-WAIT").contains("CLOSE-WAIT until"));
        assert!(below("A seq=5006 ack=1007").contains("has not closed yet"));
        assert!(below("FIN-WAIT-2 → TIME-WAIT").contains("2×MSL"));
        assert!(below("TIME-WAIT → CLOSED").contains("after 60 s"));
        assert!(below("A seq=1001 ack=5001 len=0").contains("third message"));
        // The lifelines stay straight.
        let widths: Vec<usize> = text.lines().skip(3).map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{text}");
    }

    #[test]
    fn explain_follows_the_backoff_and_resets() {
        let mut r = vec![state(C, 0, State::Closed, State::SynSent)];
        for (ms, rtx) in [(0, false), (1000, true)] {
            r.push(ev(
                C,
                ms,
                TraceKind::Send {
                    seg: seg(TcpFlags::SYN, 1000, 0, 0),
                    rtx,
                },
            ));
        }
        r.extend(hop(C, 3000, seg(TcpFlags::SYN, 1000, 0, 0), true));
        r.extend(hop(
            S,
            3010,
            seg(TcpFlags::RST | TcpFlags::ACK, 0, 1001, 0),
            false,
        ));
        r.push(state(C, 3020, State::SynSent, State::Closed));
        let text = render(
            &r,
            &DiagramOptions {
                explain: true,
                ..opts(false)
            },
        );
        println!("{text}");
        assert!(text.contains("the SYN again after 2 s, twice the last wait"));
        assert!(text.contains("nothing listens on that port"));
        assert!(text.contains("connection refused"));
    }

    #[test]
    fn lifelines_line_up() {
        let text = render(&basic_run(), &opts(false));
        let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        let left = lines[2].iter().position(|&c| c == '┬').unwrap();
        let right = lines[2].iter().rposition(|&c| c == '┬').unwrap();
        for l in &lines[3..] {
            assert!(
                "│├●✗┊".contains(l[left]),
                "{:?}",
                l.iter().collect::<String>()
            );
            assert!(
                "│┤●✗┊".contains(l[right]),
                "{:?}",
                l.iter().collect::<String>()
            );
            assert_eq!(l.len(), right + 1);
        }
    }

    #[test]
    fn color_marks_segments_and_states() {
        let text = render(&basic_run(), &opts(true));
        assert!(text.contains("\x1b[32m├"), "SYN in green");
        assert!(text.contains("\x1b[1;36mCLOSED → SYN-SENT\x1b[0m"));
        assert!(text.contains("\x1b[33m"), "FIN in yellow");
        assert!(text.contains("\x1b[1;31m(lost)\x1b[0m"));
        assert!(text.contains("\x1b[35m(retransmission)\x1b[0m"));
        // Without the escapes it is the plain diagram.
        let stripped = strip_ansi(&text);
        assert_eq!(stripped, render(&basic_run(), &opts(false)));
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn deterministic() {
        let r = basic_run();
        assert_eq!(render(&r, &opts(false)), render(&r, &opts(false)));
        assert_eq!(render(&r, &opts(true)), render(&r, &opts(true)));
    }

    #[test]
    fn drops_fates_and_other_hosts() {
        let mut r = vec![
            ev(
                S,
                0,
                TraceKind::Send {
                    seg: seg(pa(), 1, 2, 100),
                    rtx: false,
                },
            ),
            Record::Link {
                at: Instant::ZERO,
                from: S,
                fate: LinkFate::Corrupted,
            },
            ev(
                C,
                10,
                TraceKind::Drop {
                    reason: "bad checksum",
                },
            ),
            ev(
                S,
                20,
                TraceKind::Send {
                    seg: seg(TcpFlags::RST, 9, 0, 0),
                    rtx: false,
                },
            ),
            Record::Link {
                at: Instant::from_millis(20),
                from: S,
                fate: LinkFate::Duplicated,
            },
        ];
        // A third host's records are not drawn.
        r.push(Record::Trace {
            host: HostId(7),
            event: TraceEvent {
                at: Instant::from_millis(30),
                conn: None,
                kind: TraceKind::Drop {
                    reason: "elsewhere",
                },
            },
        });
        let text = render(&r, &opts(false));
        println!("{text}");
        assert!(line_with(&text, "PA seq=1 ack=2 len=100").contains("(corrupted)"));
        assert!(!line_with(&text, "PA seq=1").contains("(duplicated)"));
        assert!(line_with(&text, "R seq=9 len=0").contains("(duplicated)"));
        let drop = line_with(&text, "drop: bad checksum");
        assert!(drop.contains("✗ drop"));
        assert!(!text.contains("elsewhere"));
    }

    #[test]
    fn lossy_run_rows() {
        let text = render(&lossy_run(), &opts(false));
        println!("{text}");
        assert!(line_with(&text, "PA seq=2000 ack=7000 len=1000").contains("(lost)"));
        assert!(line_with(&text, "PA seq=3000 ack=7000 len=1000").contains("(duplicated)"));
        assert!(line_with(&text, "PA seq=4000 ack=7000 len=1000").contains("(corrupted)"));
        let rtx: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("(retransmission)"))
            .collect();
        assert_eq!(rtx.len(), 2);
        assert!(rtx.iter().all(|l| !l.contains("(lost)")));
        assert!(line_with(&text, "R seq=7000 len=0").ends_with('┤'));
        assert!(line_with(&text, "drop: bad checksum ✗").ends_with('✗'));
    }

    #[test]
    fn long_runs_keep_the_lifelines_straight() {
        let mut r = basic_run();
        r.push(state(C, 1_234_000, State::Closed, State::SynSent));
        let text = render(&r, &opts(false));
        let last = text.lines().last().unwrap();
        assert!(last.trim_start().starts_with("1234.000s  ●"), "{last:?}");
        let widths: Vec<usize> = text.lines().skip(3).map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{text}");
    }

    #[test]
    fn long_labels_do_not_break_the_header() {
        let o = DiagramOptions {
            left_label: "client [2001:db8:aaaa:bbbb:cccc:dddd:eeee:1]:49152".to_owned(),
            right_label: "server [2001:db8:aaaa:bbbb:cccc:dddd:eeee:2]:7".to_owned(),
            ..DiagramOptions::default()
        };
        let text = render(&basic_run(), &o);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2].matches('┬').count(), 2, "{text}");
        assert!(lines[1].contains(&o.left_label) && lines[1].contains(&o.right_label));
    }
}
