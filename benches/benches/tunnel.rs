//! Criterion benchmarks of VXLAN through the whole in-memory pipeline, per core.
//!
//! Each iteration is one turn of the poll loop over a 64-packet burst, as in
//! `pipeline.rs`: an in-memory port replays a fixed frame set (one copy per
//! packet, like AF_XDP copy mode), the pipeline runs, a sink port takes the
//! burst. Throughput is in packets (elements) per second.
//!
//! - `vxlan/encap/64`: 64 distinct pod TCP flows (60-byte frames) on a pod
//!   port, routed by the control plane's flows (`mod_dl_src`, `mod_dl_dst`,
//!   `dec_ttl`, `set_field` of `tun_dst`/`tun_id`, output to the tunnel
//!   port), encapsulated and sunk on the uplink (110-byte frames).
//! - `vxlan/decap/64`: the same flows pre-encapsulated (built here with
//!   etherparse, not by the code under test) replayed on the uplink,
//!   validated and decapsulated (allow-list and VTEP MAC checked), then
//!   `in_port=65000 → goto_table:10 → route to the pod`, sunk on the pod port.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;
use vswitch::pipeline::{Pipeline, TunnelConfig, BATCH, VXLAN_OFPORT};
use vswitch::port::mem::{MemLink, MemPort};
use vswitch::switch::Switch;
use vswitch::tables::Fdb;
use vswitch_benches::tcp_frame;

const UPLINK: u32 = 64999;
const POD_PORT: u32 = 1;
const LOCAL_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const REMOTE_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const LOCAL_NIC: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];
const REMOTE_NIC: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0x01];
const LOCAL_VTEP_MAC: [u8; 6] = [0xaa, 0xbb, 0xcc, 0, 0, 0x01];

/// 64 TCP flows from pods of 10.244.1.0/24 to pods of 10.244.2.0/24.
fn pod_frames() -> Vec<Vec<u8>> {
    (0..64u8)
        .map(|i| {
            tcp_frame(
                [10, 244, 1, 2 + i % 8],
                [10, 244, 2, 2 + i / 8],
                40_000 + u16::from(i),
                80,
            )
        })
        .collect()
}

/// `inner` as the remote node would send it: VXLAN VNI 1 to our VTEP.
fn encapsulated(inner: &[u8], sport: u16) -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    payload.extend_from_slice(inner);
    let b = PacketBuilder::ethernet2(REMOTE_NIC, LOCAL_NIC)
        .ipv4(REMOTE_VTEP.octets(), LOCAL_VTEP.octets(), 64)
        .udp(sport, 4789);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, &payload).expect("frame builds");
    v
}

/// A node with the tunnel configured, a pod port and an uplink: the uplink
/// replays `frames` if `from_uplink`, else the pod port does; the other side
/// sinks, and its link is returned to count what it took.
fn node(frames: Vec<Vec<u8>>, from_uplink: bool, flows: &str) -> (Switch, MemLink) {
    let pipe = Arc::new(Pipeline::new(1, Fdb::default()));
    let mut sw = Switch::new(Arc::clone(&pipe), 0);
    let mut cfg = TunnelConfig::new(LOCAL_VTEP, LOCAL_NIC, UPLINK);
    cfg.vtep_mac = Some(LOCAL_VTEP_MAC);
    cfg.allowed_sources = Some([REMOTE_VTEP].into());
    pipe.set_tunnel(Some(cfg)).expect("tunnel");
    pipe.set_neighbors(HashMap::from([(REMOTE_VTEP, REMOTE_NIC)]));
    let (pod, uplink, sink) = if from_uplink {
        let (sink, link) = MemPort::sink("pod");
        (sink, MemPort::replay("uplink", frames).0, link)
    } else {
        let (sink, link) = MemPort::sink("uplink");
        (MemPort::replay("pod", frames).0, sink, link)
    };
    sw.add_port(POD_PORT, Box::new(pod)).expect("pod port");
    sw.add_port(UPLINK, Box::new(uplink)).expect("uplink");
    pipe.add_flows(control::flow::parse_flows(flows).expect("flows parse"))
        .expect("flows install");
    (sw, sink)
}

/// One turn must forward the whole burst: nothing dropped.
fn assert_forwards(sw: &mut Switch, sink: &MemLink) {
    let before = sink.sunk();
    assert_eq!(sw.poll(1), BATCH);
    let drops: Vec<_> = sw
        .pipeline()
        .drops()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(drops.is_empty(), "drops: {drops:?}");
    assert_eq!(sink.sunk() - before, BATCH as u64);
}

fn vxlan(c: &mut Criterion) {
    let mut g = c.benchmark_group("vxlan");
    g.throughput(Throughput::Elements(BATCH as u64));

    let encap_flows = format!(
        "table=0,priority=100,in_port={POD_PORT} actions=goto_table:10\n\
         table=10,priority=100,ip,nw_dst=10.244.2.0/24 actions=mod_dl_src:aa:bb:cc:00:00:01,\
         mod_dl_dst:aa:bb:cc:00:00:02,dec_ttl,set_field:{REMOTE_VTEP}->tun_dst,set_field:1->tun_id,output:{VXLAN_OFPORT}"
    );
    let (mut sw, sink) = node(pod_frames(), false, &encap_flows);
    assert_forwards(&mut sw, &sink);
    g.bench_function("encap/64", |b| b.iter(|| sw.poll(1)));

    let inner: Vec<Vec<u8>> = (0..64u8)
        .map(|i| {
            let mut f = tcp_frame(
                [10, 244, 2, 2 + i % 8],
                [10, 244, 1, 2 + i / 8],
                40_000 + u16::from(i),
                80,
            );
            f[..6].copy_from_slice(&LOCAL_VTEP_MAC);
            f
        })
        .collect();
    let frames = inner
        .iter()
        .enumerate()
        .map(|(i, f)| encapsulated(f, 49_152 + i as u16 * 97))
        .collect();
    let decap_flows = format!(
        "table=0,priority=300,in_port={VXLAN_OFPORT} actions=goto_table:10\n\
         table=10,priority=100,ip,nw_dst=10.244.1.0/24 actions=mod_dl_src:02:00:00:00:01:01,\
         mod_dl_dst:02:00:00:00:01:05,dec_ttl,output:{POD_PORT}"
    );
    let (mut sw, sink) = node(frames, true, &decap_flows);
    assert_forwards(&mut sw, &sink);
    g.bench_function("decap/64", |b| b.iter(|| sw.poll(1)));
    g.finish();
}

criterion_group!(benches, vxlan);
criterion_main!(benches);
