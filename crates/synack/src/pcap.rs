//! pcap output.
