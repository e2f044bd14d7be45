//! TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018).

use crate::WireError;

/// The most SACK blocks one header can carry (RFC 2018 §3).
pub const MAX_SACK_BLOCKS: usize = 4;

/// The most option bytes a TCP header can carry (data offset 15).
pub const MAX_OPTIONS_LEN: usize = 40;

/// End of Option List.
const KIND_EOL: u8 = 0;
/// No-Operation.
const KIND_NOP: u8 = 1;
/// Maximum Segment Size.
const KIND_MSS: u8 = 2;
/// Window Scale.
const KIND_WINDOW_SCALE: u8 = 3;
/// SACK-Permitted.
const KIND_SACK_PERMITTED: u8 = 4;
/// SACK.
const KIND_SACK: u8 = 5;
/// Timestamps.
const KIND_TIMESTAMPS: u8 = 8;

/// Emitted size of MSS (kind, len, 2 bytes).
const MSS_LEN: usize = 4;
/// Emitted size of NOP + Window Scale.
const WINDOW_SCALE_LEN: usize = 4;
/// Emitted size of NOP NOP + SACK-Permitted.
const SACK_PERMITTED_LEN: usize = 4;
/// Emitted size of NOP NOP + Timestamps, or of SACK-Permitted + Timestamps.
const TIMESTAMPS_LEN: usize = 12;
/// Emitted size of NOP NOP + SACK option, before its blocks.
const SACK_BASE_LEN: usize = 4;
/// Size of one SACK block.
const SACK_BLOCK_LEN: usize = 8;

/// One SACK block: the left edge and the right edge (one past the last byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: u32,
    /// Sequence number just past the block.
    pub right: u32,
}

/// The TCP options synack understands. Unknown options are skipped by their
/// length when parsing (MUST-6) and never emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum Segment Size (kind 2), SYN only (MUST-65).
    pub mss: Option<u16>,
    /// Window scale shift count (kind 3), SYN only. Parsed as sent; a shift
    /// above 14 is clamped by the receiver (RFC 7323 §2.3), not here.
    pub window_scale: Option<u8>,
    /// SACK-Permitted (kind 4), SYN only.
    pub sack_permitted: bool,
    /// SACK blocks (kind 5); the first `sack_count` entries are valid.
    pub sack_blocks: [SackBlock; MAX_SACK_BLOCKS],
    /// Number of valid entries in `sack_blocks`.
    pub sack_count: u8,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
}

impl TcpOptions {
    /// The valid SACK blocks.
    pub fn sack(&self) -> &[SackBlock] {
        let n = (self.sack_count as usize).min(MAX_SACK_BLOCKS);
        &self.sack_blocks[..n]
    }

    /// Parses the options area of a TCP header (the bytes between the fixed
    /// header and the data offset), byte by byte with no alignment assumed
    /// (MUST-64).
    ///
    /// EOL ends the list; NOP is skipped. Every other option must have a
    /// length byte of at least 2 that stays within `bytes`, else the result
    /// is [`WireError::BadOptionLength`] (MUST-7). A known option with the
    /// wrong length, a SACK option without blocks and any unknown option are
    /// skipped by their length (MUST-6). When an option appears twice, the
    /// last one counts. Options beyond the 40 bytes a header can hold are
    /// parsed like any other.
    #[inline]
    pub fn parse(bytes: &[u8]) -> Result<TcpOptions, WireError> {
        let mut opts = TcpOptions::default();
        opts.parse_into(bytes)?;
        Ok(opts)
    }

    /// [`TcpOptions::parse`] into `self`, which must hold
    /// `TcpOptions::default()`: for a parse that writes the options where
    /// they are used (see [`crate::parse_packet_unverified_into`]).
    #[inline]
    pub(crate) fn parse_into(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        // Fast path for what nearly every segment of a connection carries:
        // `NOP, NOP, Timestamps` alone (RFC 7323 Appendix A), the general
        // loop's result without its steps.
        if let [KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10, a, b, c, d, e, f, g, h] = *bytes {
            self.timestamps = Some((
                u32::from_be_bytes([a, b, c, d]),
                u32::from_be_bytes([e, f, g, h]),
            ));
            return Ok(());
        }
        let mut i = 0;
        // Every step advances `i` by at least one, so this ends.
        while let Some(&kind) = bytes.get(i) {
            match kind {
                KIND_EOL => break,
                KIND_NOP => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*bytes.get(i + 1).ok_or(WireError::BadOptionLength)?);
            if len < 2 {
                return Err(WireError::BadOptionLength);
            }
            let option = bytes.get(i..i + len).ok_or(WireError::BadOptionLength)?;
            self.apply(kind, &option[2..]);
            i += len;
        }
        Ok(())
    }

    /// Records one option whose kind is `kind` and whose value (after the
    /// kind and length bytes) is `value`; ignores wrong lengths and unknown kinds.
    fn apply(&mut self, kind: u8, value: &[u8]) {
        match (kind, value) {
            (KIND_MSS, &[a, b]) => self.mss = Some(u16::from_be_bytes([a, b])),
            (KIND_WINDOW_SCALE, &[shift]) => self.window_scale = Some(shift),
            (KIND_SACK_PERMITTED, &[]) => self.sack_permitted = true,
            (KIND_SACK, blocks) if !blocks.is_empty() && blocks.len() % SACK_BLOCK_LEN == 0 => {
                self.sack_blocks = [SackBlock::default(); MAX_SACK_BLOCKS];
                let mut count = 0;
                for (slot, block) in self
                    .sack_blocks
                    .iter_mut()
                    .zip(blocks.chunks_exact(SACK_BLOCK_LEN))
                {
                    *slot = SackBlock {
                        left: be_u32(&block[..4]),
                        right: be_u32(&block[4..]),
                    };
                    count += 1;
                }
                self.sack_count = count;
            }
            (KIND_TIMESTAMPS, ts) if ts.len() == 8 => {
                self.timestamps = Some((be_u32(&ts[..4]), be_u32(&ts[4..])));
            }
            _ => {}
        }
    }

    /// How many SACK blocks [`TcpOptions::emit`] writes: as many of
    /// [`TcpOptions::sack`] as fit in 40 bytes after the other options,
    /// dropping blocks from the end.
    pub fn emitted_sack_blocks(&self) -> usize {
        let room = MAX_OPTIONS_LEN - self.fixed_len();
        let fit = room.saturating_sub(SACK_BASE_LEN) / SACK_BLOCK_LEN;
        self.sack().len().min(fit)
    }

    /// Number of bytes [`TcpOptions::emit`] writes: a multiple of 4, at most 40.
    pub fn emitted_len(&self) -> usize {
        if self.sack_count == 0 {
            // Every option but SACK takes a multiple of 4 bytes.
            return self.fixed_len();
        }
        let sack = match self.emitted_sack_blocks() {
            0 => 0,
            n => SACK_BASE_LEN + n * SACK_BLOCK_LEN,
        };
        (self.fixed_len() + sack).next_multiple_of(4)
    }

    /// Length of everything but the SACK blocks (24 at most).
    fn fixed_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += MSS_LEN;
        }
        if self.window_scale.is_some() {
            len += WINDOW_SCALE_LEN;
        }
        match (self.sack_permitted, self.timestamps.is_some()) {
            // SACK-Permitted takes the place of the two NOPs before Timestamps.
            (_, true) => len += TIMESTAMPS_LEN,
            (true, false) => len += SACK_PERMITTED_LEN,
            (false, false) => {}
        }
        len
    }

    /// Writes the options in the order MSS; NOP, Window Scale;
    /// SACK-Permitted and Timestamps (`SACK-Permitted, TS` when both are set,
    /// `NOP, NOP, SACK-Permitted` or `NOP, NOP, TS` alone); `NOP, NOP, SACK`.
    /// Every option has a length byte (MUST-68) and every option starts
    /// 4-byte aligned except where a NOP pads it, so no EOL or trailing
    /// padding is ever needed (MUST-69 holds trivially). SACK blocks that do
    /// not fit in 40 bytes are dropped from the end. Returns the number of
    /// bytes written, [`TcpOptions::emitted_len`]; fails with
    /// [`WireError::BufferTooSmall`] if `buf` is shorter than that.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if let TcpOptions {
            mss: None,
            window_scale: None,
            sack_permitted: false,
            sack_count: 0,
            timestamps: Some((tsval, tsecr)),
            ..
        } = *self
        {
            // Fast path for the common case: `NOP, NOP, Timestamps`, as the
            // general code below would write it.
            let out = buf
                .get_mut(..TIMESTAMPS_LEN)
                .ok_or(WireError::BufferTooSmall)?;
            let mut bytes = [
                KIND_NOP,
                KIND_NOP,
                KIND_TIMESTAMPS,
                10,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ];
            bytes[4..8].copy_from_slice(&tsval.to_be_bytes());
            bytes[8..].copy_from_slice(&tsecr.to_be_bytes());
            out.copy_from_slice(&bytes);
            return Ok(TIMESTAMPS_LEN);
        }
        let total = self.emitted_len();
        let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        let mut w = Writer { out, at: 0 };
        if let Some(mss) = self.mss {
            w.put(&[KIND_MSS, 4]);
            w.put(&mss.to_be_bytes());
        }
        if let Some(shift) = self.window_scale {
            w.put(&[KIND_NOP, KIND_WINDOW_SCALE, 3, shift]);
        }
        match (self.sack_permitted, self.timestamps) {
            (sack_permitted, Some((tsval, tsecr))) => {
                if sack_permitted {
                    w.put(&[KIND_SACK_PERMITTED, 2]);
                } else {
                    w.put(&[KIND_NOP, KIND_NOP]);
                }
                w.put(&[KIND_TIMESTAMPS, 10]);
                w.put(&tsval.to_be_bytes());
                w.put(&tsecr.to_be_bytes());
            }
            (true, None) => w.put(&[KIND_NOP, KIND_NOP, KIND_SACK_PERMITTED, 2]),
            (false, None) => {}
        }
        let blocks = &self.sack()[..self.emitted_sack_blocks()];
        if !blocks.is_empty() {
            // At most 4 blocks: 2 + 32 fits in the length byte.
            let len = (2 + blocks.len() * SACK_BLOCK_LEN) as u8;
            w.put(&[KIND_NOP, KIND_NOP, KIND_SACK, len]);
            for block in blocks {
                w.put(&block.left.to_be_bytes());
                w.put(&block.right.to_be_bytes());
            }
        }
        // Everything above is 4-byte aligned; pad with NOPs should that change.
        while w.at < total {
            w.put(&[KIND_NOP]);
        }
        Ok(total)
    }
}

/// Appends bytes to a slice that was sized beforehand.
struct Writer<'a> {
    /// Destination, exactly as long as what will be written.
    out: &'a mut [u8],
    /// Bytes written so far.
    at: usize,
}

impl Writer<'_> {
    /// Appends `bytes`; the caller sized `out` to fit everything.
    fn put(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// A big-endian u32 from exactly four bytes (fewer read as zero-padded).
fn be_u32(b: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    for (dst, src) in word.iter_mut().zip(b) {
        *dst = *src;
    }
    u32::from_be_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(n: usize) -> ([SackBlock; MAX_SACK_BLOCKS], u8) {
        let mut b = [SackBlock::default(); MAX_SACK_BLOCKS];
        for (i, block) in b.iter_mut().enumerate().take(n) {
            let base = 1000 * (i as u32 + 1);
            *block = SackBlock {
                left: base,
                right: base + 500,
            };
        }
        (b, n as u8)
    }

    fn all_options(n_sack: usize) -> TcpOptions {
        let (sack_blocks, sack_count) = blocks(n_sack);
        TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            sack_blocks,
            sack_count,
            timestamps: Some((0xdead_beef, 0x0102_0304)),
        }
    }

    /// Walks emitted options and checks MUST-68 and MUST-69 on them.
    fn check_builder_output(bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                KIND_EOL => {
                    assert!(bytes[i + 1..].iter().all(|b| *b == 0), "MUST-69");
                    return;
                }
                KIND_NOP => i += 1,
                _ => {
                    let len = usize::from(bytes[i + 1]);
                    assert!(len >= 2 && i + len <= bytes.len(), "MUST-68");
                    i += len;
                }
            }
        }
        assert_eq!(i, bytes.len());
    }

    fn emit(opts: &TcpOptions) -> ([u8; 40], usize) {
        // Stale bytes in the buffer must never leak into the header.
        let mut buf = [0xaau8; 40];
        let n = opts.emit(&mut buf).unwrap();
        assert_eq!(n, opts.emitted_len());
        assert_eq!(n % 4, 0);
        assert!(n <= MAX_OPTIONS_LEN);
        (buf, n)
    }

    #[test]
    fn emit_layout_classic() {
        let mut opts = all_options(0);
        opts.sack_permitted = false;
        let (buf, n) = emit(&opts);
        assert_eq!(
            &buf[..n],
            &[
                2, 4, 0x05, 0xb4, // MSS 1460
                1, 3, 3, 7, // NOP, WS 7
                1, 1, 8, 10, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, // NOP NOP TS
            ]
        );
    }

    #[test]
    fn emit_layout_sack_permitted_with_and_without_timestamps() {
        let (buf, n) = emit(&all_options(0));
        assert_eq!(
            &buf[8..n],
            &[4, 2, 8, 10, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]
        );
        let opts = TcpOptions {
            sack_permitted: true,
            ..TcpOptions::default()
        };
        let (buf, n) = emit(&opts);
        assert_eq!(&buf[..n], &[1, 1, 4, 2]);
    }

    #[test]
    fn emit_sack_blocks_layout() {
        let (sack_blocks, sack_count) = blocks(1);
        let opts = TcpOptions {
            sack_blocks,
            sack_count,
            ..TcpOptions::default()
        };
        let (buf, n) = emit(&opts);
        assert_eq!(
            &buf[..n],
            &[1, 1, 5, 10, 0, 0, 0x03, 0xe8, 0, 0, 0x05, 0xdc]
        );
    }

    #[test]
    fn emit_drops_sack_blocks_that_do_not_fit() {
        // 20 bytes of other options leave room for 2 blocks.
        let opts = all_options(4);
        assert_eq!(opts.emitted_sack_blocks(), 2);
        let (buf, n) = emit(&opts);
        assert_eq!(n, 40);
        let parsed = TcpOptions::parse(&buf[..n]).unwrap();
        assert_eq!(parsed.sack(), &opts.sack()[..2]);
        // Timestamps alone leave room for 3.
        let (sack_blocks, sack_count) = blocks(4);
        let opts = TcpOptions {
            timestamps: Some((1, 2)),
            sack_blocks,
            sack_count,
            ..TcpOptions::default()
        };
        assert_eq!(opts.emitted_sack_blocks(), 3);
        assert_eq!(opts.emitted_len(), 12 + 4 + 24);
        // Nothing else: all 4.
        let opts = TcpOptions {
            sack_blocks,
            sack_count,
            ..TcpOptions::default()
        };
        assert_eq!(opts.emitted_sack_blocks(), 4);
        assert_eq!(opts.emitted_len(), 36);
    }

    #[test]
    fn emit_clamps_bogus_sack_count() {
        let opts = TcpOptions {
            sack_count: 200,
            ..TcpOptions::default()
        };
        assert_eq!(opts.sack().len(), MAX_SACK_BLOCKS);
        assert_eq!(opts.emitted_len(), 36);
    }

    #[test]
    fn emit_into_short_buffer_fails() {
        let mut buf = [0u8; 19];
        assert_eq!(
            all_options(0).emit(&mut buf),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(TcpOptions::default().emit(&mut []), Ok(0));
    }

    #[test]
    fn must_68_must_69_builder_output() {
        for n_sack in 0..=MAX_SACK_BLOCKS {
            for mask in 0..16u8 {
                let mut opts = all_options(n_sack);
                if mask & 1 == 0 {
                    opts.mss = None;
                }
                if mask & 2 == 0 {
                    opts.window_scale = None;
                }
                opts.sack_permitted = mask & 4 != 0;
                if mask & 8 == 0 {
                    opts.timestamps = None;
                }
                let (buf, n) = emit(&opts);
                check_builder_output(&buf[..n]);
                assert_eq!(TcpOptions::parse(&buf[..n]).unwrap(), {
                    let mut expect = opts;
                    expect.sack_count = opts.emitted_sack_blocks() as u8;
                    if expect.sack_count == 0 {
                        expect.sack_blocks = [SackBlock::default(); MAX_SACK_BLOCKS];
                    } else {
                        for b in &mut expect.sack_blocks[usize::from(expect.sack_count)..] {
                            *b = SackBlock::default();
                        }
                    }
                    expect
                });
            }
        }
    }

    #[test]
    fn must_64_options_parsed_unaligned() {
        // NOP MSS=1200 NOP NOP NOP: MSS at offset 1.
        let bytes = [1, 2, 4, 0x04, 0xb0, 1, 1, 1];
        let opts = TcpOptions::parse(&bytes).unwrap();
        assert_eq!(opts.mss, Some(1200));
        // Timestamps at offset 3, window scale at offset 13.
        let bytes = [1, 1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 3, 3, 9];
        let opts = TcpOptions::parse(&bytes).unwrap();
        assert_eq!(opts.timestamps, Some((5, 6)));
        assert_eq!(opts.window_scale, Some(9));
    }

    #[test]
    fn must_4_eol_nop_mss() {
        let opts = TcpOptions::parse(&[1, 1, 2, 4, 0x03, 0xe8, 0, 0]).unwrap();
        assert_eq!(opts.mss, Some(1000));
    }

    #[test]
    fn eol_ends_the_list() {
        // Garbage after EOL, even an invalid length, is not read.
        let opts = TcpOptions::parse(&[0, 2, 0, 9, 9]).unwrap();
        assert_eq!(opts, TcpOptions::default());
        let opts = TcpOptions::parse(&[3, 3, 2, 0, 2, 4, 1, 1]).unwrap();
        assert_eq!(opts.window_scale, Some(2));
        assert_eq!(opts.mss, None);
    }

    #[test]
    fn must_6_unknown_option_skipped() {
        let bytes = [253, 6, 0xff, 0xff, 0xff, 0xff, 2, 4, 0x05, 0xb4];
        let opts = TcpOptions::parse(&bytes).unwrap();
        assert_eq!(opts.mss, Some(1460));
    }

    #[test]
    fn must_7_option_length_zero_or_one() {
        assert_eq!(
            TcpOptions::parse(&[2, 0, 0, 0]),
            Err(WireError::BadOptionLength)
        );
        assert_eq!(
            TcpOptions::parse(&[1, 253, 1, 0]),
            Err(WireError::BadOptionLength)
        );
    }

    #[test]
    fn must_7_option_past_header() {
        assert_eq!(
            TcpOptions::parse(&[1, 1, 8, 10, 0, 0]),
            Err(WireError::BadOptionLength)
        );
        // The length byte itself is missing.
        assert_eq!(
            TcpOptions::parse(&[1, 1, 1, 2]),
            Err(WireError::BadOptionLength)
        );
        assert_eq!(TcpOptions::parse(&[2]), Err(WireError::BadOptionLength));
    }

    #[test]
    fn known_option_with_wrong_length_is_skipped() {
        // MSS with length 3, WS with length 4, SACK-permitted with length 3,
        // TS with length 6, SACK with length 2 and 9, then a good MSS.
        let bytes = [
            2, 3, 0xff, 3, 4, 1, 1, 4, 3, 0, 8, 6, 0, 0, 0, 0, 5, 2, 5, 9, 0, 0, 0, 0, 0, 0, 0, 2,
            4, 0x02, 0x18,
        ];
        let opts = TcpOptions::parse(&bytes).unwrap();
        assert_eq!(
            opts,
            TcpOptions {
                mss: Some(536),
                ..TcpOptions::default()
            }
        );
    }

    #[test]
    fn sack_blocks_parsed() {
        let bytes = [
            1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 5,
        ];
        let opts = TcpOptions::parse(&bytes).unwrap();
        assert_eq!(
            opts.sack(),
            &[
                SackBlock { left: 1, right: 2 },
                SackBlock {
                    left: u32::MAX,
                    right: 5
                }
            ]
        );
    }

    #[test]
    fn more_than_four_sack_blocks_keeps_four() {
        let mut bytes = [0u8; 2 + 5 * 8];
        bytes[0] = 5;
        bytes[1] = bytes.len() as u8;
        for (i, b) in bytes[2..].chunks_mut(4).enumerate() {
            b.copy_from_slice(&(i as u32).to_be_bytes());
        }
        let opts = TcpOptions::parse(&bytes).unwrap();
        assert_eq!(opts.sack().len(), 4);
        assert_eq!(opts.sack()[3], SackBlock { left: 6, right: 7 });
    }

    #[test]
    fn empty_options() {
        assert_eq!(TcpOptions::parse(&[]), Ok(TcpOptions::default()));
    }

    /// The timestamps-only fast paths agree with the general code: the
    /// same bytes as the layout documented for `emit`, and the same options
    /// parsed as from an equivalent layout that the general loop handles.
    #[test]
    fn timestamps_only_fast_paths_agree() {
        let opts = TcpOptions {
            timestamps: Some((0x0102_0304, 0xa0b0_c0d0)),
            ..TcpOptions::default()
        };
        let mut buf = [0u8; 40];
        assert_eq!(opts.emit(&mut buf), Ok(12));
        assert_eq!(
            &buf[..12],
            &[1, 1, 8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0]
        );
        assert_eq!(opts.emitted_len(), 12);
        assert_eq!(opts.emit(&mut buf[..11]), Err(WireError::BufferTooSmall));
        assert_eq!(TcpOptions::parse(&buf[..12]), Ok(opts));
        // The same option behind one NOP and followed by EOL: general loop.
        let general = [1, 8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 0];
        assert_eq!(TcpOptions::parse(&general), Ok(opts));
        // A wrong length is not taken by the fast path.
        let mut bad = buf;
        bad[3] = 9;
        assert_eq!(
            TcpOptions::parse(&bad[..12]),
            Err(WireError::BadOptionLength)
        );
        // Trailing bytes after the timestamps go to the general loop.
        let mut longer = [0u8; 16];
        longer[..12].copy_from_slice(&buf[..12]);
        longer[12..].copy_from_slice(&[1, 1, 1, 0]);
        assert_eq!(TcpOptions::parse(&longer), Ok(opts));
    }
}
