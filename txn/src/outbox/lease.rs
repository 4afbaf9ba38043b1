//! Sharing partitions among relays: which leases a relay keeps, takes and
//! gives up in one pass. Pure: the relay applies the plan through the store.

use super::store::Lease;
use crate::WallTime;

/// What one relay does with the leases this pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Held and unexpired: renew (same epoch).
    pub(crate) renew: Vec<u32>,
    /// Free or expired: try to take (epoch + 1; another relay may win).
    pub(crate) acquire: Vec<u32>,
    /// Held beyond the fair share: give up so that a newer relay gets them.
    pub(crate) release: Vec<u32>,
}

/// The fair share: `ceil(partitions / relays)`, so the shares of the live
/// relays always cover every partition.
pub(crate) fn fair_share(partitions: u32, relays: u32) -> u32 {
    partitions.div_ceil(relays.max(1))
}

/// The plan for relay `me` given every lease, the live relay count and `now`.
///
/// A relay keeps what it holds up to its share (the lowest partitions), gives
/// up the rest, and tries to take expired or free partitions up to its share,
/// starting at an offset derived from its name so that relays starting
/// together do not all race for partition 0.
pub(crate) fn plan(me: &str, leases: &[Lease], relays: u32, now: WallTime) -> Plan {
    let partitions = u32::try_from(leases.len()).unwrap_or(u32::MAX);
    let share = fair_share(partitions, relays) as usize;
    let mut plan = Plan::default();
    for l in leases.iter().filter(|l| l.owner == me && l.until > now) {
        if plan.renew.len() < share {
            plan.renew.push(l.partition);
        } else {
            plan.release.push(l.partition);
        }
    }
    let want = share - plan.renew.len();
    if want > 0 && !leases.is_empty() {
        let start = crc32c::crc32c(me.as_bytes()) as usize % leases.len();
        plan.acquire = leases[start..]
            .iter()
            .chain(&leases[..start])
            .filter(|l| l.until <= now)
            .map(|l| l.partition)
            .take(want)
            .collect();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(partition: u32, owner: &str, until: u64) -> Lease {
        Lease {
            partition,
            owner: owner.into(),
            until: WallTime::from_nanos(until),
            epoch: 1,
        }
    }

    #[test]
    fn shares_cover_every_partition() {
        for partitions in 1..40 {
            for relays in 1..10 {
                assert!(fair_share(partitions, relays) * relays >= partitions);
            }
        }
        assert_eq!(fair_share(16, 3), 6);
        assert_eq!(fair_share(16, 0), 16);
    }

    #[test]
    fn plan_table() {
        let now = WallTime::from_nanos(100);
        // a holds 0..4 unexpired; 4..6 expired; with 2 relays a keeps 3 (share).
        let leases: Vec<Lease> = (0..6)
            .map(|p| {
                if p < 4 {
                    lease(p, "a", 200)
                } else {
                    lease(p, "b", 100)
                }
            })
            .collect();
        let p = plan("a", &leases, 2, now);
        assert_eq!(p.renew, vec![0, 1, 2]);
        assert_eq!(p.release, vec![3]);
        assert!(p.acquire.is_empty());
        // b holds nothing valid: takes expired ones up to its share (3).
        let p = plan("b", &leases, 2, now);
        assert!(p.renew.is_empty() && p.release.is_empty());
        assert_eq!(p.acquire.len(), 2, "only 4 and 5 are free: {p:?}");
        // Alone, a takes everything free.
        let p = plan("a", &leases, 1, now);
        assert_eq!(p.renew, vec![0, 1, 2, 3]);
        assert_eq!(p.acquire, vec![4, 5]);
    }
}
