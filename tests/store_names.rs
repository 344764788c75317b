//! Store names: a builder never takes a name that another store holds
//! ("what a new user hit", item 4). A name registered with another URL or
//! other settings is `Error::NameTaken`, unless the builder asks to
//! replace it; the same URL and settings give the registered store.

use std::path::{Path, PathBuf};

use borrowstore::{Error, Key, Store};

fn fresh_dir(tag: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("store-names")
        .join(format!("{tag}-{}-{}", std::process::id(), Key::random()))
}

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

#[test]
fn a_builder_never_takes_a_registered_name_silently() {
    let name = format!("trust-builder-{}", Key::random());
    let mine = Store::memory(name.clone());
    let err = Store::builder(name.clone())
        .max_value_size(10)
        .build()
        .unwrap_err();
    match &err {
        Error::NameTaken { name: n, url } => {
            assert_eq!(n, &name);
            assert_eq!(url, &format!("memory://{name}"));
        }
        other => panic!("expected NameTaken, got {other:?}"),
    }
    assert!(err.to_string().contains("replace(true)"), "{err}");
    // The other component's store has no size limit, and is still the one.
    assert!(Store::memory(name.clone()).same_store(&mine));
    assert!(Store::memory(name.clone()).put(&vec![0u8; 100]).is_ok());
    // Another URL under the name: refused too, and nothing is created.
    let dir = fresh_dir("builder");
    assert!(matches!(
        Store::builder(name.clone()).url(file_url(&dir)).build(),
        Err(Error::NameTaken { .. })
    ));
    assert!(!dir.exists());
    // The same URL and settings: the registered store.
    assert!(
        Store::builder(name.clone())
            .build()
            .unwrap()
            .same_store(&mine)
    );
    // Asked for: replaced.
    let limited = Store::builder(name.clone())
        .max_value_size(10)
        .replace(true)
        .build()
        .unwrap();
    assert!(Store::registered(&name).unwrap().same_store(&limited));
    assert!(matches!(
        Store::memory(name.clone()).put(&vec![0u8; 100]),
        Err(Error::TooLarge { .. })
    ));
    // Unregistered builds never look at the registry.
    let loose = Store::builder(name.clone())
        .max_value_size(99)
        .register(false)
        .build()
        .unwrap();
    assert!(!loose.same_store(&limited));
    assert!(Store::registered(&name).unwrap().same_store(&limited));
}

#[test]
fn a_builder_with_the_same_settings_for_a_file_store_returns_the_registered_store() {
    let dir = fresh_dir("builder-same");
    let name = format!("trust-builder-file-{}", Key::random());
    let a = Store::builder(name.clone())
        .url(file_url(&dir))
        .max_value_size(1000)
        .build()
        .unwrap();
    let b = Store::builder(name.clone())
        .url(file_url(&dir))
        .max_value_size(1000)
        .build()
        .unwrap();
    assert!(a.same_store(&b));
    assert!(matches!(
        Store::builder(name).url(file_url(&dir)).build(),
        Err(Error::NameTaken { .. })
    ));
}
