//! Where a daemon's lines go (`sinks`) and how they are read (`parse`).
//!
//! [`SinkSet`] is a bitmask over [`SinkKind`]: a batch of lines carries the
//! set of its daemon down the log pipeline, and each sink takes a record
//! only when its kind is in the set. A bitmask because the set is checked
//! once per sink per batch on the hot path (one AND), is `Copy`, and lets
//! handlers added later (network sinks) consult the same value without any
//! change to the pipeline between. It lives here, in the lowest layer, so
//! that config, plan and log all share it without importing one another.

/// A log handler a record can be routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Stdout,
    File,
    Syslog,
    Forward,
    Loki,
    Otlp,
}

impl SinkKind {
    /// Every kind, in the order of their names in messages.
    pub const ALL: [SinkKind; 6] = [
        SinkKind::Stdout,
        SinkKind::File,
        SinkKind::Syslog,
        SinkKind::Forward,
        SinkKind::Loki,
        SinkKind::Otlp,
    ];

    /// The name used in `daemons.json` (`"sinks": ["file"]`).
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Stdout => "stdout",
            SinkKind::File => "file",
            SinkKind::Syslog => "syslog",
            SinkKind::Forward => "forward",
            SinkKind::Loki => "loki",
            SinkKind::Otlp => "otlp",
        }
    }

    /// The kind named `name` (exact, lower case).
    pub fn from_name(name: &str) -> Option<SinkKind> {
        SinkKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of [`SinkKind`]s; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SinkSet(u8);

impl SinkSet {
    /// Every sink: daemons without `sinks`, and pidzero's own events.
    pub const ALL: SinkSet = SinkSet(0b11_1111);
    pub const NONE: SinkSet = SinkSet(0);

    pub fn of(kinds: impl IntoIterator<Item = SinkKind>) -> SinkSet {
        kinds
            .into_iter()
            .fold(SinkSet::NONE, |set, kind| set.with(kind))
    }

    pub fn contains(self, kind: SinkKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn with(self, kind: SinkKind) -> SinkSet {
        SinkSet(self.0 | kind.bit())
    }

    pub fn without(self, kind: SinkKind) -> SinkSet {
        SinkSet(self.0 & !kind.bit())
    }

    /// The sinks in both sets.
    pub fn and(self, other: SinkSet) -> SinkSet {
        SinkSet(self.0 & other.0)
    }

    /// The sinks in either set.
    pub fn or(self, other: SinkSet) -> SinkSet {
        SinkSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether a sink that takes formatted bytes (stdout, the file) is in
    /// the set: the network handlers encode records in their own format,
    /// so lines going only to them need no formatting in the pipeline.
    pub fn takes_formatted(self) -> bool {
        self.contains(SinkKind::Stdout) || self.contains(SinkKind::File)
    }

    /// The kinds in the set, in [`SinkKind::ALL`] order.
    pub fn kinds(self) -> impl Iterator<Item = SinkKind> {
        SinkKind::ALL
            .into_iter()
            .filter(move |kind| self.contains(*kind))
    }
}

impl Default for SinkSet {
    fn default() -> Self {
        SinkSet::ALL
    }
}

/// How a daemon's lines are read (`"parse"` in `daemons.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineParse {
    /// Every line is text (`"line"`).
    #[default]
    Text,
    /// A line that is one JSON object is carried as an object (`"fields"`).
    Json,
}

/// How one daemon's lines are logged: what `plan` hands the runtime for
/// the daemon's pipe readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineRoute {
    pub sinks: SinkSet,
    pub parse: LineParse,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for kind in SinkKind::ALL {
            assert_eq!(SinkKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(SinkKind::from_name("File"), None);
        assert_eq!(SinkKind::from_name("stderr"), None);
    }

    #[test]
    fn a_set_holds_exactly_its_kinds() {
        let set = SinkSet::of([SinkKind::File, SinkKind::Syslog]);
        let kinds: Vec<_> = set.kinds().collect();
        assert_eq!(kinds, [SinkKind::File, SinkKind::Syslog]);
        assert!(!set.contains(SinkKind::Stdout));
        assert!(set.with(SinkKind::Stdout).contains(SinkKind::Stdout));
        assert!(!set.without(SinkKind::File).contains(SinkKind::File));
        assert!(SinkSet::NONE.is_empty());
        assert_eq!(SinkSet::ALL.kinds().count(), SinkKind::ALL.len());
        assert_eq!(SinkSet::default(), SinkSet::ALL);
        assert_eq!(
            set.and(SinkSet::of([SinkKind::Stdout, SinkKind::File])),
            SinkSet::of([SinkKind::File])
        );
        // Every kind has its own bit.
        for a in SinkKind::ALL {
            for b in SinkKind::ALL {
                assert_eq!(SinkSet::of([a]).contains(b), a == b, "{a:?} {b:?}");
            }
        }
    }
}
