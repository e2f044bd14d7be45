//! TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018).

/// The most SACK blocks one header can carry (RFC 2018 §3).
pub const MAX_SACK_BLOCKS: usize = 4;

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
}
