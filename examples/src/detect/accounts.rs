//! The summary's two accounts, built from the record: what became of the slow
//! member freeze by freeze, and who accused healthy members and how they came
//! back.

use std::collections::BTreeSet;
use std::time::Duration;

use dsys_detect::sim::SimEventKind;

use super::cluster::{Report, Story, accuser, min_suspicion, what};
use super::format::{ms, secs, t};
use super::{FREEZE, SLOW};

/// What became of the slow member, freeze by freeze.
pub(super) fn slow_story(story: &Story) -> String {
    let mut parts = Vec::new();
    for (i, (start, end)) in story.schedule.freezes.iter().enumerate() {
        let suspected: Vec<(Duration, u32)> = story
            .events()
            .filter(|(at, _, event)| {
                *at >= *start && *at <= *end && what(event) == (SLOW, SimEventKind::Suspect)
            })
            .filter_map(|(at, _, event)| accuser(event).map(|by| (at, by)))
            .collect();
        // A refutation within a second of waking up answers this freeze's news.
        let refuted = story
            .reports
            .iter()
            .find_map(|(at, observer, report)| match report {
                Report::Refuted { incarnation, .. }
                    if *observer == SLOW && *at >= *end && *at - *end < Duration::from_secs(1) =>
                {
                    Some(*incarnation)
                }
                _ => None,
            });
        let which = if i == 0 {
            "First freeze"
        } else {
            "Second freeze"
        };
        parts.push(match (suspected.first(), refuted) {
            (Some((at, by)), Some(incarnation)) => format!(
                "{which} ({} to {}): node {by} suspected it at {}; on waking it read the \
                 news in its queue and refuted it (incarnation {incarnation}).",
                t(*start),
                t(*end),
                t(*at),
            ),
            (Some((at, by)), None) => format!(
                "{which} ({} to {}): node {by} suspected it at {}.",
                t(*start),
                t(*end),
                t(*at),
            ),
            (None, _) => format!(
                "{which} ({} to {}): nobody noticed; no member's probe of it ran out while it \
                 was frozen.",
                t(*start),
                t(*end),
            ),
        });
    }
    let downs = story.first(SLOW, SimEventKind::Down);
    parts.push(if downs.is_empty() {
        format!(
            "It was never declared Down: a suspicion lasts at least {} here, longer than the \
             {} freeze.",
            secs(min_suspicion(story.sim.node(0).swim.config())),
            secs(FREEZE),
        )
    } else {
        format!(
            "{} members declared it Down before its refutation reached them.",
            downs.len()
        )
    });
    format!("Node {SLOW}. {}", parts.join(" "))
}

/// Who accused healthy members, and how they came back.
pub(super) fn accused_story(story: &Story, wrongly: &BTreeSet<u32>) -> String {
    let mut parts = Vec::new();
    let mut by_slow_on_waking = false;
    for &subject in wrongly {
        let first = story
            .events()
            .find(|(_, _, event)| what(event) == (subject, SimEventKind::Suspect));
        let refuted = story
            .reports
            .iter()
            .find_map(|(at, observer, report)| match report {
                Report::Refuted { .. } if *observer == subject => Some(*at),
                _ => None,
            });
        let Some((at, _, event)) = first else {
            continue;
        };
        let by = accuser(event).unwrap_or(subject);
        let why = if by == SLOW && story.schedule.wakes_at(at) {
            by_slow_on_waking = true;
            format!(
                ", the instant {SLOW} woke up: a probe of {subject} that {SLOW} had started just \
                 before freezing was long overdue, and the rule turned the missed deadline into a \
                 suspicion at once, although the time that had run out was {SLOW}'s own"
            )
        } else {
            String::new()
        };
        parts.push(format!(
            "Node {subject}, healthy, was suspected by {by} at {}{why}. {}",
            t(at),
            match refuted {
                Some(r) => format!("It refuted {} later.", ms(r - at)),
                None => "It never refuted.".to_owned(),
            }
        ));
    }
    // Lifeguard (section 4.1): the slow member's own health score on waking.
    let health = story
        .reports
        .iter()
        .find_map(|(at, observer, report)| match report {
            Report::Refuted { health, .. } if *observer == SLOW && story.schedule.wakes_at(*at) => {
                Some(*health)
            }
            _ => None,
        });
    if let Some(health) = health.filter(|&h| by_slow_on_waking && h > 0) {
        parts.push(format!(
            "This is the slow member Lifeguard is about. On waking, node {SLOW}'s health score \
             rose to {health} (nacks it never got, a suspicion of itself to refute), so its \
             probe timeouts and period now stretch x{}: while it may be the slow one, it is \
             slower to accuse anyone. Too late for this accusation, which came in the same \
             instant.",
            health + 1
        ));
    }
    parts.join(" ")
}
