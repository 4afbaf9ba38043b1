//! The end-of-run summary's machinery: the table of what became of each member
//! the story is about, the story's claims checked against every member's final
//! state, and the figures its notes quote.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dsys_detect::State;
use dsys_detect::sim::SimEventKind;

use super::cluster::{Story, min_suspicion};
use super::format::t;
use super::waves::Wave;
use super::{CRASHED, NODES, SLOW};
use crate::report::{Res, Table, check, check_eq};

/// One column per member the story is about (the crashed one, the slow one and
/// the `wrongly` accused healthy ones), one row per stage of the news about it.
pub(super) fn table(story: &Story, wrongly: &BTreeSet<u32>) -> Table {
    let sim = &story.sim;
    let mut subjects = vec![
        (CRASHED, format!("node {CRASHED} (crashed)")),
        (SLOW, format!("node {SLOW} (froze twice)")),
    ];
    subjects.extend(wrongly.iter().map(|&n| (n, format!("node {n} (healthy)"))));

    let waves = Wave::all(story);
    let mut columns: Vec<[String; 6]> = Vec::new();
    for (subject, _) in &subjects {
        let subject = *subject;
        let others = Story::others(subject);
        let of = |kind: SimEventKind| -> Vec<&Wave> {
            waves
                .iter()
                .filter(|w| w.subject == subject && w.kind == kind)
                .collect()
        };
        let firsts = |waves: &[&Wave]| -> String {
            if waves.is_empty() {
                return "never".to_owned();
            }
            let firsts: Vec<String> = waves
                .iter()
                .map(|w| match (w.kind, w.accusers().first()) {
                    // Many members' own timers run out; the first is enough here.
                    (SimEventKind::Down, Some(first)) => format!("{} by {first}", t(w.at)),
                    _ => format!("{}{}", t(w.at), w.by()),
                })
                .collect();
            firsts.join(", ")
        };
        let reach = |waves: &[&Wave]| -> String {
            if waves.is_empty() {
                return "-".to_owned();
            }
            let reach: Vec<String> = waves
                .iter()
                .map(|w| format!("{} of {others} by {}", w.observers(), t(w.last)))
                .collect();
            reach.join(", ")
        };
        let (suspected, down) = (of(SimEventKind::Suspect), of(SimEventKind::Down));
        let swim = &sim.node(subject as usize).swim;
        let refutations = if subject == CRASHED {
            "-".to_owned()
        } else {
            format!(
                "{} (incarnation {})",
                swim.counters().refutations,
                swim.incarnation()
            )
        };
        let mut held: BTreeMap<&'static str, usize> = BTreeMap::new();
        for observer in (0..NODES).filter(|&o| o != subject && o != CRASHED) {
            let state = match sim.node(observer as usize).swim.state_of(&subject) {
                Some(State::Alive) => "Alive",
                Some(State::Suspect) => "Suspect",
                Some(State::Down) => "Down",
                Some(State::Left) => "Left",
                None => "unknown",
            };
            *held.entry(state).or_default() += 1;
        }
        let held: Vec<String> = held
            .iter()
            .map(|(state, count)| format!("{state} for {count} of {others}"))
            .collect();
        columns.push([
            firsts(&suspected),
            reach(&suspected),
            firsts(&down),
            reach(&down),
            refutations,
            held.join(", "),
        ]);
    }
    let mut header = vec![String::new()];
    header.extend(subjects.iter().map(|(_, name)| name.clone()));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(&header);
    let end = format!("at {}", t(story.schedule.end));
    let labels = [
        "first suspected",
        "suspicion reached",
        "first declared Down",
        "Down reached",
        "refutations",
        end.as_str(),
    ];
    for (i, label) in labels.iter().enumerate() {
        let mut row = vec![label.to_string()];
        row.extend(columns.iter().map(|column| column[i].clone()));
        table.row(row);
    }
    table
}

/// The story's claims, checked against every member's final state.
pub(super) fn check_claims(story: &Story) -> Res {
    let sim = &story.sim;
    let first_down = story.first(CRASHED, SimEventKind::Down);
    check_eq(
        "members that declared the crashed member Down",
        &first_down.len(),
        &Story::others(CRASHED),
    )?;
    for observer in (0..NODES).filter(|&o| o != CRASHED) {
        let swim = &sim.node(observer as usize).swim;
        check_eq(
            &format!("node {observer}'s view of the crashed member"),
            &swim.state_of(&CRASHED),
            &Some(State::Down),
        )?;
        if observer != SLOW {
            check_eq(
                &format!("node {observer}'s view of the slow member"),
                &swim.state_of(&SLOW),
                &Some(State::Alive),
            )?;
        }
    }
    check(
        "every running member holds every other Alive at the end",
        sim.states_converged(),
    )?;
    check(
        "the slow member refuted a suspicion of itself",
        sim.node(SLOW as usize).swim.counters().refutations > 0,
    )?;
    Ok(())
}

/// The figures the summary's notes quote.
pub(super) struct Figures {
    /// Median time for a wave of news to reach every member.
    pub(super) median: Duration,
    pub(super) gossip: Duration,
    /// When the crashed member was first suspected, and first declared Down.
    pub(super) suspected: Duration,
    pub(super) down: Duration,
    /// When the last member declared it Down.
    pub(super) all_down: Duration,
    pub(super) min_suspicion: Duration,
}

impl Figures {
    pub(super) fn of(story: &Story) -> Res<Self> {
        let mut spreads: Vec<Duration> = Wave::all(story)
            .iter()
            .filter(|wave| wave.observers() == Story::others(wave.subject))
            .map(|wave| wave.last - wave.at)
            .collect();
        spreads.sort();
        let median = spreads.get(spreads.len() / 2).copied().unwrap_or_default();
        let gossip = story.sim.node(0).swim.config().gossip_interval;
        let first_at = |kind| {
            story
                .first(CRASHED, kind)
                .values()
                .map(|(at, _)| *at)
                .min()
                .ok_or("the crashed member was suspected and declared Down")
        };
        let (suspected, down) = (
            first_at(SimEventKind::Suspect)?,
            first_at(SimEventKind::Down)?,
        );
        let all_down = story
            .first(CRASHED, SimEventKind::Down)
            .values()
            .map(|(at, _)| *at)
            .max()
            .unwrap_or(down);
        let min_suspicion = min_suspicion(story.sim.node(0).swim.config());
        Ok(Figures {
            median,
            gossip,
            suspected,
            down,
            all_down,
            min_suspicion,
        })
    }
}
