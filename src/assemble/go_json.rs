//! JSON bytes as Go's `json.MarshalIndent(v, "", "    ")` writes them, so
//! that `config.json` and `runtime.json` match LinuxKit's byte for byte.

use serde::Serialize;

/// Serialises `value` with 4-space indentation and no trailing newline.
///
/// Go escapes `<`, `>` and `&` (so JSON can sit in HTML) and the line and
/// paragraph separators U+2028/U+2029 (so it can sit in JavaScript). These
/// characters only ever occur inside strings, so escaping them in the
/// finished text is exact.
pub fn to_vec_indent<T: Serialize>(value: &T) -> Vec<u8> {
    let mut plain = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut plain, formatter);
    value
        .serialize(&mut serializer)
        .expect("runtime configuration types always serialise");
    let plain = String::from_utf8(plain).expect("serde_json writes UTF-8");
    let mut escaped = String::with_capacity(plain.len());
    for c in plain.chars() {
        match c {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\u{2028}' => escaped.push_str("\\u2028"),
            '\u{2029}' => escaped.push_str("\\u2029"),
            c => escaped.push(c),
        }
    }
    escaped.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let text = to_vec_indent(&serde_json::json!({"a": ["x<y>&z\u{2028}"], "b": {}, "c": []}));
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "{\n    \"a\": [\n        \"x\\u003cy\\u003e\\u0026z\\u2028\"\n    ],\n    \"b\": {},\n    \"c\": []\n}"
        );
    }
}
