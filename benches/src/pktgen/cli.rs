//! The command line (clap) and the values it parses: MACs, rates,
//! durations, the VXLAN triple. Checks that need the system (does the
//! interface exist, is the CPU there) are the binary's.

use std::net::Ipv4Addr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use vswitch::port::open::Backend;

use super::frame::{FrameSpec, Vxlan, MAX_FLOWS, MAX_SIZE, MIN_SIZE};
use super::rx::RxConfig;
use super::tx::TxConfig;
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
    /// Queue to bind (AF_XDP).
    #[arg(long, default_value_t = 0, value_name = "Q")]
    pub queue: u32,
    /// Pin the thread to this CPU.
    #[arg(long, value_name = "C")]
    pub cpu: Option<usize>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
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
    /// Frames per second (e.g. 100000, 250k, 1.5M) or max.
    #[arg(long, default_value = "max", value_name = "PPS|max", value_parser = parse_rate)]
    pub rate: Rate,
    /// Number of flows: the UDP source port varies, and the source
    /// address too beyond 64512 flows.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_FLOWS)))]
    pub flows: u32,
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
        Ok(())
    }

    /// The send loop's configuration.
    pub fn tx_config(&self) -> TxConfig {
        TxConfig {
            batch: self.batch,
            count: self.count,
            duration_ns: self.duration.map(duration_ns),
            rate: match self.rate {
                Rate::Max => None,
                Rate::Pps(r) => Some(r),
            },
            seq_gap_every: self.test_seq_gap,
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

/// `--rate`: `max`, or a positive number with an optional k/M/G suffix.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1e3),
        Some((i, 'm' | 'M')) => (&s[..i], 1e6),
        Some((i, 'g' | 'G')) => (&s[..i], 1e9),
        _ => (s, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a rate (e.g. 100000, 250k, 1.5M or max)"))?;
    let pps = (v * mult).round();
    if !(1.0..=1e12).contains(&pps) {
        return Err(format!("{s:?}: the rate must be within 1..=1e12 pps"));
    }
    Ok(Rate::Pps(pps as u64))
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
        for bad in ["", "0", "-5", "fast", "1.5x", "k"] {
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
}
