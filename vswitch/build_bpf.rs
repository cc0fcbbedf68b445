// Shared by `vswitch/build.rs` and `benches/build.rs` (`include!`d: build
// scripts cannot share a library crate without a build-dependency crate):
// compiles one BPF C source with clang into `$OUT_DIR`, which the crate then
// embeds with `include_bytes!` and loads at run time with libbpf-rs.
//
// Needs clang (any version with the BPF target and BTF, Debian 12's 14 is
// fine), libbpf's `bpf/bpf_helpers.h` (libbpf-dev) and the kernel UAPI
// headers (linux-libc-dev, pulled in by build-essential); all are in
// `scripts/setup.sh`. `BPF_CLANG` overrides the compiler; extra include
// directories come from `BPF_CFLAGS` (whitespace separated). Any failure
// stops the build with a message that names the missing package.

/// Compiles `src` (relative to the crate) into `$OUT_DIR/<obj>` with the
/// common flags plus `extra`; `what` names the program in messages.
fn build_bpf(src: &str, obj: &str, what: &str, extra: &[&str]) {
    use std::env;
    use std::path::PathBuf;
    use std::process::Command;

    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rerun-if-changed={}",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../vswitch/build_bpf.rs")
    );
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rerun-if-env-changed=BPF_CFLAGS");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join(obj);
    let clang = env::var("BPF_CLANG").unwrap_or_else(|_| "clang".to_string());
    let fail = |msg: &str| -> ! {
        eprintln!("error: building {what} failed: {msg}");
        std::process::exit(1);
    };

    let mut cmd = Command::new(&clang);
    cmd.args(["-O2", "-g", "-target", "bpf", "-Wall"]);
    cmd.args(extra);
    // `-target bpf` does not search the multiarch directory that holds
    // `asm/types.h` (included by the UAPI headers) on Debian.
    if let Some(dir) = multiarch_include() {
        cmd.arg("-idirafter").arg(dir);
    }
    if let Ok(flags) = env::var("BPF_CFLAGS") {
        cmd.args(flags.split_whitespace());
    }
    cmd.arg("-c").arg(src).arg("-o").arg(&obj);

    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => fail(&format!(
            "cannot run `{clang}` ({e}) to build {what} {src}.\n\
             Install clang (Debian: `apt-get install clang`, or run scripts/setup.sh), \
             or point BPF_CLANG at a clang with the BPF target."
        )),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("bpf/bpf_helpers.h") || stderr.contains("bpf/bpf_endian.h") {
            "libbpf's headers are missing: install libbpf-dev (Debian: `apt-get install libbpf-dev`)"
        } else if stderr.contains("linux/") || stderr.contains("asm/") {
            "kernel UAPI headers are missing: install linux-libc-dev (Debian: `apt-get install linux-libc-dev`)"
        } else if stderr.contains("No available targets") || stderr.contains("unknown target") {
            "this clang has no BPF target: install Debian's clang or set BPF_CLANG"
        } else {
            "see the compiler output above"
        };
        fail(&format!(
            "`{clang}` failed to build {src} ({}):\n{stderr}\n{hint}",
            output.status
        ));
    }
    // Warnings do not fail the build (a newer clang may add some), but show.
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        if line.contains("warning:") {
            println!("cargo:warning={src}: {line}");
        }
    }
}

/// `/usr/include/<arch>-linux-gnu` for the target, where it exists.
fn multiarch_include() -> Option<std::path::PathBuf> {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").ok()?;
    let abi = match std::env::var("CARGO_CFG_TARGET_ENV").ok()?.as_str() {
        "musl" => "linux-musl",
        _ => "linux-gnu",
    };
    let arch = if arch == "x86" { "i386" } else { arch.as_str() };
    let dir = std::path::Path::new("/usr/include").join(format!("{arch}-{abi}"));
    dir.is_dir().then_some(dir)
}
