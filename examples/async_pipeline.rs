//! Tokio producers and consumers that wait for each other on a file store.
//!
//! ```text
//! cargo run --example async_pipeline
//! ```
//!
//! Each pipe is a producer task and a consumer task sharing a ring of three
//! frames (objects in the store), used in turn, hand over hand:
//!
//! - the producer fills frame `r` under its mutable borrow, takes frame
//!   `r + 1` with `mut_borrow_async` — which waits while the consumer still
//!   reads that frame's previous round — and only then publishes frame `r`
//!   and lets go of it;
//! - the consumer reads frame `r` under its shared borrow, takes frame
//!   `r + 1` with `borrow_async` — which waits while the producer still
//!   fills it — and only then lets go of frame `r`.
//!
//! So the producer never overwrites a frame that is being read, and it
//! cannot come round the ring to frame `r` again before the consumer has
//! read it: the consumer never misses a frame. Consumers also wait for each
//! other (`mut_borrow_async`) to append to one shared results object.
//!
//! Nobody sleeps or polls: every waiter is woken by the release that lets
//! it in, and no call blocks a worker thread (the file store's I/O runs on
//! tokio's blocking pool). The same code works across processes sharing the
//! directory, and on a Redis store.

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use borrowstore::{OwnedProxy, RefMutProxy, Store, borrow_async, mut_borrow_async, update_async};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn Error + Send + Sync>;

/// Producer / consumer pairs.
const PIPES: u64 = 2;
/// Frames each producer makes.
const ROUNDS: u64 = 20;
/// Frames in each ring.
const RING: u64 = 3;

/// What a producer hands to its consumer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Frame {
    round: u64,
    samples: Vec<u64>,
}

/// One consumer's result for one frame: (pipe, round, sum of the samples).
type Results = Vec<(u64, u64, u64)>;

/// The frames of one pipe.
type Ring = Arc<Vec<Arc<OwnedProxy<Frame>>>>;

fn frame(ring: &Ring, round: u64) -> &OwnedProxy<Frame> {
    &ring[(round % RING) as usize]
}

fn samples(pipe: u64, round: u64) -> Vec<u64> {
    (0..8).map(|i| pipe * 1_000_000 + round * 100 + i).collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let dir =
        std::env::temp_dir().join(format!("borrowstore-async-pipeline-{}", std::process::id()));
    let store = Store::open_async(&format!("file://{}", dir.display())).await?;
    println!("file store {}", store.url());
    let results: Arc<OwnedProxy<Results>> = Arc::new(store.owned_proxy_async(Vec::new()).await?);

    let start = Instant::now();
    let mut tasks = Vec::new();
    for pipe in 0..PIPES {
        let mut frames = Vec::new();
        for _ in 0..RING {
            frames.push(Arc::new(store.owned_proxy_async(Frame::default()).await?));
        }
        let frames: Ring = Arc::new(frames);
        // The producer holds the first frame before its consumer starts.
        let first = mut_borrow_async(&frames[0]).await?;
        tasks.push(tokio::spawn(produce(pipe, frames.clone(), first)));
        tasks.push(tokio::spawn(consume(pipe, frames, results.clone())));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "{PIPES} pipes x {ROUNDS} frames in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    // Every frame was consumed exactly once, in order, with its contents.
    let results = Arc::try_unwrap(results).map_err(|_| "results still shared")?;
    let mut got = OwnedProxy::latest_async(&results).await?.to_vec();
    got.sort();
    let expected: Results = (0..PIPES)
        .flat_map(|p| (0..ROUNDS).map(move |r| (p, r, samples(p, r).iter().sum())))
        .collect();
    assert_eq!(got, expected, "a frame was missed, doubled or damaged");
    println!("all {} frames consumed once, in order", got.len());

    drop(results);
    store.flush_async().await?;
    let left = store.keys_async().await?;
    println!("objects left in the store: {}", left.len());
    let _ = std::fs::remove_dir_all(&dir);
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("objects left behind: {left:?}").into())
    }
}

/// Fills the frames in turn; takes the next frame (waiting for the consumer
/// to let go of it) before publishing and letting go of the current one.
async fn produce(pipe: u64, ring: Ring, first: RefMutProxy<Frame>) -> Result<(), BoxError> {
    let mut current = first;
    for round in 0..ROUNDS {
        current.round = round;
        current.samples = samples(pipe, round);
        update_async(&mut current).await?;
        if round + 1 == ROUNDS {
            break;
        }
        // Waits while the consumer still reads this frame's earlier round.
        let next = mut_borrow_async(frame(&ring, round + 1)).await?;
        // The consumer waiting for `current` is woken by this release.
        current = next;
    }
    drop(current);
    Ok(())
}

/// Reads the frames in turn, taking the next (waiting while the producer
/// fills it) before letting go of the current one; appends each frame's
/// sum to the shared results.
async fn consume(pipe: u64, ring: Ring, results: Arc<OwnedProxy<Results>>) -> Result<(), BoxError> {
    let mut current = borrow_async(frame(&ring, 0)).await?;
    for round in 0..ROUNDS {
        if current.round != round {
            return Err(
                format!("pipe {pipe}: expected round {round}, got {}", current.round).into(),
            );
        }
        let sum = current.samples.iter().sum();
        let mut all = mut_borrow_async(&results).await?;
        all.push((pipe, round, sum));
        update_async(&mut all).await?;
        drop(all);
        if round + 1 == ROUNDS {
            break;
        }
        // Waits while the producer fills it; letting go of `current` then
        // lets the producer reuse that frame.
        current = borrow_async(frame(&ring, round + 1)).await?;
    }
    Ok(())
}
