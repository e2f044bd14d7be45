//! pcap output (`--pcap FILE`): a capture that Wireshark and tshark open.
//!
//! The file is a classic pcap file (not pcapng) with link type
//! `LINKTYPE_RAW` (101): each record is one raw IPv4 or IPv6 packet, with no
//! link-layer header, exactly as the stack sent or received it. Timestamps
//! are the driver's clock, in microseconds: virtual time from 0 in
//! `synack demo` (Wireshark then shows dates in January 1970; its relative
//! time column is the one to read).
//!
//! Output is buffered; it is flushed on a write when a second of wall-clock
//! time has passed since the last flush, on [`PcapWriter::flush`] and when
//! the writer is dropped.

use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use synack_core::Instant;

/// The largest number of bytes of a packet stored (the rest is cut off, and
/// the record keeps the packet's original length). Larger than any IP packet
/// without jumbograms; the value tcpdump uses.
pub const SNAPLEN: u32 = 262_144;

/// How long buffered packets may wait, in wall-clock time, before a write flushes them.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Writes packets to a pcap file (see the [module documentation](self)).
pub struct PcapWriter<W: Write> {
    pcap: pcap_file::pcap::PcapWriter<SharedSink<W>>,
    /// The same buffered writer the pcap writer writes to, kept here so that
    /// it can be flushed (`pcap_file`'s writer gives no access to it).
    sink: Arc<Mutex<BufWriter<W>>>,
    last_flush: std::time::Instant,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header to `w` (buffered) and returns a writer ready
    /// for packets.
    pub fn new(w: W) -> io::Result<Self> {
        let sink = Arc::new(Mutex::new(BufWriter::new(w)));
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::RAW,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let pcap = pcap_file::pcap::PcapWriter::with_header(SharedSink(Arc::clone(&sink)), header)
            .map_err(into_io_error)?;
        Ok(PcapWriter {
            pcap,
            sink,
            last_flush: std::time::Instant::now(),
        })
    }

    /// Writes one raw IP packet (IPv4 or IPv6, starting at the IP header),
    /// stamped with `at`. A packet longer than [`SNAPLEN`] is cut to that
    /// length.
    pub fn write_packet(&mut self, at: Instant, packet: &[u8]) -> io::Result<()> {
        let orig_len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let stored = &packet[..packet.len().min(SNAPLEN as usize)];
        let record = PcapPacket::new(Duration::from_micros(at.micros()), orig_len, stored);
        self.pcap.write_packet(&record).map_err(into_io_error)?;
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out everything buffered and flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.last_flush = std::time::Instant::now();
        lock(&self.sink).flush()
    }
}

impl<W: Write> Drop for PcapWriter<W> {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; call `flush` to see them.
        let _ = lock(&self.sink).flush();
    }
}

/// The writer handed to `pcap_file`: a second handle on the buffered output.
struct SharedSink<W: Write>(Arc<Mutex<BufWriter<W>>>);

impl<W: Write> Write for SharedSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        lock(&self.0).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        lock(&self.0).flush()
    }
}

/// Locks the shared output. Nothing panics while holding the lock except a
/// panicking inner writer, whose buffer is still usable afterwards.
fn lock<W: Write>(sink: &Mutex<BufWriter<W>>) -> MutexGuard<'_, BufWriter<W>> {
    sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Turns a `pcap_file` error into the I/O error it wraps, or an invalid-input error.
fn into_io_error(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidInput, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    #[test]
    fn two_packets_read_back() {
        let ipv4 = [
            0x45u8, 0, 0, 40, 1, 2, 3, 4, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let ipv6 = [0x60u8; 48];
        let mut out = Vec::new();
        {
            let mut w = PcapWriter::new(&mut out).unwrap();
            w.write_packet(Instant::from_micros(0), &ipv4).unwrap();
            w.write_packet(Instant::from_micros(60_010_250), &ipv6)
                .unwrap();
            w.flush().unwrap();
        }
        assert_eq!(out.len(), 24 + 16 + ipv4.len() + 16 + ipv6.len());

        let mut reader = PcapReader::new(&out[..]).unwrap();
        let header = reader.header();
        assert_eq!(header.datalink, DataLink::RAW);
        assert_eq!(u32::from(header.datalink), 101);
        assert_eq!(header.ts_resolution, TsResolution::MicroSecond);
        assert_eq!(header.snaplen, SNAPLEN);

        let p = reader.next_packet().unwrap().unwrap();
        assert_eq!(p.timestamp, Duration::ZERO);
        assert_eq!(p.orig_len, ipv4.len() as u32);
        assert_eq!(&p.data[..], &ipv4[..]);

        let p = reader.next_packet().unwrap().unwrap();
        assert_eq!(p.timestamp, Duration::from_micros(60_010_250));
        assert_eq!(p.orig_len, ipv6.len() as u32);
        assert_eq!(&p.data[..], &ipv6[..]);

        assert!(reader.next_packet().is_none());
    }

    #[test]
    fn drop_flushes_header_and_packets() {
        let mut out = Vec::new();
        {
            let mut w = PcapWriter::new(&mut out).unwrap();
            w.write_packet(Instant::from_millis(3), &[0x45; 20])
                .unwrap();
            // No explicit flush: dropping the writer must write everything.
        }
        let mut reader = PcapReader::new(&out[..]).unwrap();
        let p = reader.next_packet().unwrap().unwrap();
        assert_eq!(p.timestamp, Duration::from_millis(3));
        assert_eq!(p.data.len(), 20);
    }

    #[test]
    fn writer_is_send_when_its_output_is() {
        fn assert_send<T: Send>() {}
        assert_send::<PcapWriter<std::fs::File>>();
    }
}
