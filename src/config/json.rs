//! JSON reading that keeps every value's position and reports every problem.
//!
//! serde's derive stops at the first error and forgets where values were, so the
//! files are read in two steps instead: serde_json checks the syntax once and hands
//! out borrowed [`RawValue`]s, whose text is a slice of the file (pointer arithmetic
//! gives its offset, hence line:column); then each value is checked on its own, and
//! a problem in one does not hide the problems in the others.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{ConfigError, Position};

/// The longest duration accepted anywhere: a year. Longer is surely a unit mistake
/// (milliseconds written as seconds) and would overflow timers.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// One file's text, with its line starts indexed to turn byte offsets into positions.
pub(crate) struct Source<'a> {
    file: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    /// A UTF-8 byte-order mark (some Windows editors write one) is skipped: it
    /// is no JSON, and positions count from the first character after it.
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let newlines = text.match_indices('\n').map(|(i, _)| i + 1);
        let line_starts = std::iter::once(0).chain(newlines).collect();
        Source {
            file,
            text,
            line_starts,
        }
    }

    /// The byte offset of `slice` in the file, when it is a slice of it (RawValues
    /// borrowed from the file always are).
    fn offset_of(&self, slice: &str) -> Option<usize> {
        let offset = (slice.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        (offset + slice.len() <= self.text.len()).then_some(offset)
    }

    /// 1-based line and column of a byte offset; columns count characters, as editors do.
    fn position_at(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        let column = match self.text.get(start..offset) {
            Some(prefix) => prefix.chars().count(),
            None => offset - start,
        };
        Position {
            line,
            column: column + 1,
        }
    }

    /// Where a value starts in the file.
    pub(crate) fn position(&self, raw: &RawValue) -> Position {
        self.offset_of(raw.get())
            .map_or_else(Position::default, |offset| self.position_at(offset))
    }

    /// Where a serde_json error inside `slice` (a slice of the file) points in the file.
    /// serde_json counts columns in bytes from 1 (0 at the very start of a line).
    fn error_position(&self, slice: &str, err: &serde_json::Error) -> Position {
        let Some(base) = self.offset_of(slice) else {
            return Position::default();
        };
        let line_start = slice
            .match_indices('\n')
            .nth(err.line().saturating_sub(2))
            .map_or(0, |(i, _)| i + 1);
        let line_start = if err.line() <= 1 { 0 } else { line_start };
        let inner = (line_start + err.column().saturating_sub(1)).min(slice.len());
        self.position_at(base + inner)
    }
}

/// serde_json's message without the " at line L column C" it appends: the position
/// is reported separately, mapped to the whole file.
fn bare_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

/// Collects the problems of one file; `daemon` labels those found inside a daemon.
pub(crate) struct Report<'a> {
    pub(crate) src: Source<'a>,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) daemon: Option<String>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Report {
            src: Source::new(file, text),
            errors: Vec::new(),
            daemon: None,
        }
    }

    /// Records one problem at `pos`.
    pub(crate) fn error(&mut self, pos: Position, field: Option<&str>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.src.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            daemon: self.daemon.clone(),
            field: field.map(str::to_string),
            message: message.into(),
        });
    }

    /// Records a problem about the value `raw`, at its start.
    pub(crate) fn at(&mut self, raw: &RawValue, field: &str, message: impl Into<String>) {
        let pos = self.src.position(raw);
        self.error(pos, Some(field), message);
    }

    /// Records a serde_json error found while reading `slice`, at the place it names.
    fn serde_error(&mut self, slice: &str, field: Option<&str>, err: &serde_json::Error) {
        let pos = self.src.error_position(slice, err);
        self.error(pos, field, bare_message(err));
    }

    /// The number of problems so far, to tell whether a step added any.
    pub(crate) fn count(&self) -> usize {
        self.errors.len()
    }

    /// Checks the whole file's syntax. A syntax error is reported once, where
    /// serde_json found it: nothing after it can be trusted.
    pub(crate) fn document(&mut self) -> Option<&'a RawValue> {
        let text = self.src.text;
        if text.trim().is_empty() {
            // serde_json would say "EOF while parsing a value" at the end.
            self.error(Position { line: 1, column: 1 }, None, "the file is empty");
            return None;
        }
        match serde_json::from_str::<&RawValue>(text) {
            Ok(raw) => Some(raw),
            Err(err) => {
                // Skipping values (as RawValue does) words some errors worse ("key must
                // be a string" for a trailing comma); a full parse says "trailing comma".
                let err = serde_json::from_str::<serde_json::Value>(text)
                    .err()
                    .unwrap_or(err);
                self.serde_error(text, None, &err);
                None
            }
        }
    }
}

/// The JSON type of a value, told by its first character (the syntax is already checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    pub(crate) fn of(raw: &RawValue) -> Kind {
        match raw.get().as_bytes().first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        })
    }
}

/// Checks that `raw` has the JSON type `want`, reporting "expected X, found Y" if not.
pub(crate) fn expect_kind(report: &mut Report, raw: &RawValue, field: &str, want: Kind) -> bool {
    let found = Kind::of(raw);
    if found != want {
        report.at(raw, field, format!("expected {want}, found {found}"));
    }
    found == want
}

/// An object's members in file order, keys and values still raw. Reading it with a
/// visitor (not into a map) keeps repeated keys, so they can be reported.
struct Members<'a>(Vec<(&'a RawValue, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<&'de RawValue>()? {
            members.push((key, map.next_value::<&'de RawValue>()?));
        }
        Ok(Members(members))
    }
}

/// One member of an object: its key as text, and where the key and the value are.
pub(crate) struct Member<'a> {
    pub(crate) key: String,
    pub(crate) key_raw: &'a RawValue,
    pub(crate) value: &'a RawValue,
}

/// Reads the members of an object (the caller has checked it is one).
pub(crate) fn members<'a>(
    report: &mut Report,
    raw: &'a RawValue,
    field: Option<&str>,
) -> Vec<Member<'a>> {
    let members = match serde_json::from_str::<Members<'a>>(raw.get()) {
        Ok(Members(members)) => members,
        Err(err) => {
            report.serde_error(raw.get(), field, &err);
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(members.len());
    for (key_raw, value) in members {
        match serde_json::from_str::<String>(key_raw.get()) {
            Ok(key) => out.push(Member {
                key,
                key_raw,
                value,
            }),
            Err(err) => report.serde_error(key_raw.get(), field, &err),
        }
    }
    out
}

/// The known members of an object, each with the name it is known by.
pub(crate) struct Fields<'a> {
    pub(crate) found: Vec<(&'static str, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    pub(crate) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.found
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, raw)| raw)
    }
}

/// Sorts an object's members into known fields, reporting unknown keys (with the
/// closest known one as a hint, since most are typos) and repeated keys (JSON
/// parsers disagree on which one wins, so neither may be meant). `prefix` is
/// prepended to field names in messages (`health.`).
pub(crate) fn fields<'a>(
    report: &mut Report,
    members: Vec<Member<'a>>,
    known: &[&'static str],
    aliases: &[(&str, &'static str)],
    prefix: &str,
) -> Fields<'a> {
    let mut found: Vec<(&'static str, &'a RawValue)> = Vec::new();
    let mut seen: Vec<(String, Position)> = Vec::new();
    for member in members {
        let key_pos = report.src.position(member.key_raw);
        let field = format!("{prefix}{}", member.key);
        if let Some((_, first)) = seen.iter().find(|(key, _)| *key == member.key) {
            let message = format!(
                "field `{}` is given twice (first at line {}:{})",
                member.key, first.line, first.column
            );
            report.error(key_pos, Some(&field), message);
            continue;
        }
        seen.push((member.key.clone(), key_pos));
        match known.iter().find(|&&name| name == member.key) {
            Some(&name) => found.push((name, member.value)),
            None => {
                let message = unknown_field_message(&member.key, known, aliases);
                report.error(key_pos, Some(&field), message);
            }
        }
    }
    Fields { found }
}

/// "unknown field `vitall`; did you mean `vital`?", or the list of known fields.
fn unknown_field_message(key: &str, known: &[&str], aliases: &[(&str, &str)]) -> String {
    match suggest(key, known, aliases) {
        Some(best) => format!("unknown field `{key}`; did you mean `{best}`?"),
        None => format!(
            "unknown field `{key}`; expected one of: {}",
            known.join(", ")
        ),
    }
}

/// The known name closest to `key`: an alias people commonly use (`cmd`, `env`),
/// or a name within a small edit distance, scaled with the key's length so short
/// keys do not match everything.
pub(crate) fn suggest<'k>(
    key: &str,
    known: &[&'k str],
    aliases: &[(&str, &'k str)],
) -> Option<&'k str> {
    let lower = key.to_ascii_lowercase();
    if let Some(&(_, target)) = aliases.iter().find(|(alias, _)| *alias == lower) {
        return Some(target);
    }
    let limit = (key.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|&name| (edit_distance(&lower, name), name))
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, name)| name)
}

/// Edit distance over characters where swapping two neighbours counts as one edit
/// (optimal string alignment): `wbe` is one typo away from `web`, not two.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d: Vec<usize> = vec![0; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * width + j] + 1)
                    .min(d[i * width + j - 1] + 1)
                    .min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

/// Reads an object's fields, reporting the problem when `raw` is not an object.
pub(crate) fn object<'a>(
    report: &mut Report,
    raw: &'a RawValue,
    field: &str,
    known: &[&'static str],
    prefix: &str,
) -> Option<Fields<'a>> {
    if !expect_kind(report, raw, field, Kind::Object) {
        return None;
    }
    let members = members(report, raw, Some(field));
    Some(fields(report, members, known, &[], prefix))
}

/// The elements of an array, each still raw (so each keeps its position).
pub(crate) fn array<'a>(
    report: &mut Report,
    raw: &'a RawValue,
    field: &str,
) -> Option<Vec<&'a RawValue>> {
    if !expect_kind(report, raw, field, Kind::Array) {
        return None;
    }
    match serde_json::from_str::<Vec<&'a RawValue>>(raw.get()) {
        Ok(items) => Some(items),
        Err(err) => {
            report.serde_error(raw.get(), Some(field), &err);
            None
        }
    }
}

/// A string value. NUL is refused: no path, argument or environment entry can hold it.
pub(crate) fn string(report: &mut Report, raw: &RawValue, field: &str) -> Option<String> {
    if !expect_kind(report, raw, field, Kind::String) {
        return None;
    }
    match serde_json::from_str::<String>(raw.get()) {
        Ok(text) if text.contains('\0') => {
            report.at(raw, field, "must not contain a NUL character (\\u0000)");
            None
        }
        Ok(text) => Some(text),
        Err(err) => {
            report.serde_error(raw.get(), Some(field), &err);
            None
        }
    }
}

/// A string that must not be empty (nor only blanks, which is as good as empty).
pub(crate) fn non_empty_string(report: &mut Report, raw: &RawValue, field: &str) -> Option<String> {
    let text = string(report, raw, field)?;
    if text.trim().is_empty() {
        report.at(raw, field, "must not be empty");
        return None;
    }
    Some(text)
}

/// A string, or `null` for "not set".
pub(crate) fn nullable_string(
    report: &mut Report,
    raw: &RawValue,
    field: &str,
) -> Option<Option<String>> {
    if Kind::of(raw) == Kind::Null {
        return Some(None);
    }
    string(report, raw, field).map(Some)
}

pub(crate) fn boolean(report: &mut Report, raw: &RawValue, field: &str) -> Option<bool> {
    expect_kind(report, raw, field, Kind::Bool).then(|| raw.get() == "true")
}

/// One of a fixed set of words (`"never"`, `"on-failure"`, ...).
pub(crate) fn choice<T: Copy>(
    report: &mut Report,
    raw: &RawValue,
    field: &str,
    choices: &[(&str, T)],
) -> Option<T> {
    let text = string(report, raw, field)?;
    let found = choices
        .iter()
        .find(|(word, _)| *word == text)
        .map(|&(_, value)| value);
    if found.is_none() {
        let words: Vec<String> = choices
            .iter()
            .map(|(word, _)| format!("\"{word}\""))
            .collect();
        report.at(
            raw,
            field,
            format!(
                "invalid value \"{text}\"; expected one of {}",
                words.join(", ")
            ),
        );
    }
    found
}

/// A non-negative integer no larger than `max`. Fractions and `5.0` are refused:
/// a count written with a fraction is a mistake worth pointing out.
pub(crate) fn integer(report: &mut Report, raw: &RawValue, field: &str, max: u64) -> Option<u64> {
    if !expect_kind(report, raw, field, Kind::Number) {
        return None;
    }
    let text = raw.get();
    let value = text.parse::<u64>().ok().filter(|&n| n <= max);
    if value.is_none() {
        let message = if text.starts_with('-') {
            format!("must not be negative, found {text}")
        } else if text.contains(['.', 'e', 'E']) {
            format!("expected a whole number, found {text}")
        } else {
            format!("must be at most {max}, found {text}")
        };
        report.at(raw, field, message);
    }
    value
}

/// A duration in seconds: an integer or a fraction, from 0 up to a year.
pub(crate) fn seconds(report: &mut Report, raw: &RawValue, field: &str) -> Option<Duration> {
    if Kind::of(raw) != Kind::Number {
        // Say the unit: `"10s"` and `"1m"` are the usual mistakes.
        let message = format!("expected a number of seconds, found {}", Kind::of(raw));
        report.at(raw, field, message);
        return None;
    }
    let value = raw.get().parse::<f64>().ok().filter(|v| v.is_finite());
    match value {
        Some(v) if (0.0..=MAX_SECONDS).contains(&v) => Some(Duration::from_secs_f64(v)),
        Some(v) if v < 0.0 => {
            report.at(
                raw,
                field,
                format!("must not be negative, found {}", raw.get()),
            );
            None
        }
        _ => {
            let message = format!(
                "must be a number of seconds up to {MAX_SECONDS} (a year), found {}",
                raw.get()
            );
            report.at(raw, field, message);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_for(text: &str) -> Report<'_> {
        Report::new(Path::new("t.json"), text)
    }

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let text = "[\n  \"é\", 12\n]";
        let mut report = report_for(text);
        let doc = report.document().expect("valid");
        let items = array(&mut report, doc, "x").expect("array");
        assert_eq!(report.src.position(doc), Position { line: 1, column: 1 });
        assert_eq!(
            report.src.position(items[0]),
            Position { line: 2, column: 3 }
        );
        // "é" is two bytes but one column.
        assert_eq!(
            report.src.position(items[1]),
            Position { line: 2, column: 8 }
        );
    }

    #[test]
    fn syntax_error_keeps_serde_position() {
        let text = "[\n  {\"a\": 1,}\n]";
        let mut report = report_for(text);
        assert!(report.document().is_none());
        let err = &report.errors[0];
        assert_eq!((err.line, err.column), (2, 11));
        assert_eq!(err.message, "trailing comma");
    }

    #[test]
    fn error_inside_a_value_maps_to_the_file() {
        // A lone surrogate passes the syntax check but fails when the string is read.
        let text = "{\n  \"k\": \"ab\\uD800\"\n}";
        let mut report = report_for(text);
        let doc = report.document().expect("valid");
        let members = members(&mut report, doc, None);
        assert!(string(&mut report, members[0].value, "k").is_none());
        let err = &report.errors[0];
        assert_eq!(err.line, 2);
        assert!(err.column > 8, "{err}");
    }

    #[test]
    fn suggestions_need_to_be_close() {
        let known = ["name", "vital", "environment", "timeout"];
        assert_eq!(suggest("vitall", &known, &[]), Some("vital"));
        assert_eq!(suggest("Name", &known, &[]), Some("name"));
        assert_eq!(suggest("enviroment", &known, &[]), Some("environment"));
        assert_eq!(suggest("tiemout", &known, &[]), Some("timeout"));
        assert_eq!(suggest("x", &known, &[]), None);
        assert_eq!(suggest("nmae", &known, &[]), Some("name"));
        assert_eq!(edit_distance("wbe", "web"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(suggest("colour", &known, &[]), None);
        assert_eq!(
            suggest("env", &known, &[("env", "environment")]),
            Some("environment")
        );
    }

    #[test]
    fn numbers() {
        let text = "[3, 5.0, -1, 1.5, 1e3, 99999999999999999999999, \"3\", 31536001]";
        let mut report = report_for(text);
        let doc = report.document().expect("valid");
        let items = array(&mut report, doc, "x").expect("array");
        let ints: Vec<_> = items
            .iter()
            .map(|raw| integer(&mut report, raw, "n", 10))
            .collect();
        assert_eq!(ints[0], Some(3));
        assert!(ints[1..].iter().all(Option::is_none));
        report.errors.clear();
        let secs: Vec<_> = items
            .iter()
            .map(|raw| seconds(&mut report, raw, "s"))
            .collect();
        assert_eq!(secs[0], Some(Duration::from_secs(3)));
        assert_eq!(secs[1], Some(Duration::from_secs(5)));
        assert_eq!(secs[2], None);
        assert_eq!(secs[3], Some(Duration::from_millis(1500)));
        assert_eq!(secs[4], Some(Duration::from_secs(1000)));
        assert_eq!(secs[5], None);
        assert_eq!(secs[6], None);
        assert_eq!(secs[7], None);
        assert_eq!(report.errors[0].message, "must not be negative, found -1");
        assert_eq!(
            report.errors[2].message,
            "expected a number of seconds, found a string"
        );
    }
}
