//! The result of a scenario: a table for people and one JSON line for tools, and
//! [`ReportLine`], which reads that line back.

use std::fmt::{self, Write as _};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// One figure of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Value {
    /// A count.
    Int(u64),
    /// A measured quantity.
    Float(f64),
    /// A label.
    Text(String),
}

impl Value {
    fn render(&self) -> String {
        match self {
            Self::Int(n) => n.to_string(),
            Self::Float(x) if x.abs() >= 100.0 => format!("{x:.0}"),
            Self::Float(x) => format!("{x:.3}"),
            Self::Text(s) => s.clone(),
        }
    }
}

/// The figures of one scenario run, in a fixed order.
///
/// ```
/// use cerebrum_bench::{Report, Value};
/// let mut report = Report::new("ping");
/// report.push("connections", Value::Int(10));
/// assert_eq!(report.json_line(), r#"{"scenario":"ping","connections":10}"#);
/// assert!(report.table().contains("connections"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    scenario: &'static str,
    figures: Vec<(&'static str, Value)>,
}

impl Report {
    /// An empty report of `scenario`.
    #[must_use]
    pub fn new(scenario: &'static str) -> Self {
        Self {
            scenario,
            figures: Vec::new(),
        }
    }

    /// Adds a figure.
    pub fn push(&mut self, name: &'static str, value: Value) {
        self.figures.push((name, value));
    }

    /// The scenario's name.
    #[must_use]
    pub fn scenario(&self) -> &str {
        self.scenario
    }

    /// The figure called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.figures
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// A two-column table.
    #[must_use]
    pub fn table(&self) -> String {
        let width = self
            .figures
            .iter()
            .map(|(n, _)| n.len())
            .max()
            .unwrap_or(0)
            .max(8);
        let mut out = format!("{:<width$}  {}\n", "scenario", self.scenario);
        for (name, value) in &self.figures {
            let _ = writeln!(out, "{name:<width$}  {}", value.render());
        }
        out
    }

    /// One JSON object on one line: `scenario` first, then the figures in order.
    #[must_use]
    pub fn json_line(&self) -> String {
        let mut out = String::from("{\"scenario\":");
        out.push_str(&json(&self.scenario));
        for (name, value) in &self.figures {
            let _ = write!(out, ",{}:{}", json(name), json(value));
        }
        out.push('}');
        out
    }
}

fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// A report read back from its [`Report::json_line`]: the scenario and the figures, in the
/// order they were written.
///
/// ```
/// use cerebrum_bench::report::{ReportLine, Value};
/// let line = ReportLine::parse(r#"{"scenario":"ping","connections":10,"p50_ms":0.25}"#)?;
/// assert_eq!(line.scenario, "ping");
/// assert_eq!(line.figures[0], ("connections".to_owned(), Value::Int(10)));
/// assert_eq!(line.numbers().collect::<Vec<_>>(), [("connections", 10.0), ("p50_ms", 0.25)]);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReportLine {
    /// The scenario's name.
    pub scenario: String,
    /// The figures other than `scenario`, in order.
    pub figures: Vec<(String, Value)>,
}

impl ReportLine {
    /// Reads a JSON line that [`Report::json_line`] wrote.
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// The numeric figures (counts and quantities), in order, as `f64`.
    pub fn numbers(&self) -> impl Iterator<Item = (&str, f64)> {
        self.figures.iter().filter_map(|(name, value)| match value {
            Value::Int(n) => Some((name.as_str(), *n as f64)),
            Value::Float(x) => Some((name.as_str(), *x)),
            Value::Text(_) => None,
        })
    }
}

impl<'de> Deserialize<'de> for ReportLine {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Reads the object's entries in order (a map type would sort or hash them).
        struct LineVisitor;

        impl<'de> Visitor<'de> for LineVisitor {
            type Value = ReportLine;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with a `scenario` string and flat figures")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ReportLine, A::Error> {
                let mut scenario = None;
                let mut figures = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if name == "scenario" {
                        scenario = Some(map.next_value::<String>()?);
                    } else {
                        figures.push((name, map.next_value::<Value>()?));
                    }
                }
                let scenario = scenario.ok_or_else(|| de::Error::missing_field("scenario"))?;
                Ok(ReportLine { scenario, figures })
            }
        }

        deserializer.deserialize_map(LineVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_reads_back_into_the_same_figures() {
        let mut report = Report::new("fanout");
        report.push("subscribers", Value::Int(1000));
        report.push("p99_ms", Value::Float(1.5));
        report.push("note", Value::Text("a \"quoted\" é\n".into()));
        report.push("zero", Value::Float(0.0));
        let line = ReportLine::parse(&report.json_line()).unwrap();
        assert_eq!(line.scenario, "fanout");
        assert_eq!(
            line.figures,
            [
                ("subscribers".to_owned(), Value::Int(1000)),
                ("p99_ms".to_owned(), Value::Float(1.5)),
                ("note".to_owned(), Value::Text("a \"quoted\" é\n".into())),
                // serde_json writes 0.0 as `0.0`, read back as a float.
                ("zero".to_owned(), Value::Float(0.0)),
            ]
        );
        assert_eq!(
            line.numbers().collect::<Vec<_>>(),
            [("subscribers", 1000.0), ("p99_ms", 1.5), ("zero", 0.0)]
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        for line in [
            "",
            "a table",
            "{}",
            r#"{"connections":1}"#,
            r#"{"scenario":"ping","nested":{"a":1}}"#,
            r#"{"scenario":"ping","flag":true}"#,
            r#"{"scenario":"ping"} trailing"#,
        ] {
            assert!(ReportLine::parse(line).is_err(), "{line:?}");
        }
        assert_eq!(
            ReportLine::parse(r#"{"scenario":"ping"}"#).unwrap().figures,
            []
        );
    }
}
