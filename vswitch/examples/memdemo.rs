//! The in-memory demo: a four-port switch, three "pods" and a "router"
//! port, real frames through the real pipeline, and the tables an operator
//! would look at. No root, no kernel interfaces: the AF_XDP daemon demo
//! replaces this once `vswitchd` lands.

use std::sync::Arc;

use etherparse::PacketBuilder;
use vswitch::pipeline::Pipeline;
use vswitch::port::mem::{MemLink, MemPort};
use vswitch::switch::Switch;
use vswitch::tables::Fdb;

const PODS: [(&str, [u8; 6], [u8; 4]); 3] = [
    ("pod-a", [0x02, 0, 0, 0, 1, 0x0a], [10, 244, 1, 10]),
    ("pod-b", [0x02, 0, 0, 0, 1, 0x0b], [10, 244, 1, 11]),
    ("pod-c", [0x02, 0, 0, 0, 1, 0x0c], [10, 244, 1, 12]),
];

fn tcp(from: usize, to: usize, sport: u16, payload: &[u8]) -> Vec<u8> {
    let (_, sm, sip) = PODS[from];
    let (_, dm, dip) = PODS[to];
    let b = PacketBuilder::ethernet2(sm, dm)
        .ipv4(sip, dip, 64)
        .tcp(sport, 80, 1, 64240);
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("frame");
    v
}

fn arp_request(from: usize, to: usize) -> Vec<u8> {
    let (_, sm, sip) = PODS[from];
    let (_, _, dip) = PODS[to];
    let mut v = vec![0xff; 6];
    v.extend_from_slice(&sm);
    v.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    v.extend_from_slice(&sm);
    v.extend_from_slice(&sip);
    v.extend_from_slice(&[0; 6]);
    v.extend_from_slice(&dip);
    v.resize(60, 0);
    v
}

fn main() -> anyhow::Result<()> {
    let pipe = Arc::new(Pipeline::new(1, Fdb::default()));
    let mut sw = Switch::new(Arc::clone(&pipe), 0);
    let mut links: Vec<MemLink> = Vec::new();
    for (i, (name, _, _)) in PODS.iter().enumerate() {
        let (port, link) = MemPort::new(name, 1024);
        sw.add_port(i as u32 + 1, Box::new(port))?;
        links.push(link);
    }
    let flows = "\
        table=0,priority=100,tcp,nw_dst=10.244.1.12,tp_dst=23 actions=drop\n\
        table=0,priority=10,ip actions=dec_ttl,resubmit(,1)\n\
        table=0,priority=0 actions=normal\n\
        table=1,priority=0 actions=normal\n";
    pipe.add_flows(control::flow::parse_flows(flows)?)?;
    println!("== flows installed (ovs-ofctl add-flows syntax)\n{flows}");

    let mut now = 1_000_000_000u64;
    let mut step = |sw: &mut Switch, links: &[MemLink], what: &str| {
        sw.run_until_idle(now);
        now += 1_000_000;
        let got: Vec<String> = links
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let n = l.take_tx().len();
                (n > 0).then(|| format!("{} x{n}", PODS[i].0))
            })
            .collect();
        println!(
            "{what:<48} -> {}",
            if got.is_empty() {
                "dropped".to_string()
            } else {
                got.join(", ")
            }
        );
    };

    println!("== traffic");
    links[0].inject(&arp_request(0, 1));
    step(&mut sw, &links, "pod-a ARP who-has 10.244.1.11 (broadcast)");
    links[1].inject(&tcp(1, 0, 80, b"reply"));
    step(&mut sw, &links, "pod-b -> pod-a TCP (pod-a learned)");
    for i in 0..1000u16 {
        links[0].inject(&tcp(0, 1, 40000 + (i % 4), b"0123456789abcdef"));
    }
    step(&mut sw, &links, "pod-a -> pod-b 1000 TCP segments");
    links[2].inject(&tcp(2, 0, 5555, b"c"));
    step(&mut sw, &links, "pod-c -> pod-a TCP");
    let mut blocked = tcp(0, 2, 4444, b"telnet");
    blocked[36..38].copy_from_slice(&23u16.to_be_bytes());
    // Recompute nothing: the drop flow matches before any checksum matters.
    links[0].inject(&blocked);
    step(
        &mut sw,
        &links,
        "pod-a -> pod-c tcp/23 (priority 100 drop flow)",
    );
    links[0].inject(&[0u8; 9]);
    step(&mut sw, &links, "pod-a sends a 9-byte runt");

    println!("\n== ofctl dump-flows");
    for d in pipe.dump_flows(&control::flow::parse_filter("")?)? {
        println!("{}", control::flow::format_dump(&d.flow, &d.stats));
    }
    println!("\n== ofctl dump-ports");
    for (ofport, slot) in pipe.ports() {
        let s = pipe.port_stats(slot);
        println!(
            "  port {ofport:>2}: rx pkts={:<5} bytes={:<7} drop={:<3} tx pkts={:<5} bytes={:<7} drop={}",
            s.rx_packets, s.rx_bytes, s.rx_dropped, s.tx_packets, s.tx_bytes, s.tx_dropped
        );
    }
    println!("\n== ofctl fdb-show\n port  VLAN  MAC                Age");
    for e in pipe.fdb.entries(now) {
        println!(
            "{:>5}  {:>4}  {}  {:>3}",
            e.port,
            e.vlan,
            control::MacAddr(e.mac),
            e.age.as_secs()
        );
    }
    println!("\n== drops by reason");
    for (r, n) in pipe.drops() {
        if n > 0 {
            println!("  {r:<20} {n}");
        }
    }
    Ok(())
}
