//! `ofctl`: the vswitch command-line tool. (Being built.)
fn main() {
    eprintln!("ofctl: the control socket is not implemented yet");
    std::process::exit(1);
}
