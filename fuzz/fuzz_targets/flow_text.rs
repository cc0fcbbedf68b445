//! Fuzzes the `ovs-ofctl` flow-text parsers: no input may panic, and every
//! flow that parses must print to text that parses back to the same flow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(f) = control::flow::parse_flow(s) {
        let printed = f.to_string();
        let again = control::flow::parse_flow(&printed)
            .unwrap_or_else(|e| panic!("printed flow {printed:?} does not parse: {e}"));
        assert_eq!(again, f, "round trip of {printed:?}");
    }
    let _ = control::flow::parse_flows(s);
    let _ = control::flow::parse_filter(s);
    if let Ok(g) = control::flow::parse_group(s) {
        let printed = g.to_string();
        let again = control::flow::parse_group(&printed)
            .unwrap_or_else(|e| panic!("printed group {printed:?} does not parse: {e}"));
        assert_eq!(again, g);
    }
});
