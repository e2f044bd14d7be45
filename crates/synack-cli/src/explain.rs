//! `synack demo --explain`: one plain-words line on why each segment was
//! sent and why each state changed.
//!
//! Nothing here is written per scenario: each explanation is derived from
//! the record itself (flags, numbers, the retransmission mark, the states it
//! goes between) and from what the same host saw just before (the segment it
//! had just received, the drop it had just traced, the state its connection
//! was in, the previous copy of a retransmitted segment).

use std::time::Duration;

use synack::record::{HostId, Record};
use synack_core::{ConnTuple, Instant, SegmentInfo, State, TraceKind};

/// What one host has seen so far.
#[derive(Default)]
struct HostView {
    /// The state of each of its connections, by 4-tuple.
    states: Vec<(ConnTuple, State)>,
    /// The last segment it received, and when.
    last_recv: Option<(Instant, SegmentInfo)>,
    /// The last drop it traced, and when.
    last_drop: Option<(Instant, &'static str)>,
    /// One past the peer's FIN (the `ack` that acknowledges it), once seen.
    peer_fin_end: Option<u32>,
    /// How many FIN segments it has received.
    fins_received: u32,
    /// The last segment without payload, SYN or FIN it sent.
    last_ack_sent: Option<SegmentInfo>,
    /// The connections on which it sent a bare SYN (it opened actively).
    syn_sent_on: Vec<ConnTuple>,
}

impl HostView {
    fn state(&self, conn: Option<ConnTuple>) -> Option<State> {
        let conn = conn?;
        self.states
            .iter()
            .rev()
            .find(|(c, _)| *c == conn)
            .map(|(_, s)| *s)
    }

    /// The segment it received at this very instant, if any: what a send
    /// at that instant answers.
    fn just_received(&self, at: Instant) -> Option<SegmentInfo> {
        self.last_recv.filter(|(t, _)| *t == at).map(|(_, s)| s)
    }

    fn just_dropped(&self, at: Instant) -> Option<&'static str> {
        self.last_drop.filter(|(t, _)| *t == at).map(|(_, r)| r)
    }
}

/// Follows a run record by record and explains the rows of the diagram.
#[derive(Default)]
pub(crate) struct Narrator {
    hosts: Vec<HostView>,
}

impl Narrator {
    fn view(&mut self, h: HostId) -> &mut HostView {
        if self.hosts.len() <= h.0 {
            self.hosts.resize_with(h.0 + 1, HostView::default);
        }
        &mut self.hosts[h.0]
    }

    /// The explanation of `records[i]` (None for a record that gets no
    /// line), from what came before it; then takes the record into account.
    /// Call it for every record, in order.
    pub(crate) fn explain(&mut self, records: &[Record], i: usize) -> Option<String> {
        let Record::Trace { host, event } = &records[i] else {
            return None;
        };
        let view = self.view(*host);
        let text = match event.kind {
            TraceKind::Send { seg, rtx } => Some(if rtx {
                retransmission(records, i, view, &seg)
            } else {
                let dropped = view
                    .just_dropped(event.at)
                    .or_else(|| dropped_next(records, i));
                segment(view, dropped, event.at, event.conn, &seg)
            }),
            TraceKind::State { from, to } => state_change(records, i, view, from, to),
            TraceKind::Drop { reason } => drop_reason(reason),
            TraceKind::Recv { .. } | TraceKind::Cwnd { .. } => None,
        };
        self.observe(*host, records, i);
        text
    }

    fn observe(&mut self, host: HostId, records: &[Record], i: usize) {
        let Record::Trace { event, .. } = &records[i] else {
            return;
        };
        let view = self.view(host);
        match event.kind {
            TraceKind::State { to, .. } => {
                if let Some(c) = event.conn {
                    view.states.retain(|(k, _)| *k != c);
                    view.states.push((c, to));
                }
            }
            TraceKind::Recv { seg } => {
                view.last_recv = Some((event.at, seg));
                if seg.flags.syn() {
                    // A new connection: forget the old one's FIN.
                    view.peer_fin_end = None;
                    view.fins_received = 0;
                }
                if seg.flags.fin() {
                    view.fins_received += 1;
                    view.peer_fin_end = Some(seg.seq.wrapping_add(seg.len).wrapping_add(1));
                }
            }
            TraceKind::Drop { reason } => view.last_drop = Some((event.at, reason)),
            TraceKind::Cwnd { .. } => {}
            TraceKind::Send { seg, .. } => {
                if let (Some(c), true) = (event.conn, seg.flags.syn() && !seg.flags.ack()) {
                    if !view.syn_sent_on.contains(&c) {
                        view.syn_sent_on.push(c);
                    }
                }
                if seg.len == 0 && !seg.flags.syn() && !seg.flags.fin() && !seg.flags.rst() {
                    view.last_ack_sent = Some(seg);
                }
            }
        }
    }
}

/// A drop the same host traced at the same instant right after
/// `records[i]` (a stack may send its answer before it traces the drop).
fn dropped_next(records: &[Record], i: usize) -> Option<&'static str> {
    let Record::Trace { host, event } = &records[i] else {
        return None;
    };
    records[i + 1..]
        .iter()
        .take_while(|r| r.at() == event.at)
        .find_map(|r| match r {
            Record::Trace { host: h, event: e } if h == host => match e.kind {
                TraceKind::Drop { reason } => Some(reason),
                _ => None,
            },
            _ => None,
        })
}

/// A segment sent for the first time.
fn segment(
    view: &HostView,
    dropped: Option<&'static str>,
    at: Instant,
    conn: Option<ConnTuple>,
    seg: &SegmentInfo,
) -> String {
    let f = seg.flags;
    let state = view.state(conn);
    if f.rst() {
        return reset(view, dropped, at);
    }
    if f.syn() && f.ack() {
        if conn.is_some_and(|c| view.syn_sent_on.contains(&c)) {
            return "simultaneous open: this side's SYN again, now with the ACK of the peer's SYN"
                .to_owned();
        }
        return "two messages in one: this side's SYN and its ACK of the peer's SYN".to_owned();
    }
    if f.syn() {
        return "SYN: offers this side's initial sequence number (ISN)".to_owned();
    }
    let acks_fin = f.ack() && view.peer_fin_end == Some(seg.ack);
    if f.fin() {
        let mut s = match state {
            Some(State::LastAck) => {
                "the application has closed now: this side's FIN follows".to_owned()
            }
            _ => "the application closed: no more data from this side (FIN)".to_owned(),
        };
        if acks_fin && state != Some(State::LastAck) {
            s.push_str("; it also ACKs the peer's FIN");
        }
        return s;
    }
    if seg.len > 0 {
        if view.just_received(at).is_none() && peer_window(view) == Some(0) && seg.len == 1 {
            return "zero-window probe: one byte asks whether the window has opened".to_owned();
        }
        return format!(
            "{} bytes of data, with the ACK of what the peer sent so far",
            seg.len
        );
    }
    bare_ack(view, dropped, at, state, seg, acks_fin)
}

/// The window the peer last advertised to this host.
fn peer_window(view: &HostView) -> Option<u16> {
    view.last_recv.map(|(_, s)| s.win)
}

/// A segment with no data, SYN, FIN or RST.
fn bare_ack(
    view: &HostView,
    dropped: Option<&'static str>,
    at: Instant,
    state: Option<State>,
    seg: &SegmentInfo,
    acks_fin: bool,
) -> String {
    let got = view.just_received(at);
    if let Some(reason) = dropped {
        return match (state, reason) {
            (Some(State::TimeWait), _) | (None, "connection closed") => {
                "TIME-WAIT re-ACKs a segment of the old connection and drops it".to_owned()
            }
            _ => format!("answers the unacceptable segment ({reason}) with its ACK"),
        };
    }
    if state == Some(State::TimeWait) && got.is_some_and(|r| r.len > 0) {
        return "TIME-WAIT re-ACKs data of the old connection; the data goes nowhere".to_owned();
    }
    if got.is_some_and(|r| r.flags.syn() && r.flags.ack()) {
        return "the third message: ACKs the peer's SYN, proof that it was wanted".to_owned();
    }
    if acks_fin {
        return match state {
            Some(State::CloseWait) => {
                "ACK of the FIN alone: the application has not closed yet".to_owned()
            }
            Some(State::TimeWait) if view.fins_received > 1 => {
                "the FIN came again (the last ACK was lost): TIME-WAIT answers it".to_owned()
            }
            Some(State::TimeWait) => "the last ACK: acknowledges the peer's FIN".to_owned(),
            _ => "acknowledges the peer's FIN".to_owned(),
        };
    }
    if seg.win == 0 {
        return "window 0: the buffer is full (the application is not reading)".to_owned();
    }
    let prev = view.last_ack_sent;
    if prev.is_some_and(|p| p.win == 0) {
        return "window update: the application read, the window opens again".to_owned();
    }
    if got.is_some_and(|r| r.len > 0) && prev.is_some_and(|p| p.ack == seg.ack) {
        return "duplicate ACK: data arrived, but not the next expected byte".to_owned();
    }
    if got.is_some_and(|r| r.len > 0 && r.win == 0 && r.len <= 1) {
        return "answers the probe: the window is still closed".to_owned();
    }
    "acknowledges the peer's data: everything before this ack arrived".to_owned()
}

/// Why a host sent an RST.
fn reset(view: &HostView, dropped: Option<&str>, at: Instant) -> String {
    match (dropped, view.just_received(at)) {
        (Some("unacceptable ACK in SYN-SENT"), _) => {
            "the SYN-ACK answers a SYN not sent now: RST (seq = its ack) kills it".to_owned()
        }
        (_, Some(r)) if r.flags.syn() && !r.flags.ack() => {
            "nothing listens on that port: RST refuses the connection".to_owned()
        }
        (_, Some(_)) => "this stack has no connection for that segment: RST".to_owned(),
        _ => "this side aborts the connection: RST".to_owned(),
    }
}

/// A retransmission: after how long, and why.
fn retransmission(records: &[Record], i: usize, view: &HostView, seg: &SegmentInfo) -> String {
    let Record::Trace { host, event } = &records[i] else {
        return String::new();
    };
    let copies: Vec<Instant> = records[..i]
        .iter()
        .filter_map(|r| match r {
            Record::Trace { host: h, event: e } if h == host && e.conn == event.conn => {
                match e.kind {
                    TraceKind::Send { seg: s, .. }
                        if s.seq == seg.seq
                            && s.flags.syn() == seg.flags.syn()
                            && s.flags.fin() == seg.flags.fin()
                            && (s.len > 0) == (seg.len > 0) =>
                    {
                        Some(e.at)
                    }
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    let wait = copies.last().map(|&t| event.at.saturating_since(t));
    let got = view.just_received(event.at);
    if seg.flags.syn() && seg.flags.ack() && got.is_some_and(|r| r.flags.syn() && !r.flags.ack()) {
        return "crossed SYNs: this side's SYN again, now ACKing the peer's SYN".to_owned();
    }
    // Duplicate ACKs are bare ACKs of the segment's first byte.
    let prompted = got.is_some_and(|r| r.flags.ack() && r.len == 0 && r.ack == seg.seq);
    if prompted && seg.len > 0 {
        return "duplicate ACKs say this is missing: sent again before the timer".to_owned();
    }
    let what = if seg.flags.syn() && seg.flags.ack() {
        "the SYN-ACK"
    } else if seg.flags.syn() {
        "the SYN"
    } else if seg.flags.fin() {
        "the FIN"
    } else {
        "this segment"
    };
    let Some(wait) = wait else {
        return format!("no ACK in time (RTO): {what} again");
    };
    let before = copies
        .len()
        .checked_sub(2)
        .map(|k| copies[k + 1].saturating_since(copies[k]));
    let doubled = match before {
        Some(b) if wait >= b * 2 => ", twice the last wait",
        Some(b) if wait > b => " (the backoff's cap)",
        _ => "",
    };
    if got.is_none() && peer_window(view) == Some(0) && seg.len > 0 {
        return format!(
            "the window is still 0: the persist timer probes again after {}{doubled}",
            secs(wait)
        );
    }
    format!(
        "no ACK in time (RTO): {what} again after {}{doubled}",
        secs(wait)
    )
}

/// Why a connection changed state.
fn state_change(
    records: &[Record],
    i: usize,
    view: &HostView,
    from: State,
    to: State,
) -> Option<String> {
    use State::*;
    let Record::Trace { event, .. } = &records[i] else {
        return None;
    };
    let got = view.just_received(event.at);
    let rst = got.is_some_and(|r| r.flags.rst());
    let text = match (from, to) {
        (Closed, SynSent) => {
            let again = view
                .states
                .iter()
                .any(|(c, s)| Some(*c) == event.conn && *s == Closed);
            if again {
                "connect again from the same port: a new incarnation of the 4-tuple"
            } else {
                "the application calls connect: its SYN goes out"
            }
        }
        (Listen, SynReceived) => "a SYN reached the listening port: a new connection, half open",
        (SynSent, SynReceived) => "the peer's SYN crossed ours: simultaneous open",
        (SynSent, Established) => "the SYN-ACK acknowledges our SYN: open on this side",
        (SynReceived, Established) => "the ACK of its SYN arrived: both sides now know both ISNs",
        (SynReceived, Closed) if rst => {
            "RST: this half-open connection is dropped, the port stays in LISTEN"
        }
        (SynSent, Closed) if rst => "RST: nobody listens there; connect fails: connection refused",
        (SynSent, Closed) => {
            if sent_syns(records, i) > 1 {
                "no answer to any SYN, the retries ran out: connection timed out"
            } else {
                "the application gives up (abort): in SYN-SENT nothing is sent"
            }
        }
        (_, Closed) if rst => "RST: the peer knows no such connection: connection reset",
        (Established, FinWait1) => "the application calls close: FIN",
        (Established, CloseWait) => {
            "the peer is done sending; CLOSE-WAIT until this application closes"
        }
        (FinWait1, FinWait2) => "our FIN is ACKed; the peer may still send until its own FIN",
        (FinWait1, Closing) => "the peer's FIN crossed ours: both ends closing at once",
        (_, TimeWait) => "waits 2×MSL: old duplicates expire; a lost last ACK is redone",
        (CloseWait, LastAck) => "the application closes at last: its FIN goes out",
        (LastAck, Closed) => "the ACK of its FIN arrived: closed, nothing to wait for",
        (TimeWait, Closed) => {
            return Some(format!(
                "TIME-WAIT is over{}: the 4-tuple may be used again",
                time_wait_length(records, i)
                    .map_or(String::new(), |d| format!(" after {}", secs(d)))
            ))
        }
        (FinWait2, Closed) => "the peer never sent its FIN: FIN-WAIT-2 timed out",
        _ => return None,
    };
    Some(text.to_owned())
}

/// How many SYNs the connection of `records[i]` sent before it.
fn sent_syns(records: &[Record], i: usize) -> usize {
    let Record::Trace { host, event } = &records[i] else {
        return 0;
    };
    records[..i]
        .iter()
        .rev()
        .take_while(|r| {
            !matches!(r, Record::Trace { host: h, event: e } if h == host && e.conn == event.conn
                && matches!(e.kind, TraceKind::State { to: State::SynSent, .. }))
        })
        .filter(|r| {
            matches!(r, Record::Trace { host: h, event: e } if h == host && e.conn == event.conn
                && matches!(e.kind, TraceKind::Send { seg, .. } if seg.flags.syn()))
        })
        .count()
}

/// How long the TIME-WAIT that ends at `records[i]` lasted.
fn time_wait_length(records: &[Record], i: usize) -> Option<Duration> {
    let Record::Trace { host, event } = &records[i] else {
        return None;
    };
    records[..i].iter().rev().find_map(|r| match r {
        Record::Trace { host: h, event: e } if h == host && e.conn == event.conn => match e.kind {
            TraceKind::State {
                to: State::TimeWait,
                ..
            } => Some(event.at.saturating_since(e.at)),
            _ => None,
        },
        _ => None,
    })
}

/// What a drop reason means, for the reasons worth a sentence.
fn drop_reason(reason: &str) -> Option<String> {
    let text = match reason {
        "bad checksum" => "the link flipped a bit: the checksum fails, the segment is gone",
        "outside the window" => "its sequence numbers are outside the receive window",
        "PAWS" => "its timestamp is older than this connection's (PAWS, RFC 7323)",
        "unacceptable ACK in SYN-SENT" => "it acknowledges a SYN this connection never sent",
        "RST in TIME-WAIT (RFC 1337)" => "TIME-WAIT ignores the RST, so the 4-tuple stays guarded",
        "ACK to a listener" => "an ACK for a connection this stack does not have",
        "connection closed" => "the connection is closed: the segment is of no use",
        _ => return None,
    };
    Some(text.to_owned())
}

/// `3 s`, `0.200 s`.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::tests::{basic_run, lossy_run};

    /// Every record's explanation, with its record.
    fn explained(records: &[Record]) -> Vec<(&Record, Option<String>)> {
        let mut n = Narrator::default();
        (0..records.len())
            .map(|i| (&records[i], n.explain(records, i)))
            .collect()
    }

    /// The explanation of the first send matching `pred`.
    fn of_send(
        all: &[(&Record, Option<String>)],
        pred: impl Fn(HostId, &SegmentInfo, bool) -> bool,
    ) -> String {
        all.iter()
            .find_map(|(r, why)| match r {
                Record::Trace { host, event } => match event.kind {
                    TraceKind::Send { seg, rtx } if pred(*host, &seg, rtx) => why.clone(),
                    _ => None,
                },
                _ => None,
            })
            .expect("a matching send with an explanation")
    }

    #[test]
    fn receives_and_link_records_get_no_line() {
        for (r, why) in explained(&basic_run()) {
            let silent = match r {
                Record::Trace { event, .. } => matches!(event.kind, TraceKind::Recv { .. }),
                _ => true,
            };
            assert_eq!(why.is_none(), silent, "{r:?}: {why:?}");
        }
    }

    #[test]
    fn the_close_is_explained_from_states_and_flags() {
        let run = basic_run();
        let all = explained(&run);
        let server = HostId(1);
        let client = HostId(0);
        let fin_ack_alone = of_send(&all, |h, s, _| {
            h == server && s.flags == synack_wire::TcpFlags::ACK && s.ack == 1007
        });
        assert!(
            fin_ack_alone.contains("has not closed yet"),
            "{fin_ack_alone}"
        );
        let last_ack = of_send(&all, |h, s, _| h == client && s.ack == 5007);
        assert!(last_ack.contains("the last ACK"), "{last_ack}");
        let syn_rtx = of_send(&all, |h, s, rtx| h == client && s.flags.syn() && rtx);
        assert!(
            syn_rtx.contains("RTO") && syn_rtx.contains("1 s"),
            "{syn_rtx}"
        );
    }

    #[test]
    fn losses_are_explained_from_what_the_host_had_seen() {
        let run = lossy_run();
        let all = explained(&run);
        let client = HostId(0);
        let server = HostId(1);
        // Sent again at once on the peer's duplicate ACKs, not on a timer.
        let fast = of_send(&all, |h, s, rtx| h == client && rtx && s.seq == 2000);
        assert!(fast.contains("duplicate ACKs"), "{fast}");
        let dup = of_send(&all, |h, s, _| h == server && s.ack == 2000 && s.len == 0);
        assert!(
            dup.contains("acknowledges") || dup.contains("duplicate"),
            "{dup}"
        );
        let rst = of_send(&all, |h, s, _| h == server && s.flags.rst());
        assert!(rst.contains("no connection"), "{rst}");
        let bad = all
            .iter()
            .find_map(|(r, why)| match r {
                Record::Trace { event, .. } if matches!(event.kind, TraceKind::Drop { .. }) => {
                    why.clone()
                }
                _ => None,
            })
            .unwrap();
        assert!(bad.contains("checksum"), "{bad}");
    }
}
