//! The command line (clap) and the values it parses: MACs, rates,
//! durations, the VXLAN triple, CPU lists. Checks that need the system
//! (does the interface exist, does it have the queues, is the CPU there)
//! are the binary's.

use std::net::Ipv4Addr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use vswitch::port::open::Backend;

use super::frame::{FrameSpec, Vxlan, MAX_FLOWS, MAX_SIZE, MIN_SIZE};
use super::rx::RxConfig;
use super::tx::{Share, TxConfig};
use super::MacAddr;

/// Packet generator and sink over AF_XDP (AF_PACKET fallback).
#[derive(Debug, Parser)]
#[command(name = "pktgen", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `send` or `sink`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transmit UDP probes (optionally VXLAN-encapsulated).
    Send(SendArgs),
    /// Receive and count probes: loss, reordering, duplicates, latency.
    Sink(SinkArgs),
}

/// Options both subcommands share.
#[derive(Debug, Clone, Args)]
pub struct PortArgs {
    /// Interface to send on / receive from.
    #[arg(long, value_name = "IF")]
    pub iface: String,
    /// Port backend: afxdp, afpacket, or auto (AF_XDP, else AF_PACKET).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: Backend,
    /// Queue to bind (AF_XDP); the first of --queues.
    #[arg(long, default_value_t = 0, value_name = "Q")]
    pub queue: u32,
    /// Use queues Q..Q+N-1, one AF_XDP socket and one thread each.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_QUEUES))]
    pub queues: u32,
    /// Pin the (one) thread to this CPU.
    #[arg(long, value_name = "C", conflicts_with = "cpus")]
    pub cpu: Option<usize>,
    /// Pin thread i (queue Q+i) to the i-th CPU of this list, modulo its
    /// length (e.g. 0,1 or 0-3 or 0-3,8).
    #[arg(long, value_name = "LIST", value_parser = parse_cpu_list)]
    pub cpus: Option<CpuList>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Most `--queues`: more threads than this is a typo, not a benchmark.
pub const MAX_QUEUES: i64 = 256;

/// `--cpus`: CPU ids, in the order threads take them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

impl PortArgs {
    /// The CPU thread `i` is pinned to, if any.
    pub fn cpu_for(&self, i: usize) -> Option<usize> {
        match &self.cpus {
            Some(CpuList(l)) if !l.is_empty() => Some(l[i % l.len()]),
            _ => self.cpu,
        }
    }

    /// The queues to bind, in thread order.
    pub fn queue_ids(&self) -> std::ops::Range<u32> {
        self.queue..self.queue.saturating_add(self.queues)
    }

    /// The backend each socket opens with: several queues need AF_XDP
    /// (`auto` then means AF_XDP, without the AF_PACKET fallback).
    pub fn backend_for_queues(&self) -> Backend {
        if self.queues > 1 && self.backend == Backend::Auto {
            Backend::Afxdp
        } else {
            self.backend
        }
    }

    /// What `--queues` cannot combine with, as the one-line error.
    pub fn check_queues(&self) -> Result<(), String> {
        let n = self.queues;
        if self.queue.checked_add(n - 1).is_none() {
            return Err(format!(
                "--queue {} --queues {n}: past the last queue id",
                self.queue
            ));
        }
        if n == 1 {
            return Ok(());
        }
        if let Some(c) = self.cpu {
            return Err(format!(
                "--cpu {c} pins one thread; with --queues {n} give --cpus LIST (thread i takes the i-th CPU)"
            ));
        }
        if self.backend == Backend::Afpacket {
            return Err(format!(
                "--queues {n} needs AF_XDP (--backend afxdp or auto): an AF_PACKET socket is not bound to a queue"
            ));
        }
        Ok(())
    }
}

/// `pktgen send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Port options.
    #[command(flatten)]
    pub port: PortArgs,
    /// Destination MAC (the outer one with --vxlan).
    #[arg(long, value_name = "MAC")]
    pub dst_mac: MacAddr,
    /// Source MAC (default: the interface's own).
    #[arg(long, value_name = "MAC")]
    pub src_mac: Option<MacAddr>,
    /// Source IPv4 address of flow 0 (inner with --vxlan).
    #[arg(long, value_name = "IP")]
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address (inner with --vxlan).
    #[arg(long, value_name = "IP")]
    pub dst_ip: Ipv4Addr,
    /// UDP destination port (inner with --vxlan).
    #[arg(long, default_value_t = 9, value_name = "PORT")]
    pub dst_port: u16,
    /// Frame size in bytes without FCS, as sent (the outer frame with --vxlan).
    #[arg(long, default_value_t = 60, value_parser = parse_size)]
    pub size: usize,
    /// Stop after N frames.
    #[arg(long, value_name = "N", conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop after S seconds (e.g. 5, 0.5, 250ms).
    #[arg(long, value_name = "S", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Frames per second (e.g. 100000, 250k, 1.5M), bits per second of
    /// frame bytes (e.g. 1.5Gbps, 500Mbit), or max.
    #[arg(long, default_value = "max", value_name = "PPS|BITS|max", value_parser = parse_rate)]
    pub rate: Rate,
    /// Number of flows: the UDP source port varies, and the source
    /// address too beyond 64512 flows.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_FLOWS)))]
    pub flows: u32,
    /// Spread the flows over N destination ports, --dst-port upward
    /// (flow f: --dst-port + f % N).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub dst_ports: u32,
    /// Spread the flows over N destination addresses, --dst-ip upward
    /// (flow f: --dst-ip + (f / --dst-ports) % N).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_FLOWS)))]
    pub dst_ips: u32,
    /// Wrap each frame in VXLAN: VNI,OUTER_SRC,OUTER_DST.
    #[arg(long, value_name = "VNI,OUTER_SRC,OUTER_DST", value_parser = parse_vxlan)]
    pub vxlan: Option<Vxlan>,
    /// Frames per burst at full rate.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch: u32,
    /// How frames leave: `port` (through --backend: AF_XDP or AF_PACKET,
    /// paced or not) or `live` (BPF_PROG_RUN with live frames: an XDP
    /// program stamps each frame in the kernel and transmits it out of
    /// --iface with XDP_TX, several times faster; a numeric --rate is
    /// coarse: one frame per kernel call up to 20 kpps, bursts of about
    /// 20 ms worth above; --backend, --queue and --batch do not apply;
    /// Linux 5.18 or later).
    #[arg(long, default_value = "port", value_name = "port|live", value_parser = parse_tx_mode)]
    pub tx_mode: TxMode,
    /// Test only: skip one sequence number every N frames of a flow.
    #[arg(long, hide = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub test_seq_gap: Option<u64>,
}

/// `pktgen sink`.
#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// Port options.
    #[command(flatten)]
    pub port: PortArgs,
    /// Stop after N probes.
    #[arg(long, value_name = "N", conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop after S seconds.
    #[arg(long, value_name = "S", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Probes the sender sent, if known: loss then counts frames lost
    /// after the last one received too.
    #[arg(long, value_name = "N")]
    pub expect: Option<u64>,
}

/// `--tx-mode`: how `send` puts frames on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TxMode {
    /// Through a vswitch port (`--backend`): AF_XDP or AF_PACKET.
    #[default]
    Port,
    /// BPF_PROG_RUN live frames (`pktgen::xdp::LiveGen`).
    Live,
}

fn parse_tx_mode(s: &str) -> Result<TxMode, String> {
    match s {
        "port" => Ok(TxMode::Port),
        "live" => Ok(TxMode::Live),
        _ => Err(format!("{s:?} is not a transmit mode (port or live)")),
    }
}

/// `--rate`: a number of frames per second or as fast as possible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// As fast as the port takes frames.
    Max,
    /// Frames per second.
    Pps(u64),
    /// Bits per second of frame bytes (without FCS, as the summary's
    /// `gbps` counts them); frames per second = this / (8 × `--size`).
    Bits(u64),
}

impl Rate {
    /// Frames per second for frames of `size` bytes (`None`: as fast as possible).
    pub fn pps(self, size: usize) -> Option<u64> {
        match self {
            Rate::Max => None,
            Rate::Pps(r) => Some(r),
            Rate::Bits(b) => Some((b / (8 * size.max(1) as u64)).max(1)),
        }
    }
}

impl SendArgs {
    /// The frame spec, with the source MAC resolved by the caller.
    pub fn frame_spec(&self, src_mac: MacAddr) -> FrameSpec {
        FrameSpec {
            src_mac,
            dst_mac: self.dst_mac,
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            dst_port: self.dst_port,
            size: self.size,
            flows: self.flows,
            dst_ports: self.dst_ports,
            dst_ips: self.dst_ips,
            vxlan: self.vxlan,
        }
    }

    /// What `--tx-mode live` cannot combine with, as the one-line error.
    pub fn check_live(&self) -> Result<(), String> {
        if self.tx_mode != TxMode::Live {
            return Ok(());
        }
        if self.test_seq_gap.is_some() {
            return Err("--test-seq-gap is not available with --tx-mode live".to_string());
        }
        if self.dst_ports > 1 || self.dst_ips > 1 {
            return Err(
                "--dst-ports/--dst-ips are not available with --tx-mode live (its XDP program varies the source only)"
                    .to_string(),
            );
        }
        if self.port.queues > 1 {
            return Err(format!(
                "--queues {} is not available with --tx-mode live (one BPF_PROG_RUN thread; queues do not apply)",
                self.port.queues
            ));
        }
        Ok(())
    }

    /// The send loop's configuration.
    pub fn tx_config(&self) -> TxConfig {
        TxConfig {
            batch: self.batch,
            count: self.count,
            duration_ns: self.duration.map(duration_ns),
            rate: self.rate.pps(self.size),
            seq_gap_every: self.test_seq_gap,
            share: Share::default(),
        }
    }
}

impl SinkArgs {
    /// The sink loop's configuration.
    pub fn rx_config(&self) -> RxConfig {
        RxConfig {
            count: self.count,
            duration_ns: self.duration.map(duration_ns),
            expect: self.expect,
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse::<Backend>().map_err(|e| e.to_string())
}

/// `--size`: 60..=1514.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of bytes"))?;
    if (MIN_SIZE..=MAX_SIZE).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{n} is out of range: frames are {MIN_SIZE}..={MAX_SIZE} bytes without FCS"
        ))
    }
}

/// `--rate`: `max`; frames per second, a positive number with an optional
/// k/M/G suffix (`250k`, `1.5M`); or bits per second of frame bytes with a
/// `bps`/`bit` unit and an optional k/M/G prefix (`1.5Gbps`, `500Mbit`).
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    let bad = || format!("{s:?} is not a rate (e.g. 100000, 250k, 1.5M, 1.5Gbps or max)");
    let lower = s.to_ascii_lowercase();
    let (body, bits) = match lower
        .strip_suffix("bps")
        .or_else(|| lower.strip_suffix("bit"))
    {
        Some(b) => (b, true),
        None => (lower.as_str(), false),
    };
    let (num, mult) = match body.char_indices().last() {
        Some((i, 'k')) => (&body[..i], 1e3),
        Some((i, 'm')) => (&body[..i], 1e6),
        Some((i, 'g')) => (&body[..i], 1e9),
        _ => (body, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let r = (v * mult).round();
    if bits {
        if !(1.0..=1e13).contains(&r) {
            return Err(format!(
                "{s:?}: the rate must be within 1 bit/s..=10 Tbit/s"
            ));
        }
        return Ok(Rate::Bits(r as u64));
    }
    if !(1.0..=1e12).contains(&r) {
        return Err(format!("{s:?}: the rate must be within 1..=1e12 pps"));
    }
    Ok(Rate::Pps(r as u64))
}

/// `--duration`: seconds (`5`, `0.5`, `5s`) or milliseconds (`250ms`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 5, 0.5, 250ms)"))?;
    let secs = v * unit;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("{s:?}: the duration must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--cpus`: comma-separated CPU ids and ranges (`0,1`, `0-3`, `0-3,8`),
/// at most [`MAX_QUEUES`] of them.
pub fn parse_cpu_list(s: &str) -> Result<CpuList, String> {
    let bad = || format!("{s:?} is not a CPU list (e.g. 0,1 or 0-3)");
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: usize = lo.parse().map_err(|_| bad())?;
        let hi: usize = hi.parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(format!("{s:?}: the range {lo}-{hi} runs backwards"));
        }
        if out.len() + (hi - lo) >= MAX_QUEUES as usize {
            return Err(format!("{s:?}: more than {MAX_QUEUES} CPUs"));
        }
        out.extend(lo..=hi);
    }
    Ok(CpuList(out))
}

/// `--vxlan VNI,OUTER_SRC,OUTER_DST`.
pub fn parse_vxlan(s: &str) -> Result<Vxlan, String> {
    let bad = || format!("{s:?} is not VNI,OUTER_SRC,OUTER_DST (e.g. 1,198.18.0.1,198.18.0.2)");
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [vni, src, dst] = parts.as_slice() else {
        return Err(bad());
    };
    let vni: u32 = vni.parse().map_err(|_| bad())?;
    if vni >= 1 << 24 {
        return Err(format!("VNI {vni} does not fit 24 bits"));
    }
    Ok(Vxlan {
        vni,
        outer_src: src.parse().map_err(|_| bad())?,
        outer_dst: dst.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn values_parse() {
        assert_eq!(parse_rate("max"), Ok(Rate::Max));
        assert_eq!(parse_rate("100000"), Ok(Rate::Pps(100_000)));
        assert_eq!(parse_rate("250k"), Ok(Rate::Pps(250_000)));
        assert_eq!(parse_rate("1.5M"), Ok(Rate::Pps(1_500_000)));
        assert_eq!(parse_rate("1.5Gbps"), Ok(Rate::Bits(1_500_000_000)));
        assert_eq!(parse_rate("500mbit"), Ok(Rate::Bits(500_000_000)));
        assert_eq!(parse_rate("64kbps"), Ok(Rate::Bits(64_000)));
        // 1 Gbit/s of 1000-byte frames is 125,000 frames/s.
        assert_eq!(Rate::Bits(1_000_000_000).pps(1000), Some(125_000));
        assert_eq!(Rate::Bits(1).pps(1514), Some(1));
        assert_eq!(Rate::Max.pps(60), None);
        for bad in [
            "", "0", "-5", "fast", "1.5x", "k", "gbps", "0bps", "1.5xbps",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "0", "-1", "soon", "5m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_size("60"), Ok(60));
        assert_eq!(parse_size("1514"), Ok(1514));
        assert!(parse_size("59").is_err() && parse_size("1515").is_err());
        let v = parse_vxlan("7,198.18.1.1,198.18.1.2").unwrap();
        assert_eq!(v.vni, 7);
        assert_eq!(v.outer_dst, Ipv4Addr::new(198, 18, 1, 2));
        assert_eq!(parse_cpu_list("0,1"), Ok(CpuList(vec![0, 1])));
        assert_eq!(parse_cpu_list("0-3"), Ok(CpuList(vec![0, 1, 2, 3])));
        assert_eq!(parse_cpu_list("2-3,8, 1"), Ok(CpuList(vec![2, 3, 8, 1])));
        for bad in ["", "x", "1,", "3-1", "0-100000", "-1", "1-"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "7",
            "7,1.1.1.1",
            "x,1.1.1.1,2.2.2.2",
            "16777216,1.1.1.1,2.2.2.2",
        ] {
            assert!(parse_vxlan(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn send_arguments_map_to_a_spec_and_config() {
        let cli = Cli::try_parse_from([
            "pktgen",
            "send",
            "--iface",
            "v0",
            "--dst-mac",
            "02:00:00:00:00:02",
            "--src-ip",
            "198.18.0.1",
            "--dst-ip",
            "198.18.0.2",
            "--count",
            "10",
            "--rate",
            "1k",
            "--flows",
            "3",
        ])
        .unwrap();
        let Command::Send(a) = cli.command else {
            panic!("not send")
        };
        let spec = a.frame_spec(MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!((spec.size, spec.flows, spec.dst_port), (60, 3, 9));
        let cfg = a.tx_config();
        assert_eq!((cfg.count, cfg.rate, cfg.batch), (Some(10), Some(1000), 64));
        assert_eq!(a.port.backend, Backend::Auto);
        assert_eq!(a.tx_mode, TxMode::Port);
        assert!(a.check_live().is_ok());
        let live = |extra: &[&str]| {
            let mut args = vec![
                "pktgen",
                "send",
                "--iface",
                "v0",
                "--dst-mac",
                "02:00:00:00:00:02",
                "--src-ip",
                "198.18.0.1",
                "--dst-ip",
                "198.18.0.2",
                "--tx-mode",
                "live",
            ];
            args.extend_from_slice(extra);
            let Command::Send(a) = Cli::try_parse_from(args).unwrap().command else {
                panic!("not send")
            };
            a
        };
        assert_eq!(live(&[]).tx_mode, TxMode::Live);
        assert!(live(&["--rate", "max"]).check_live().is_ok());
        assert!(live(&["--rate", "1k"]).check_live().is_ok());
        let e = live(&["--test-seq-gap", "10"]).check_live().unwrap_err();
        assert!(e.contains("--test-seq-gap") && e.contains("live"), "{e}");
        let e = live(&["--queues", "2"]).check_live().unwrap_err();
        assert!(e.contains("--queues 2") && e.contains("live"), "{e}");
        let both = Cli::try_parse_from([
            "pktgen",
            "sink",
            "--iface",
            "v0",
            "--count",
            "1",
            "--duration",
            "1",
        ]);
        assert!(both.is_err());
    }

    fn sink(extra: &[&str]) -> Result<SinkArgs, clap::Error> {
        let mut args = vec!["pktgen", "sink", "--iface", "v0"];
        args.extend_from_slice(extra);
        match Cli::try_parse_from(args)?.command {
            Command::Sink(a) => Ok(a),
            Command::Send(_) => panic!("not sink"),
        }
    }

    #[test]
    fn queues_and_cpu_lists() {
        let a = sink(&[]).unwrap();
        assert_eq!((a.port.queue_ids(), a.port.cpu_for(0)), (0..1, None));
        assert_eq!(a.port.backend_for_queues(), Backend::Auto);
        let a = sink(&["--queue", "2", "--queues", "3", "--cpus", "0,5"]).unwrap();
        assert!(a.port.check_queues().is_ok());
        assert_eq!(a.port.queue_ids(), 2..5);
        let cpus: Vec<_> = (0..3).map(|i| a.port.cpu_for(i)).collect();
        assert_eq!(cpus, [Some(0), Some(5), Some(0)]);
        assert_eq!(a.port.backend_for_queues(), Backend::Afxdp);
        let a = sink(&["--cpu", "3"]).unwrap();
        assert_eq!(
            (a.port.cpu_for(0), a.port.check_queues()),
            (Some(3), Ok(()))
        );
        assert!(sink(&["--cpu", "3", "--cpus", "0,1"]).is_err());
        assert!(sink(&["--queues", "0"]).is_err());
        assert!(sink(&["--queues", "257"]).is_err());
        let e = sink(&["--queues", "2", "--cpu", "1"])
            .unwrap()
            .port
            .check_queues()
            .unwrap_err();
        assert!(e.contains("--cpus"), "{e}");
        let e = sink(&["--queues", "2", "--backend", "afpacket"])
            .unwrap()
            .port
            .check_queues()
            .unwrap_err();
        assert!(e.contains("AF_XDP"), "{e}");
        let e = sink(&["--queue", "4294967295", "--queues", "2"])
            .unwrap()
            .port
            .check_queues()
            .unwrap_err();
        assert!(e.contains("--queue 4294967295"), "{e}");
    }
}
