//! Unit tests of the CNI plugin's pure parts: environment and netconf
//! validation, error and version results, result shapes per version, names,
//! aliases and records. What needs root and namespaces is in
//! `control/tests/cni.rs`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use super::add::pick_ipv4;
use super::conf::{self, CniEnv, Command, NetConf, SpecVersion};
use super::error::ErrorCode;
use super::ipam::delegate_error;
use super::result::{CniResult, Ipv4Cidr};
use super::state::{self, Record, Store};
use super::{run, Outcome};

const CONF: &str = r#"{"cniVersion":"1.0.0","name":"pods","type":"vswitch-cni",
    "ipam":{"type":"host-local","subnet":"10.244.1.0/24","gateway":"10.244.1.1"}}"#;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn invoke(pairs: &[(&str, &str)], stdin: &str) -> Outcome {
    run(&vars(pairs), &mut stdin.as_bytes())
}

/// The error result of a failed invocation.
fn error_of(out: &Outcome) -> Value {
    assert_eq!(out.exit_code, 1, "expected a failure, got {out:?}");
    let v: Value = serde_json::from_str(&out.stdout).expect("error result is JSON");
    for k in ["cniVersion", "code", "msg", "details"] {
        assert!(v.get(k).is_some(), "error result lacks {k}: {v}");
    }
    v
}

#[test]
fn versions_parse_order_and_support() {
    let v: SpecVersion = "1.0.0".parse().unwrap();
    assert_eq!(v, SpecVersion::V1_0_0);
    assert!(SpecVersion(0, 4, 0) < SpecVersion(1, 0, 0));
    assert!(SpecVersion(0, 3, 1) < SpecVersion(0, 4, 0));
    assert!(SpecVersion(1, 1, 0) > SpecVersion(1, 0, 9));
    for bad in ["", "1", "1.0", "1.0.0.0", "1.x.0", "+1.0.0", "1..0"] {
        assert!(bad.parse::<SpecVersion>().is_err(), "{bad:?} parsed");
    }
    for s in conf::SUPPORTED_VERSIONS {
        assert!(s.parse::<SpecVersion>().unwrap().is_supported());
    }
    assert!(!SpecVersion(0, 2, 0).is_supported());
    assert!(!SpecVersion(2, 0, 0).is_supported());
}

#[test]
fn container_ids_and_ifnames_follow_the_spec() {
    assert!(conf::valid_container_id("abc-1_2.3"));
    assert!(conf::valid_container_id("0"));
    for bad in ["", "-a", "_a", ".a", "a b", "a/b", "a:b", "a@b"] {
        assert!(!conf::valid_container_id(bad), "{bad:?} accepted");
    }
    assert!(conf::valid_ifname("eth0"));
    assert!(conf::valid_ifname("a23456789012345"));
    for bad in [
        "",
        ".",
        "..",
        "a234567890123456",
        "a/b",
        "a:b",
        "a b",
        "a\tb",
    ] {
        assert!(!conf::valid_ifname(bad), "{bad:?} accepted");
    }
}

#[test]
fn environment_errors_name_the_variables() {
    let e = CniEnv::from_vars(&vars(&[])).unwrap_err();
    assert_eq!(e.code, ErrorCode::INVALID_ENV);
    assert!(e.details.contains("CNI_COMMAND"), "{e}");
    let e = CniEnv::from_vars(&vars(&[("CNI_COMMAND", "FROB")])).unwrap_err();
    assert_eq!(e.code, ErrorCode::INVALID_ENV);
    assert!(e.details.contains("FROB"), "{e}");

    let env = CniEnv::from_vars(&vars(&[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_NETNS", ""),
        ("CNI_PATH", "/a::/b"),
    ]))
    .unwrap();
    assert_eq!(env.command, Command::Add);
    assert_eq!(env.path, vec![Path::new("/a"), Path::new("/b")]);
    let e = env.attachment(true).unwrap_err();
    assert_eq!(e.code, ErrorCode::INVALID_ENV);
    assert!(e.details.contains("CNI_NETNS"), "{e}");
    // DEL may come without a netns.
    let att = env.attachment(false).unwrap();
    assert_eq!(
        (att.container_id, att.ifname, att.netns),
        ("c1", "eth0", None)
    );

    let env = CniEnv::from_vars(&vars(&[
        ("CNI_COMMAND", "DEL"),
        ("CNI_CONTAINERID", "-bad"),
        ("CNI_IFNAME", "a/b"),
    ]))
    .unwrap();
    let e = env.attachment(false).unwrap_err();
    assert!(e.details.contains("CNI_CONTAINERID"), "{e}");
    assert!(e.details.contains("CNI_IFNAME"), "{e}");
}

#[test]
fn netconf_defaults_and_fields() {
    let c = NetConf::parse(CONF.as_bytes()).unwrap();
    assert_eq!(c.version, SpecVersion::V1_0_0);
    assert_eq!(c.name, "pods");
    assert_eq!(c.mtu, conf::DEFAULT_MTU);
    assert_eq!(c.mtu, 1450);
    assert_eq!(c.socket, Path::new(crate::api::DEFAULT_SOCKET));
    assert_eq!(c.state_dir, Path::new(conf::DEFAULT_STATE_DIR));
    assert_eq!(c.ipam_type, "host-local");
    assert_eq!(c.prev_result, None);
    assert_eq!(c.raw_bytes, CONF.as_bytes());

    let c = NetConf::parse(
        br#"{"cniVersion":"1.1.0","name":"n","socket":"/s","mtu":1400,"stateDir":"/st",
            "ipam":{"type":"x"},"runtimeConfig":{"a":1},
            "cni.dev/valid-attachments":[{"containerID":"c","ifname":"eth0"}]}"#,
    )
    .unwrap();
    assert_eq!(c.mtu, 1400);
    assert_eq!(c.socket, Path::new("/s"));
    assert_eq!(c.state_dir, Path::new("/st"));
    assert_eq!(c.raw["runtimeConfig"]["a"], 1);
    let va = c.valid_attachments.unwrap();
    assert_eq!(
        (va[0].container_id.as_str(), va[0].ifname.as_str()),
        ("c", "eth0")
    );
}

#[test]
fn netconf_errors_have_the_spec_codes() {
    let code = |s: &str| NetConf::parse(s.as_bytes()).unwrap_err().code;
    assert_eq!(code("{not json"), ErrorCode::DECODE_FAILURE);
    assert_eq!(code("[1,2]"), ErrorCode::DECODE_FAILURE);
    assert_eq!(code(""), ErrorCode::DECODE_FAILURE);
    assert_eq!(
        code(r#"{"cniVersion":"one","name":"n"}"#),
        ErrorCode::DECODE_FAILURE
    );
    assert_eq!(
        code(r#"{"cniVersion":1,"name":"n"}"#),
        ErrorCode::DECODE_FAILURE
    );
    assert_eq!(
        code(r#"{"cniVersion":"0.2.0","name":"n","ipam":{"type":"x"}}"#),
        ErrorCode::INCOMPATIBLE_VERSION
    );
    assert_eq!(
        code(r#"{"cniVersion":"2.0.0","name":"n","ipam":{"type":"x"}}"#),
        ErrorCode::INCOMPATIBLE_VERSION
    );
    assert_eq!(
        code(r#"{"name":"n","ipam":{"type":"x"}}"#),
        ErrorCode::INVALID_NETCONF
    );
    assert_eq!(
        code(r#"{"cniVersion":"1.0.0","ipam":{"type":"x"}}"#),
        ErrorCode::INVALID_NETCONF
    );
    assert_eq!(
        code(r#"{"cniVersion":"1.0.0","name":"a b","ipam":{"type":"x"}}"#),
        ErrorCode::INVALID_NETCONF
    );
    assert_eq!(
        code(r#"{"cniVersion":"1.0.0","name":"n"}"#),
        ErrorCode::INVALID_NETCONF
    );
    assert_eq!(
        code(r#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"../x"}}"#),
        ErrorCode::INVALID_NETCONF
    );
    assert_eq!(
        code(r#"{"cniVersion":"1.0.0","name":"n","mtu":"big","ipam":{"type":"x"}}"#),
        ErrorCode::INVALID_NETCONF
    );
    assert_eq!(
        code(r#"{"cniVersion":"1.0.0","name":"n","mtu":20,"ipam":{"type":"x"}}"#),
        ErrorCode::INVALID_NETCONF
    );
}

#[test]
fn version_command_echoes_the_asked_version() {
    let out = invoke(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"1.0.0"}"#);
    assert_eq!(out.exit_code, 0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v,
        json!({"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})
    );
    let out = invoke(&[("CNI_COMMAND", "VERSION")], "");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["cniVersion"], "1.1.0");
    let out = invoke(&[("CNI_COMMAND", "VERSION")], "{{");
    assert_eq!(error_of(&out)["code"], 6);
}

#[test]
fn failures_print_the_error_result() {
    let env = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/run/netns/none"),
        ("CNI_IFNAME", "eth0"),
    ];
    let v = error_of(&invoke(&env, "{bad"));
    assert_eq!(v["code"], 6);
    assert_eq!(v["cniVersion"], "1.1.0");

    let no_netns = [env[0], env[1], env[3]];
    let v = error_of(&invoke(&no_netns, CONF));
    assert_eq!(v["code"], 4);
    assert_eq!(v["cniVersion"], "1.0.0");
    assert!(v["details"].as_str().unwrap().contains("CNI_NETNS"), "{v}");

    let v = error_of(&invoke(&env, &CONF.replace("1.0.0", "0.1.0")));
    assert_eq!(v["code"], 1);

    // CHECK is 0.4.0+, GC and STATUS 1.1.0+.
    let check = [("CNI_COMMAND", "CHECK"), env[1], env[2], env[3]];
    let v = error_of(&invoke(&check, &CONF.replace("1.0.0", "0.3.1")));
    assert_eq!(v["code"], 1);
    let v = error_of(&invoke(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/x")], CONF));
    assert_eq!(v["code"], 1);
    let v = error_of(&invoke(&[("CNI_COMMAND", "STATUS")], CONF));
    assert_eq!(v["code"], 1);

    // GC without the list of valid attachments must not delete everything.
    let gc = [("CNI_COMMAND", "GC"), ("CNI_PATH", "/x")];
    let v = error_of(&invoke(&gc, &CONF.replace("1.0.0", "1.1.0")));
    assert_eq!(v["code"], 7);

    // ADD on a netns path that does not exist.
    let v = error_of(&invoke(&env, CONF));
    assert_eq!(v["code"], 3);

    // CHECK needs prevResult.
    let v = error_of(&invoke(&check, CONF));
    assert_eq!(v["code"], 7);
}

#[test]
fn results_take_the_shape_of_their_version() {
    let r = CniResult::from_value(
        &json!({
            "cniVersion": "0.4.0",
            "interfaces": [{"name": "vsw1", "mac": "aa:00:00:00:00:01", "mtu": 1450},
                           {"name": "eth0", "sandbox": "/run/netns/p", "x-extra": true}],
            "ips": [{"version": "4", "address": "10.244.1.5/24", "gateway": "10.244.1.1",
                     "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.1", "priority": 5}],
            "dns": {"nameservers": ["10.96.0.10"]}
        }),
        "test",
    )
    .unwrap();
    assert!(
        r.ips[0].extra.is_empty(),
        "ips[].version is dropped on input"
    );

    let v = r.to_value(SpecVersion(0, 4, 0));
    assert_eq!(v["cniVersion"], "0.4.0");
    assert_eq!(v["ips"][0]["version"], "4");
    assert!(v["interfaces"][0].get("mtu").is_none());

    let v = r.to_value(SpecVersion::V1_0_0);
    assert_eq!(v["cniVersion"], "1.0.0");
    assert!(v["ips"][0].get("version").is_none());
    assert!(v["interfaces"][0].get("mtu").is_none());
    assert_eq!(v["ips"][0]["interface"], 1);
    assert_eq!(v["interfaces"][1]["sandbox"], "/run/netns/p");
    assert_eq!(v["interfaces"][1]["x-extra"], true);
    assert_eq!(v["routes"][0]["priority"], 5);
    assert_eq!(v["dns"]["nameservers"][0], "10.96.0.10");

    let v = r.to_value(SpecVersion::V1_1_0);
    assert_eq!(v["interfaces"][0]["mtu"], 1450);
    assert!(v["interfaces"][0].get("sandbox").is_none());

    let e = CniResult::from_value(&json!({"ips": [{"gateway": "x"}]}), "prevResult").unwrap_err();
    assert_eq!(e.code, ErrorCode::DECODE_FAILURE);
    assert!(e.msg.contains("prevResult"), "{e}");
}

#[test]
fn ipv4_cidrs() {
    let c = Ipv4Cidr::parse("10.244.1.5/24").unwrap();
    assert_eq!(c.prefix, 24);
    assert!(c.contains("10.244.1.1".parse().unwrap()));
    assert!(!c.contains("10.244.2.1".parse().unwrap()));
    assert!(Ipv4Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains("1.2.3.4".parse().unwrap()));
    assert!(Ipv4Cidr::parse("10.0.0.1/32")
        .unwrap()
        .contains("10.0.0.1".parse().unwrap()));
    for bad in [
        "10.0.0.1",
        "10.0.0.1/33",
        "10.0.0.1/",
        "fd00::1/64",
        "10.0.0.1/+8",
    ] {
        assert!(Ipv4Cidr::parse(bad).is_none(), "{bad:?} parsed");
    }
    assert_eq!(c.to_string(), "10.244.1.5/24");
}

#[test]
fn ipam_results_need_one_ipv4_address_and_a_gateway() {
    let pick = |v: Value| pick_ipv4(&CniResult::from_value(&v, "t").unwrap());
    let (a, gw) =
        pick(json!({"ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1"}]})).unwrap();
    assert_eq!(
        (a.to_string(), gw.to_string()),
        ("10.244.1.5/24".into(), "10.244.1.1".into())
    );
    for bad in [
        json!({"ips": []}),
        json!({"ips":[{"address":"fd00::5/64","gateway":"fd00::1"}]}),
        json!({"ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1"},
                      {"address":"10.244.1.6/24","gateway":"10.244.1.1"}]}),
        json!({"ips":[{"address":"10.244.1.5/24"}]}),
        json!({"ips":[{"address":"10.244.1.5/24","gateway":"10.244.2.1"}]}),
        json!({"ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.5"}]}),
    ] {
        let e = pick(bad.clone()).unwrap_err();
        assert_eq!(e.code, ErrorCode::INVALID_NETCONF, "{bad}: {e}");
    }
}

#[test]
fn host_names_are_stable_short_and_recognisable() {
    let n = state::host_iface_name("c1", "eth0");
    // Golden: a changed hash would orphan the veths of running pods.
    assert_eq!(n, "vsw61fd7022");
    assert!(n.len() <= 15);
    assert!(state::is_host_iface_name(&n));
    assert_ne!(n, state::host_iface_name("c1", "eth1"));
    assert_ne!(
        state::host_iface_name("c1e", "th0"),
        state::host_iface_name("c1", "eth0")
    );
    for other in ["vsw0", "vswABCDEF01", "vsw0123456789", "eth0"] {
        assert!(!state::is_host_iface_name(other), "{other}");
    }
}

#[test]
fn aliases_round_trip() {
    let a = state::alias("pods", "c1", "eth0");
    assert_eq!(a, "vswitch-cni pods c1 eth0");
    assert_eq!(state::parse_alias(&a), Some(("pods", "c1", "eth0")));
    assert_eq!(state::parse_alias("vswitch-cni pods c1"), None);
    assert_eq!(state::parse_alias("vswitch-cni pods c1 eth0 x"), None);
    assert_eq!(state::parse_alias("uplink"), None);
}

#[test]
fn records_are_saved_listed_and_removed() {
    let dir = std::env::temp_dir().join(format!("vswitch-cni-unit-{}", std::process::id()));
    let store = Store::new(&dir, "pods");
    assert!(store.list().unwrap().0.is_empty(), "no directory yet");
    let r = Record {
        container_id: "c.1".into(),
        ifname: "eth0".into(),
        netns: "/run/netns/p".into(),
        host_iface: state::host_iface_name("c.1", "eth0"),
        address: Some("10.244.1.5/24".into()),
    };
    store.save(&r).unwrap();
    store.save(&r).unwrap();
    std::fs::write(store.dir().join("junk@eth1"), "not json").unwrap();
    let (records, bad) = store.list().unwrap();
    assert_eq!(records, vec![r.clone()]);
    assert_eq!(store.load("c.1", "eth0"), Some(r.clone()));
    assert_eq!(store.load("c.1", "eth1"), None);
    assert_eq!(store.load("junk", "eth1"), None);
    assert_eq!(bad.len(), 1, "{bad:?}");
    store.remove("c.1", "eth0").unwrap();
    store.remove("c.1", "eth0").unwrap();
    assert!(store.list().unwrap().0.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn delegate_errors_keep_their_code() {
    let p = Path::new("/usr/lib/cni/host-local");
    let e = delegate_error(
        "IPAM plugin host-local",
        "ADD",
        p,
        br#"{"code":7,"msg":"no IP addresses available","details":"range full"}"#,
    );
    assert_eq!(e.code, ErrorCode(7));
    assert!(
        e.msg
            .contains("host-local ADD failed: no IP addresses available"),
        "{e}"
    );
    assert_eq!(e.details, "range full");
    let e = delegate_error("IPAM plugin x", "DEL", p, b"panic: oops");
    assert_eq!(e.code, ErrorCode::DELEGATE);
    assert!(e.details.contains("panic: oops"), "{e}");
}
