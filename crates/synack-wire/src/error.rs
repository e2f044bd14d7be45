//! Why a packet could not be parsed or built.

/// Every way a packet can be malformed. [`WireError::reason`] gives the
/// short text that goes into a `drop` trace event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The buffer ends before a header or a length it announces.
    Truncated,
    /// IP version is neither 4 nor 6.
    BadIpVersion,
    /// IPv4 IHL below 5 or past the end.
    BadIpHeaderLength,
    /// IPv4 total length or IPv6 payload length disagrees with the buffer.
    BadTotalLength,
    /// An IPv4 fragment (MF set or non-zero offset): not reassembled.
    Fragment,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// The packet does not carry TCP.
    NotTcp,
    /// TCP data offset below 5 or past the end of the segment.
    BadDataOffset,
    /// An option length of 0 or 1, or one that runs past the header (MUST-7).
    BadOptionLength,
    /// TCP checksum wrong (MUST-3).
    BadChecksum,
    /// Output buffer too small, or options that do not fit in 40 bytes.
    BufferTooSmall,
    /// Source and destination are not of the same IP version.
    AddressFamilyMismatch,
    /// The packet does not carry UDP.
    NotUdp,
    /// UDP length below the header or past the end of the IP payload.
    BadUdpLength,
}

impl WireError {
    /// A short, stable, human-readable reason for trace `drop` events.
    pub fn reason(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated packet",
            WireError::BadIpVersion => "bad IP version",
            WireError::BadIpHeaderLength => "bad IP header length",
            WireError::BadTotalLength => "bad IP total length",
            WireError::Fragment => "IP fragment",
            WireError::BadIpChecksum => "bad IP checksum",
            WireError::NotTcp => "not TCP",
            WireError::BadDataOffset => "bad TCP data offset",
            WireError::BadOptionLength => "bad TCP option length",
            WireError::BadChecksum => "bad checksum",
            WireError::BufferTooSmall => "buffer too small",
            WireError::AddressFamilyMismatch => "address family mismatch",
            WireError::NotUdp => "not UDP",
            WireError::BadUdpLength => "bad UDP length",
        }
    }
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.reason())
    }
}
