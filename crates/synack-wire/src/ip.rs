//! IPv4 and IPv6 headers.
