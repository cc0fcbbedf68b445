//! Criterion benchmark of the Service path through the whole in-memory
//! pipeline, per core: the flows and the group the control plane compiles
//! for a node with one ClusterIP Service (`control::model::compile_all`),
//! conntrack included.
//!
//! - `service/established_dnat/64`: 64 established TCP connections from a
//!   client pod (port 1) to `10.96.0.10:80`, addressed to the gateway MAC
//!   as a pod sends them; each packet goes through table 0 (`ct(zone=1,
//!   nat)`: lookup, TCP window check and state update, DNAT to the backend
//!   with incremental checksums), table 1 (not new: on to table 2), table 2
//!   (to the gateway MAC: routed), table 10 (the backend pod's route: MAC
//!   rewrite, `dec_ttl`, output to port 2, a sink). The connections are
//!   committed in the untimed warm-up turn (pure ACKs, which conntrack picks
//!   up mid-stream as established). Target: ≥ 10 Mpps per core.
//!
//! One iteration is one turn of the poll loop over a 64-packet burst, as in
//! `pipeline.rs`: the replay port copies each frame in (like AF_XDP copy
//! mode). Throughput is in packets (elements) per second.

use std::net::Ipv4Addr;
use std::sync::Arc;

use control::model::{compile_all, Ipv4Cidr, LocalNode, NodeModel, PodEntry, Service};
use control::MacAddr;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vswitch::pipeline::{Pipeline, BATCH};
use vswitch::port::mem::MemPort;
use vswitch::switch::Switch;
use vswitch::tables::{CtConfig, Fdb};

const GW_MAC: [u8; 6] = [0x0a, 0, 0, 0, 0, 1];
const CLIENT_MAC: [u8; 6] = [0x0a, 0x58, 10, 244, 1, 5];
const BACKEND_MAC: [u8; 6] = [0x0a, 0x58, 10, 244, 1, 6];

fn model() -> NodeModel {
    let mut m = NodeModel::new(LocalNode {
        name: "bench".into(),
        pod_cidr: "10.244.1.0/24".parse::<Ipv4Cidr>().expect("cidr"),
        gateway_ip: Ipv4Addr::new(10, 244, 1, 1),
        vtep_ip: Ipv4Addr::new(198, 18, 0, 1),
        vni: 1,
        vtep_mac: MacAddr([0xaa, 0xbb, 0xcc, 0, 0, 1]),
        gw_mac: MacAddr(GW_MAC),
        underlay_mtu: 1500,
    })
    .expect("node");
    for (id, port, mac, last) in [("client", 1, CLIENT_MAC, 5), ("backend", 2, BACKEND_MAC, 6)] {
        m.upsert_pod(
            id,
            PodEntry {
                ofport: port,
                mac: MacAddr(mac),
                ip: Ipv4Addr::new(10, 244, 1, last),
            },
        )
        .expect("pod");
    }
    let svc = Service::parse(
        "default/web",
        "10.96.0.10",
        80,
        "tcp",
        &["10.244.1.6:8080".to_string()],
    )
    .expect("service");
    m.upsert_service("default/web", svc).expect("service");
    m
}

/// A pure ACK of connection `i` from the client pod to the VIP.
fn ack(i: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, GW_MAC)
        .ipv4([10, 244, 1, 5], [10, 96, 0, 10], 64)
        .tcp(40_000 + i, 80, 1000, 65535)
        .ack(5000);
    let mut v = Vec::with_capacity(64);
    b.write(&mut v, &[0u8; 6]).expect("frame builds");
    v
}

fn service(c: &mut Criterion) {
    let pipe = Arc::new(Pipeline::with_conntrack(
        1,
        Fdb::default(),
        CtConfig::default(),
    ));
    let mut sw = Switch::new(Arc::clone(&pipe), 0);
    let (rx, _) = MemPort::replay("client", (0..64).map(ack).collect());
    let (tx, sink) = MemPort::sink("backend");
    sw.add_port(1, Box::new(rx)).expect("port 1");
    sw.add_port(2, Box::new(tx)).expect("port 2");
    let compiled = compile_all(&model());
    for g in compiled.groups {
        pipe.add_group(g).expect("group installs");
    }
    pipe.add_flows(compiled.flows).expect("flows install");

    // Warm-up turn: commits the 64 connections; every packet reaches the backend.
    assert_eq!(sw.poll(1), BATCH);
    assert_eq!(sink.sunk(), BATCH as u64, "drops: {:?}", pipe.drops());
    assert_eq!(pipe.conntrack().len(), 64, "one connection per source port");
    assert_eq!(sw.poll(1), BATCH);
    assert_eq!(sink.sunk(), 2 * BATCH as u64, "drops: {:?}", pipe.drops());

    let mut g = c.benchmark_group("service");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("established_dnat/64", |b| b.iter(|| sw.poll(1)));
    g.finish();
}

criterion_group!(benches, service);
criterion_main!(benches);
