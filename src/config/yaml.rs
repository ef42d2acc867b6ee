//! YAML documents as a tree of values that remember where they were written.
//!
//! The configuration is decoded from this tree by hand rather than by serde
//! derive, because derive stops at the first problem and cannot point at the
//! line of a value that is well-formed YAML but wrong for LinuxKit.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Budget, MessageFormatter, Spanned};

use super::problem::{Position, Problem};

/// A YAML value and where it was written.
#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub position: Position,
}

/// The shape of a YAML value. Mapping entries keep their order and the
/// position of each key.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float,
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key: YAML allows any scalar, LinuxKit uses only strings.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub position: Position,
}

impl Value {
    /// What kind of value this is, as an error message says it.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// The deepest nesting of lists and mappings a configuration may have;
/// LinuxKit's schema nests about eight deep.
pub const MAX_DEPTH: usize = 32;
/// The most values a configuration may hold, an alias counting each time
/// it is used, so that a few lines of nested aliases (a "billion laughs")
/// cannot expand without end.
pub const MAX_NODES: usize = 250_000;
/// serde-saphyr decodes nested values recursively, and an unoptimised
/// build spends tens of KiB of stack per level: more than a test thread's
/// 2 MiB at [`MAX_DEPTH`]. Parsing runs on a thread with this much.
const PARSE_STACK: usize = 64 * 1024 * 1024;

/// Parses one YAML document. Syntax errors stop parsing, so there is at most one.
pub fn parse(file: Arc<PathBuf>, text: &str) -> Result<Node, Problem> {
    let decode = || serde_saphyr::from_str_with_options::<Spanned<RawValue>>(text, options());
    let decoded = std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, decode)
        {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => decode(),
        }
    });
    match decoded {
        Ok(raw) => Ok(into_node(raw, &file)),
        Err(error) => {
            let (line, column) = error
                .location()
                .map_or((1, 1), |at| (at.line().max(1), at.column().max(1)));
            Err(Problem {
                position: Position { file, line, column },
                message: format!("invalid YAML: {}", message(&error)),
            })
        }
    }
}

/// serde-saphyr's defaults with ossify's limits.
fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    let budget = options.budget.get_or_insert_with(Budget::default);
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    options.alias_limits.max_total_replayed_events = MAX_NODES;
    options
}

/// What a parse error says, naming ossify's limit when one was reached.
fn message(mut error: &serde_saphyr::Error) -> String {
    while let serde_saphyr::Error::WithSnippet { error: inner, .. }
    | serde_saphyr::Error::AliasError { error: inner, .. } = error
    {
        error = inner;
    }
    match error {
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        } => format!("nested more than {MAX_DEPTH} levels deep, the most a configuration may be"),
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Nodes { .. },
            ..
        }
        | serde_saphyr::Error::AliasReplayLimitExceeded { .. } => format!(
            "more than {MAX_NODES} values, the most a configuration may hold (an alias counts each time it is used)"
        ),
        other => serde_saphyr::DefaultMessageFormatter
            .format_message(other)
            .replace(char::is_control, " "),
    }
}

/// The value as serde-saphyr hands it over; turned into a [`Node`] once the
/// file name is attached.
enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<RawKey>, Spanned<RawValue>)>),
}

/// Keys are decoded as any scalar and shown as text, so `1: x` is reported as
/// an unknown key `1` rather than as a YAML type error.
struct RawKey(String);

fn into_node(raw: Spanned<RawValue>, file: &Arc<PathBuf>) -> Node {
    let at = position(file, &raw);
    let value = match raw.value {
        RawValue::Null => Value::Null,
        RawValue::Bool(b) => Value::Bool(b),
        RawValue::Int(i) => Value::Int(i),
        RawValue::Float(_) => Value::Float,
        RawValue::Str(s) => Value::Str(s),
        RawValue::Seq(items) => Value::Seq(items.into_iter().map(|n| into_node(n, file)).collect()),
        RawValue::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let key = Key {
                        position: position(file, &key),
                        name: key.value.0,
                    };
                    (key, into_node(value, file))
                })
                .collect(),
        ),
    };
    Node {
        position: at,
        value,
    }
}

fn position<T>(file: &Arc<PathBuf>, spanned: &Spanned<T>) -> Position {
    Position {
        file: Arc::clone(file),
        line: spanned.referenced.line().max(1),
        column: spanned.referenced.column().max(1),
    }
}

struct RawValueVisitor;

impl<'de> Visitor<'de> for RawValueVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawValue, E> {
        i64::try_from(v)
            .map(RawValue::Int)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(RawValue::Map(entries))
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawValueVisitor)
    }
}

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = match d.deserialize_any(RawValueVisitor)? {
            RawValue::Null => "null".to_owned(),
            RawValue::Bool(b) => b.to_string(),
            RawValue::Int(i) => i.to_string(),
            RawValue::Float(x) => x.to_string(),
            RawValue::Str(s) => s,
            RawValue::Seq(_) | RawValue::Map(_) => {
                return Err(serde::de::Error::custom("mapping keys must be scalars"));
            }
        };
        Ok(RawKey(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Node, String> {
        parse(Arc::new(PathBuf::from("t.yml")), text).map_err(|problem| problem.message)
    }

    /// Lists nested `depth` deep, in block style.
    fn nested(depth: usize) -> String {
        (0..depth)
            .map(|level| format!("{}- \n", "  ".repeat(level)))
            .collect()
    }

    #[test]
    fn nesting_is_limited_and_never_overflows_the_stack() {
        parse_text(&nested(MAX_DEPTH)).unwrap();
        for text in [nested(MAX_DEPTH + 1), nested(1000)] {
            let message = parse_text(&text).unwrap_err();
            assert!(message.contains("nested more than 32 levels"), "{message}");
        }
        let flow = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(parse_text(&flow).is_err());
    }

    #[test]
    fn aliases_expanding_without_end_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let items = vec![format!("*a{}", level - 1); 10].join(", ");
            text += &format!("a{level}: &a{level} [{items}]\n");
        }
        let message = parse_text(&text).unwrap_err();
        assert!(message.contains("more than 250000 values"), "{message}");
    }
}
