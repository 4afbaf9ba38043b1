//! Machinery for sections 1 and 2: the seed article's three-process run,
//! replayed on [`Process`]es with skewed physical clocks, and checked
//! against the seed's vector clocks before the story reads it.

use std::time::Duration;

use crate::report::{Res, check_eq};

use super::process::{Event, Process, as_array};

/// The seed run, replayed: the processes afterwards and the events in the
/// seed's order (by process).
pub(super) struct SeedRun {
    pub(super) processes: [Process; 3],
    pub(super) events: Vec<Event>,
}

impl SeedRun {
    pub(super) fn replay() -> Res<Self> {
        // B's clock is 40 ms behind A's, C's 25 ms ahead.
        let [mut a, mut b, mut c] = [
            Process::new("A", 0),
            Process::new("B", -40),
            Process::new("C", 25),
        ];
        // Real time passes for everyone alike; the skews stay put.
        let elapse = |ms: u64, ps: [&Process; 3]| {
            for p in ps {
                p.physical.advance(Duration::from_millis(ms));
            }
        };

        let a1 = a.local("a1", "local event")?;
        elapse(1, [&a, &b, &c]);
        let b1 = b.local("b1", "local event")?;
        elapse(1, [&a, &b, &c]);
        let c1 = c.local("c1", "local event")?;
        elapse(2, [&a, &b, &c]);
        let (a2, m1) = a.send("a2", "send m1 to B")?;
        elapse(2, [&a, &b, &c]);
        let b2 = b.receive("b2", "receive m1 from A", &m1)?;
        elapse(2, [&a, &b, &c]);
        let (b3, m2) = b.send("b3", "send m2 to C")?;
        elapse(2, [&a, &b, &c]);
        let c2 = c.receive("c2", "receive m2 from B", &m2)?;

        let events = vec![a1, a2, b1, b2, b3, c1, c2];
        // The seed article's vectors, [A, B, C].
        let seed: [(&str, [u64; 3]); 7] = [
            ("a1", [1, 0, 0]),
            ("a2", [2, 0, 0]),
            ("b1", [0, 1, 0]),
            ("b2", [2, 2, 0]),
            ("b3", [2, 3, 0]),
            ("c1", [0, 0, 1]),
            ("c2", [2, 3, 2]),
        ];
        for (event, (name, expected)) in events.iter().zip(seed) {
            check_eq("event order", &event.name, &name)?;
            check_eq(
                &format!("vector clock of {name} (seed article)"),
                &as_array(&event.vector),
                &expected,
            )?;
        }
        Ok(Self {
            processes: [a, b, c],
            events,
        })
    }

    pub(super) fn event(&self, name: &str) -> Res<&Event> {
        self.events
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| format!("no event {name}").into())
    }
}
