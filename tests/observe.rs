//! What a program watching the crate sees: the `tracing` spans of store
//! operations (through a capturing subscriber installed for the test; the
//! crate installs none), and with the `metrics` feature the counters,
//! gauges and histogram (through a capturing recorder).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use borrowstore::{Error, OwnedProxy, Store, borrow, mut_borrow};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const SUITE: borrowstore_testkit::Suite = borrowstore_testkit::suite!("observe");

/// The tests that install a subscriber, or a metrics recorder, run one at
/// a time: a call site first reached on another thread while a subscriber
/// is installed can have its interest computed without it.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A span or an event as the subscriber saw it.
#[derive(Clone, Debug)]
struct Seen {
    name: &'static str,
    level: tracing::Level,
    fields: HashMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture {
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.target().starts_with("borrowstore")
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut seen = self.seen.lock().unwrap();
        seen.push(Seen {
            name: attrs.metadata().name(),
            level: *attrs.metadata().level(),
            fields,
        });
        Id::from_u64(seen.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut seen = self.seen.lock().unwrap();
        if let Some(s) = seen.get_mut(span.into_u64() as usize - 1) {
            values.record(&mut Fields(&mut s.fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut fields = HashMap::new();
        e.record(&mut Fields(&mut fields));
        self.seen.lock().unwrap().push(Seen {
            name: "event",
            level: *e.metadata().level(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Capture {
    fn spans(&self, name: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }
}

/// `borrow`, `mut_borrow` (refused), `release`, `put`, `get`, `evict`
/// spans with the store, the key and the outcome; cache hits at trace.
fn spans_of_store_operations(store: &Store) {
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        // tracing caches which call sites a subscriber wants; tests on
        // other threads come and go with subscribers of their own.
        tracing::callsite::rebuild_interest_cache();
        let owner = store.owned_proxy(vec![1u64, 2]).unwrap();
        let key = OwnedProxy::key(&owner).to_string();
        let r = borrow(&owner).unwrap();
        assert!(matches!(
            mut_borrow(&owner),
            Err(Error::AlreadyBorrowed { .. })
        ));
        drop(r);

        let b = capture.spans("borrow");
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].level, tracing::Level::DEBUG);
        assert_eq!(b[0].fields["key"], key);
        assert_eq!(b[0].fields["store"], store.name());
        assert_eq!(b[0].fields["outcome"], "ok");
        let w = capture.spans("mut_borrow");
        assert_eq!(w[0].fields["key"], key);
        assert_eq!(w[0].fields["outcome"], "already_borrowed");
        let rel = capture.spans("release");
        assert!(
            rel.iter()
                .any(|s| s.fields["key"] == key && s.fields["outcome"] == "ok")
        );
        assert!(capture.spans("put").iter().any(|s| s.fields["key"] == key));

        let k = store.put(&String::from("x")).unwrap();
        let _: Option<String> = store.get(&k).unwrap();
        let _ = store.get_shared::<String>(&k).unwrap();
        let _ = store.get_shared::<String>(&k).unwrap();
        assert!(store.evict(&k).unwrap());
        let get = capture.spans("get");
        assert!(get.len() >= 3 && get.iter().all(|s| s.fields["key"] == k.to_string()));
        let ev = capture.spans("evict");
        assert_eq!(ev[0].fields["outcome"], "ok");
        let hits: Vec<Seen> = capture
            .spans("event")
            .into_iter()
            .filter(|e| e.fields.get("message").is_some_and(|m| m == "cache hit"))
            .collect();
        if !store.url().starts_with("memory") {
            // Encoded stores decode once; the second read is a cache hit.
            assert!(!hits.is_empty(), "no cache hit");
            assert_eq!(hits[0].level, tracing::Level::TRACE);
            assert_eq!(hits[0].fields["key"], k.to_string());
        }
    });
}

#[test]
fn spans_on_a_memory_store() {
    spans_of_store_operations(&SUITE.memory_store());
}

#[test]
fn spans_on_a_file_store() {
    spans_of_store_operations(&SUITE.file_store());
}

#[cfg(feature = "redis")]
#[test]
fn spans_on_a_redis_store() {
    spans_of_store_operations(&SUITE.redis_store());
}

/// Without a subscriber nothing is recorded, and nothing fails.
#[test]
fn no_subscriber_is_installed_by_the_crate() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let store = SUITE.memory_store();
    let owner = store.owned_proxy(1u8).unwrap();
    drop(borrow(&owner).unwrap());
    // No global subscriber (`has_been_set` would also count the scoped
    // ones the span tests of this binary install).
    assert!(tracing::dispatcher::get_default(|d| {
        d.is::<tracing::subscriber::NoSubscriber>()
    }));
}

#[cfg(feature = "metrics")]
mod metrics_recorder {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use borrowstore::{Error, borrow, mut_borrow};
    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
        Recorder, SharedString, Unit,
    };

    type Values = Arc<Mutex<HashMap<String, f64>>>;

    /// A metric's name and labels, as `name{a=b,…}`.
    fn id(key: &Key) -> String {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    struct Cell(String, Values);

    impl CounterFn for Cell {
        fn increment(&self, v: u64) {
            *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v as f64;
        }
        fn absolute(&self, v: u64) {
            self.1.lock().unwrap().insert(self.0.clone(), v as f64);
        }
    }

    impl GaugeFn for Cell {
        fn increment(&self, v: f64) {
            *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v;
        }
        fn decrement(&self, v: f64) {
            *self.1.lock().unwrap().entry(self.0.clone()).or_default() -= v;
        }
        fn set(&self, v: f64) {
            self.1.lock().unwrap().insert(self.0.clone(), v);
        }
    }

    impl HistogramFn for Cell {
        fn record(&self, _v: f64) {
            *self.1.lock().unwrap().entry(self.0.clone()).or_default() += 1.0;
        }
    }

    #[derive(Default)]
    struct Capture(Values);

    impl Recorder for Capture {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(Arc::new(Cell(id(key), self.0.clone())))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(Arc::new(Cell(id(key), self.0.clone())))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(Arc::new(Cell(id(key), self.0.clone())))
        }
    }

    /// Counters of operations and refusals, gauges of live objects and
    /// claims, named `borrowstore_*` and labelled by store.
    #[test]
    fn counters_and_gauges() {
        // Its operations register the crate's call sites too: not while a
        // span test's subscriber is computing which it wants.
        let _one_at_a_time = super::ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let rec = Capture::default();
        let store = super::SUITE.memory_store();
        let s = store.name().to_owned();
        metrics::with_local_recorder(&rec, || {
            let owner = store.owned_proxy(vec![1u64]).unwrap();
            let r = borrow(&owner).unwrap();
            assert!(matches!(
                mut_borrow(&owner),
                Err(Error::AlreadyBorrowed { .. })
            ));
            let v = rec.0.lock().unwrap().clone();
            let get = |k: &str| v.get(k).copied().unwrap_or(0.0);
            assert_eq!(
                get(&format!("borrowstore_live_objects{{store={s}}}")),
                1.0,
                "{v:#?}"
            );
            // The owner and the reader.
            assert_eq!(
                get(&format!("borrowstore_live_claims{{store={s}}}")),
                2.0,
                "{v:#?}"
            );
            assert_eq!(
                get(&format!(
                    "borrowstore_operations_total{{op=borrow,outcome=ok,store={s}}}"
                )),
                1.0
            );
            assert_eq!(
                get(&format!(
                    "borrowstore_refusals_total{{kind=already_borrowed,op=mut_borrow,store={s}}}"
                )),
                1.0,
                "{v:#?}"
            );
            drop(r);
            let v = rec.0.lock().unwrap().clone();
            assert_eq!(
                v[&format!("borrowstore_live_claims{{store={s}}}")],
                1.0,
                "{v:#?}"
            );
            drop(owner);
            let v = rec.0.lock().unwrap().clone();
            assert_eq!(
                v[&format!("borrowstore_live_claims{{store={s}}}")],
                0.0,
                "{v:#?}"
            );
        });
    }

    /// Network round trips are timed by operation.
    #[cfg(feature = "redis")]
    #[test]
    fn network_latency_histogram() {
        let _one_at_a_time = super::ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let rec = Capture::default();
        let store = super::SUITE.redis_store();
        let s = store.name().to_owned();
        metrics::with_local_recorder(&rec, || {
            let owner = store.owned_proxy(vec![1u64]).unwrap();
            drop(borrow(&owner).unwrap());
            store.flush().unwrap();
        });
        let v = rec.0.lock().unwrap().clone();
        assert!(
            v.keys()
                .any(|k| k.starts_with("borrowstore_network_seconds")
                    && k.contains("op=acquire_fetch")
                    && k.contains(&format!("store={s}"))),
            "{v:#?}"
        );
    }
}
