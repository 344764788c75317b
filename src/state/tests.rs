//! The rules of [`State::apply`] and the [`Ledger`]'s idempotence, leases
//! and tickets, by example and by property.

use super::*;
use crate::error::Borrows;
use crate::key::ClaimId;
use proptest::prelude::*;

fn c(kind: ClaimKind) -> Claim {
    Claim::new(kind)
}

fn step(s: State, op: Op) -> State {
    s.apply(op).unwrap().0
}

#[test]
fn readers_exclude_writer_and_writer_excludes_everyone() {
    let s = State::new(Init::Claimed(c(ClaimKind::Owner)));
    let r = step(s, Op::Acquire(c(ClaimKind::Reader)));
    let one_reader = Borrows {
        readers: 1,
        writer: false,
    };
    let writer = Borrows {
        readers: 0,
        writer: true,
    };
    assert_eq!(
        r.apply(Op::Acquire(c(ClaimKind::Writer))),
        Err(Refusal::Borrowed(one_reader))
    );
    let w = step(s, Op::Acquire(c(ClaimKind::Writer)));
    assert_eq!(
        w.apply(Op::Acquire(c(ClaimKind::Reader))),
        Err(Refusal::MutablyBorrowed(writer))
    );
    assert_eq!(
        w.apply(Op::Acquire(c(ClaimKind::Writer))),
        Err(Refusal::Borrowed(writer))
    );
    assert_eq!(w.apply(Op::Evict), Err(Refusal::Borrowed(writer)));
    assert_eq!(r.apply(Op::Evict), Err(Refusal::Borrowed(one_reader)));
}

#[test]
fn refusals_carry_the_borrows_they_saw() {
    let mut s = State::new(Init::Claimed(c(ClaimKind::Owner)));
    for n in 1..=3u32 {
        s = step(s, Op::Acquire(c(ClaimKind::Reader)));
        let seen = Borrows {
            readers: n,
            writer: false,
        };
        assert_eq!(s.borrows(), seen);
        assert_eq!(
            s.apply(Op::Acquire(c(ClaimKind::Writer))),
            Err(Refusal::Borrowed(seen))
        );
        assert_eq!(s.apply(Op::Evict), Err(Refusal::Borrowed(seen)));
    }
    // holders and the owner are not borrows
    let h = step(s, Op::Acquire(c(ClaimKind::Holder)));
    assert_eq!(h.borrows(), s.borrows());
}

#[test]
fn ops_are_named_as_errors_report_them() {
    let names: Vec<_> = [
        Op::Acquire(c(ClaimKind::Reader)),
        Op::Acquire(c(ClaimKind::Writer)),
        Op::Acquire(c(ClaimKind::Owner)),
        Op::Acquire(c(ClaimKind::Holder)),
        Op::Release(c(ClaimKind::Reader)),
        Op::Disown(c(ClaimKind::Holder)),
        Op::Evict,
    ]
    .into_iter()
    .map(Op::name)
    .collect();
    assert_eq!(
        names,
        [
            "borrow",
            "mut_borrow",
            "into_owned",
            "manage",
            "release",
            "disown",
            "evict"
        ]
    );
}

#[test]
fn owner_release_evicts_or_defers() {
    let owner = c(ClaimKind::Owner);
    let s = State::new(Init::Claimed(owner));
    assert_eq!(s.apply(Op::Release(owner)).unwrap().1, Effect::Evict);

    let reader = c(ClaimKind::Reader);
    let s = step(s, Op::Acquire(reader));
    let (s, e) = s.apply(Op::Release(owner)).unwrap();
    assert_eq!(e, Effect::None);
    let (s, e) = s.apply(Op::Release(reader)).unwrap();
    assert_eq!(e, Effect::Evict);
    assert!(s.gone());
    assert_eq!(
        s.apply(Op::Acquire(c(ClaimKind::Reader))),
        Err(Refusal::Gone)
    );
}

#[test]
fn plain_objects_are_never_evicted_implicitly() {
    let s = State::new(Init::Plain);
    let s = step(s, Op::Acquire(c(ClaimKind::Reader)));
    let (s, e) = s.apply(Op::Release(c(ClaimKind::Reader))).unwrap();
    assert_eq!(e, Effect::None);
    assert!(!s.gone());
    assert_eq!(s.apply(Op::Evict).unwrap().1, Effect::Evict);
}

#[test]
fn one_owner_proxy_many_holders() {
    let s = State::new(Init::Claimed(c(ClaimKind::Owner)));
    assert_eq!(
        s.apply(Op::Acquire(c(ClaimKind::Owner))),
        Err(Refusal::Owned)
    );
    let h1 = c(ClaimKind::Holder);
    let h2 = c(ClaimKind::Holder);
    let s = step(
        step(State::new(Init::Plain), Op::Acquire(h1)),
        Op::Acquire(h2),
    );
    assert_eq!(s.holders(), 2);
    let (s, e) = s.apply(Op::Release(h1)).unwrap();
    assert_eq!(e, Effect::None);
    assert_eq!(s.apply(Op::Release(h2)).unwrap().1, Effect::Evict);
}

#[test]
fn releasing_what_is_not_held_is_refused() {
    let s = State::new(Init::Plain);
    for k in [
        ClaimKind::Owner,
        ClaimKind::Holder,
        ClaimKind::Reader,
        ClaimKind::Writer,
    ] {
        assert_eq!(s.apply(Op::Release(c(k))), Err(Refusal::NotHeld));
    }
}

#[test]
fn disowning_the_last_owner_leaves_a_plain_object() {
    // The last holder: plain again, never evicted, even once borrows end.
    let (h1, h2, r) = (
        c(ClaimKind::Holder),
        c(ClaimKind::Holder),
        c(ClaimKind::Reader),
    );
    let s = step(State::new(Init::Claimed(h1)), Op::Acquire(r));
    let (s, e) = s.apply(Op::Disown(h1)).unwrap();
    assert_eq!((e, s.had_owner(), s.holders()), (Effect::None, false, 0));
    let (s, e) = s.apply(Op::Release(r)).unwrap();
    assert_eq!((e, s), (Effect::None, State::EMPTY));
    // Other owners left: the usual rule.
    let owner = c(ClaimKind::Owner);
    let s = step(State::new(Init::Claimed(owner)), Op::Acquire(h2));
    let (s, e) = s.apply(Op::Disown(h2)).unwrap();
    assert_eq!((e, s.had_owner()), (Effect::None, true));
    assert_eq!(s.apply(Op::Release(owner)).unwrap().1, Effect::Evict);
    // A borrow is no owner: disowning it is releasing it.
    let s = step(State::new(Init::Claimed(owner)), Op::Acquire(r));
    let s = step(s, Op::Release(owner));
    assert_eq!(s.apply(Op::Disown(r)).unwrap().1, Effect::Evict);
    assert_eq!(State::EMPTY.apply(Op::Disown(h1)), Err(Refusal::NotHeld));
    // Idempotent by id in a ledger.
    let mut l = Ledger::new(Init::Claimed(h1), NEVER);
    assert_eq!(l.apply(Op::Disown(h1), NEVER), Ok(Effect::None));
    assert_eq!(l.apply(Op::Disown(h1), NEVER), Ok(Effect::None));
    assert_eq!((l.state, l.holders.len()), (State::EMPTY, 0));
}

#[test]
fn ledger_is_idempotent_by_id() {
    let owner = c(ClaimKind::Owner);
    let reader = c(ClaimKind::Reader);
    let mut l = Ledger::new(Init::Claimed(owner), NEVER);
    l.apply(Op::Acquire(reader), NEVER).unwrap();
    l.apply(Op::Acquire(reader), NEVER).unwrap();
    assert_eq!(l.state.readers(), 1);
    assert_eq!(l.apply(Op::Release(owner), NEVER).unwrap(), Effect::None);
    assert_eq!(l.apply(Op::Release(owner), NEVER).unwrap(), Effect::None);
    assert_eq!(l.apply(Op::Release(reader), NEVER).unwrap(), Effect::Evict);
    // a retried release after the eviction does nothing
    assert_eq!(l.apply(Op::Release(reader), NEVER).unwrap(), Effect::None);
    assert!(l.state.gone());
}

#[test]
fn expired_leases_are_released_like_dropped_handles() {
    let owner = c(ClaimKind::Owner);
    let reader = c(ClaimKind::Reader);
    let mut l = Ledger::new(Init::Claimed(owner), 100);
    l.apply(Op::Acquire(reader), 50).unwrap();
    assert_eq!(l.next_deadline(), Some(50));
    // the reader's process died; the owner still renews
    assert!(l.renew(owner, 200));
    assert_eq!(l.expire(60), Effect::None);
    assert!(!l.holds(reader));
    assert_eq!(l.state.readers(), 0);
    assert!(!l.renew(reader, 300), "a reclaimed claim cannot be renewed");
    // a writer may now enter
    l.apply(Op::Acquire(c(ClaimKind::Writer)), 500).unwrap();
    // the owner's process died too: eviction waits for the writer
    assert_eq!(l.expire(300), Effect::None);
    assert_eq!(l.expire(600), Effect::Evict);
    assert!(l.state.gone());
}

#[test]
fn tickets_are_redeemed_once_and_expire_with_their_claim() {
    let owner = c(ClaimKind::Owner);
    let t = ClaimId::random();
    let mut l = Ledger::new(Init::Claimed(owner), 100);
    l.issue_ticket(t, owner).unwrap();
    assert_eq!(
        l.redeem_ticket(t, ClaimKind::Reader, 1_000),
        Redeem::WrongKind(ClaimKind::Owner),
        "a ticket redeemed as the wrong kind is refused"
    );
    assert_eq!(
        l.redeem_ticket(t, ClaimKind::Owner, 1_000),
        Redeem::Claim(owner)
    );
    assert_eq!(l.redeem_ticket(t, ClaimKind::Owner, 1_000), Redeem::Spent);
    assert_eq!(l.owner, Some((owner.id, 1_000)));

    let t2 = ClaimId::random();
    l.issue_ticket(t2, owner).unwrap();
    // never redeemed: its lease runs out
    assert_eq!(l.expire(2_000), Effect::Evict);
    assert!(l.tickets.is_empty());
    assert_eq!(l.redeem_ticket(t2, ClaimKind::Owner, 3_000), Redeem::Spent);
    assert_eq!(l.issue_ticket(ClaimId::random(), owner), Err(Refusal::Gone));
}

#[derive(Clone, Debug)]
enum Step {
    Acquire(ClaimKind),
    Release(usize),
    Retry(usize),
    Evict,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let kind = prop_oneof![
        Just(ClaimKind::Owner),
        Just(ClaimKind::Holder),
        Just(ClaimKind::Reader),
        Just(ClaimKind::Writer)
    ];
    proptest::collection::vec(
        prop_oneof![
            kind.prop_map(Step::Acquire),
            any::<usize>().prop_map(Step::Release),
            any::<usize>().prop_map(Step::Retry),
            Just(Step::Evict),
        ],
        0..60,
    )
}

proptest! {
    /// The ledger and the packed state agree, the rules hold after every
    /// step, and eviction happens at most once and only when allowed.
    #[test]
    fn ledger_keeps_the_invariants(init_owned in any::<bool>(), script in steps()) {
        let init = if init_owned { Init::Claimed(c(ClaimKind::Owner)) } else { Init::Plain };
        let mut l = Ledger::new(init, NEVER);
        let mut held: Vec<Claim> = match init { Init::Claimed(c) => vec![c], Init::Plain => vec![] };
        let mut released: Vec<Claim> = vec![];
        let mut evictions = 0;
        for st in script {
            let before = l.clone();
            let r = match st {
                Step::Acquire(k) => {
                    let cl = c(k);
                    let r = l.apply(Op::Acquire(cl), NEVER);
                    if r.is_ok() { held.push(cl); }
                    r
                }
                Step::Release(i) if !held.is_empty() => {
                    let cl = held.remove(i % held.len());
                    released.push(cl);
                    l.apply(Op::Release(cl), NEVER)
                }
                Step::Retry(i) if !released.is_empty() => {
                    let cl = released[i % released.len()];
                    let r = l.apply(Op::Release(cl), NEVER);
                    prop_assert_eq!(r, Ok(Effect::None));
                    prop_assert_eq!(&l, &before);
                    r
                }
                Step::Evict => l.apply(Op::Evict, NEVER),
                _ => continue,
            };
            if r.is_err() { prop_assert_eq!(&l, &before); }
            if r == Ok(Effect::Evict) {
                evictions += 1;
                prop_assert!(!l.state.borrowed(), "evicted while borrowed");
            }
            let s = l.state;
            prop_assert!(!(s.writer() && s.readers() > 0));
            prop_assert_eq!(s.readers() as usize, l.readers.len());
            prop_assert_eq!(s.holders() as usize, l.holders.len());
            prop_assert_eq!(s.writer(), l.writer.is_some());
            prop_assert_eq!(s.owned(), l.owner.is_some());
            if s.had_owner() && !s.owned() && s.holders() == 0 && !s.borrowed() {
                prop_assert!(s.gone());
            }
        }
        prop_assert!(evictions <= 1);
    }

    /// The fast forms of a borrow's acquire and release agree with
    /// `apply` wherever they answer, on any state word (with a
    /// connector's mark in the bits above the state), and answer on the
    /// states a borrow meets every time.
    #[test]
    fn fast_borrow_transitions_agree_with_apply(
        readers in prop_oneof![0u32..4, Just(u32::MAX - 1), Just(u32::MAX)],
        writer in any::<bool>(),
        owned in any::<bool>(),
        holders in 0u32..3,
        had_owner in any::<bool>(),
        gone in any::<bool>(),
        mark in any::<bool>(),
        reader in any::<bool>(),
    ) {
        let kind = if reader { ClaimKind::Reader } else { ClaimKind::Writer };
        let s = State::from_parts(readers, writer, owned, holders, had_owner, gone);
        let extra = if mark { 1u64 << 63 } else { 0 };
        let bits = s.to_bits() | extra;
        let cl = c(kind);
        match State::bits_after_take(bits, kind) {
            Some(next) => {
                prop_assert_eq!(s.apply(Op::Acquire(cl)), Ok((State::from_bits(next & !extra), Effect::None)));
                prop_assert_eq!(next & extra, extra);
            }
            None => prop_assert!(s.apply(Op::Acquire(cl)).is_err()),
        }
        match State::bits_after_give_back(bits, kind) {
            Some(next) => {
                prop_assert_eq!(s.apply(Op::Release(cl)), Ok((State::from_bits(next & !extra), Effect::None)));
                prop_assert_eq!(next & extra, extra);
            }
            None => prop_assert!(!matches!(s.apply(Op::Release(cl)), Ok((_, Effect::None)))),
        }
    }
}

/// A claim, and a borrow that carries one, stay small: every live borrow
/// holds one, and the borrow path moves them by value.
#[test]
#[cfg(target_pointer_width = "64")]
fn a_claim_is_five_words_and_a_shared_borrow_ten() {
    assert_eq!(std::mem::size_of::<Claim>(), 40);
    assert_eq!(std::mem::align_of::<Claim>(), 8);
    assert_eq!(std::mem::size_of::<crate::RefProxy<u64>>(), 80);
    // With `apalis`, a writer also has room for the slot that holds a job's
    // change back until the job succeeds.
    let writer = if cfg!(feature = "apalis") { 112 } else { 104 };
    assert_eq!(std::mem::size_of::<crate::RefMutProxy<u64>>(), writer);
}
