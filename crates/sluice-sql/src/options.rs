//! `WITH (key = value, ...)` options of sources, streams and sinks, with typed
//! getters whose errors name the option, what was expected and where it was written.

use std::time::Duration;

use crate::duration::parse_duration;
use crate::error::{Location, SqlError};

/// One option as written: its value as text and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionValue {
    pub key: String,
    pub value: String,
    pub location: Location,
}

/// The options of one statement, in the order written. Keys are lower-cased.
///
/// ```
/// use sluice_sql::{Options, Location};
/// let mut o = Options::new(Location::new(1, 1));
/// o.insert("rows", "20", Location::new(1, 30));
/// assert_eq!(o.get_usize("rows").unwrap(), Some(20));
/// assert!(o.check_known("console sink", &["rows", "format"]).is_ok());
/// assert!(o.check_known("console sink", &["format"]).unwrap_err().message.contains("unknown option 'rows'"));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    entries: Vec<OptionValue>,
    /// Where the `WITH` clause (or the statement, without one) starts.
    pub location: Location,
}

impl Options {
    pub fn new(location: Location) -> Self {
        Self {
            entries: Vec::new(),
            location,
        }
    }

    pub fn insert(&mut self, key: &str, value: impl Into<String>, location: Location) {
        let key = key.to_ascii_lowercase();
        self.entries.retain(|e| e.key != key);
        self.entries.push(OptionValue {
            key,
            value: value.into(),
            location,
        });
    }

    pub fn iter(&self) -> impl Iterator<Item = &OptionValue> {
        self.entries.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entry(&self, key: &str) -> Option<&OptionValue> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The option's text, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entry(key).map(|e| e.value.as_str())
    }

    /// The option's text, or an error saying it is required by `what`.
    pub fn require(&self, key: &str, what: &str) -> Result<&str, SqlError> {
        self.get(key)
            .ok_or_else(|| SqlError::new(format!("{what} needs the option '{key}'"), self.location))
    }

    fn parse_with<T>(
        &self,
        key: &str,
        expected: &str,
        f: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, SqlError> {
        match self.entry(key) {
            None => Ok(None),
            Some(e) => f(e.value.trim()).map(Some).ok_or_else(|| {
                SqlError::new(
                    format!("option '{key}' must be {expected}, not '{}'", e.value),
                    e.location,
                )
            }),
        }
    }

    pub fn get_usize(&self, key: &str) -> Result<Option<usize>, SqlError> {
        self.parse_with(key, "a non-negative whole number", |v| v.parse().ok())
    }

    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, SqlError> {
        self.parse_with(key, "a non-negative whole number", |v| v.parse().ok())
    }

    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, SqlError> {
        self.parse_with(key, "a number", |v| {
            v.parse().ok().filter(|x: &f64| x.is_finite())
        })
    }

    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, SqlError> {
        self.parse_with(key, "true or false", |v| {
            match v.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" => Some(true),
                "false" | "off" | "no" => Some(false),
                _ => None,
            }
        })
    }

    pub fn get_duration(&self, key: &str) -> Result<Option<Duration>, SqlError> {
        match self.entry(key) {
            None => Ok(None),
            Some(e) => parse_duration(&e.value)
                .map(Some)
                .map_err(|m| SqlError::new(format!("option '{key}': {m}"), e.location)),
        }
    }

    /// One of `choices` (case-insensitive), lower-cased.
    pub fn get_choice(&self, key: &str, choices: &[&str]) -> Result<Option<String>, SqlError> {
        let expected = format!("one of {}", quoted_list(choices));
        self.parse_with(key, &expected, |v| {
            let v = v.to_ascii_lowercase();
            choices.contains(&v.as_str()).then_some(v)
        })
    }

    /// Fails on the first option not in `known`, naming the valid ones.
    pub fn check_known(&self, what: &str, known: &[&str]) -> Result<(), SqlError> {
        for e in &self.entries {
            // A known name ending in '.' admits any key under it (`kafka.`).
            let admitted = known.iter().any(|k| match k.strip_suffix('.') {
                Some(_) => e.key.len() > k.len() && e.key.starts_with(k),
                None => *k == e.key,
            });
            if !admitted {
                return Err(SqlError::new(
                    format!(
                        "unknown option '{}' for {what}; valid options: {}",
                        e.key,
                        quoted_list(known)
                    ),
                    e.location,
                ));
            }
        }
        Ok(())
    }
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        let mut o = Options::new(Location::new(1, 1));
        for (i, (k, v)) in pairs.iter().enumerate() {
            o.insert(k, *v, Location::new(1, 10 + i as u64));
        }
        o
    }

    #[test]
    fn typed_getters_name_the_option_and_place() {
        let o = opts(&[("rows", "many"), ("flag", "yes"), ("every", "2 seconds")]);
        let e = o.get_usize("rows").unwrap_err();
        assert_eq!(
            e.message,
            "option 'rows' must be a non-negative whole number, not 'many'"
        );
        assert_eq!(e.location, Location::new(1, 10));
        assert_eq!(o.get_bool("flag").unwrap(), Some(true));
        assert_eq!(
            o.get_duration("every").unwrap(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(o.get_usize("absent").unwrap(), None);
    }

    #[test]
    fn choices_and_required() {
        let o = opts(&[("format", "TABLE")]);
        assert_eq!(
            o.get_choice("format", &["spark", "table"])
                .unwrap()
                .as_deref(),
            Some("table")
        );
        let e = o.get_choice("format", &["csv"]).unwrap_err();
        assert!(e.message.contains("one of 'csv'"), "{}", e.message);
        assert!(
            o.require("path", "text sink")
                .unwrap_err()
                .message
                .contains("needs the option 'path'")
        );
    }

    #[test]
    fn a_known_name_ending_in_a_dot_admits_keys_under_it() {
        let mut o = Options::new(Location::new(1, 1));
        o.insert("kafka.security.protocol", "SSL", Location::new(1, 5));
        assert!(
            o.check_known("the kafka source", &["brokers", "kafka."])
                .is_ok()
        );
        o.insert("kafka.", "x", Location::new(1, 9));
        let e = o
            .check_known("the kafka source", &["brokers", "kafka."])
            .unwrap_err();
        assert!(e.to_string().contains("unknown option 'kafka.'"), "{e}");
    }
}
