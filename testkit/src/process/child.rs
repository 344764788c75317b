//! The child side: what `#[test] fn child_entry()` runs in a child process.
//!
//! A child opens the store at [`URL_VAR`], prints `STARTED`,
//! then executes commands read from stdin, one per line, answering each with
//! exactly one line: `OK [result]` or `ERR <ErrorVariant> <message>`.
//! Values are `Vec<u64>`, written as comma-separated numbers (`-` if empty).
//!
//! | command | what the child does |
//! |---|---|
//! | `REDEEM_OWNER <hex>` | redeems an [`OwnerTicket`]; keeps the owner |
//! | `REDEEM_BORROW <hex>` | redeems a [`BorrowTicket`]; keeps the borrow |
//! | `BORROW` / `MUT_BORROW` | borrows its owner; keeps the borrow |
//! | `READ` | the value its borrow (else its writer, else its owner) shows |
//! | `PUSH <n>` | pushes `n` through its writer and publishes (`update`); `OK <version>` |
//! | `OWNER_PUSH <n>` | pushes `n` on its owner and publishes (`update`) |
//! | `DROP_READER` / `DROP_WRITER` / `DROP_OWNER` | drops that handle, then `flush`es |
//! | `RESOLVE <hex>` | deserializes a fresh [`Proxy`] and resolves it |
//! | `NEW_OWNER_TICKET <csv>` | `owned_proxy` + `into_ticket`; `OK <key> <hex>`, keeps nothing |
//! | `PUBLISH_LOOP` | takes a mutable borrow of its owner, `OK`, then publishes through it forever |
//! | `TORTURE <hex> …` | redeems the owner tickets, `OK`, then makes random transitions on them forever (borrows, writers that publish, tickets, new objects) |
//! | `HOLD_BORROWS <n> <hex> …` | redeems the owner tickets and takes `n` shared borrows spread over them; keeps them; `OK <n>` |
//! | `CREATE_LOOP` | `OK`, then creates and drops owned objects forever |
//! | `HOLD_MANY <n>` | makes `n` more owners, borrows each once, and keeps them all |
//! | `CHECK_MANY` | `OK <n>`: how many of its `HOLD_MANY` objects the store records as owned and borrowed once |
//! | `NOW` | `OK <ms>`: its clock (`SystemTime`), in milliseconds since the Unix epoch |
//! | `EXIT` | drops everything, flushes, `OK`, and returns (the process exits 0) |

use std::io::BufRead;

use borrowstore::{
    BorrowTicket, Error, OwnedProxy, OwnerTicket, Proxy, RefMutProxy, RefProxy, Store, borrow,
    mut_borrow, update,
};

use super::{NAME_VAR, PREFIX, ROLE_VAR, URL_VAR, hex, unhex};

/// The value type every child works with.
pub type V = Vec<u64>;

/// Writes one protocol line to stdout (the parent reads it).
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A leading newline keeps the marker off the harness's "test … " text.
    let _ = writeln!(out, "\n{PREFIX}{line}");
    let _ = out.flush();
}

/// Comma-separated numbers, `-` for an empty vector.
pub fn csv(v: &[u64]) -> String {
    if v.is_empty() {
        return "-".to_owned();
    }
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// The inverse of [`csv`].
pub fn parse_csv(s: &str) -> Option<V> {
    if s == "-" {
        return Some(Vec::new());
    }
    s.split(',').map(|n| n.parse().ok()).collect()
}

/// The variant name of an error (`TicketRedeemed`, `AlreadyBorrowed`, …).
pub fn kind(e: &Error) -> String {
    format!("{e:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// The body of `#[test] fn child_entry()`: returns at once unless this
/// process was started as a child.
pub fn entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let url = std::env::var(URL_VAR).expect("child without a store URL");
    let name = std::env::var(NAME_VAR).unwrap_or_else(|_| "child".to_owned());
    match role.as_str() {
        "interp" => Interp::new(&url).run(),
        other => panic!("child {name}: unknown role {other:?}"),
    }
}

/// The handles a child holds between commands.
struct Interp {
    store: Store,
    owner: Option<OwnedProxy<V>>,
    reader: Option<RefProxy<V>>,
    writer: Option<RefMutProxy<V>>,
    /// Whatever `HOLD_BORROWS` took, kept until the child exits.
    held: Vec<Box<dyn std::any::Any>>,
    /// The objects of `HOLD_MANY`: each owner with its one borrow.
    many: Vec<(OwnedProxy<V>, RefProxy<V>)>,
}

impl Interp {
    fn new(url: &str) -> Interp {
        let store = Store::open(url).unwrap_or_else(|e| panic!("child: open {url}: {e}"));
        say("STARTED");
        Interp {
            store,
            owner: None,
            reader: None,
            writer: None,
            held: Vec::new(),
            many: Vec::new(),
        }
    }

    fn run(mut self) {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
            if cmd == "EXIT" {
                self.drop_all();
                say("OK");
                return;
            }
            if cmd == "PUBLISH_LOOP" {
                self.publish_loop();
            }
            if cmd == "TORTURE" {
                self.torture(arg);
            }
            if cmd == "CREATE_LOOP" {
                say("OK");
                loop {
                    let o = self.store.owned_proxy(vec![1u64; 8]);
                    drop(o);
                }
            }
            match self.exec(cmd, arg) {
                Ok(out) if out.is_empty() => say("OK"),
                Ok(out) => say(&format!("OK {out}")),
                Err(e) => say(&format!("ERR {} {e}", kind(&e))),
            }
        }
        // stdin closed: the parent is gone; exit normally.
        self.drop_all();
    }

    fn drop_all(&mut self) {
        self.held.clear();
        self.writer = None;
        self.reader = None;
        self.owner = None;
        self.many.clear();
        let _ = self.store.flush();
    }

    fn owner(&self) -> Result<&OwnedProxy<V>, Error> {
        self.owner.as_ref().ok_or_else(|| no("owner"))
    }

    fn exec(&mut self, cmd: &str, arg: &str) -> Result<String, Error> {
        match cmd {
            "REDEEM_OWNER" => {
                let owner = OwnerTicket::<V>::from_bytes(&bytes(arg)?)?.redeem()?;
                self.owner = Some(owner);
                Ok(String::new())
            }
            "REDEEM_BORROW" => {
                let reader = BorrowTicket::<V>::from_bytes(&bytes(arg)?)?.redeem()?;
                self.reader = Some(reader);
                Ok(String::new())
            }
            "BORROW" => {
                self.reader = Some(borrow(self.owner()?)?);
                Ok(String::new())
            }
            "MUT_BORROW" => {
                self.writer = Some(mut_borrow(self.owner()?)?);
                Ok(String::new())
            }
            "READ" => {
                let v = if let Some(r) = &self.reader {
                    RefProxy::resolve(r)?
                } else if let Some(w) = &self.writer {
                    RefMutProxy::resolve(w)?
                } else {
                    OwnedProxy::resolve(self.owner()?)?
                };
                Ok(csv(v))
            }
            "PUSH" => {
                let n = number(arg)?;
                let w = self.writer.as_mut().ok_or_else(|| no("writer"))?;
                RefMutProxy::resolve(w)?; // DerefMut panics if it cannot resolve
                w.push(n);
                update(w)?;
                let key = *RefMutProxy::key(w);
                Ok(self.version(&key))
            }
            "OWNER_PUSH" => {
                let n = number(arg)?;
                let o = self.owner.as_mut().ok_or_else(|| no("owner"))?;
                OwnedProxy::resolve(o)?; // DerefMut panics if it cannot resolve
                o.push(n);
                update(o)?;
                let key = *OwnedProxy::key(o);
                Ok(self.version(&key))
            }
            "DROP_READER" | "DROP_WRITER" | "DROP_OWNER" => {
                let had = match cmd {
                    "DROP_READER" => self.reader.take().is_some(),
                    "DROP_WRITER" => self.writer.take().is_some(),
                    _ => self.owner.take().is_some(),
                };
                self.store.flush()?;
                if had { Ok(String::new()) } else { Err(no(cmd)) }
            }
            "RESOLVE" => {
                let p = Proxy::<V>::from_bytes(&bytes(arg)?)?;
                Ok(csv(Proxy::resolve(&p)?))
            }
            "NEW_OWNER_TICKET" => {
                let v = parse_csv(arg).ok_or_else(|| bad("numbers"))?;
                let owner = self.store.owned_proxy(v)?;
                let key = *OwnedProxy::key(&owner);
                let ticket = OwnedProxy::into_ticket(owner)?;
                Ok(format!("{key} {}", hex(&ticket.to_bytes()?)))
            }
            "HOLD_BORROWS" => {
                let (n, tickets) = arg.split_once(' ').ok_or_else(|| bad(arg))?;
                let n: usize = n.parse().map_err(|_| bad(n))?;
                let owners = owners_of(tickets)?;
                let mut borrows = Vec::with_capacity(n);
                for i in 0..n {
                    borrows.push(borrow(&owners[i % owners.len()])?);
                }
                self.held.push(Box::new((owners, borrows)));
                Ok(n.to_string())
            }
            "HOLD_MANY" => {
                for i in 0..number(arg)? {
                    let owner = self.store.owned_proxy(vec![i])?;
                    let reader = borrow(&owner)?;
                    self.many.push((owner, reader));
                }
                Ok(String::new())
            }
            "CHECK_MANY" => {
                let mut ok = 0usize;
                for (owner, _) in &self.many {
                    if let Some(i) = self.store.inspect(OwnedProxy::key(owner))?
                        && i.owner
                        && i.readers == 1
                        && !i.writer
                    {
                        ok += 1;
                    }
                }
                Ok(ok.to_string())
            }
            "NOW" => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                Ok(ms.to_string())
            }
            other => Err(bad(other)),
        }
    }

    fn version(&self, key: &borrowstore::Key) -> String {
        match self.store.inspect(key) {
            Ok(Some(i)) => i.version.to_string(),
            other => format!("?{other:?}"),
        }
    }

    /// Takes the mutable borrow of its owner and publishes new versions
    /// through it as fast as it can, until the process is killed.
    fn publish_loop(&mut self) -> ! {
        let mut w = match self.owner().and_then(mut_borrow) {
            Ok(w) => w,
            Err(e) => {
                say(&format!("ERR {} {e}", kind(&e)));
                panic!("PUBLISH_LOOP: {e}");
            }
        };
        say("OK");
        let mut n = 0u64;
        loop {
            n += 1;
            w.clear();
            w.extend([n; 64]);
            update(&mut w).expect("update in publish loop");
        }
    }
}

/// The owners redeemed from space-separated owner tickets in hex.
fn owners_of(tickets: &str) -> Result<Vec<OwnedProxy<V>>, Error> {
    let owners = tickets
        .split(' ')
        .map(|t| OwnerTicket::<V>::from_bytes(&bytes(t)?)?.redeem())
        .collect::<Result<Vec<_>, Error>>()?;
    if owners.is_empty() {
        return Err(bad("no tickets"));
    }
    Ok(owners)
}

impl Interp {
    /// Redeems the owner tickets in `arg`, says `OK`, then makes random
    /// transitions on the objects until the process is killed: shared
    /// borrows kept for a while, writers that publish, borrows sent
    /// through a ticket and redeemed, new objects made and dropped. Refusals
    /// (a writer beside readers, …) are part of the game.
    fn torture(&mut self, arg: &str) -> ! {
        let owners = match owners_of(arg) {
            Ok(o) => o,
            Err(e) => {
                say(&format!("ERR {} {e}", kind(&e)));
                panic!("TORTURE: {e}");
            }
        };
        say("OK");
        let mut seed = super::nanos() as u64 | 1;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut readers: Vec<RefProxy<V>> = Vec::new();
        loop {
            let owner = &owners[(next() % owners.len() as u64) as usize];
            match next() % 16 {
                0..=5 => {
                    if let Ok(r) = borrow(owner) {
                        readers.push(r);
                    }
                    if readers.len() > 4 {
                        drop(readers.remove((next() % readers.len() as u64) as usize));
                    }
                }
                6..=9 => {
                    if let Ok(mut w) = mut_borrow(owner)
                        && RefMutProxy::resolve(&w).is_ok()
                    {
                        w.push(next() % 100);
                        let _ = update(&mut w);
                    }
                }
                10 => {
                    if let Ok(t) = borrow(owner).and_then(RefProxy::into_ticket) {
                        let _ = t
                            .to_bytes()
                            .and_then(|b| BorrowTicket::<V>::from_bytes(&b)?.redeem());
                    }
                }
                11 | 12 => {
                    if let Ok(o) = self.store.owned_proxy(vec![next(); 4]) {
                        let _ = borrow(&o);
                    }
                }
                _ => {
                    readers.pop();
                }
            }
        }
    }
}

fn no(what: &str) -> Error {
    Error::Malformed {
        what: "child command",
        reason: format!("this child holds no {what}"),
    }
}

fn bad(what: &str) -> Error {
    Error::Malformed {
        what: "child command",
        reason: format!("cannot understand {what:?}"),
    }
}

fn bytes(arg: &str) -> Result<Vec<u8>, Error> {
    unhex(arg).ok_or_else(|| bad("hex"))
}

fn number(arg: &str) -> Result<u64, Error> {
    arg.parse().map_err(|_| bad(arg))
}
