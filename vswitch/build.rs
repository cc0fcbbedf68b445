//! Builds the uplink XDP program (`bpf/uplink.bpf.c`) into
//! `$OUT_DIR/uplink.bpf.o`, which `src/port/afxdp/steer.rs` embeds with
//! `include_bytes!` and loads at run time with libbpf-rs. The recipe (clang,
//! headers, `BPF_CLANG`/`BPF_CFLAGS`, error messages) is `build_bpf.rs`,
//! shared with `benches/build.rs`.

include!("build_bpf.rs");

fn main() {
    build_bpf(
        "bpf/uplink.bpf.c",
        "uplink.bpf.o",
        "the uplink XDP program",
        &[],
    );
}
