//! TCP state machine against scripted segment sequences.

use super::*;
use crate::packet::tcp::flags::{ACK, FIN, PSH, RST, SYN};

/// Client and server initial sequence numbers.
const CISN: u32 = 1000;
const SISN: u32 = 5000;

/// A client (C:40000) talking to a server (S:80) through a table.
struct Conv {
    ct: Conntrack,
    now: u64,
}

fn seg(flags: u16, seq: u32, ack: u32, len: u32) -> TcpSeg {
    TcpSeg {
        flags,
        seq,
        ack,
        window: 65535,
        wscale: None,
        payload_len: len,
    }
}

impl Conv {
    fn new() -> Conv {
        Conv {
            ct: table(64),
            now: 0,
        }
    }

    fn send(&mut self, from_client: bool, s: TcpSeg) -> u16 {
        self.now += SEC / 1000;
        let p = if from_client {
            CtPacket::tcp((C, 40000), (S, 80), s, 40 + s.payload_len)
        } else {
            CtPacket::tcp((S, 80), (C, 40000), s, 40 + s.payload_len)
        };
        self.ct.process(&p, 0, true, None, None, self.now).state
    }

    fn c(&mut self, flags: u16, seq: u32, ack: u32, len: u32) -> u16 {
        self.send(true, seg(flags, seq, ack, len))
    }

    fn s(&mut self, flags: u16, seq: u32, ack: u32, len: u32) -> u16 {
        self.send(false, seg(flags, seq, ack, len))
    }

    fn entry(&self) -> CtEntry {
        self.ct
            .get(&CtTuple::tcp(C, 40000, S, 80), 0, self.now)
            .expect("tracked")
    }

    fn tcp_state(&self) -> &'static str {
        self.entry().state
    }

    /// SYN, SYN-ACK, ACK; leaves both sides at ISN + 1.
    fn handshake(&mut self) {
        assert_eq!(self.c(SYN, CISN, 0, 0), NEW);
        assert_eq!(self.tcp_state(), "SYN_SENT");
        assert_eq!(self.s(SYN | ACK, SISN, CISN + 1, 0), RPL);
        assert_eq!(self.tcp_state(), "SYN_RECV");
        assert!(!self.entry().assured);
        assert_eq!(self.c(ACK, CISN + 1, SISN + 1, 0), EST);
        assert_eq!(self.tcp_state(), "ESTABLISHED");
        assert!(self.entry().assured);
    }
}

#[test]
fn handshake_and_data_both_ways() {
    let mut t = Conv::new();
    t.handshake();
    assert_eq!(t.c(ACK | PSH, CISN + 1, SISN + 1, 100), EST);
    assert_eq!(t.s(ACK | PSH, SISN + 1, CISN + 101, 200), RPL);
    assert_eq!(t.c(ACK, CISN + 101, SISN + 201, 0), EST);
    // A retransmission of old data is fine.
    assert_eq!(t.c(ACK | PSH, CISN + 1, SISN + 201, 100), EST);
    let e = t.entry();
    assert_eq!(e.packets, [5, 2]);
    assert_eq!(e.timeout, Duration::from_secs(432_000));
    assert_eq!(t.ct.stats().invalid, 0);
    check_invariants(&t.ct);
}

#[test]
fn fin_fin_close() {
    let mut t = Conv::new();
    t.handshake();
    assert_eq!(t.c(FIN | ACK, CISN + 1, SISN + 1, 0), EST);
    assert_eq!(t.tcp_state(), "FIN_WAIT");
    assert_eq!(t.entry().timeout, Duration::from_secs(120));
    // An ACK that does not cover the FIN changes nothing.
    assert_eq!(t.s(ACK, SISN + 1, CISN + 1, 0), RPL);
    assert_eq!(t.tcp_state(), "FIN_WAIT");
    assert_eq!(t.s(ACK, SISN + 1, CISN + 2, 0), RPL);
    assert_eq!(t.tcp_state(), "CLOSE_WAIT");
    assert_eq!(t.entry().timeout, Duration::from_secs(60));
    // The server may still send data while half-closed.
    assert_eq!(t.s(ACK | PSH, SISN + 1, CISN + 2, 10), RPL);
    assert_eq!(t.c(ACK, CISN + 2, SISN + 11, 0), EST);
    assert_eq!(t.s(FIN | ACK, SISN + 11, CISN + 2, 0), RPL);
    assert_eq!(t.tcp_state(), "LAST_ACK");
    assert_eq!(t.entry().timeout, Duration::from_secs(30));
    assert_eq!(t.c(ACK, CISN + 2, SISN + 12, 0), EST);
    assert_eq!(t.tcp_state(), "TIME_WAIT");
    assert_eq!(t.entry().timeout, Duration::from_secs(120));
    // Retransmitted final ACK.
    assert_eq!(t.c(ACK, CISN + 2, SISN + 12, 0), EST);
    assert_eq!(t.tcp_state(), "TIME_WAIT");
}

#[test]
fn server_fin_ack_combined() {
    let mut t = Conv::new();
    t.handshake();
    assert_eq!(t.c(FIN | ACK, CISN + 1, SISN + 1, 0), EST);
    // The server acknowledges the FIN and closes in one segment.
    assert_eq!(t.s(FIN | ACK, SISN + 1, CISN + 2, 0), RPL);
    assert_eq!(t.tcp_state(), "LAST_ACK");
    assert_eq!(t.c(ACK, CISN + 2, SISN + 2, 0), EST);
    assert_eq!(t.tcp_state(), "TIME_WAIT");
}

#[test]
fn simultaneous_fin() {
    let mut t = Conv::new();
    t.handshake();
    assert_eq!(t.c(FIN | ACK, CISN + 1, SISN + 1, 0), EST);
    assert_eq!(t.s(FIN | ACK, SISN + 1, CISN + 1, 0), RPL);
    assert_eq!(t.tcp_state(), "LAST_ACK");
    assert_eq!(t.c(ACK, CISN + 2, SISN + 2, 0), EST);
    assert_eq!(
        t.tcp_state(),
        "LAST_ACK",
        "the client's FIN is not acknowledged yet"
    );
    assert_eq!(t.s(ACK, SISN + 2, CISN + 2, 0), RPL);
    assert_eq!(t.tcp_state(), "TIME_WAIT");
}

#[test]
fn rst_from_client() {
    let mut t = Conv::new();
    t.handshake();
    assert_eq!(t.c(RST, CISN + 1, 0, 0), EST);
    assert_eq!(t.tcp_state(), "CLOSE");
    assert_eq!(t.entry().timeout, Duration::from_secs(10));
    // Segments in flight after the RST are still accepted.
    assert_eq!(t.s(ACK | PSH, SISN + 1, CISN + 1, 10), RPL);
    assert_eq!(t.tcp_state(), "CLOSE");
}

#[test]
fn rst_from_server() {
    let mut t = Conv::new();
    t.handshake();
    assert_eq!(t.s(RST | ACK, SISN + 1, CISN + 1, 0), RPL);
    assert_eq!(t.tcp_state(), "CLOSE");
}

#[test]
fn rst_refusing_the_syn() {
    let mut t = Conv::new();
    assert_eq!(t.c(SYN, CISN, 0, 0), NEW);
    // Must acknowledge the SYN.
    assert_eq!(t.s(RST | ACK, 0, CISN + 7, 0), INV);
    assert_eq!(t.s(RST, 0, 0, 0), INV);
    assert_eq!(t.tcp_state(), "SYN_SENT");
    assert_eq!(t.s(RST | ACK, 0, CISN + 1, 0), RPL);
    assert_eq!(t.tcp_state(), "CLOSE");
    assert!(!t.entry().assured);
}

#[test]
fn rst_race_both_sides() {
    let mut t = Conv::new();
    t.handshake();
    assert_eq!(t.c(ACK | PSH, CISN + 1, SISN + 1, 100), EST);
    // Both ends reset at once, each before seeing the other's RST.
    assert_eq!(t.c(RST | ACK, CISN + 101, SISN + 1, 0), EST);
    assert_eq!(t.s(RST | ACK, SISN + 1, CISN + 101, 0), RPL);
    assert_eq!(t.tcp_state(), "CLOSE");
    // A forged RST far out of the window is still refused in CLOSE.
    assert_eq!(t.s(RST, SISN.wrapping_add(1 << 30), 0, 0), INV);
}

#[test]
fn rst_out_of_window_is_invalid() {
    let mut t = Conv::new();
    t.handshake();
    assert_eq!(t.s(RST, SISN + 1 + 10_000_000, 0, 0), INV);
    assert_eq!(t.c(RST, CISN.wrapping_sub(10_000_000), 0, 0), INV);
    assert_eq!(t.tcp_state(), "ESTABLISHED");
    assert_eq!(t.ct.stats().invalid, 2);
}

#[test]
fn out_of_window_data_and_acks_are_invalid() {
    let mut t = Conv::new();
    t.handshake();
    let before = t.entry();
    // Beyond what the server's window allows.
    assert_eq!(t.c(ACK | PSH, CISN + 1 + 1_000_000, SISN + 1, 100), INV);
    // Older than a whole window.
    assert_eq!(
        t.c(ACK | PSH, CISN.wrapping_sub(200_000), SISN + 1, 100),
        INV
    );
    // Acknowledges data the server never sent.
    assert_eq!(t.c(ACK, CISN + 1, SISN + 1 + 100, 0), INV);
    // Acknowledges something older than a window.
    assert_eq!(t.s(ACK, SISN + 1, CISN.wrapping_sub(100_000), 0), INV);
    let after = t.entry();
    assert_eq!(
        after.packets, before.packets,
        "invalid segments are not counted"
    );
    assert_eq!(after.state, "ESTABLISHED");
    assert_eq!(t.ct.stats().invalid, 4);
    // Valid traffic goes on.
    assert_eq!(t.c(ACK | PSH, CISN + 1, SISN + 1, 100), EST);
}

#[test]
fn invalid_flags() {
    let mut t = Conv::new();
    for f in [SYN | FIN, SYN | RST, FIN, 0, SYN | ACK, RST, FIN | ACK] {
        assert_eq!(t.c(f, CISN, 0, 0), INV, "flags {f:#x} cannot open");
    }
    assert!(t.ct.is_empty());
    t.handshake();
    for f in [SYN | FIN, FIN, 0, FIN | RST | ACK] {
        assert_eq!(t.c(f, CISN + 1, SISN + 1, 0), INV, "flags {f:#x}");
    }
}

#[test]
fn retransmitted_syn() {
    let mut t = Conv::new();
    assert_eq!(t.c(SYN, CISN, 0, 0), NEW);
    assert_eq!(t.c(SYN, CISN, 0, 0), EST);
    assert_eq!(t.tcp_state(), "SYN_SENT");
    // The client retries with a new ISN: tracked from it on.
    assert_eq!(t.c(SYN, CISN + 77, 0, 0), EST);
    assert_eq!(t.s(SYN | ACK, SISN, CISN + 1, 0), INV);
    assert_eq!(t.s(SYN | ACK, SISN, CISN + 78, 0), RPL);
    // SYN and SYN-ACK retransmitted once more.
    assert_eq!(t.c(SYN, CISN + 77, 0, 0), EST);
    assert_eq!(t.s(SYN | ACK, SISN, CISN + 78, 0), RPL);
    assert_eq!(t.tcp_state(), "SYN_RECV");
    assert_eq!(t.c(ACK, CISN + 78, SISN + 1, 0), EST);
    assert_eq!(t.tcp_state(), "ESTABLISHED");
    assert_eq!(t.ct.len(), 1);
    // A SYN with another ISN on an established connection is not reuse.
    assert_eq!(t.c(SYN, 9, 0, 0), INV);
}

#[test]
fn time_wait_reused_by_a_new_syn() {
    let mut t = Conv::new();
    t.handshake();
    assert_eq!(t.c(FIN | ACK, CISN + 1, SISN + 1, 0), EST);
    assert_eq!(t.s(FIN | ACK, SISN + 1, CISN + 2, 0), RPL);
    assert_eq!(t.c(ACK, CISN + 2, SISN + 2, 0), EST);
    assert_eq!(t.tcp_state(), "TIME_WAIT");
    // Same ports, a new connection: the old entry is replaced.
    assert_eq!(t.c(SYN, 90_000, 0, 0), NEW);
    assert_eq!(t.tcp_state(), "SYN_SENT");
    assert_eq!(t.entry().packets, [1, 0]);
    assert_eq!(t.ct.len(), 1);
    assert_eq!(t.ct.stats().committed, 2);
    check_invariants(&t.ct);
    assert_eq!(t.s(SYN | ACK, 1, 90_001, 0), RPL);
    assert_eq!(t.c(ACK, 90_001, 2, 0), EST);
    assert_eq!(t.tcp_state(), "ESTABLISHED");
}

#[test]
fn close_reused_by_a_new_syn_without_commit() {
    let mut t = Conv::new();
    t.handshake();
    assert_eq!(t.c(RST, CISN + 1, 0, 0), EST);
    let p = CtPacket::tcp((C, 40000), (S, 80), seg(SYN, 1, 0, 0), 40);
    assert_eq!(state(&t.ct, &p, false, t.now), NEW);
    assert!(t.ct.is_empty(), "the finished connection is gone");
    check_invariants(&t.ct);
}

#[test]
fn window_scaling() {
    fn run(scale: Option<u8>) -> u16 {
        let mut t = Conv::new();
        let mut s = seg(SYN, CISN, 0, 0);
        s.wscale = Some(7);
        assert_eq!(t.send(true, s), NEW);
        let mut s = seg(SYN | ACK, SISN, CISN + 1, 0);
        s.wscale = scale;
        assert_eq!(t.send(false, s), RPL);
        assert_eq!(t.c(ACK, CISN + 1, SISN + 1, 0), EST);
        // The server advertises 1000 << 7 = 128000 bytes if scaling is on.
        let mut s = seg(ACK, SISN + 1, CISN + 1, 0);
        s.window = 1000;
        assert_eq!(t.send(false, s), RPL);
        t.c(ACK | PSH, CISN + 1 + 100_000, SISN + 1, 100)
    }
    assert_eq!(run(Some(7)), EST);
    assert_eq!(run(None), INV, "scaling needs both SYNs to offer it");
}

#[test]
fn picked_up_mid_stream() {
    let mut t = Conv::new();
    assert_eq!(t.c(ACK, 777_777, 888_888, 0), NEW);
    let e = t.entry();
    assert_eq!((e.state, e.assured), ("ESTABLISHED", false));
    // Window scale unknown: tracked liberally.
    assert_eq!(t.s(ACK | PSH, 888_888, 777_777, 1000), RPL);
    assert!(t.entry().assured);
    assert_eq!(t.c(ACK | PSH, 777_777 + 5_000_000, 888_888, 1000), EST);
    assert_eq!(t.c(FIN | ACK, 777_777, 889_888, 0), EST);
    assert_eq!(t.tcp_state(), "FIN_WAIT");
}

#[test]
fn handshake_timeouts() {
    let mut t = Conv::new();
    assert_eq!(t.c(SYN, CISN, 0, 0), NEW);
    assert_eq!(t.entry().timeout, Duration::from_secs(120));
    assert_eq!(t.s(SYN | ACK, SISN, CISN + 1, 0), RPL);
    assert_eq!(t.entry().timeout, Duration::from_secs(60));
    // The SYN-ACK is never answered: gone after 60 s.
    let p = CtPacket::tcp((C, 40000), (S, 80), seg(ACK, CISN + 1, SISN + 1, 0), 40);
    assert_eq!(state(&t.ct, &p, false, t.now + 60 * SEC), NEW);
}

#[test]
fn ack_before_syn_ack_is_invalid() {
    let mut t = Conv::new();
    assert_eq!(t.c(SYN, CISN, 0, 0), NEW);
    assert_eq!(t.c(ACK, CISN + 1, SISN + 1, 0), INV);
    assert_eq!(t.s(ACK, SISN + 1, CISN + 1, 0), INV);
    assert_eq!(t.tcp_state(), "SYN_SENT");
}

#[test]
fn simultaneous_open() {
    let mut t = Conv::new();
    assert_eq!(t.c(SYN, CISN, 0, 0), NEW);
    assert_eq!(t.s(SYN, SISN, 0, 0), RPL);
    assert_eq!(t.c(SYN | ACK, CISN, SISN + 1, 0), EST);
    assert_eq!(t.s(SYN | ACK, SISN, CISN + 1, 0), RPL);
    assert_eq!(t.c(ACK, CISN + 1, SISN + 1, 0), EST);
    assert_eq!(t.tcp_state(), "ESTABLISHED");
}
