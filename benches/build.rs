//! Builds pktgen's XDP programs (`bpf/pktgen.bpf.c`: the live-frame
//! generator and `xdp-fwd`'s redirect) with clang into
//! `$OUT_DIR/pktgen.bpf.o`, which `src/pktgen/xdp.rs` embeds with
//! `include_bytes!` and loads at run time with libbpf-rs.
//!
//! The same recipe as `vswitch/build.rs` (clang with the BPF target and
//! BTF, libbpf-dev's `bpf/bpf_helpers.h`, the kernel UAPI headers; all in
//! `scripts/setup.sh`), plus `-mcpu=v3`: the generator's frame counter is a
//! fetch-and-add whose result is used (BPF atomics, kernel ≥ 5.12).
//! `BPF_CLANG` overrides the compiler; extra include directories come from
//! `BPF_CFLAGS` (whitespace separated). Any failure stops the build with a
//! message that names the missing package.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const SRC: &str = "bpf/pktgen.bpf.c";

fn main() {
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rerun-if-env-changed=BPF_CFLAGS");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join("pktgen.bpf.o");
    let clang = env::var("BPF_CLANG").unwrap_or_else(|_| "clang".to_string());

    let mut cmd = Command::new(&clang);
    cmd.args(["-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall"]);
    // `-target bpf` does not search the multiarch directory that holds
    // `asm/types.h` (included by the UAPI headers) on Debian.
    if let Some(dir) = multiarch_include() {
        cmd.arg("-idirafter").arg(dir);
    }
    if let Ok(extra) = env::var("BPF_CFLAGS") {
        cmd.args(extra.split_whitespace());
    }
    cmd.arg("-c").arg(SRC).arg("-o").arg(&obj);

    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => fail(&format!(
            "cannot run `{clang}` ({e}) to build pktgen's XDP programs {SRC}.\n\
             Install clang (Debian: `apt-get install clang`, or run scripts/setup.sh), \
             or point BPF_CLANG at a clang with the BPF target."
        )),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("bpf/bpf_helpers.h") {
            "libbpf's headers are missing: install libbpf-dev (Debian: `apt-get install libbpf-dev`)"
        } else if stderr.contains("linux/") || stderr.contains("asm/") {
            "kernel UAPI headers are missing: install linux-libc-dev (Debian: `apt-get install linux-libc-dev`)"
        } else if stderr.contains("No available targets") || stderr.contains("unknown target") {
            "this clang has no BPF target: install Debian's clang or set BPF_CLANG"
        } else {
            "see the compiler output above"
        };
        fail(&format!(
            "`{clang}` failed to build {SRC} ({}):\n{stderr}\n{hint}",
            output.status
        ));
    }
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        if line.contains("warning:") {
            println!("cargo:warning={SRC}: {line}");
        }
    }
}

/// `/usr/include/<arch>-linux-gnu` for the target, where it exists.
fn multiarch_include() -> Option<PathBuf> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").ok()?;
    let abi = match env::var("CARGO_CFG_TARGET_ENV").ok()?.as_str() {
        "musl" => "linux-musl",
        _ => "linux-gnu",
    };
    let arch = if arch == "x86" { "i386" } else { arch.as_str() };
    let dir = Path::new("/usr/include").join(format!("{arch}-{abi}"));
    dir.is_dir().then_some(dir)
}

/// Stops the build; cargo shows the message under the build script's stderr.
fn fail(msg: &str) -> ! {
    eprintln!("error: building pktgen's XDP programs failed: {msg}");
    std::process::exit(1);
}
