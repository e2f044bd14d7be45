//! What a SACK sender keeps and forgets (RFC 2018 §8, RFC 6675 §5.1): data
//! the peer SACKed stays until it is cumulatively acknowledged, since the
//! receiver may discard it (renege); after a timeout the SACK information
//! is not trusted. One `Stack` driven by hand, the peer agreeing to SACK.

mod common;

use common::*;
use synack_wire::SackBlock;

/// Five full segments out; the peer SACKs the last three (the second
/// lost), then, having fast-retransmitted the second, reneges: it
/// acknowledges up to the end of the second and holds nothing above. The
/// segments and the stack's own bytes.
fn reneged() -> (Peer, Vec<Seg>, Vec<u8>) {
    let mut p = Peer::new().established_sack();
    let data = bytes(5 * 1460);
    p.stack.send(p.now, p.id(), &data).unwrap();
    let segs = p.transmitted();
    assert_eq!(segs.len(), 5, "{segs:#?}");
    let end = |s: &Seg| s.tcp.seq.wrapping_add(s.payload.len() as u32);
    p.now += RTT;
    let mut ack = p.repr(ACK, p.snd_nxt, end(&segs[0]));
    ack.options.sack_count = 1;
    ack.options.sack_blocks[0] = SackBlock {
        left: segs[2].tcp.seq,
        right: end(&segs[4]),
    };
    p.inject(&ack, &[]);
    let fast = p.transmitted();
    assert!(
        fast.iter().any(|s| s.tcp.seq == segs[1].tcp.seq),
        "the hole is resent: {fast:#?}"
    );
    assert_eq!(p.stack.stats().fast_recoveries, 1);
    // Renege: the cumulative ACK of the resent hole, no SACK block.
    p.now += RTT;
    p.send(ACK, p.snd_nxt, end(&segs[1]), &[]);
    (p, segs, data)
}

/// The segments resent after the timeout, the peer acknowledging each
/// one as it comes (cumulatively, no SACK: it holds nothing above).
fn after_the_timeout(p: &mut Peer, segs: &[Seg]) -> Vec<Seg> {
    let rto = p.next_timed_segment(p.now + secs(5)).expect("the RTO");
    assert_eq!(p.stack.stats().retransmission_timeouts, 1);
    let mut resent = vec![rto];
    let last = segs[4].tcp.seq.wrapping_add(segs[4].payload.len() as u32);
    for _ in 0..5 {
        let s = resent.last().unwrap();
        let end = s.tcp.seq.wrapping_add(s.payload.len() as u32);
        p.now += RTT;
        p.send(ACK, p.snd_nxt, end, &[]);
        if end == last {
            break;
        }
        resent.extend(
            p.transmitted()
                .into_iter()
                .filter(|s| !s.payload.is_empty()),
        );
    }
    resent
}

/// 2018-3 (RFC 2018 §8): "the data sender MUST NOT discard data SACKed
/// until it is cumulatively acknowledged". After the peer reneged, the
/// timeout resends the three segments it had SACKed, with the bytes the
/// application wrote: the stack still held them; once they are
/// acknowledged nothing is outstanding.
#[test]
fn rfc2018_3_sacked_data_is_kept_until_cumulatively_acknowledged() {
    let (mut p, segs, data) = reneged();
    let resent = after_the_timeout(&mut p, &segs);
    assert_eq!(resent.len(), 3, "{resent:#?}");
    for (r, s) in resent.iter().zip(&segs[2..]) {
        assert_eq!(r.tcp.seq, s.tcp.seq);
        let off = r.tcp.seq.wrapping_sub(segs[0].tcp.seq) as usize;
        assert_eq!(r.payload, &data[off..off + r.payload.len()]);
    }
    assert_eq!(p.stack.unacked(p.id()), Ok(0));
}

/// 2018-4 (RFC 2018 §8, RFC 6675 §5.1): after a retransmission timeout
/// the sender "MUST ignore prior SACK information in determining which
/// data to retransmit". Each segment the peer had SACKed (and then
/// dropped) is resent after the timeout, once each, in order, and the
/// old SACK blocks start no second recovery.
#[test]
fn rfc2018_4_after_a_timeout_prior_sack_information_is_ignored() {
    let (mut p, segs, _) = reneged();
    let resent: Vec<u32> = after_the_timeout(&mut p, &segs)
        .iter()
        .map(|s| s.tcp.seq)
        .collect();
    let sacked: Vec<u32> = segs[2..].iter().map(|s| s.tcp.seq).collect();
    assert_eq!(resent, sacked);
    assert_eq!(
        p.stack.stats().fast_recoveries,
        1,
        "no recovery from old SACKs"
    );
    assert_eq!(p.stack.stats().retransmission_timeouts, 1);
}
