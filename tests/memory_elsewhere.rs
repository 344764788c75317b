//! A proxy or ticket of a `memory://` store that arrives in another process
//! says so ("what a new user hit", item 11): `Error::LocalStore`, naming the
//! process the store lives in, instead of an empty store of the same name
//! in the receiving process (and `TicketRedeemed` on redeem).
//!
//! The other process is this test binary again (`memory_child_entry`).

use std::process::Command;

use borrowstore::{BorrowTicket, Error, OwnedProxy, OwnerTicket, Proxy, RefProxy, Store, borrow};

/// Every way bytes of a `kind` reach their store (read a proxy; redeem or
/// cancel a ticket): the errors.
fn errors_of(kind: &str, bytes: &[u8]) -> Vec<Error> {
    let out: Vec<Result<(), Error>> = match kind {
        "proxy" => vec![Proxy::<Vec<u64>>::from_bytes(bytes).map(drop)],
        "owner" => vec![
            OwnerTicket::<Vec<u64>>::from_bytes(bytes).and_then(|t| t.redeem().map(drop)),
            OwnerTicket::<Vec<u64>>::from_bytes(bytes).and_then(|t| t.cancel()),
        ],
        _ => vec![
            BorrowTicket::<Vec<u64>>::from_bytes(bytes).and_then(|t| t.redeem().map(drop)),
            BorrowTicket::<Vec<u64>>::from_bytes(bytes).and_then(|t| t.cancel()),
        ],
    };
    out.into_iter()
        .map(|r| r.expect_err("bytes of another process's memory store were accepted"))
        .collect()
}

/// Run in a child process: prints the hex of a ticket, a borrow ticket and
/// a proxy of its memory store `probe`, then waits for stdin to close.
#[test]
fn memory_child_entry() {
    if std::env::var_os("BORROWSTORE_MEMORY_CHILD").is_none() {
        return;
    }
    let store = Store::memory("probe");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let proxy = Proxy::to_bytes(&store.proxy(vec![2u64]).unwrap()).unwrap();
    let bt = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    let ot = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    for b in [ot, bt, proxy] {
        println!(
            "\nHEX {}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        );
    }
}

#[test]
fn a_memory_store_of_another_process_says_so() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "memory_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BORROWSTORE_MEMORY_CHILD", "1")
        .output()
        .expect("run the child");
    let text = String::from_utf8_lossy(&out.stdout);
    let blobs: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| l.strip_prefix("HEX "))
        .map(|h| {
            (0..h.len() / 2)
                .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                .collect()
        })
        .collect();
    assert_eq!(blobs.len(), 3, "child output: {text}");
    // This process has a memory store of that name too: it is not the one.
    let here = Store::memory("probe");
    let _mine = here.put(&0u8).unwrap();
    let expected = "memory://probe is local to process";
    // The child wrote an owner ticket, a borrow ticket and a proxy.
    for e in errors_of("owner", &blobs[0])
        .into_iter()
        .chain(errors_of("borrow", &blobs[1]))
        .chain(errors_of("proxy", &blobs[2]))
    {
        match &e {
            Error::LocalStore { url, pid } => {
                assert_eq!(url, "memory://probe");
                assert_ne!(*pid, std::process::id());
            }
            other => panic!("expected LocalStore, got {other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.starts_with(expected), "{msg}");
        assert!(
            msg.ends_with("; use file:// or redis:// to share objects between processes"),
            "{msg}"
        );
    }
    // Allowing memory URLs changes nothing for another process's store.
    borrowstore::trust::allow("memory://probe").unwrap();
    assert!(matches!(
        Proxy::<Vec<u64>>::from_bytes(&blobs[2]),
        Err(Error::LocalStore { .. })
    ));
    borrowstore::trust::disallow("memory://probe");
}
