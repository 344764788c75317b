use super::*;

#[test]
fn round_trip() {
    let v = (String::from("x"), vec![1u8, 2], Some(3.5f64));
    assert_eq!(
        decode::<(String, Vec<u8>, Option<f64>)>(&encode(&v).unwrap()).unwrap(),
        v
    );
}

#[test]
fn wrong_type_is_type_mismatch() {
    let b = encode(&7u64).unwrap();
    assert!(matches!(decode::<u32>(&b), Err(Error::TypeMismatch { .. })));
}

#[test]
fn damage_is_decode_error() {
    let mut b = encode(&String::from("hello")).unwrap();
    assert!(matches!(
        decode::<String>(&b[..3]),
        Err(Error::Decode { .. })
    ));
    b.push(0);
    assert!(matches!(decode::<String>(&b), Err(Error::Decode { .. })));
    b.pop();
    b[header_len::<String>()] = 200; // length prefix beyond the data
    assert!(matches!(decode::<String>(&b), Err(Error::Decode { .. })));
    let mut m = encode(&1u8).unwrap();
    m[0] = b'X';
    assert!(matches!(decode::<u8>(&m), Err(Error::Decode { .. })));
    let mut v = encode(&1u8).unwrap();
    v[4] = 99;
    assert!(matches!(decode::<u8>(&v), Err(Error::Decode { .. })));
}

#[test]
fn wrong_type_names_the_stored_type() {
    let b = encode(&vec![1u64, 2]).unwrap();
    match decode::<String>(&b) {
        Err(Error::TypeMismatch { expected, found }) => {
            assert_eq!(expected, "alloc::string::String");
            assert_eq!(found, "alloc::vec::Vec<u64>");
        }
        other => panic!("{other:?}"),
    }
    let h = header(&b).unwrap();
    assert_eq!(h.type_name(), std::any::type_name::<Vec<u64>>());
    assert_eq!(h.fingerprint(), fingerprint::<Vec<u64>>());
    assert_eq!(h.size(), header_len::<Vec<u64>>());
    assert_eq!(header_fingerprint(&b).unwrap(), fingerprint::<Vec<u64>>());
}

type O2 = Option<Option<u8>>;
type O4 = Option<Option<O2>>;
type O8 = Option<Option<Option<Option<O4>>>>;
/// A type whose name (13 × `core::option::Option<`, …) is longer than
/// [`MAX_TYPE_NAME`].
type Long = Option<Option<Option<Option<Option<O8>>>>>;

#[test]
fn long_type_names_are_cut_in_the_header() {
    let full = std::any::type_name::<Long>();
    assert!(full.len() > MAX_TYPE_NAME, "{}", full.len());
    let b = encode(&Long::None).unwrap();
    let h = header(&b).unwrap();
    assert_eq!(h.type_name().len(), MAX_TYPE_NAME);
    assert!(full.starts_with(h.type_name()));
    assert_eq!(recorded_type_name::<Long>(), h.type_name());
    assert_eq!(decode::<Long>(&b).unwrap(), None);
    match decode::<String>(&b) {
        Err(Error::TypeMismatch { found, .. }) => {
            assert_eq!(found, format!("{}…", h.type_name()));
        }
        other => panic!("{other:?}"),
    }
    // a cut name stays on a character boundary
    assert_eq!(bounded_name(&"é".repeat(200)).len(), 254);
}

#[test]
fn damaged_type_name_is_decode_error() {
    let good = encode(&7u64).unwrap();
    let at = HEADER_LEN + 1; // the first byte of the name
    let mut renamed = good.clone();
    renamed[at] ^= 0x01; // still UTF-8, another name
    assert!(matches!(decode::<u64>(&renamed), Err(Error::Decode { .. })));
    let mut not_utf8 = good.clone();
    not_utf8[at] = 0xFF;
    assert!(matches!(
        decode::<u64>(&not_utf8),
        Err(Error::Decode { .. })
    ));
    let mut long = good.clone();
    long[HEADER_LEN] = 250; // a name longer than the blob
    assert!(matches!(decode::<u64>(&long), Err(Error::Decode { .. })));
    for n in HEADER_LEN..header_len::<u64>() {
        assert!(matches!(
            decode::<u64>(&good[..n]),
            Err(Error::Decode { .. })
        ));
    }
    // a damaged fingerprint beside an intact name is another type
    let mut fp = good.clone();
    fp[7] ^= 0x01;
    match decode::<u64>(&fp) {
        Err(Error::TypeMismatch { found, .. }) => {
            assert!(
                found.starts_with("a value with type fingerprint "),
                "{found}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn format_version_1_is_decode_error() {
    let mut v1 = encode(&7u64).unwrap();
    v1[4] = 1;
    match decode::<u64>(&v1) {
        Err(Error::Decode { reason }) => assert!(reason.contains("version 1"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wire_names_are_reported_only_when_they_go_with_the_fingerprint() {
    let fp = fingerprint::<Vec<u64>>();
    let name = std::any::type_name::<Vec<u64>>();
    assert!(check_type::<Vec<u64>>(fp, "anything", "a proxy of").is_ok());
    match check_type::<String>(fp, name, "a proxy of") {
        Err(Error::TypeMismatch { found, .. }) => assert_eq!(found, name),
        other => panic!("{other:?}"),
    }
    match check_type::<String>(fp, "u8", "a proxy of") {
        Err(Error::TypeMismatch { found, .. }) => {
            assert_eq!(found, format!("a proxy of type fingerprint {fp:016x}"));
        }
        other => panic!("{other:?}"),
    }
    // a name too long to report is cut
    let huge = "x".repeat(10_000);
    match check_type::<String>(fingerprint_of(&huge), &huge, "a proxy of") {
        Err(Error::TypeMismatch { found, .. }) => {
            assert_eq!(found, format!("{}…", &huge[..MAX_TYPE_NAME]));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn deep_copy_is_equal_and_distinct() {
    let v = vec![String::from("a"); 3];
    let c = deep_copy(&v).unwrap();
    assert_eq!(v, c);
    assert_ne!(v.as_ptr(), c.as_ptr());
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
        let _ = decode::<Vec<String>>(&bytes);
        let _ = decode::<(u64, Option<String>)>(&bytes);
    }

    #[test]
    fn arbitrary_payload_after_valid_header_never_panics(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
        let mut b = encode(&Vec::<String>::new()).unwrap();
        b.truncate(header_len::<Vec<String>>());
        b.extend_from_slice(&tail);
        let _ = decode::<Vec<String>>(&b);
    }
}
