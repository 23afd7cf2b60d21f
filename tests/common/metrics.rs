//! The one parser of the Prometheus text format (0.0.4) the tests read
//! `/metrics` with, as strict as a scraper: every sample belongs to a family
//! announced once by HELP and TYPE, every value is a number, label values are
//! escaped, counters end in `_total`. Used by the in-process API tests and
//! the end-to-end tests alike.

use std::collections::{HashMap, HashSet};

/// One sample line.
#[derive(Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A parsed `/metrics` page.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// The families that have a HELP line.
    pub help: HashSet<String>,
    /// The TYPE of every family.
    pub types: HashMap<String, String>,
    /// Every value by `name{labels}` exactly as written.
    by_key: HashMap<String, f64>,
}

impl Metrics {
    /// The value of the sample written as `key` (`name{labels}`, as on the page).
    pub fn value(&self, key: &str) -> Option<f64> {
        self.by_key.get(key).copied()
    }
}

/// Parses a whole page; panics on anything malformed.
pub fn parse_metrics(text: &str) -> Metrics {
    let mut m = Metrics::default();
    assert!(
        text.ends_with('\n'),
        "the last line must end with a newline"
    );
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').expect("HELP without text");
            assert!(!doc.is_empty());
            assert!(m.help.insert(name.to_owned()), "second HELP for {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE without kind");
            assert!(["counter", "gauge"].contains(&kind), "{kind}");
            assert!(m.types.insert(name.to_owned(), kind.to_owned()).is_none());
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let sample = parse_sample(line);
            assert!(m.help.contains(&sample.name), "no HELP before {line:?}");
            assert!(
                m.types.contains_key(&sample.name),
                "no TYPE before {line:?}"
            );
            if m.types[&sample.name] == "counter" {
                assert!(sample.name.ends_with("_total"), "{line}");
                assert!(sample.value >= 0.0);
            }
            // parse_sample found exactly one space before the value.
            let (key, _) = line.rsplit_once(' ').expect("a sample has a value");
            m.by_key.insert(key.to_owned(), sample.value);
            m.samples.push(sample);
        }
    }
    m
}

/// Parses one sample line; panics on anything malformed.
pub fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .expect("no value");
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (_, c) = chars.next().expect("unterminated labels");
            match c {
                '}' => break,
                ',' => {}
                '=' => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'));
                    let mut value = String::new();
                    loop {
                        match chars.next().expect("unterminated label value").1 {
                            '"' => break,
                            '\\' => match chars.next().expect("dangling escape").1 {
                                'n' => value.push('\n'),
                                c @ ('\\' | '"') => value.push(c),
                                c => panic!("bad escape \\{c} in {line:?}"),
                            },
                            '\n' => panic!("raw newline in a label value"),
                            c => value.push(c),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
        let consumed = chars.next().map_or(inner.len(), |(i, _)| i);
        rest = &inner[consumed..];
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value in {line:?}"));
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("value {value:?} is not a number in {line:?}"));
    Sample {
        name,
        labels,
        value,
    }
}

/// The value of sample `name` with exactly the one label `label` (or none).
pub fn value(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && match label {
                    Some((k, v)) => s.labels == [(k.to_owned(), v.to_owned())],
                    None => s.labels.is_empty(),
                }
        })
        .unwrap_or_else(|| panic!("no {name} {label:?}"))
        .value
}
