//! Trainer-side fields → a [`Rollout`]: the one mapping behind TRL's dataset columns, verl's
//! `ground_truth`/`extra_info` and OpenRLHF's `labels`.
//!
//! A trainer hands verdict a prompt, a completion and whatever its dataset row carries. Those
//! fields become the rest of a rollout, as if they were keys of a JSONL line:
//!
//! - `tests`, `reference`, `setup`, `entry_point`, `problem_id`, `limits` are the rollout's own
//!   fields. `tests` may also be JSON text, or a list of assert statements (strings);
//! - everything else is kept in [`Rollout::extra`], where the dataset adapters
//!   ([`crate::adapters`]) find `test` + `entry_point` (HumanEval), `test_list` (MBPP),
//!   `input_output` or `inputs`/`outputs` (verl/PRIME/APPS), `verification_info` (open-r1),
//!   `public_test_cases` (LiveCodeBench), and a problem's `time_limit` (TACO, CodeContests;
//!   [`crate::adapters::time_limit_ms`]). Their decoding is the adapters' business, not this
//!   module's: a JSON-text column is passed on as text, and the adapters are asked once, so a
//!   field they cannot read is an error here, naming it.
//!
//! [`label_fields`] reads an OpenRLHF label and [`verl_raw_fields`] a verl `ground_truth` and
//! `extra_info` into such fields.
//!
//! **Numbers stay exact.** The fields are [`Fields`]: each one's JSON text as it arrived (a
//! [`RawValue`]), never a `serde_json::Value`, which reads an integer beyond 64 bits as an
//! `f64`. The rollout's JSON text is written from those pieces and read by
//! [`Rollout::from_json`], as a JSONL line is, so a call test's `expected`
//! `123456789012345678901234567890` is compared digit for digit on every path. The
//! `Value`-taking [`rollout_from_fields`] and [`verl_fields`] are for callers that hold decoded
//! values already (whatever those lost, they lost before verdict saw them); a caller with JSON
//! text keeps it exact with [`Fields::from_json`] and [`rollout_from_raw_fields`].

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::depth::{deeper_than, value_depth, MAX_ROLLOUT_DEPTH};
use crate::field_error::FieldError;
use crate::rollout::Rollout;

/// The fields a trainer may set that are not the rollout's own: `prompt` and `completion` come
/// from the trainer, `id` from the caller.
const GIVEN: [&str; 3] = ["id", "prompt", "completion"];

/// Dataset fields (a row's columns, a label's keys), each kept as its JSON text exactly as it
/// arrived, in order. A key set twice keeps its first place and its last value, as a JSON
/// object read into a `serde_json::Map` does.
#[derive(Clone, Debug, Default)]
pub struct Fields {
    entries: Vec<(String, Box<RawValue>)>,
    /// Where each key is in `entries` (an object may have many keys: no linear searches).
    index: HashMap<String, usize>,
}

impl Fields {
    /// No fields.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// The fields of `text`, JSON text of an object, every value exactly as written.
    pub fn from_json(text: &str) -> Result<Fields, FieldError> {
        serde_json::from_str(text)
            .map_err(|e| FieldError::whole(format!("not a JSON object of fields: {e}")))
    }

    /// The fields of values decoded already, written out as JSON text (their depth measured
    /// first: writing a value out recurses).
    pub fn from_values(map: &Map<String, Value>) -> Result<Fields, FieldError> {
        map.iter()
            .map(|(key, value)| Ok((key.clone(), value_text(value, key)?)))
            .collect()
    }

    /// The value of `key`, as its JSON text.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.index.get(key).map(|&i| &*self.entries[i].1)
    }

    /// Whether `key` is set (to anything, `null` included).
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Set `key` to `value`: in its place if it is set already, else last.
    pub fn insert(&mut self, key: impl Into<String>, value: Box<RawValue>) {
        let key = key.into();
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    /// The fields in order, each with its value's JSON text.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), &**v))
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fields as the JSON text of one object, every value as it arrived.
    pub fn to_json(&self) -> String {
        let mut object = ObjectText::new();
        for (key, value) in self.iter() {
            object.push(key, value.get());
        }
        object.finish()
    }

    /// The fields as decoded values, for callers that want `serde_json::Value`s: integers
    /// beyond 64 bits become floats there (see the module docs).
    pub fn to_values(&self) -> Result<Map<String, Value>, FieldError> {
        self.iter()
            .map(|(key, value)| {
                serde_json::from_str(value.get())
                    .map(|v| (key.to_string(), v))
                    .map_err(|e| FieldError::new(key, e.to_string()))
            })
            .collect()
    }
}

impl Extend<(String, Box<RawValue>)> for Fields {
    fn extend<I: IntoIterator<Item = (String, Box<RawValue>)>>(&mut self, fields: I) {
        for (key, value) in fields {
            self.insert(key, value);
        }
    }
}

impl FromIterator<(String, Box<RawValue>)> for Fields {
    fn from_iter<I: IntoIterator<Item = (String, Box<RawValue>)>>(fields: I) -> Fields {
        let mut all = Fields::new();
        all.extend(fields);
        all
    }
}

impl IntoIterator for Fields {
    type Item = (String, Box<RawValue>);
    type IntoIter = std::vec::IntoIter<(String, Box<RawValue>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// A JSON object, each value kept as its text (serde_json's deserializer only).
impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of fields")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Fields::new();
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.insert(key, value);
                }
                Ok(fields)
            }
        }

        d.deserialize_map(FieldsVisitor)
    }
}

/// The JSON text of a decoded `value` (of `field`), its depth measured first.
fn value_text(value: &Value, field: &str) -> Result<Box<RawValue>, FieldError> {
    // Inside the rollout's object, a field's value is one level deeper.
    if value_depth(value) >= MAX_ROLLOUT_DEPTH {
        return Err(too_deep().within(field));
    }
    Ok(serde_json::value::to_raw_value(value).expect("a JSON value writes out"))
}

fn too_deep() -> FieldError {
    FieldError::whole(format!(
        "nested deeper than the limit of {MAX_ROLLOUT_DEPTH} levels for a rollout"
    ))
}

/// JSON text of an object, written from its keys and its values' JSON text.
struct ObjectText(String);

impl ObjectText {
    fn new() -> ObjectText {
        ObjectText(String::from("{"))
    }

    fn push(&mut self, key: &str, value: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push_str(&json_string(key));
        self.0.push(':');
        self.0.push_str(value);
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string writes out")
}

/// JSON text written from valid JSON pieces.
fn raw_json(text: String) -> Box<RawValue> {
    RawValue::from_string(text).expect("written from valid JSON pieces")
}

/// What a JSON value is (by its first character).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    List,
    Object,
}

fn kind(value: &RawValue) -> Kind {
    match value.get().trim_start().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::List,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

fn kind_of(value: &RawValue) -> &'static str {
    match kind(value) {
        Kind::Null => "null",
        Kind::Bool => "a boolean",
        Kind::Number => "a number",
        Kind::String => "a string",
        Kind::List => "a list",
        Kind::Object => "an object",
    }
}

/// The JSON value written as text inside the JSON string `value`, exactly as written there.
fn json_in_string(value: &RawValue) -> Result<Box<RawValue>, serde_json::Error> {
    let text: String = serde_json::from_str(value.get())?;
    serde_json::from_str(&text)
}

/// The rollout `id` for `completion` to `prompt`, with the rest of its fields taken from
/// `fields` (see the module docs), every number exactly as written there. `id`, `prompt` and
/// `completion` in `fields` are ignored, and so is a field that is `null`.
pub fn rollout_from_raw_fields(
    id: &str,
    prompt: &str,
    completion: &str,
    fields: &Fields,
) -> Result<Rollout, FieldError> {
    let mut line = ObjectText::new();
    line.push("id", &json_string(id));
    line.push("prompt", &json_string(prompt));
    line.push("completion", &json_string(completion));
    for (key, value) in fields.iter() {
        if GIVEN.contains(&key) || kind(value) == Kind::Null {
            continue;
        }
        if key == "tests" {
            line.push(key, tests_text(value)?.get());
        } else {
            line.push(key, value.get());
        }
    }
    let line = line.finish();
    // The row is read by the one decoder every other path uses, as a JSONL line would be; its
    // depth is named here, as the text's byte offsets mean nothing to the caller.
    if deeper_than(line.as_bytes(), MAX_ROLLOUT_DEPTH).is_some() {
        return Err(too_deep());
    }
    let rollout = Rollout::from_json(&line)?;
    // Dataset fields that the adapters cannot read are this caller's error, named now rather
    // than as an `invalid_input` score later.
    crate::adapters::tests_for(&rollout)?;
    Ok(rollout)
}

/// [`rollout_from_raw_fields`] over values decoded already: an integer they hold beyond 64
/// bits is the `f64` serde_json made of it.
pub fn rollout_from_fields(
    id: &str,
    prompt: &str,
    completion: &str,
    fields: &Map<String, Value>,
) -> Result<Rollout, FieldError> {
    rollout_from_raw_fields(id, prompt, completion, &Fields::from_values(fields)?)
}

/// `tests` as the rollout's list of test objects (JSON text): JSON text in a string is
/// decoded, a string in the list is an assert test; everything else is kept as written.
fn tests_text(value: &RawValue) -> Result<Box<RawValue>, FieldError> {
    let decoded;
    let value = if kind(value) == Kind::String {
        decoded = json_in_string(value).map_err(|e| {
            FieldError::new("tests", format!("JSON text that does not decode: {e}"))
        })?;
        &*decoded
    } else {
        value
    };
    let not_a_list = || {
        FieldError::new(
            "tests",
            "must be a list of tests (objects with a `kind`, or assert statements as strings)",
        )
    };
    if kind(value) != Kind::List {
        return Err(not_a_list());
    }
    let items: Vec<Box<RawValue>> = serde_json::from_str(value.get()).map_err(|_| not_a_list())?;
    let items: Vec<String> = items
        .iter()
        .map(|test| {
            if kind(test) == Kind::String {
                let mut assert = ObjectText::new();
                assert.push("kind", "\"assert\"");
                assert.push("code", test.get());
                assert.finish()
            } else {
                test.get().to_string()
            }
        })
        .collect();
    Ok(raw_json(format!("[{}]", items.join(","))))
}

/// An OpenRLHF label (`--label_key`) as rollout fields: an object is the rest of a rollout
/// (`{"tests": […]}`, `{"input_output": …}`, `{"verification_info": …}`, …), a list is its
/// `tests`, JSON text is decoded first, and `null` means no tests (format and parse only).
/// Every value is kept as written (see the module docs).
pub fn label_fields(label: &RawValue) -> Result<Fields, FieldError> {
    let decoded;
    let label = if kind(label) == Kind::String {
        decoded = json_in_string(label).map_err(|e| {
            FieldError::new(
                "",
                format!(
                    "a string label must be JSON text (an object of rollout fields or a list \
                     of tests): {e}"
                ),
            )
        })?;
        &*decoded
    } else {
        label
    };
    match kind(label) {
        Kind::Null => Ok(Fields::new()),
        Kind::Object => Fields::from_json(label.get()),
        Kind::List => Ok(Fields::from_iter([("tests".to_string(), label.to_owned())])),
        _ => Err(FieldError::new(
            "",
            format!(
                "expected an object of rollout fields or a list of tests, got {}",
                kind_of(label)
            ),
        )),
    }
}

/// verl's `ground_truth` and `extra_info` as rollout fields, every value kept as written.
///
/// `extra_info`'s entries come first (an `entry_point`, a `test` or `tests`, `input_output`…);
/// then `ground_truth`, which verl's code datasets fill with the tests:
/// - `{"inputs": […], "outputs": […], "fn_name"?: …}`, as an object or JSON text (PRIME,
///   APPS, TACO, CodeContests): the `input_output` dataset field;
/// - `{"test_cases": […]}` (open-r1 style): `verification_info`;
/// - any other object: more rollout fields;
/// - a list: the rollout's `tests` (test objects or assert statements);
/// - Python text with `def check(` (HumanEval): `test`, with `entry_point` from `extra_info`;
/// - otherwise (a math answer, say) an error: verdict judges code.
pub fn verl_raw_fields(
    ground_truth: &RawValue,
    extra_info: Option<&RawValue>,
) -> Result<Fields, FieldError> {
    let mut fields = match extra_info.map(|e| (e, kind(e))) {
        None | Some((_, Kind::Null)) => Fields::new(),
        Some((e, Kind::Object)) => {
            Fields::from_json(e.get()).map_err(|e| e.within("extra_info"))?
        }
        Some((e, _)) => {
            return Err(FieldError::new(
                "extra_info",
                format!("expected an object, got {}", kind_of(e)),
            ))
        }
    };
    let field = "ground_truth";
    // Arrow writes null where a row keeps its tests elsewhere (in `extra_info`): absent then.
    if kind(ground_truth) == Kind::Null && has_tests(&fields) {
        return Ok(fields);
    }
    let (decoded, is_text) = if kind(ground_truth) == Kind::String {
        let text: String = serde_json::from_str(ground_truth.get())
            .map_err(|e| FieldError::new(field, format!("a string that does not decode: {e}")))?;
        match serde_json::from_str::<Box<RawValue>>(&text) {
            Ok(v) if matches!(kind(&v), Kind::Object | Kind::List) => (v, true),
            _ if text.contains("def check(") => {
                fields.insert("test", ground_truth.to_owned());
                return Ok(fields);
            }
            _ => {
                return Err(FieldError::new(
                    field,
                    "text that is neither JSON tests nor a HumanEval `check` function; verdict \
                 judges code against tests (`{\"inputs\": […], \"outputs\": […]}`, a list \
                 of tests, `{\"test_cases\": […]}`)",
                ))
            }
        }
    } else {
        (ground_truth.to_owned(), false)
    };
    match kind(&decoded) {
        Kind::Object => {
            let map = Fields::from_json(decoded.get()).map_err(|e| e.within(field))?;
            if map.contains_key("inputs") || map.contains_key("outputs") {
                // The adapter decodes JSON text itself: hand it what verl stored.
                let value = if is_text {
                    ground_truth.to_owned()
                } else {
                    decoded
                };
                fields.insert("input_output", value);
            } else if map.contains_key("test_cases") && map.len() <= 3 {
                fields.insert("verification_info", decoded);
            } else {
                fields.extend(map);
            }
        }
        Kind::List => fields.insert("tests", decoded),
        _ => {
            return Err(FieldError::new(
                field,
                format!(
                    "expected tests (an object or a list, or JSON text of one), got {}",
                    kind_of(&decoded)
                ),
            ))
        }
    }
    Ok(fields)
}

/// [`verl_raw_fields`] over values decoded already, as decoded values (see the module docs on
/// what `Value`s lose).
pub fn verl_fields(
    ground_truth: &Value,
    extra_info: Option<&Value>,
) -> Result<Map<String, Value>, FieldError> {
    let ground_truth = value_text(ground_truth, "ground_truth")?;
    let extra_info = extra_info
        .map(|e| value_text(e, "extra_info"))
        .transpose()?;
    verl_raw_fields(&ground_truth, extra_info.as_deref())?.to_values()
}

/// Whether dataset fields carry tests of their own (any field the adapters read tests from).
fn has_tests(fields: &Fields) -> bool {
    [
        "tests",
        "test",
        "test_list",
        "input_output",
        "verification_info",
        "public_test_cases",
        "private_test_cases",
    ]
    .iter()
    .any(|k| fields.get(k).is_some_and(|v| kind(v) != Kind::Null))
}

/// The completion inside OpenRLHF's `query` (prompt and response as one decoded text): the text
/// after `prompt` where `query` starts with it, else all of `query`.
pub fn response_of<'q>(query: &'q str, prompt: &str) -> &'q str {
    if prompt.is_empty() {
        return query;
    }
    query.strip_prefix(prompt).unwrap_or(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::tests_for;
    use crate::rollout::TestCase;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn columns_become_rollout_fields_and_dataset_fields() {
        let r = rollout_from_fields(
            "r1",
            "Write add.",
            "```python\ndef add(a, b): return a + b\n```",
            &obj(json!({
                "tests": ["assert add(1, 2) == 3", {"kind": "call", "fn": "add", "args": [1, 1], "expected": 2}],
                "reference": "def add(a, b): return a + b",
                "completion": "ignored",
                "source": "mine",
                "nothing": null,
            })),
        )
        .unwrap();
        assert_eq!(r.id, "r1");
        assert_eq!(r.prompt, "Write add.");
        assert!(r.completion.contains("def add"));
        assert_eq!(
            r.tests[0],
            TestCase::Assert {
                code: "assert add(1, 2) == 3".into(),
                timing: false
            }
        );
        assert_eq!(r.tests[1].kind(), "call");
        assert_eq!(r.reference.as_deref(), Some("def add(a, b): return a + b"));
        assert_eq!(r.extra.get("source"), Some(&json!("mine")));
        assert!(!r.extra.contains_key("nothing"));
    }

    #[test]
    fn nulls_that_datasets_fill_in_are_absent() {
        // A row of `datasets.Dataset.from_list` over mixed tests: every test has every field
        // of the column, `null` where it has none; a missing column is `null` too.
        let test = |kind: &str, fields: Value| {
            let mut t = json!({"kind": kind, "code": null, "stdin": null, "stdout": null,
                               "fn": null, "args": null, "expected": null, "timing": null,
                               "compare": null, "checker": null});
            t.as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            t
        };
        let row = obj(json!({
            "tests": [
                test("assert", json!({"code": "assert add(1, 2) == 3"})),
                test("stdio", json!({"stdout": "3\n", "timing": true})),
                test("call", json!({"fn": "add", "args": [1, 2], "expected": 3})),
                test("call", json!({"fn": "nothing"})),
            ],
            "limits": {"time_ms": 1000.0, "memory_mb": null, "output_kb": null},
            "reference": null,
            "test_list": null,
        }));
        let r = rollout_from_fields("d", "", "x", &row).unwrap();
        assert_eq!(r.tests.len(), 4);
        assert!(matches!(
            &r.tests[0],
            TestCase::Assert { timing: false, .. }
        ));
        assert!(matches!(
            &r.tests[1],
            TestCase::Stdio {
                timing: true,
                compare: None,
                ..
            }
        ));
        assert!(
            matches!(&r.tests[3], TestCase::Call { expected, .. } if expected.is_null()),
            "a call test's null `expected` is None: {:?}",
            r.tests[3]
        );
        assert_eq!(r.limits.unwrap().time_ms, Some(1000));
        assert_eq!(r.limits.unwrap().memory_mb, None);
        // The same row as a JSON line (a Python dict, an HTTP body) decodes the same.
        let mut line = row.clone();
        line.insert("id".into(), json!("d"));
        line.insert("completion".into(), json!("x"));
        let decoded = Rollout::from_json(&Value::Object(line).to_string()).unwrap();
        assert_eq!(decoded.tests, r.tests);
        assert_eq!(decoded.limits, r.limits);
        // Zero is not a limit.
        let e = rollout_from_fields("d", "", "x", &obj(json!({"limits": {"output_kb": 0}})))
            .unwrap_err();
        assert_eq!(e.field, "limits.output_kb");
    }

    #[test]
    fn tests_as_json_text_decode_and_bad_ones_name_the_field() {
        let text = r#"[{"kind": "stdio", "stdin": "1\n", "stdout": "1\n"}]"#;
        let r = rollout_from_fields("a", "", "x", &obj(json!({"tests": text}))).unwrap();
        assert_eq!(r.tests[0].kind(), "stdio");
        let e = rollout_from_fields("a", "", "x", &obj(json!({"tests": [{"kind": "stdio"}]})))
            .unwrap_err();
        assert_eq!(e.field, "tests[0].stdout");
        assert_eq!(e.reason, "is required");
        let e = rollout_from_fields("a", "", "x", &obj(json!({"tests": 3}))).unwrap_err();
        assert_eq!(e.field, "tests");
        let e = rollout_from_fields("a", "", "x", &obj(json!({"limits": {"time_ms": "soon"}})))
            .unwrap_err();
        assert_eq!(e.field, "limits.time_ms");
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn labels_are_objects_lists_or_json_text() {
        assert!(label_fields(&raw("null")).unwrap().is_empty());
        let f = label_fields(&raw(r#""[\"assert f() == 1\"]""#)).unwrap();
        assert_eq!(
            f.get("tests").map(RawValue::get),
            Some(r#"["assert f() == 1"]"#)
        );
        let f = label_fields(&raw(r#"{"input_output": "{}"}"#)).unwrap();
        assert!(f.contains_key("input_output"));
        let f = label_fields(&raw(r#""null""#)).unwrap();
        assert!(f.is_empty());
        let e = label_fields(&raw(r#""the answer is 4""#)).unwrap_err();
        assert!(e.reason.contains("JSON text"), "{e}");
        assert!(label_fields(&raw("4"))
            .unwrap_err()
            .reason
            .contains("a number"));
        assert!(label_fields(&raw(r#""\"4\"""#))
            .unwrap_err()
            .reason
            .contains("a string"));
        assert_eq!(e.within("labels[2]").field, "labels[2]");
    }

    /// A call test's values beyond 64 bits, as every form of label and `ground_truth` carries
    /// them: the rollout's test holds the digits as written, as a JSONL line's would.
    #[test]
    fn label_and_ground_truth_numbers_stay_exact() {
        let big = "123456789012345678901234567890";
        let test = format!(
            r#"{{"kind": "call", "fn": "f", "args": [{big}, -{big}.5e-3], "expected": {big}}}"#
        );
        let list = format!(r#"[{test}, "assert f(1) == {big}"]"#);
        let object = format!(r#"{{"tests": {list}, "note": {big}}}"#);
        let exact = |r: &Rollout| {
            let TestCase::Call { expected, args, .. } = &r.tests[0] else {
                panic!("{:?}", r.tests)
            };
            assert_eq!(expected.text(), big);
            assert_eq!(args[0].text(), big);
            assert_eq!(args[1].text(), format!("-{big}.5e-3"));
            assert!(
                matches!(&r.tests[1], TestCase::Assert { code, .. } if code.ends_with(big)),
                "{:?}",
                r.tests[1]
            );
        };
        for label in [
            object.clone(),
            list.clone(),
            json_string(&object),
            json_string(&list),
        ] {
            let fields = label_fields(&raw(&label)).unwrap();
            exact(&rollout_from_raw_fields("q", "", "c", &fields).unwrap());
        }
        // `tests` as JSON text inside a label object.
        let fields =
            label_fields(&raw(&format!(r#"{{"tests": {}}}"#, json_string(&list)))).unwrap();
        exact(&rollout_from_raw_fields("q", "", "c", &fields).unwrap());
        // A dataset row as JSON text, and verl's ground truth.
        exact(
            &rollout_from_raw_fields("q", "", "c", &Fields::from_json(&object).unwrap()).unwrap(),
        );
        for gt in [list.clone(), json_string(&list)] {
            let fields = verl_raw_fields(&raw(&gt), Some(&raw(r#"{"index": 1}"#))).unwrap();
            exact(&rollout_from_raw_fields("v", "", "c", &fields).unwrap());
        }
        // A value of the rollout's own fields and the dataset's keeps its text too.
        let fields = Fields::from_json(&object).unwrap();
        assert_eq!(fields.get("note").map(RawValue::get), Some(big));
        assert_eq!(
            fields.to_json(),
            format!(r#"{{"tests":{list},"note":{big}}}"#)
        );
    }

    #[test]
    fn label_errors_name_the_field_path() {
        let at = |label: &str| {
            label_fields(&raw(label))
                .and_then(|f| rollout_from_raw_fields("q", "", "c", &f))
                .map_err(|e| e.within("labels[2]"))
                .unwrap_err()
        };
        let e = at(
            r#"[{"kind": "call", "fn": "f", "args": [], "expected": {"a": 1 }}, {"kind": "stdio"}]"#,
        );
        assert_eq!(e.field, "labels[2].tests[1].stdout", "{e}");
        let e = at(
            r#"{"tests": [{"kind": "call", "fn": "f", "args": [], "expected": 1, "compare": 3}]}"#,
        );
        assert!(e.field.starts_with("labels[2].tests[0].compare"), "{e}");
        let e = at(r#"{"tests": 3}"#);
        assert_eq!(e.field, "labels[2].tests", "{e}");
        let e = at(r#"{"tests": "[oops"}"#);
        assert_eq!(e.field, "labels[2].tests", "{e}");
        assert!(e.reason.contains("does not decode"), "{e}");
        let e = at(r#"{"limits": {"time_ms": 12345678901234567890123}}"#);
        assert_eq!(e.field, "labels[2].limits.time_ms", "{e}");
        // Keys set twice: the last value, as a decoded object has it.
        let f = label_fields(&raw(r#"{"entry_point": "f", "entry_point": "g"}"#)).unwrap();
        assert_eq!(
            (f.len(), f.get("entry_point").unwrap().get()),
            (1, r#""g""#)
        );
        let r = rollout_from_raw_fields("q", "", "c", &f).unwrap();
        assert_eq!(r.entry_point.as_deref(), Some("g"));
    }

    #[test]
    fn a_label_of_many_keys_is_read_in_one_pass() {
        let keys: Vec<String> = (0..50_000).map(|i| format!(r#""k{i}": {i}"#)).collect();
        let label = format!(r#"{{{}, "k7": "last"}}"#, keys.join(", "));
        let f = label_fields(&raw(&label)).unwrap();
        assert_eq!(f.len(), 50_000);
        assert_eq!(f.get("k7").map(RawValue::get), Some(r#""last""#));
        assert_eq!(f.iter().nth(7).map(|(k, _)| k), Some("k7"));
    }

    #[test]
    fn decoded_rollouts_keep_call_values_exact() {
        let big = format!("1{}", "0".repeat(5735));
        let line = format!(
            r#"{{"id": "x", "completion": "c", "tests": [{{"kind": "call", "fn": "f", "args": [{big}], "expected": {big}}}]}}"#
        );
        let r = Rollout::from_json(&line).unwrap();
        assert!(
            matches!(&r.tests[0], TestCase::Call { expected, args, .. } if expected.text() == big && args[0].text() == big)
        );
        let err = Rollout::from_json(
            r#"{"id": "x", "completion": "c", "tests": [{"kind": "call", "fn": "f"}]}"#,
        )
        .unwrap_err();
        assert!(err.field.starts_with("tests"), "{err:?}");
        assert!(Rollout::from_json("{oops")
            .unwrap_err()
            .reason
            .starts_with("not JSON"));
    }

    #[test]
    fn a_time_limit_column_reaches_the_runs_limits() {
        // A CodeContests row as TRL passes it: `time_limit` a struct column, no `limits`.
        let r = rollout_from_fields(
            "c",
            "Print the sum.",
            "print(3)",
            &obj(json!({
                "inputs": ["1 2\n", "2 2\n"], "outputs": ["3\n", "4\n"],
                "time_limit": {"seconds": 2, "nanos": 0}, "memory_limit_bytes": 256000000
            })),
        )
        .unwrap();
        let adapted = crate::adapters::resolve_tests(&r, true).unwrap();
        assert_eq!(adapted.time_limit_ms, Some(2000));
        let limits = adapted.limits_for(r.limits.as_ref(), adapted.tests.len());
        assert_eq!(limits.and_then(|l| l.time_ms), Some(4000));
        // A `limits` column with its own time wins; one without keeps the data's.
        let own = crate::rollout::Limits {
            time_ms: Some(700),
            ..Default::default()
        };
        assert_eq!(adapted.limits_for(Some(&own), 2), Some(own));
        let memory = crate::rollout::Limits {
            memory_mb: Some(128),
            ..Default::default()
        };
        let both = adapted.limits_for(Some(&memory), 2).unwrap();
        assert_eq!((both.time_ms, both.memory_mb), (Some(4000), Some(128)));
    }

    #[test]
    fn a_null_ground_truth_is_absent_when_extra_info_holds_the_tests() {
        let extra = json!({"test_list": ["assert f() == 1"], "index": 3});
        let fields = verl_fields(&Value::Null, Some(&extra)).unwrap();
        assert_eq!(fields["test_list"], json!(["assert f() == 1"]));
        // With no tests anywhere, a null ground truth is still named as the problem.
        let err = verl_fields(&Value::Null, Some(&json!({"index": 3}))).unwrap_err();
        assert!(err.to_string().contains("ground_truth"), "{err}");
    }

    #[test]
    fn verl_ground_truth_reaches_the_adapters() {
        let gt = json!("{\"inputs\": [\"1 2\\n\"], \"outputs\": [\"3\\n\"]}");
        let fields = verl_fields(&gt, Some(&json!({"split": "train", "index": 3}))).unwrap();
        assert_eq!(fields.get("input_output"), Some(&gt));
        let r = rollout_from_fields("v", "", "print(3)", &fields).unwrap();
        let adapted = tests_for(&r).unwrap();
        assert_eq!(adapted.source, "apps");
        assert!(matches!(&adapted.tests[0], TestCase::Stdio { stdin, .. } if stdin == "1 2\n"));

        let fields = verl_fields(
            &json!({"inputs": [[1, 2]], "outputs": [3], "fn_name": "add"}),
            None,
        )
        .unwrap();
        let r = rollout_from_fields("v", "", "x", &fields).unwrap();
        assert_eq!(tests_for(&r).unwrap().tests[0].kind(), "call");

        let fields = verl_fields(
            &json!("def check(candidate):\n    assert candidate(1) == 2\n"),
            Some(&json!({"entry_point": "inc"})),
        )
        .unwrap();
        let r = rollout_from_fields("v", "", "x", &fields).unwrap();
        assert_eq!(tests_for(&r).unwrap().source, "humaneval");

        let fields = verl_fields(
            &json!({"test_cases": [{"input": "2\n", "output": "4\n", "type": "stdin_stdout"}]}),
            None,
        )
        .unwrap();
        assert!(fields.contains_key("verification_info"));

        let bad = verl_fields(&json!({"inputs": [[1], [2]], "outputs": [1]}), None).unwrap();
        let e = rollout_from_fields("v", "", "x", &bad).unwrap_err();
        assert_eq!(e.field, "input_output");

        let e = verl_fields(&json!("42"), None).unwrap_err();
        assert_eq!(e.field, "ground_truth");
        let e = verl_fields(&json!("x"), Some(&json!([1]))).unwrap_err();
        assert_eq!(e.field, "extra_info");
    }

    #[test]
    fn rollouts_decode_with_the_field_named() {
        let r = Rollout::from_json(r#"{"id": "a", "completion": "x"}"#).unwrap();
        assert_eq!(r.id, "a");
        let e =
            Rollout::from_json(r#"{"id": "a", "completion": "x", "limits": {"memory_mb": "big"}}"#)
                .unwrap_err();
        assert_eq!(e.field, "limits.memory_mb");
        assert_eq!(
            Rollout::from_json(r#"{"id": "", "completion": "x"}"#)
                .unwrap_err()
                .field,
            "id"
        );
        assert!(Rollout::from_json("{")
            .unwrap_err()
            .reason
            .starts_with("not JSON"));
    }

    #[test]
    fn deep_fields_are_refused_without_recursion() {
        let mut v = json!(1);
        for _ in 0..150 {
            v = json!([v]);
        }
        let e = rollout_from_fields("d", "", "x", &obj(json!({"deep": v}))).unwrap_err();
        assert!(e.reason.contains("limit of 100"), "{e}");
    }

    #[test]
    fn the_response_is_the_query_after_its_prompt() {
        assert_eq!(response_of("Q: add\nA: def f", "Q: add\n"), "A: def f");
        assert_eq!(response_of("other", "Q"), "other");
        assert_eq!(response_of("all", ""), "all");
    }
}
