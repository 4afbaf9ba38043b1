//! Per-step overhead of the saga orchestrator. There is no peer saga crate
//! in Rust worth comparing against, so the reference is a floor: the same
//! three step functions called directly, in order, with no log, retries or
//! recovery. Ratio = time per saga / floor time per saga.
//!
//! Workload: a 3-step saga (create order, deduct inventory, process
//! payment) whose steps return a small output at once, run to completion
//! one saga at a time; criterion time per iteration = one whole saga.
//! - `saga/floor-direct-calls`: the three functions called in order.
//! - `saga/core-memlog`: the sans-IO [`Orchestrator`] driven by hand, every
//!   record appended to a [`MemSagaLog`] (one append per drained batch,
//!   then `on_persisted`), the log forgotten when the saga finishes.
//! - `saga/runner-memlog`: the async [`Runner`] on a [`MemSagaLog`], its
//!   `run_saga` future polled with a no-op waker (every step is ready at
//!   once, so one poll finishes the saga).
//!
//! Run: `cargo bench --manifest-path bench/Cargo.toml --bench saga`.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use dsys_txn::WallTime;
use dsys_txn::saga::{
    Config, MemSagaLog, Orchestrator, Output, Runner, SagaDefinition, SagaId, SagaLog, Step,
    StepContext, StepDefinition, StepError,
};

fn step_fn(step: usize, input: &Bytes) -> Bytes {
    let mut v = Vec::with_capacity(input.len() + 1);
    v.extend_from_slice(input);
    v.push(b'0' + step as u8);
    Bytes::from(v)
}

fn def() -> SagaDefinition {
    SagaDefinition::new("order")
        .step(StepDefinition::new("create_order"))
        .step(StepDefinition::new("deduct_inventory"))
        .step(StepDefinition::new("process_payment"))
}

const NOW: WallTime = WallTime::from_millis(1_700_000_000_000);

fn core_saga(orch: &mut Orchestrator, log: &mut MemSagaLog, id: SagaId, input: &Bytes) {
    orch.start(id, "order", input.clone(), NOW).unwrap();
    let mut batch = Vec::new();
    loop {
        let mut last = None;
        let mut done = false;
        while let Some(out) = orch.poll_output() {
            match out {
                Output::Persist { id, saga, record } => {
                    batch.push((saga, record));
                    last = Some(id);
                }
                Output::Invoke(inv) => {
                    let out = step_fn(inv.step, &inv.input);
                    orch.handle_result(inv.saga, inv.step, inv.kind, inv.attempt, Ok(out), NOW);
                }
                Output::Finished { saga, .. } => {
                    log.forget(saga).unwrap();
                    done = true;
                }
                _ => unreachable!("nothing fails here"),
            }
        }
        if done {
            return;
        }
        let last = last.expect("an unfinished saga has a record to persist");
        log.append(&batch).unwrap();
        batch.clear();
        orch.on_persisted(last);
    }
}

struct Immediate(usize);

// `#[async_trait]` expanded by hand: the bench crate does not depend on
// async-trait.
impl Step for Immediate {
    fn action<'a, 'b>(
        &'a self,
        ctx: StepContext,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, StepError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        let out = step_fn(self.0, &ctx.input);
        Box::pin(async move { Ok(out) })
    }

    fn compensate<'a, 'b>(
        &'a self,
        _ctx: StepContext,
    ) -> Pin<Box<dyn Future<Output = Result<(), StepError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async { Ok(()) })
    }
}

fn saga(c: &mut Criterion) {
    let mut g = c.benchmark_group("saga");
    let input = Bytes::from_static(b"2 widgets");

    g.bench_function("floor-direct-calls", |b| {
        b.iter(|| {
            let mut out = black_box(input.clone());
            for step in 0..3 {
                out = step_fn(step, black_box(&input));
            }
            black_box(out)
        })
    });

    g.bench_function("core-memlog", |b| {
        let mut orch = Orchestrator::new(Config::default()).unwrap();
        orch.define(def()).unwrap();
        let mut log = MemSagaLog::new();
        let mut id = 0;
        b.iter(|| {
            id += 1;
            core_saga(&mut orch, &mut log, SagaId(id), &input);
        })
    });

    g.bench_function("runner-memlog", |b| {
        let mut runner = Runner::new(
            Config::default(),
            MemSagaLog::new(),
            Arc::new(|_| Box::pin(async {})),
            Arc::new(|| NOW),
        )
        .unwrap();
        let steps: Vec<Arc<dyn Step>> = (0..3)
            .map(|i| Arc::new(Immediate(i)) as Arc<dyn Step>)
            .collect();
        runner.register(def(), steps).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let mut id = 0;
        b.iter(|| {
            id += 1;
            let mut fut = Box::pin(runner.run_saga(SagaId(id), "order", input.clone()));
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(r) => black_box(r.unwrap()),
                Poll::Pending => unreachable!("every step is ready at once"),
            };
        })
    });
    g.finish();
}

criterion_group!(benches, saga);
criterion_main!(benches);
