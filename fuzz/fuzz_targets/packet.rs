//! Fuzzes the packet parser: flow key extraction must never panic, and any
//! frame must go through the whole pipeline (switching, header rewrites,
//! VLAN push/pop, resubmit, flood) without a panic or a leaked buffer.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use vswitch::key::FlowKey;
use vswitch::pipeline::extract;
use vswitch::scenario::Scenario;

thread_local! {
    static SCENARIO: RefCell<Scenario> = RefCell::new({
        let s = Scenario::new(&[1, 2, 3]);
        s.flows(
            "priority=30,tcp actions=mod_nw_dst:10.96.0.1,mod_tp_dst:80,dec_ttl,output:2,normal\n\
             priority=20,udp actions=push_vlan:0x8100,mod_vlan_vid:5,output:2,pop_vlan,pop_vlan,output:3\n\
             priority=10,ip actions=dec_ttl,resubmit(,1)\n\
             priority=0 actions=normal\n\
             table=1,priority=0 actions=flood",
        );
        s
    });
}

fuzz_target!(|data: &[u8]| {
    let mut key = FlowKey::default();
    let _ = extract::extract(data, 1, &mut key);
    SCENARIO.with(|s| {
        let mut s = s.borrow_mut();
        let _ = s.send(1, data);
        assert_eq!(s.sw.pool().available(), s.sw.pool().capacity() as usize);
    });
});
