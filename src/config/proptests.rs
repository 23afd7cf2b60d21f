//! Properties of the validator over generated documents of roughly the right
//! shape: it never panics, and every problem it reports can be found (a
//! position inside the file, the file's name, and what it is about).

use std::path::Path;

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{daemons, log_http, log_net, parse_daemons, parse_settings, settings, ConfigError};

/// The keys each object may have, as the validator knows them, plus a few
/// mistyped or foreign ones.
fn keys(known: &[&'static str], odd: &[&'static str]) -> Vec<&'static str> {
    known.iter().chain(odd).copied().collect()
}

/// Strings that mean something to some field, and some that are odd anywhere.
const WORDS: &[&str] = &[
    "",
    " ",
    "a",
    "web",
    "main",
    "pidzero",
    "true",
    "/bin/true",
    "sh -c 'exit 1'",
    "echo $HOME",
    "always",
    "on-failure",
    "never",
    "log",
    "inherit",
    "discard",
    "TERM",
    "SIGKILL",
    "HUP",
    "KILL9",
    "0",
    "-1",
    "root",
    "0:0",
    "nobody:nogroup",
    "http://127.0.0.1:1/",
    "https://x/",
    "h:1",
    "127.0.0.1:9090",
    "json",
    "text",
    "logfmt",
    "map",
    "K=v",
    "=v",
    "K",
    "a\u{0}b",
    "é✓",
    "\u{feff}",
    "../x",
];

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-3i64..100).prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep.
fn value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(WORDS), inner), 0..4).prop_map(
                    |members| object(members.into_iter().map(|(k, v)| (k.to_string(), v)))
                ),
            ]
        })
        .boxed()
}

fn object(members: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::Object(members.into_iter().collect::<Map<String, Value>>())
}

/// An object whose keys come mostly from `keys`, with any values, and
/// `special` values for some keys (health inside a daemon, log inside settings).
fn object_of(keys: Vec<&'static str>, special: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop::collection::vec(
        (
            prop::sample::select(keys),
            prop_oneof![3 => value(), 2 => special],
        ),
        0..8,
    )
    .prop_map(|members| object(members.into_iter().map(|(k, v)| (k.to_string(), v))))
    .boxed()
}

fn daemons_document() -> impl Strategy<Value = Value> {
    let health = object_of(keys(daemons::HEALTH_FIELDS, &["intervall"]), leaf());
    let daemon = object_of(
        keys(daemons::FIELDS, &["vitall", "cmd", "", "NAME"]),
        health,
    );
    let element = prop_oneof![6 => daemon, 1 => value()];
    prop_oneof![
        8 => prop::collection::vec(element, 0..5).prop_map(Value::Array),
        1 => value(),
    ]
}

fn settings_document() -> impl Strategy<Value = Value> {
    // `log.syslog` and `log.forward` hold objects of their own.
    let handler = object_of(
        keys(
            &[log_net::SYSLOG_FIELDS, log_http::LOKI_FIELDS].concat(),
            &[log_net::FORWARD_FIELDS, log_http::OTLP_FIELDS].concat(),
        ),
        leaf(),
    );
    let inner = prop_oneof![
        object_of(keys(settings::LOG_FIELDS, &["formatt"]), handler),
        object_of(keys(settings::API_FIELDS, &["port"]), leaf()),
    ]
    .boxed();
    prop_oneof![
        8 => object_of(keys(settings::TOP_FIELDS, &["logg"]), inner),
        1 => value()
    ]
}

/// The file's text: pretty (so errors sit on many lines) or compact.
fn text_of(doc: &Value, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(doc)
    } else {
        serde_json::to_string(doc)
    };
    text.unwrap_or_default()
}

/// Every problem names the file, points inside it, and says what it is about:
/// a field, a daemon, or (for the document as a whole) the top level.
fn assert_findable(errors: &[ConfigError], file: &Path, text: &str) -> Result<(), TestCaseError> {
    let lines = text.lines().count().max(1);
    for err in errors {
        prop_assert_eq!(&err.file, file);
        prop_assert!(
            err.line >= 1 && err.line <= lines,
            "line out of the file: {}",
            err
        );
        prop_assert!(err.column >= 1, "no column: {}", err);
        let whole_document = err.line == 1 && err.column == 1;
        prop_assert!(
            err.field.is_some() || err.daemon.is_some() || whole_document,
            "says nothing of where: {}",
            err
        );
        prop_assert!(!err.message.is_empty(), "no message: {:?}", err);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn daemons_validation_never_panics_and_every_error_is_findable(
        doc in daemons_document(),
        pretty in any::<bool>(),
    ) {
        let file = Path::new("/cfg/daemons.json");
        let text = text_of(&doc, pretty);
        if let Err(errors) = parse_daemons(file, &text) {
            prop_assert!(!errors.is_empty());
            assert_findable(&errors, file, &text)?;
        }
    }

    #[test]
    fn settings_validation_never_panics_and_every_error_is_findable(
        doc in settings_document(),
        pretty in any::<bool>(),
    ) {
        let file = Path::new("/cfg/config.json");
        let text = text_of(&doc, pretty);
        if let Err(errors) = parse_settings(file, &text, Path::new("/cfg"), None) {
            prop_assert!(!errors.is_empty());
            assert_findable(&errors, file, &text)?;
        }
    }
}
