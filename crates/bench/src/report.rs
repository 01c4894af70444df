//! The result of a scenario: a table for people and one JSON line for tools.

use std::fmt::Write as _;

use serde::Serialize;

/// One figure of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
