//! Builds pktgen's XDP programs (`bpf/pktgen.bpf.c`: the live-frame
//! generator and `xdp-fwd`'s redirect) into `$OUT_DIR/pktgen.bpf.o`, which
//! `src/pktgen/xdp.rs` embeds with `include_bytes!` and loads at run time
//! with libbpf-rs. The recipe is `vswitch/build_bpf.rs`, plus `-mcpu=v3`:
//! the generator's frame counter is a fetch-and-add whose result is used
//! (BPF atomics, kernel ≥ 5.12).

include!("../vswitch/build_bpf.rs");

fn main() {
    build_bpf(
        "bpf/pktgen.bpf.c",
        "pktgen.bpf.o",
        "pktgen's XDP programs",
        &["-mcpu=v3"],
    );
}
