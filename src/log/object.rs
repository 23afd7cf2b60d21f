//! `"parse": "json"`: telling whether a daemon's line is one JSON object,
//! and reading its level, without building it.
//!
//! A line is carried as an object only when, after leading and trailing
//! JSON whitespace, it is exactly one complete JSON object, valid UTF-8,
//! with nothing after it; anything else (an array, a number, an object with
//! trailing bytes, a piece of a line cut at `max_line_bytes`) stays `line`.
//! The check is one pass of serde_json's parser that keeps nothing but the
//! top-level `level`/`severity` value: keys are borrowed, values are
//! skipped as [`RawValue`] (validated, not built), so no allocation happens
//! for a line whose keys have no escapes. Because the object was parsed
//! whole, its bytes can be copied as they are into a JSON record: they are
//! valid JSON, and they hold no raw newline (the framer cut lines there).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::record::{Level, LineBatch, LineSpan, Stream};
use crate::config::LineParse;

/// A line that is one JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonObject<'a> {
    /// The object's text, from `{` to `}`, as the daemon wrote it.
    pub text: &'a str,
    /// From its top-level `level` (or else `severity`) member, when that is
    /// a level this module knows ([`level_named`], [`level_numbered`]).
    pub level: Option<Level>,
}

/// The line as a JSON object, when it is exactly one (see the module docs).
pub fn parse_object(line: &[u8]) -> Option<JsonObject<'_>> {
    let text = trim_json_whitespace(line);
    // Cheap refusals first: most text lines do not even look like objects.
    if text.first() != Some(&b'{') || text.last() != Some(&b'}') {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let level = deserializer.deserialize_map(LevelOf).ok()?;
    deserializer.end().ok()?;
    Some(JsonObject { text, level })
}

/// The top-level members of an object found by [`parse_object`], in order,
/// each value as the JSON text it was written as; `None` if it is not one
/// (which `parse_object` rules out).
pub fn members(object: &str) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    let mut deserializer = serde_json::Deserializer::from_str(object);
    let members = deserializer.deserialize_map(Members).ok()?;
    deserializer.end().ok()?;
    Some(members)
}

/// The level of one line of `batch` (the syslog severity of its record):
/// its object's `level`/`severity` when the daemon has `"parse": "json"`
/// and the line is an object that gives one, else [`default_level`].
pub fn line_level(batch: &LineBatch, span: LineSpan) -> Level {
    let parsed = (batch.route.parse == LineParse::Json && !span.partial && !batch.continued(span))
        .then(|| parse_object(batch.line(span)))
        .flatten();
    parsed
        .and_then(|object| object.level)
        .unwrap_or_else(|| default_level(batch.stream))
}

/// The level of a record of `stream` when the line says none: `info` for
/// stdout, `error` for stderr (what Docker's syslog driver does), for a
/// sink that needs one (syslog severity). Records carry no `level` key then.
pub fn default_level(stream: Stream) -> Level {
    match stream {
        Stream::Stderr => Level::Error,
        Stream::Stdout | Stream::Event => Level::Info,
    }
}

/// A level name, case-insensitive: `trace`; `debug`; `info`, `information`,
/// `notice`; `warn`, `warning`; `error`, `err`; `fatal`, `critical`, `crit`,
/// `alert`, `emerg`, `emergency`, `panic`. Single letters are not taken.
pub fn level_named(name: &str) -> Option<Level> {
    const NAMES: &[(&str, Level)] = &[
        ("trace", Level::Trace),
        ("debug", Level::Debug),
        ("info", Level::Info),
        ("information", Level::Info),
        ("notice", Level::Info),
        ("warn", Level::Warn),
        ("warning", Level::Warn),
        ("error", Level::Error),
        ("err", Level::Error),
        ("fatal", Level::Fatal),
        ("critical", Level::Fatal),
        ("crit", Level::Fatal),
        ("alert", Level::Fatal),
        ("emerg", Level::Fatal),
        ("emergency", Level::Fatal),
        ("panic", Level::Fatal),
    ];
    NAMES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|&(_, level)| level)
}

/// A numeric level as bunyan and pino write them: 10 trace, 20 debug,
/// 30 info, 40 warn, 50 error, 60 fatal; a number in between takes the
/// level below it. Numbers under 10 or over 69 are not levels (syslog's
/// 0..7 run the other way; guessing would be wrong half the time).
pub fn level_numbered(n: i64) -> Option<Level> {
    Some(match n {
        10..=19 => Level::Trace,
        20..=29 => Level::Debug,
        30..=39 => Level::Info,
        40..=49 => Level::Warn,
        50..=59 => Level::Error,
        60..=69 => Level::Fatal,
        _ => return None,
    })
}

/// The level a member's raw value gives: a string name or an integer.
fn level_of_value(raw: &RawValue) -> Option<Level> {
    let text = raw.get();
    if text.starts_with('"') {
        let name: Cow<'_, str> = serde_json::from_str(text).ok()?;
        level_named(&name)
    } else {
        level_numbered(text.parse().ok()?)
    }
}

/// JSON's whitespace (space, tab, CR, LF) trimmed from both ends.
fn trim_json_whitespace(mut bytes: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    while let Some((first, rest)) = bytes.split_first() {
        if !ws(first) {
            break;
        }
        bytes = rest;
    }
    while let Some((last, rest)) = bytes.split_last() {
        if !ws(last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// A key, borrowed from the line unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Validates an object, keeping the level of its first top-level `level`
/// member, else of its first `severity` member (keys matched exactly, as
/// loggers write them in lower case).
struct LevelOf;

impl<'de> Visitor<'de> for LevelOf {
    type Value = Option<Level>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Level>, A::Error> {
        let (mut level, mut severity) = (None, None);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            // Other values are only validated, not even delimited.
            match &*key {
                "level" if level.is_none() => {
                    level = Some(level_of_value(map.next_value::<&'de RawValue>()?));
                }
                "severity" if severity.is_none() => {
                    severity = Some(level_of_value(map.next_value::<&'de RawValue>()?));
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(level.flatten().or(severity.flatten()))
    }
}

/// Collects an object's top-level members (see [`members`]).
struct Members;

impl<'de> Visitor<'de> for Members {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            members.push((key, map.next_value()?));
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_whole_object_is_an_object() {
        fn object(s: &str) -> Option<&str> {
            parse_object(s.as_bytes()).map(|o| o.text)
        }
        assert_eq!(object(r#"{"a":1}"#), Some(r#"{"a":1}"#));
        assert_eq!(
            object(" \t{ \"a\" : [1, {}] }\r "),
            Some("{ \"a\" : [1, {}] }")
        );
        assert_eq!(object("{}"), Some("{}"));
        for not in [
            "",
            "plain text",
            "[1,2]",
            "42",
            "\"{}\"",
            "{",
            "{\"a\":1",
            "{\"a\":1} trailing",
            "{\"a\":1}{\"b\":2}",
            "{\"a\":1}}",
            "{a:1}",
            "{\"a\":1,}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":01}",
            "{\"a\" 1}",
            "x {\"a\":1}",
        ] {
            assert_eq!(object(not), None, "{not:?}");
        }
        // Invalid UTF-8, even inside a string, is not carried as an object.
        assert_eq!(parse_object(b"{\"a\":\"\xff\"}"), None);
        // Deep nesting is skipped without recursion: still one object.
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(object(&deep), Some(deep.as_str()));
    }

    #[test]
    fn level_comes_from_level_then_severity() {
        let level = |s: &str| parse_object(s.as_bytes()).and_then(|o| o.level);
        assert_eq!(level(r#"{"level":"WARNING","msg":"x"}"#), Some(Level::Warn));
        assert_eq!(
            level(r#"{"msg":"x","severity":"Error"}"#),
            Some(Level::Error)
        );
        assert_eq!(
            level(r#"{"severity":"error","level":"debug"}"#),
            Some(Level::Debug)
        );
        // An unknown level value leaves severity to decide.
        assert_eq!(
            level(r#"{"level":"loud","severity":"info"}"#),
            Some(Level::Info)
        );
        assert_eq!(level(r#"{"level":30}"#), Some(Level::Info));
        assert_eq!(level(r#"{"level":60,"msg":"down"}"#), Some(Level::Fatal));
        assert_eq!(level(r#"{"level":3}"#), None);
        assert_eq!(level(r#"{"level":30.5}"#), None);
        assert_eq!(level(r#"{"level":null}"#), None);
        assert_eq!(level(r#"{"level":{"name":"warn"}}"#), None);
        assert_eq!(level(r#"{"lvl":"warn"}"#), None);
        // Only top-level members count.
        assert_eq!(level(r#"{"inner":{"level":"error"}}"#), None);
        // Escapes in keys and values are understood.
        assert_eq!(level(r#"{"lev\u0065l":"\u0065rror"}"#), Some(Level::Error));
    }

    #[test]
    fn level_names_and_numbers() {
        let cases = [
            ("trace", Level::Trace),
            ("DEBUG", Level::Debug),
            ("Info", Level::Info),
            ("notice", Level::Info),
            ("warn", Level::Warn),
            ("warning", Level::Warn),
            ("err", Level::Error),
            ("error", Level::Error),
            ("fatal", Level::Fatal),
            ("CRITICAL", Level::Fatal),
            ("panic", Level::Fatal),
        ];
        for (name, level) in cases {
            assert_eq!(level_named(name), Some(level), "{name}");
        }
        assert_eq!(level_named("w"), None);
        assert_eq!(level_named(""), None);
        let numbers = [
            (10, Level::Trace),
            (20, Level::Debug),
            (30, Level::Info),
            (35, Level::Info),
            (40, Level::Warn),
            (50, Level::Error),
            (60, Level::Fatal),
        ];
        for (n, level) in numbers {
            assert_eq!(level_numbered(n), Some(level), "{n}");
        }
        for n in [-1, 0, 7, 9, 70, 100] {
            assert_eq!(level_numbered(n), None, "{n}");
        }
        assert_eq!(default_level(Stream::Stdout), Level::Info);
        assert_eq!(default_level(Stream::Stderr), Level::Error);
    }

    #[test]
    fn line_level_follows_parse_and_stream() {
        let mut batch = LineBatch::new("d".into(), Stream::Stderr, [b'0'; 24]);
        let mut framer = crate::log::Framer::new(64);
        framer.push(b"{\"level\":\"debug\"}\nplain\n{\"a\":1}\n", &mut batch);
        let spans = batch.lines.clone();
        let levels = |batch: &LineBatch| -> Vec<Level> {
            spans.iter().map(|&span| line_level(batch, span)).collect()
        };
        assert_eq!(levels(&batch), [Level::Error; 3], "no parse: the stream's");
        batch.route.parse = LineParse::Json;
        assert_eq!(levels(&batch), [Level::Debug, Level::Error, Level::Error]);
        batch.stream = Stream::Stdout;
        assert_eq!(levels(&batch), [Level::Debug, Level::Info, Level::Info]);
    }

    #[test]
    fn members_keep_order_and_raw_values() {
        let got = members(r#"{"b":1,"a":{"x":[1, 2]},"c\n":"s"}"#).unwrap();
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (&**k, v.get())).collect();
        assert_eq!(
            got,
            [("b", "1"), ("a", r#"{"x":[1, 2]}"#), ("c\n", "\"s\"")]
        );
    }
}
