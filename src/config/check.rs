//! Checks a YAML [`Node`] against a schema [`Type`], collecting every
//! problem, and turns what is valid into JSON for typed decoding.

use serde_json::{Map, Value as Json};

use super::problem::{Position, Problem};
use super::rules;
use super::schema::{Field, Type};
use super::yaml::{Node, Value};

/// Collects problems while nodes are checked.
#[derive(Default)]
pub struct Checker {
    pub problems: Vec<Problem>,
}

impl Checker {
    pub fn report(&mut self, position: &Position, message: impl Into<String>) {
        self.problems.push(Problem {
            position: position.clone(),
            message: message.into(),
        });
    }

    fn expected(&mut self, node: &Node, at: &str, what: &str) {
        self.report(
            &node.position,
            format!("{at}: expected {what}, found {}", node.value.kind()),
        );
    }

    /// Checks `node` against `ty`. `at` names the place for messages, such as
    /// `services[2].binds`. Returns the value as JSON when it is valid; a
    /// list or object with bad parts still returns its good parts, so later
    /// checks (duplicate names, say) see as much as possible.
    pub fn check(&mut self, node: &Node, ty: &Type, at: &str) -> Option<Json> {
        match (ty, &node.value) {
            (Type::String, Value::Str(s)) => Some(Json::from(s.as_str())),
            (Type::String, _) => self.mismatch(node, at, "a string"),
            (Type::Bool, Value::Bool(b)) => Some(Json::from(*b)),
            (Type::Bool, _) => self.mismatch(node, at, "true or false"),
            (Type::Integer, Value::Int(i)) => Some(Json::from(*i)),
            (Type::Integer, _) => self.mismatch(node, at, "an integer"),
            (Type::Id, Value::Int(i)) => Some(Json::from(*i)),
            (Type::Id, Value::Str(s)) => Some(Json::from(s.as_str())),
            (Type::Id, _) => self.mismatch(node, at, "a number or a user/group name"),
            (Type::Choice(choices), Value::Str(s)) if choices.contains(&s.as_str()) => {
                Some(Json::from(s.as_str()))
            }
            (Type::Choice(choices), _) => {
                let expected = format!("one of {}", choices.join(", "));
                match &node.value {
                    Value::Str(s) => {
                        self.report(&node.position, format!("{at}: `{s}` is not {expected}"));
                        None
                    }
                    _ => self.mismatch(node, at, &expected),
                }
            }
            (Type::Checked { check, .. }, Value::Str(s)) => match check(s) {
                Ok(()) => Some(Json::from(s.as_str())),
                Err(message) => {
                    self.report(&node.position, format!("{at}: {message}"));
                    None
                }
            },
            (Type::Checked { what, .. }, _) => self.mismatch(node, at, what),
            (Type::Array(item), Value::Seq(items)) => Some(Json::Array(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| self.check(n, item, &format!("{at}[{i}]")))
                    .collect(),
            )),
            (Type::Array(_), _) => self.mismatch(node, at, "a list"),
            (Type::Capabilities, Value::Seq(items)) => self.capabilities(items, at),
            (Type::Capabilities, _) => self.mismatch(node, at, "a list of capabilities"),
            (Type::StringMap, Value::Map(entries)) => {
                let mut map = Map::new();
                for (key, value) in entries {
                    let at = format!("{at}.{}", key.name);
                    if let Some(v) = self.check(value, &Type::String, &at) {
                        map.insert(key.name.clone(), v);
                    }
                }
                Some(Json::Object(map))
            }
            (Type::StringMap, _) => self.mismatch(node, at, "a mapping of names to strings"),
            (Type::Object(fields), Value::Map(_)) => self.object(node, fields, at),
            (Type::Object(_), _) => self.mismatch(node, at, "a mapping"),
        }
    }

    fn mismatch(&mut self, node: &Node, at: &str, what: &str) -> Option<Json> {
        self.expected(node, at, what);
        None
    }

    /// Checks a mapping against `fields`: unknown keys, missing required
    /// keys, and each value. A null value counts as absent, as in LinuxKit.
    pub fn object(&mut self, node: &Node, fields: &[Field], at: &str) -> Option<Json> {
        let Value::Map(entries) = &node.value else {
            return self.mismatch(node, at, "a mapping");
        };
        let mut map = Map::new();
        for (key, value) in entries {
            let Some(field) = fields.iter().find(|f| f.name == key.name) else {
                let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
                self.report(
                    &key.position,
                    format!(
                        "{at}: unknown key `{}`; expected one of: {}",
                        key.name,
                        known.join(", ")
                    ),
                );
                continue;
            };
            if matches!(value.value, Value::Null) {
                continue;
            }
            let at = if at.is_empty() {
                key.name.clone()
            } else {
                format!("{at}.{}", key.name)
            };
            if let Some(v) = self.check(value, &field.ty, &at) {
                map.insert(key.name.clone(), v);
            }
        }
        for field in fields.iter().filter(|f| f.required) {
            if !has_value(entries, field.name) {
                self.report(
                    &node.position,
                    format!("{at}: missing required key `{}`", field.name),
                );
            }
        }
        Some(Json::Object(map))
    }

    fn capabilities(&mut self, items: &[Node], at: &str) -> Option<Json> {
        let mut names = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let Value::Str(name) = &item.value else {
                self.expected(item, &at, "a capability name");
                continue;
            };
            if rules::is_capability_keyword(name) {
                if items.len() > 1 {
                    self.report(
                        &item.position,
                        format!("{at}: `{name}` must be the only entry of the list"),
                    );
                    continue;
                }
            } else if let Err(message) = rules::capability(name) {
                self.report(&item.position, format!("{at}: {message}"));
                continue;
            }
            names.push(Json::from(name.as_str()));
        }
        Some(Json::Array(names))
    }
}

/// Whether `name` is written with a value; a null one counts as missing.
fn has_value(entries: &[(super::yaml::Key, Node)], name: &str) -> bool {
    entries
        .iter()
        .any(|(key, value)| key.name == name && !matches!(value.value, Value::Null))
}
