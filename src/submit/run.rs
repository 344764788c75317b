//! [`Run`]: a submitted async task as its executor polls it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use pin_project_lite::pin_project;

use crate::error::{Error, Result};
use crate::store::manager::Carried;
use crate::submit::task::{Ender, settle};

pin_project! {
    /// The future that [`submit`](super::submit) spawns. Its first poll
    /// calls `f(args)`; every poll of the task's future runs inside the
    /// scopes carried from the submitter, and a panic is caught. Once the
    /// task's future is gone it ends what escaped it, waits until the
    /// releases are applied, and reports.
    ///
    /// One state machine: the arguments and the task's future take the same
    /// room (each is moved once, nothing is boxed), so the task is little
    /// larger than its own future. Only a store that queues releases
    /// (file, Redis) makes the wait a boxed future.
    pub(crate) struct Run<F, A, Fut: Future> {
        // Dropped first: the task's future (and the borrows it still
        // holds, which end from their own side) goes before the ender.
        #[pin]
        stage: Stage<F, A, Fut>,
        scopes: Carried,
        ender: Ender,
    }
}

pin_project! {
    #[project = StageProj]
    #[project_replace = StageOwn]
    enum Stage<F, A, Fut: Future> {
        Start { f: F, args: A },
        Running { #[pin] fut: Fut },
        Flushing {
            out: Option<std::thread::Result<Fut::Output>>,
            flush: BoxFuture<'static, Result<()>>,
        },
        Done,
    }
}

impl<F, A, Fut: Future> Run<F, A, Fut> {
    pub(crate) fn new(f: F, args: A, scopes: Carried, ender: Ender) -> Self {
        Run {
            stage: Stage::Start { f, args },
            scopes,
            ender,
        }
    }
}

impl<F, A, Fut> Future for Run<F, A, Fut>
where
    F: FnOnce(A) -> Fut,
    Fut: Future,
{
    type Output = Result<Fut::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let out = match this.stage.as_mut().project() {
                StageProj::Start { .. } => {
                    let StageOwn::Start { f, args } =
                        this.stage.as_mut().project_replace(Stage::Done)
                    else {
                        continue;
                    };
                    let stage = this.stage.as_mut();
                    let polled = this.scopes.enter(|| {
                        std::panic::catch_unwind(AssertUnwindSafe(|| {
                            let mut stage = stage;
                            stage.set(Stage::Running { fut: f(args) });
                            match stage.project() {
                                StageProj::Running { fut } => fut.poll(cx),
                                _ => Poll::Pending,
                            }
                        }))
                    });
                    match polled {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(v)) => Ok(v),
                        Err(p) => Err(p),
                    }
                }
                StageProj::Running { fut } => {
                    let polled = this
                        .scopes
                        .enter(|| std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))));
                    match polled {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(v)) => Ok(v),
                        Err(p) => Err(p),
                    }
                }
                StageProj::Flushing { out, flush } => {
                    let flushed = match flush.as_mut().poll(cx) {
                        Poll::Ready(f) => f,
                        Poll::Pending => return Poll::Pending,
                    };
                    let out = out.take();
                    this.stage.set(Stage::Done);
                    return Poll::Ready(match out {
                        Some(out) => settle(out, flushed),
                        None => Err(Error::TaskCancelled {
                            reason: "the task's output was lost".to_owned(),
                        }),
                    });
                }
                StageProj::Done => {
                    return Poll::Ready(Err(Error::TaskCancelled {
                        reason: "the task was polled after it finished".to_owned(),
                    }));
                }
            };
            // The task's future, and everything it held, is gone: end what
            // escaped it, and wait until the releases are applied.
            this.stage.set(Stage::Done);
            let state = &this.ender.0;
            if state.is_empty() {
                return Poll::Ready(settle(out, Ok(())));
            }
            state.end_borrows();
            if let Some(flushed) = state.flushed_now() {
                return Poll::Ready(settle(out, flushed));
            }
            let state = state.clone();
            this.stage.set(Stage::Flushing {
                out: Some(out),
                flush: Box::pin(async move { state.flush().await }),
            });
        }
    }
}
