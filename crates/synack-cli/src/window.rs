//! The view of a bulk transfer (`demo congestion`): thousands of segments
//! do not read as a sequence diagram, so the terminal gets the diagram of
//! the first segments and of every state change, a line per loss episode,
//! and the sender's congestion window over time as a text plot; `--svg`
//! draws the window as a plot of its own. `--verbose` draws every segment.
//!
//! The plot shows the one figure that explains the run: the window against
//! the path's capacity (bandwidth-delay product plus the queue). Slow start
//! climbs past it, the queue overflows, the window halves, and congestion
//! avoidance climbs back one segment per round trip: the sawtooth.

use std::fmt::Write as _;

use synack::record::Record;
use synack::scenarios::{LossEpisode, WindowSample, RATE_BPS};
use synack_core::{Instant, TraceKind};

use crate::svg::{escape, num};

/// Segments drawn on the diagram before it is cut short.
pub const HEAD_SEGMENTS: usize = 40;
/// Text plot size, in characters.
const PLOT_W: usize = 64;
const PLOT_H: usize = 12;

/// What the views say about the path: its capacity in bytes (the window at
/// which the queue overflows) and its round-trip time.
#[derive(Clone, Copy, Debug)]
pub struct Path {
    /// Bandwidth-delay product plus the queue, bytes.
    pub capacity: u64,
    /// The queue alone, bytes.
    pub queue: u64,
    /// Propagation round trip.
    pub rtt_ms: f64,
}

/// The records for the cut-short diagram: everything up to the
/// [`HEAD_SEGMENTS`]th segment, then only state changes, with a note where
/// the cut is saying how much was left out.
pub fn head(records: &[Record], client: synack::record::HostId) -> Vec<Record> {
    let sends = |r: &Record| matches!(r, Record::Trace { event, .. } if matches!(event.kind, TraceKind::Send { .. }));
    let total = records.iter().filter(|r| sends(r)).count();
    let mut out = Vec::new();
    let mut seen = 0;
    for r in records {
        if seen < HEAD_SEGMENTS {
            seen += usize::from(sends(r));
            out.push(r.clone());
            if seen == HEAD_SEGMENTS && total > HEAD_SEGMENTS {
                out.push(Record::Note {
                    at: r.at(),
                    host: client,
                    text: format!(
                        "··· {} more segments not drawn (--verbose draws them) ···",
                        total - HEAD_SEGMENTS
                    ),
                });
            }
            continue;
        }
        if matches!(r, Record::Trace { event, .. } if matches!(event.kind, TraceKind::State { .. }))
        {
            out.push(r.clone());
        }
    }
    out
}

/// One line per loss episode: when, the window before and after the loss
/// response, how it was answered (a window of one segment is a
/// retransmission timeout) and when it was over.
pub fn loss_lines(episodes: &[LossEpisode], mss: u32) -> String {
    let mut out = String::new();
    for e in episodes {
        let how = if e.cwnd_after <= mss {
            "retransmission timeout, slow start again"
        } else {
            "fast retransmit and recovery"
        };
        let end = match e.end {
            Some(t) => format!("recovered at {:.3}s", t.secs_f64()),
            None => "never recovered".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {:>8.3}s  cwnd {} -> {} bytes: {how}; {} segment{} resent, {end}",
            e.start.secs_f64(),
            e.cwnd_before,
            e.cwnd_after,
            e.retransmissions,
            if e.retransmissions == 1 { "" } else { "s" },
        );
    }
    out
}

/// The window's value in each of `n` equal time slices of `from..to`: the
/// largest it reached in the slice (peaks matter), or the value carried
/// over from before when it did not change.
fn columns(samples: &[WindowSample], from: Instant, to: Instant, n: usize) -> Vec<u32> {
    let span = (to.micros() - from.micros()).max(1) as f64;
    let mut cols = vec![None::<u32>; n];
    for s in samples {
        let x = ((s.at.micros() - from.micros()) as f64 / span * n as f64) as usize;
        let c = &mut cols[x.min(n - 1)];
        *c = Some(c.map_or(s.cwnd, |v| v.max(s.cwnd)));
    }
    let mut last = samples.first().map_or(0, |s| s.cwnd);
    cols.into_iter()
        .map(|c| {
            last = c.unwrap_or(last);
            last
        })
        .collect()
}

/// The text plot of the window over time, with the path's capacity as a
/// dotted line and each loss marked under the time axis.
pub fn text_plot(samples: &[WindowSample], episodes: &[LossEpisode], path: &Path) -> String {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return String::new();
    };
    let cols = columns(samples, first.at, last.at, PLOT_W);
    let peak = cols.iter().copied().max().unwrap_or(1) as u64;
    let top = peak.max(path.capacity) * 11 / 10;
    let cap_row = (path.capacity * PLOT_H as u64 / top) as usize;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  congestion window (KB) over time (s); ┈ = path capacity (BDP + queue)"
    );
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    for row in (0..PLOT_H).rev() {
        let label = if row == cap_row {
            format!("{}", path.capacity / 1000)
        } else if row == PLOT_H - 1 {
            format!("{}", top / 1000)
        } else {
            String::new()
        };
        let _ = write!(out, "{label:>6} ┤");
        for &c in &cols {
            // Eighths of a row filled by this column.
            let eighths = u64::from(c) * 8 * PLOT_H as u64 / top;
            let below = row as u64 * 8;
            let ch = if eighths >= below + 8 {
                '█'
            } else if eighths > below {
                BLOCKS[(eighths - below - 1) as usize]
            } else if row == cap_row {
                '┈'
            } else {
                ' '
            };
            out.push(ch);
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{:>6} └{}", 0, "─".repeat(PLOT_W));
    let mut marks = vec![' '; PLOT_W];
    let span = (last.at.micros() - first.at.micros()).max(1) as f64;
    for e in episodes {
        let x = (e.start.micros().saturating_sub(first.at.micros()) as f64 / span * PLOT_W as f64)
            as usize;
        marks[x.min(PLOT_W - 1)] = '▲';
    }
    let _ = writeln!(
        out,
        "{:>6}  {}  ▲ = loss",
        "",
        marks.iter().collect::<String>()
    );
    let end = format!("{:.2}", last.at.secs_f64());
    let _ = writeln!(
        out,
        "{:>8}{:.2}{end:>w$}",
        "",
        first.at.secs_f64(),
        w = PLOT_W - 4
    );
    let _ = writeln!(
        out,
        "  path: {} Mbit/s, RTT {:.0} ms, queue {} KB; capacity {} KB",
        RATE_BPS / 1_000_000,
        path.rtt_ms,
        path.queue / 1000,
        path.capacity / 1000
    );
    out
}

/// Plot area of the SVG, pixels.
const SVG_W: f64 = 900.0;
const SVG_H: f64 = 420.0;
const SVG_LEFT: f64 = 80.0;
const SVG_TOP: f64 = 50.0;

/// The plot's scales: seconds to x, bytes to y.
struct Scale {
    t0: f64,
    span: f64,
    top: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        SVG_LEFT + (t - self.t0) / self.span * SVG_W
    }
    fn y(&self, v: f64) -> f64 {
        SVG_TOP + SVG_H - v.min(self.top) / self.top * SVG_H
    }
}

/// The window over time as an SVG line plot: cwnd (solid, blue) and
/// ssthresh (dashed, orange) as steps, the path's capacity as a grey line,
/// losses as red marks on the time axis.
pub fn svg_plot(
    samples: &[WindowSample],
    episodes: &[LossEpisode],
    path: &Path,
    title: &str,
) -> String {
    let mut s = svg_open(title);
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        s.push_str("</svg>\n");
        return s;
    };
    let peak = samples.iter().map(|x| u64::from(x.cwnd)).max().unwrap_or(1);
    let sc = Scale {
        t0: first.at.secs_f64(),
        span: (last.at.secs_f64() - first.at.secs_f64()).max(1e-6),
        top: (peak.max(path.capacity) * 11 / 10).max(1) as f64,
    };
    svg_axes(&mut s, &sc, path);
    let ss = svg_steps(samples, &sc, &|w| {
        (w.ssthresh != u32::MAX).then_some(f64::from(w.ssthresh))
    });
    let cw = svg_steps(samples, &sc, &|w| Some(f64::from(w.cwnd)));
    let _ = writeln!(
        s,
        r##"<path d="{}" fill="none" stroke="#e65100" stroke-width="1.5" stroke-dasharray="6 4"/>"##,
        ss.trim()
    );
    let _ = writeln!(
        s,
        r##"<path d="{}" fill="none" stroke="#1565c0" stroke-width="1.5"/>"##,
        cw.trim()
    );
    let bottom = SVG_TOP + SVG_H;
    for e in episodes {
        let px = num(sc.x(e.start.secs_f64()));
        let _ = writeln!(
            s,
            r##"<path d="M{px},{} l-5,9 h10 z" fill="#d32f2f"><title>loss at {:.3} s</title></path>"##,
            num(bottom - 9.0),
            e.start.secs_f64()
        );
    }
    svg_legend(&mut s);
    s.push_str("</svg>\n");
    s
}

/// The SVG element, its title and background.
fn svg_open(title: &str) -> String {
    let mut s = String::new();
    let (width, height) = (SVG_LEFT + SVG_W + 40.0, SVG_TOP + SVG_H + 70.0);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="'DejaVu Sans', Arial, sans-serif" font-size="12">"#,
        w = num(width),
        h = num(height)
    );
    let _ = writeln!(s, "<title>{}</title>", escape(title));
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>"##,
        num(width),
        num(height)
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="28" font-size="15" fill="#263238">{}</text>"##,
        num(SVG_LEFT),
        escape(title)
    );
    s
}

/// Grid, axes with their labels, and the path's capacity line.
fn svg_axes(s: &mut String, sc: &Scale, path: &Path) {
    let bottom = SVG_TOP + SVG_H;
    for k in 0..=5 {
        let v = sc.top * f64::from(k) / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#eceff1"/><text x="{tx}" y="{ty}" text-anchor="end" fill="#546e7a">{kb} KB</text>"##,
            x0 = num(SVG_LEFT),
            x1 = num(SVG_LEFT + SVG_W),
            y = num(sc.y(v)),
            tx = num(SVG_LEFT - 8.0),
            ty = num(sc.y(v) + 4.0),
            kb = (v / 1000.0).round()
        );
    }
    for k in 0..=8 {
        let t = sc.t0 + sc.span * f64::from(k) / 8.0;
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#546e7a">{:.2} s</text>"##,
            num(sc.x(t)),
            num(bottom + 18.0),
            t
        );
    }
    let _ = writeln!(
        s,
        r##"<path d="M{l},{t} V{b} H{r}" fill="none" stroke="#78909c"/>"##,
        l = num(SVG_LEFT),
        t = num(SVG_TOP),
        b = num(bottom),
        r = num(SVG_LEFT + SVG_W)
    );
    let cy = num(sc.y(path.capacity as f64));
    let _ = writeln!(
        s,
        r##"<line x1="{}" y1="{cy}" x2="{}" y2="{cy}" stroke="#9e9e9e" stroke-dasharray="2 3"/><text x="{}" y="{}" text-anchor="end" fill="#757575">capacity: BDP + queue</text>"##,
        num(SVG_LEFT),
        num(SVG_LEFT + SVG_W),
        num(SVG_LEFT + SVG_W - 4.0),
        num(sc.y(path.capacity as f64) - 5.0)
    );
}

/// A value over time as a step path (`value` none: no point there).
fn svg_steps(
    samples: &[WindowSample],
    sc: &Scale,
    value: &dyn Fn(&WindowSample) -> Option<f64>,
) -> String {
    let mut d = String::new();
    let mut prev: Option<f64> = None;
    for smp in samples {
        let px = sc.x(smp.at.secs_f64());
        match (value(smp), prev) {
            (Some(v), Some(p)) if v == p => {}
            (Some(v), Some(_)) => {
                let _ = write!(d, " H{} V{}", num(px), num(sc.y(v)));
            }
            (Some(v), None) => {
                let _ = write!(d, " M{},{}", num(px), num(sc.y(v)));
            }
            (None, _) => {}
        }
        prev = value(smp).or(prev);
    }
    if let Some(last) = samples.last() {
        let _ = write!(d, " H{}", num(sc.x(last.at.secs_f64())));
    }
    d
}

/// The legend under the time axis.
fn svg_legend(s: &mut String) {
    let bottom = SVG_TOP + SVG_H;
    let ly = num(bottom + 48.0);
    let _ = writeln!(
        s,
        r##"<g fill="#37474f"><line x1="{a}" y1="{ly}" x2="{b}" y2="{ly}" stroke="#1565c0" stroke-width="2"/><text x="{c}" y="{ty}">cwnd</text><line x1="{d}" y1="{ly}" x2="{e}" y2="{ly}" stroke="#e65100" stroke-width="2" stroke-dasharray="6 4"/><text x="{f}" y="{ty}">ssthresh</text><path d="M{g},{ly2} l-5,9 h10 z" fill="#d32f2f"/><text x="{h}" y="{ty}">loss episode (first retransmission)</text></g>"##,
        a = num(SVG_LEFT),
        b = num(SVG_LEFT + 30.0),
        c = num(SVG_LEFT + 36.0),
        d = num(SVG_LEFT + 110.0),
        e = num(SVG_LEFT + 140.0),
        f = num(SVG_LEFT + 146.0),
        g = num(SVG_LEFT + 245.0),
        h = num(SVG_LEFT + 256.0),
        ly2 = num(bottom + 42.0),
        ty = num(bottom + 52.0),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use synack::scenarios::{self, Options};
    use synack::sim::CLIENT;

    fn run() -> synack::scenarios::Outcome {
        scenarios::find("congestion")
            .unwrap()
            .run(&Options::default())
    }

    /// The cut diagram keeps the first segments, a note with the count left
    /// out, and every state change after it.
    #[test]
    fn head_keeps_the_first_segments_and_every_state_change() {
        let out = run();
        let all = out.sim.records();
        let cut = head(all, CLIENT);
        let is_send = |r: &&Record| matches!(r, Record::Trace { event, .. } if matches!(event.kind, TraceKind::Send { .. }));
        let is_state = |r: &&Record| matches!(r, Record::Trace { event, .. } if matches!(event.kind, TraceKind::State { .. }));
        assert_eq!(cut.iter().filter(is_send).count(), HEAD_SEGMENTS);
        assert_eq!(
            cut.iter().filter(is_state).count(),
            all.iter().filter(is_state).count()
        );
        let left_out = all.iter().filter(is_send).count() - HEAD_SEGMENTS;
        assert!(cut.iter().any(|r| matches!(r, Record::Note { text, .. }
            if text.contains(&format!("{left_out} more segments")))));
    }

    /// The text plot is a fixed-size block with the capacity line and one
    /// loss mark per episode; the SVG is well formed enough to hold a path
    /// per series and a mark per episode.
    #[test]
    fn plots_show_the_window_capacity_and_losses() {
        let out = run();
        let samples = scenarios::window_samples(out.sim.records(), CLIENT);
        let episodes = scenarios::loss_episodes(out.sim.records(), CLIENT);
        assert!(!episodes.is_empty());
        let path = Path {
            capacity: 100_000,
            queue: 50_000,
            rtt_ms: 20.0,
        };
        let text = text_plot(&samples, &episodes, &path);
        assert_eq!(text.lines().count(), PLOT_H + 5);
        assert!(text.contains('┈') && text.contains('█'));
        let marks: usize = text.lines().map(|l| l.matches('▲').count()).sum();
        assert_eq!(
            marks,
            episodes.len() + 1,
            "one per episode, one in the legend"
        );
        let svg = svg_plot(&samples, &episodes, &path, "t");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<title>loss at").count(), episodes.len());
    }
}
