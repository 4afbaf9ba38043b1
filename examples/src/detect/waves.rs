//! The timeline's rows: members' reports grouped into waves of the same news.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dsys_detect::sim::SimEventKind;

use super::cluster::{Story, accuser, what};

/// One row of the timeline: a wave of the same news about one member.
pub(super) struct Wave {
    pub(super) at: Duration,
    pub(super) last: Duration,
    pub(super) subject: u32,
    pub(super) kind: SimEventKind,
    /// `(observer, accuser)` per report, in time order.
    pub(super) seen: Vec<(u32, Option<u32>)>,
}

impl Wave {
    /// Groups the reports into waves: the same kind of news about the same
    /// member, each report less than `GAP` after the previous one.
    pub(super) fn all(story: &Story) -> Vec<Wave> {
        const GAP: Duration = Duration::from_secs(3);
        let mut open: BTreeMap<(u32, u8), usize> = BTreeMap::new();
        let mut waves: Vec<Wave> = Vec::new();
        for (at, observer, event) in story.events() {
            let (subject, kind) = what(event);
            let key = (subject, kind as u8);
            match open.get(&key) {
                Some(&i) if at - waves[i].last < GAP => {
                    waves[i].last = at;
                    waves[i].seen.push((observer, accuser(event)));
                }
                _ => {
                    open.insert(key, waves.len());
                    waves.push(Wave {
                        at,
                        last: at,
                        subject,
                        kind,
                        seen: vec![(observer, accuser(event))],
                    });
                }
            }
        }
        waves
    }

    pub(super) fn observers(&self) -> usize {
        self.seen
            .iter()
            .map(|(observer, _)| *observer)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// The accusers the reports name (the `by` of Suspect and Down), in the
    /// order they first appear.
    pub(super) fn accusers(&self) -> Vec<u32> {
        let mut named = Vec::new();
        for by in self.seen.iter().filter_map(|(_, by)| *by) {
            if !named.contains(&by) {
                named.push(by);
            }
        }
        named
    }

    /// `by 15 and 12`.
    pub(super) fn by(&self) -> String {
        let named: Vec<String> = self.accusers().iter().map(u32::to_string).collect();
        if named.is_empty() {
            String::new()
        } else {
            format!(" by {}", named.join(" and "))
        }
    }

    /// What happened, and who started it.
    pub(super) fn describe(&self) -> String {
        let subject = self.subject;
        match self.kind {
            SimEventKind::Suspect => format!("{subject} suspected{}", self.by()),
            SimEventKind::Down => {
                let own = self.seen.iter().filter(|(o, by)| Some(*o) == *by).count();
                let first = self.seen.first().and_then(|(_, by)| *by).unwrap_or(subject);
                format!(
                    "{subject} declared Down, first by {first}: {own} on their own timer, {} \
                     by gossip",
                    self.seen.len() - own
                )
            }
            SimEventKind::Up => format!("{subject} Alive again"),
            SimEventKind::Rejoined => format!("{subject} rejoins"),
            SimEventKind::Left => format!("{subject} left"),
        }
    }
}
