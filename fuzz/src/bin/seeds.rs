//! Writes seed inputs for the fuzz targets: `seeds DIR` writes
//! `DIR/<target>/seed-*` (scripts/fuzz.sh writes them into the gitignored
//! `fuzz/corpus/`). Seeds are made by this build of borrowstore, so they
//! follow its wire formats.

use std::path::Path;

use borrowstore::codec;
use borrowstore::{Key, OwnedProxy, Proxy, RefProxy, Store, StoreConfig, borrow};
use borrowstore_fuzz::{Record, Shape, record, sandbox};

fn write(dir: &Path, target: &str, seeds: &[Vec<u8>]) -> std::io::Result<()> {
    let d = dir.join(target);
    std::fs::create_dir_all(&d)?;
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(d.join(format!("seed-{i:03}")), s)?;
    }
    println!("{}: {} seeds", d.display(), seeds.len());
    Ok(())
}

/// `wire` with its leading store config replaced.
fn with_config(wire: &[u8], config: &StoreConfig) -> Vec<u8> {
    let (_, rest) = postcard::take_from_bytes::<StoreConfig>(wire).expect("wire form");
    let mut out = postcard::to_allocvec(config).unwrap();
    out.extend_from_slice(rest);
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: seeds DIR (for example fuzz/corpus)")?;
    let dir = Path::new(&dir);

    // decode_blob: valid blobs, and selector + payload forms.
    let mut blobs = vec![
        codec::encode(&42u64)?,
        codec::encode(&String::from("hello"))?,
        codec::encode(&vec![String::from("a"), String::from("bc")])?,
        codec::encode(&(1u8, Some(vec![2u16, 3]), true))?,
        codec::encode(&std::collections::BTreeMap::from([(
            String::from("k"),
            vec![1u32],
        )]))?,
        codec::encode(&record())?,
        codec::encode(&Shape::Named("x".into(), true))?,
        codec::encode(&Key::from_u128(u128::MAX))?,
        codec::encode(&Some('é'))?,
    ];
    let payloads: Vec<Vec<u8>> = blobs
        .iter()
        .map(|b| b[codec::header(b).expect("a blob").size()..].to_vec())
        .collect();
    let string_blob = blobs[1].clone();
    for (sel, p) in [
        (0u8, &payloads[0]),
        (1, &payloads[2]),
        (2, &payloads[5]),
        (3, &string_blob),
    ] {
        let mut s = vec![sel];
        s.extend_from_slice(p);
        blobs.push(s);
    }
    blobs.extend(payloads);
    write(dir, "decode_blob", &blobs)?;

    // proxy_bytes: proxies of the fixture objects (keys 1 to 4 of store
    // `fuzz`) as every type the target reads, plain and ephemeral; proxies of
    // other memory stores; a file store in the sandbox; bad URLs.
    let fixture = Store::memory("fuzz");
    let mut proxies = Vec::new();
    for k in 1..=4u128 {
        let key = Key::from_u128(k);
        proxies.push(Proxy::to_bytes(&fixture.proxy_from_key::<u64>(key))?);
        proxies.push(Proxy::to_bytes(&fixture.proxy_from_key::<String>(key))?);
        proxies.push(Proxy::to_bytes(
            &fixture.proxy_from_key::<Vec<String>>(key),
        )?);
        proxies.push(Proxy::to_bytes(&fixture.proxy_from_key::<Record>(key))?);
    }
    let eph = Proxy::to_bytes(&fixture.ephemeral_proxy(1u64)?)?;
    let eph_key = Proxy::key(&Proxy::<u64>::from_bytes(&eph)?).as_u128();
    // The same ephemeral proxy, pointed at fixture key 1.
    let (config, rest) = postcard::take_from_bytes::<StoreConfig>(&eph)?;
    let (k, rest) = postcard::take_from_bytes::<u128>(rest)?;
    assert_eq!(k, eph_key);
    let mut eph1 = postcard::to_allocvec(&config)?;
    eph1.extend_from_slice(&postcard::to_allocvec(&1u128)?);
    eph1.extend_from_slice(rest);
    proxies.push(eph);
    proxies.push(eph1);
    let other = Store::memory("fuzz-other");
    let plain = Proxy::to_bytes(&other.proxy(record())?)?;
    for url in [
        String::from("memory://fuzz-other"),
        String::from("memory://elsewhere"),
        format!("file://{}/seed?lease_ms=60000", sandbox().display()),
        format!("file://{}/seed/../x", sandbox().display()),
        String::from("file://relative"),
        String::from("redis-ish:/nope"),
        String::from("not a url"),
    ] {
        proxies.push(with_config(
            &plain,
            &StoreConfig {
                name: "fuzz-other".into(),
                url,
            },
        ));
    }
    write(dir, "proxy_bytes", &proxies)?;

    // ticket_bytes: real tickets of a store that is not in the fuzz process
    // (part 1), and damage patterns (part 2): none, truncations, single bits
    // over the whole ticket.
    let store = Store::memory("fuzz-seeds");
    let owner = store.owned_proxy(7u64)?;
    let b = store.owned_proxy(8u64)?;
    let bt = RefProxy::into_ticket(borrow(&b)?)?.to_bytes()?;
    let ot = OwnedProxy::into_ticket(owner)?.to_bytes()?;
    let mut tickets = vec![ot.clone(), bt.clone()];
    tickets.push(OwnedProxy::into_ticket(store.owned_proxy(String::from("s"))?)?.to_bytes()?);
    tickets.push(vec![0]);
    tickets.push(vec![1]);
    tickets.push(vec![0x21]);
    for i in 0..ot.len() {
        for bit in [0u8, 1, 2] {
            let mut d = vec![0u8; i + 2];
            d[i + 1] = 1 << bit;
            tickets.push(d);
        }
    }
    write(dir, "ticket_bytes", &tickets)?;
    Ok(())
}
