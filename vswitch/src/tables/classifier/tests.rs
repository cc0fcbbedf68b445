use proptest::prelude::*;

use super::*;
use crate::key::{field, Field};

/// A key from small field domains, so random rules and packets overlap often.
fn key_from(seed: u64) -> FlowKey {
    let mut k = FlowKey::default();
    let mut s = seed;
    let mut next = |n: u64| {
        let v = s % n;
        s /= n;
        v
    };
    k.set(field::IN_PORT, 1 + next(3));
    k.set(field::DL_DST, next(3));
    k.set(field::DL_TYPE, [0x0800, 0x0806][next(2) as usize]);
    k.set(field::NW_SRC, 0x0a00_0000 | (next(2) << 16) | next(2));
    k.set(field::NW_DST, 0x0a00_0000 | (next(2) << 8) | next(4));
    k.set(field::NW_PROTO, [6, 17][next(2) as usize]);
    k.set(field::TP_DST, next(3));
    k.set(field::REGS[0], next(3));
    k
}

fn mask_of(fields: &[(Field, u64)]) -> FlowKey {
    let mut m = FlowKey::default();
    for (f, v) in fields {
        m.set(*f, *v);
    }
    m
}

/// Thirteen distinct masks, from match-all to five fields, with prefixes.
fn masks() -> Vec<FlowKey> {
    let all = u64::MAX;
    vec![
        FlowKey::default(),
        mask_of(&[(field::IN_PORT, all)]),
        mask_of(&[(field::IN_PORT, all), (field::DL_DST, all)]),
        mask_of(&[(field::DL_TYPE, all)]),
        mask_of(&[(field::DL_TYPE, all), (field::NW_DST, 0xffff_ff00)]),
        mask_of(&[(field::DL_TYPE, all), (field::NW_DST, all)]),
        mask_of(&[
            (field::DL_TYPE, all),
            (field::NW_SRC, 0xffff_0000),
            (field::NW_DST, all),
        ]),
        mask_of(&[
            (field::DL_TYPE, all),
            (field::NW_PROTO, all),
            (field::TP_DST, all),
        ]),
        mask_of(&[(field::REGS[0], all)]),
        mask_of(&[(field::REGS[0], all), (field::IN_PORT, all)]),
        mask_of(&[(field::DL_DST, all)]),
        mask_of(&[(field::NW_DST, 0xffff_fffe), (field::TP_DST, all)]),
        mask_of(&[
            (field::IN_PORT, all),
            (field::DL_TYPE, all),
            (field::NW_PROTO, all),
            (field::NW_SRC, all),
            (field::REGS[0], all),
        ]),
    ]
}

/// The specification: a list of rules in insertion order, scanned linearly.
#[derive(Default)]
struct Oracle {
    /// (value, mask, priority, data), oldest first.
    rules: Vec<(FlowKey, FlowKey, u16, u32)>,
}

impl Oracle {
    fn insert(&mut self, value: FlowKey, mask: FlowKey, priority: u16, data: u32) -> Option<u32> {
        let value = value.masked(&mask);
        for r in &mut self.rules {
            if r.0 == value && r.1 == mask && r.2 == priority {
                return Some(std::mem::replace(&mut r.3, data));
            }
        }
        self.rules.push((value, mask, priority, data));
        None
    }

    fn remove(&mut self, value: &FlowKey, mask: &FlowKey, priority: u16) -> Option<u32> {
        let value = value.masked(mask);
        let i = self
            .rules
            .iter()
            .position(|r| r.0 == value && r.1 == *mask && r.2 == priority)?;
        Some(self.rules.remove(i).3)
    }

    fn lookup(&self, key: &FlowKey) -> Option<(u16, u32)> {
        let mut best: Option<(u16, u32)> = None;
        for r in &self.rules {
            // Strictly greater: the earliest inserted wins a tie.
            if key.matches(&r.0, &r.1) && best.is_none_or(|b| r.2 > b.0) {
                best = Some((r.2, r.3));
            }
        }
        best
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert {
        mask: usize,
        seed: u64,
        priority: u16,
    },
    /// Removes the n-th oracle rule (modulo the count), if any.
    Remove(usize),
    /// Removes a rule that probably does not exist.
    RemoveAbsent {
        mask: usize,
        seed: u64,
        priority: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..13usize, any::<u64>(), 0..4u16)
            .prop_map(|(mask, seed, priority)| Op::Insert { mask, seed, priority }),
        2 => any::<usize>().prop_map(Op::Remove),
        1 => (0..13usize, any::<u64>(), 0..4u16)
            .prop_map(|(mask, seed, priority)| Op::RemoveAbsent { mask, seed, priority }),
    ]
}

fn check_same(cls: &Classifier<u32>, oracle: &Oracle, packets: &[u64]) {
    assert_eq!(cls.len(), oracle.rules.len());
    assert_eq!(cls.iter().count(), oracle.rules.len());
    for &p in packets {
        let k = key_from(p);
        let got = cls.lookup(&k).map(|r| (r.priority, r.data));
        assert_eq!(got, oracle.lookup(&k), "packet {k:?}");
        if let Some(r) = cls.lookup(&k) {
            assert!(k.matches(&r.value, &r.mask));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_linear_scan(
        ops in proptest::collection::vec(op(), 1..200),
        packets in proptest::collection::vec(any::<u64>(), 64),
    ) {
        let masks = masks();
        let mut cls = Classifier::new();
        let mut oracle = Oracle::default();
        for (n, op) in ops.into_iter().enumerate() {
            let data = n as u32;
            match op {
                Op::Insert { mask, seed, priority } => {
                    let m = masks[mask];
                    let v = key_from(seed);
                    let (_, old) = cls.insert(v, m, priority, data);
                    prop_assert_eq!(old, oracle.insert(v, m, priority, data));
                }
                Op::Remove(i) => {
                    if oracle.rules.is_empty() {
                        continue;
                    }
                    let (v, m, p, _) = oracle.rules[i % oracle.rules.len()];
                    let want = oracle.remove(&v, &m, p);
                    prop_assert!(want.is_some());
                    prop_assert_eq!(cls.remove(&m, &v, p), want);
                }
                Op::RemoveAbsent { mask, seed, priority } => {
                    let m = masks[mask];
                    let v = key_from(seed);
                    prop_assert_eq!(cls.remove(&m, &v, priority), oracle.remove(&v, &m, priority));
                }
            }
            check_same(&cls, &oracle, &packets[..8]);
        }
        check_same(&cls, &oracle, &packets);
        // Subtables stay sorted and hold exactly the masks in use.
        let bests: Vec<_> = cls.subtables.iter().map(|s| s.best).collect();
        prop_assert!(bests.windows(2).all(|w| w[0] > w[1]));
        let mut used: Vec<FlowKey> = oracle.rules.iter().map(|r| r.1).collect();
        used.sort_by_key(|m| m.w);
        used.dedup();
        prop_assert_eq!(cls.n_subtables(), used.len());
    }
}

fn exact(f: Field) -> FlowKey {
    mask_of(&[(f, u64::MAX)])
}

fn with(f: Field, v: u64) -> FlowKey {
    mask_of(&[(f, v)])
}

#[test]
fn published_copies_are_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Classifier<u32>>();
}

#[test]
fn higher_priority_wins_across_subtables() {
    let mut cls = Classifier::new();
    cls.insert(FlowKey::default(), FlowKey::default(), 0, "miss");
    cls.insert(
        with(field::NW_DST, 0x0a00_0000),
        with(field::NW_DST, 0xff00_0000),
        10,
        "/8",
    );
    cls.insert(
        with(field::NW_DST, 0x0a00_0001),
        exact(field::NW_DST),
        20,
        "/32",
    );
    let k = |ip| with(field::NW_DST, ip);
    assert_eq!(cls.lookup(&k(0x0a00_0001)).unwrap().data, "/32");
    assert_eq!(cls.lookup(&k(0x0a00_0002)).unwrap().data, "/8");
    assert_eq!(cls.lookup(&k(0x0b00_0001)).unwrap().data, "miss");
    assert_eq!(cls.n_subtables(), 3);
}

#[test]
fn equal_priority_earliest_inserted_wins() {
    let mut cls = Classifier::new();
    let mut pkt = FlowKey::default();
    pkt.set(field::IN_PORT, 1);
    pkt.set(field::TP_DST, 80);
    // Inserted second but in a subtable created first.
    let (b_id, _) = cls.insert(with(field::TP_DST, 80), exact(field::TP_DST), 5, "b");
    cls.remove(&exact(field::TP_DST), &with(field::TP_DST, 80), 5);
    let (a_id, _) = cls.insert(with(field::IN_PORT, 1), exact(field::IN_PORT), 5, "a");
    let (c_id, _) = cls.insert(with(field::TP_DST, 80), exact(field::TP_DST), 5, "c");
    assert!(b_id < a_id && a_id < c_id);
    assert_eq!(cls.lookup(&pkt).unwrap().data, "a");
    // Replacing "a" keeps its id, so it still wins.
    let (id, old) = cls.insert(with(field::IN_PORT, 1), exact(field::IN_PORT), 5, "a2");
    assert_eq!((id, old), (a_id, Some("a")));
    assert_eq!(cls.lookup(&pkt).unwrap().data, "a2");
    assert_eq!(
        cls.remove(&exact(field::IN_PORT), &with(field::IN_PORT, 1), 5),
        Some("a2")
    );
    assert_eq!(cls.lookup(&pkt).unwrap().data, "c");
}

#[test]
fn same_match_different_priorities_share_a_bucket() {
    let mut cls = Classifier::new();
    let m = exact(field::IN_PORT);
    let v = with(field::IN_PORT, 7);
    cls.insert(v, m, 1, 1);
    cls.insert(v, m, 3, 3);
    cls.insert(v, m, 2, 2);
    assert_eq!(cls.len(), 3);
    assert_eq!(cls.lookup(&v).unwrap().data, 3);
    assert_eq!(cls.get(&m, &v, 2).unwrap().data, 2);
    assert_eq!(cls.remove(&m, &v, 3), Some(3));
    assert_eq!(cls.lookup(&v).unwrap().data, 2);
    assert_eq!(cls.remove(&m, &v, 3), None);
    assert_eq!(cls.remove(&m, &v, 1), Some(1));
    assert_eq!(cls.remove(&m, &v, 2), Some(2));
    assert!(cls.is_empty());
    assert_eq!(cls.n_subtables(), 0);
    assert!(cls.lookup(&v).is_none());
}

#[test]
fn unmasked_value_is_normalized_and_clone_is_independent() {
    let mut cls = Classifier::new();
    let mut v = with(field::IN_PORT, 1);
    v.set(field::TP_DST, 99); // outside the mask
    cls.insert(v, exact(field::IN_PORT), 1, 1u32);
    assert_eq!(cls.iter().next().unwrap().value, with(field::IN_PORT, 1));
    let snapshot = cls.clone();
    assert_eq!(cls.remove(&exact(field::IN_PORT), &v, 1), Some(1));
    assert!(cls.lookup(&v).is_none());
    assert_eq!(snapshot.lookup(&v).unwrap().data, 1);
    assert_eq!(*snapshot.lookup(&v).unwrap().mask, exact(field::IN_PORT));
}
