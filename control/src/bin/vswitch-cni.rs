//! `vswitch-cni`: the CNI plugin binary. All behaviour is in
//! [`control::cni::run`]; this only hands it the process environment and
//! stdin, prints what it returns, and exits with its status.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::Write;

fn main() {
    // Variables that are not UTF-8 cannot be CNI_* values; they are dropped
    // (a CNI_* one then reads as unset, which is reported by name).
    let vars: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let out = control::cni::run(&vars, &mut std::io::stdin().lock());
    let mut stdout = std::io::stdout().lock();
    // Nothing useful can be done if stdout is gone; the exit status still tells.
    let _ = stdout.write_all(out.stdout.as_bytes());
    let _ = stdout.flush();
    std::process::exit(out.exit_code);
}
