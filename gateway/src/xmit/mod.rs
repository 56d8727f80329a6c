//! Per-mode packet rewrites (FNAT, NAT, DR, TUN), applied in place on a frame.
