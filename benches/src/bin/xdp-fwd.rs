//! `xdp-fwd`: the kernel's XDP redirect between two interfaces, the
//! "fast-path limit" device under test of the benchmark harness
//! (`benches/e2e.sh`).
//!
//! ```text
//! xdp-fwd IF_A IF_B
//! ```
//!
//! Attaches one XDP program (`bpf/pktgen.bpf.c`, `xdp_fwd_redirect`) to
//! both interfaces in native (driver) mode where the driver has it (veth
//! does): every frame received on A is redirected out of B through a
//! devmap, and B's out of A. Prints one line `xdp-fwd: A <-> B ready` on
//! stdout, then stays in the foreground until SIGINT or SIGTERM and
//! detaches both. The attachments are BPF links owned by this process, so
//! even a SIGKILL leaves nothing attached.
//!
//! A veth delivers a redirected frame only if its peer has NAPI running (an
//! XDP program, e.g. an AF_XDP socket's, or GRO enabled); otherwise the
//! kernel drops it (the harness's sink has one).
//!
//! Errors: one line `xdp-fwd: <message>` on stderr; status 2 for a usage
//! error or an interface that does not exist, 1 for anything else.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use nix::sys::signal::{SigSet, Signal};
use vswitch_benches::pktgen::xdp::{Forwarder, XdpError};

const USAGE: &str =
    "usage: xdp-fwd IF_A IF_B (redirects A->B and B->A with XDP until SIGINT/SIGTERM)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let [a, b] = args.as_slice() else {
        return fail(2, USAGE);
    };
    // Blocked before anything is attached, so a signal that arrives during
    // the attach is still seen by the wait below.
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if let Err(e) = set.thread_block() {
        return fail(1, &format!("cannot block SIGINT/SIGTERM: {}", e.desc()));
    }
    let fwd = match Forwarder::attach(a, b) {
        Ok(f) => f,
        Err(e @ XdpError::NoIface(_)) => return fail(2, &e.to_string()),
        Err(e) => return fail(1, &e.to_string()),
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "xdp-fwd: {a} <-> {b} ready");
        let _ = out.flush();
    }
    let sig = set.wait();
    drop(fwd);
    match sig {
        Ok(s) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "xdp-fwd: {s}: detached from {a} and {b}"
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, &format!("sigwait: {}", e.desc())),
    }
}

/// Prints `xdp-fwd: <msg>` as one line on stderr and returns `code`.
fn fail(code: u8, msg: &str) -> ExitCode {
    let msg = msg
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let _ = writeln!(std::io::stderr().lock(), "xdp-fwd: {msg}");
    ExitCode::from(code)
}
