//! The chapter's script: the three replicas, the network of each sync, the page views
//! of the rounds of sections 1 to 3 (and what a correct counter reads after each), and
//! the likes and unlikes of section 4, and the shopper's operations of section 5.

/// The replicas, by index.
pub(super) const NAMES: [&str; 3] = ["seoul", "tokyo", "virginia"];

pub(super) const SEOUL: usize = 0;

pub(super) const TOKYO: usize = 1;

pub(super) const VIRGINIA: usize = 2;

/// The network during one sync.
#[derive(Debug, Clone, Copy)]
pub(super) struct Net {
    /// A replica cut off: every message to or from it is lost.
    pub(super) cut: Option<usize>,
    /// A link `(from, to)` whose first message arrives twice (a retry after a
    /// timeout, when the first copy had arrived after all).
    pub(super) duplicate: Option<(usize, usize)>,
}

/// Every message arrives, once.
pub(super) const CONNECTED: Net = Net {
    cut: None,
    duplicate: None,
};

/// Virginia is cut off from the other two.
pub(super) const VIRGINIA_CUT: Net = Net {
    cut: Some(VIRGINIA),
    duplicate: None,
};

impl Net {
    /// Whether `a` and `b` can talk.
    pub(super) fn connects(&self, a: usize, b: usize) -> bool {
        self.cut.is_none_or(|cut| cut != a && cut != b)
    }
}

/// One round: views arrive at every replica, then one sync.
pub(super) struct Round {
    /// The table's label for the arrivals.
    pub(super) arrive: &'static str,
    /// The table's label for the sync.
    pub(super) sync: &'static str,
    /// Page views arriving at each replica.
    pub(super) views: [u64; 3],
    /// The network during the sync.
    pub(super) net: Net,
}

/// The run of sections 1 to 3.
pub(super) const ROUNDS: [Round; 5] = [
    Round {
        arrive: "1 views arrive",
        sync: "1 sync",
        views: [120, 95, 40],
        net: CONNECTED,
    },
    Round {
        arrive: "2 views arrive",
        sync: "2 sync, one message twice",
        views: [130, 110, 55],
        net: Net {
            cut: None,
            duplicate: Some((SEOUL, TOKYO)),
        },
    },
    Round {
        arrive: "3 virginia cut off; views",
        sync: "3 sync, virginia cut off",
        views: [90, 105, 210],
        net: VIRGINIA_CUT,
    },
    Round {
        arrive: "4 views arrive",
        sync: "4 sync, virginia cut off",
        views: [75, 100, 240],
        net: VIRGINIA_CUT,
    },
    Round {
        arrive: "5 healed; views arrive",
        sync: "5 sync",
        views: [60, 70, 80],
        net: CONNECTED,
    },
];

/// Views served at `replica` in rounds `..rounds`.
pub(super) fn served(replica: usize, rounds: usize) -> u64 {
    ROUNDS[..rounds].iter().map(|r| r.views[replica]).sum()
}

/// Views served anywhere in rounds `..rounds`.
pub(super) fn total(rounds: usize) -> u64 {
    (0..NAMES.len()).map(|i| served(i, rounds)).sum()
}

/// What a correct counter at `reader` reads after the sync of round `last`
/// (0-based): a view served at `origin` in round `s` has arrived if some sync
/// from round `s` to `last` connected the two (a replica that forwards what
/// it hears, or a sender that retries, gets it through at the first chance).
pub(super) fn reachable(reader: usize, last: usize) -> u64 {
    (0..=last)
        .flat_map(|s| (0..NAMES.len()).map(move |origin| (s, origin)))
        .filter(|&(s, origin)| {
            origin == reader
                || ROUNDS[s..=last]
                    .iter()
                    .any(|r| r.net.connects(reader, origin))
        })
        .map(|(s, origin)| ROUNDS[s].views[origin])
        .sum()
}

/// What a correct counter at `reader` reads in round `round` (0-based): after the
/// views arrive, or (`synced`) after the round's sync.
pub(super) fn correct_read(reader: usize, round: usize, synced: bool) -> u64 {
    if synced {
        reachable(reader, round)
    } else if round == 0 {
        served(reader, 1)
    } else {
        reachable(reader, round - 1) + ROUNDS[round].views[reader]
    }
}

/// The partition of [`ROUNDS`]: the index of its first round, and one past its last.
pub(super) fn partition_rounds() -> Option<(usize, usize)> {
    let cut_at = ROUNDS.iter().position(|r| r.net.cut.is_some())?;
    let heal_at = ROUNDS.iter().rposition(|r| r.net.cut.is_some())? + 1;
    Some((cut_at, heal_at))
}

/// One round of section 4: the labels of its two steps, the network, and (likes,
/// unlikes) at each replica.
pub(super) type LikesRound = (&'static str, &'static str, Net, [(u64, u64); 3]);

/// Section 4's rounds: virginia cut off, then healed.
pub(super) const LIKES: [LikesRound; 2] = [
    (
        "1 virginia cut off; likes and unlikes",
        "1 sync, virginia cut off",
        VIRGINIA_CUT,
        [(40, 3), (25, 10), (12, 30)],
    ),
    (
        "2 healed; likes and unlikes",
        "2 sync",
        CONNECTED,
        [(5, 1), (0, 4), (2, 0)],
    ),
];

/// What a shopper does to the cart at one replica.
#[derive(Debug, Clone, Copy)]
pub(super) enum CartOp {
    Add(&'static str),
    Remove(&'static str),
}

/// A round of the cart: its label, the network during its sync, and the
/// shoppers' operations at each replica before it.
pub(super) type CartRound = (&'static str, Net, &'static [(usize, CartOp)]);

pub(super) const CART: [CartRound; 4] = [
    (
        "1 seoul adds book, pen",
        CONNECTED,
        &[(SEOUL, CartOp::Add("book")), (SEOUL, CartOp::Add("pen"))],
    ),
    (
        "2 cut: seoul removes pen; virginia adds pen, mug",
        VIRGINIA_CUT,
        &[
            (SEOUL, CartOp::Remove("pen")),
            (VIRGINIA, CartOp::Add("pen")),
            (VIRGINIA, CartOp::Add("mug")),
        ],
    ),
    (
        "3 healed: tokyo removes book",
        CONNECTED,
        &[(TOKYO, CartOp::Remove("book"))],
    ),
    (
        "4 seoul adds book again",
        CONNECTED,
        &[(SEOUL, CartOp::Add("book"))],
    ),
];
