//! The one request the host itself writes to a candidate: a call test's operation (every other
//! operation comes from the judge's proxies; see `PROTOCOL.md`).

use verdict_contract::json::Exact;

/// A call test's operation: `["call", {"global": name}, [args…], {"dict": []}, false]`, the
/// arguments in tagged form (JSON objects become dicts, integers of any size stay exact); the
/// final `false` says the host does not read arguments back, so the candidate encodes none
/// (that work would count as the program's fuel).
pub(crate) fn call(
    function: &str,
    args: &[verdict_contract::json::Json],
) -> Result<String, String> {
    let mut out = String::from("[\"call\",{\"global\":");
    out.push_str(&serde_json::Value::String(function.to_string()).to_string());
    out.push_str("},[");
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let exact: Exact = a.exact()?;
        exact.write_tagged(&mut out, true);
    }
    out.push_str("],{\"dict\":[]},false]");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn call_requests_tag_objects_as_dicts_and_keep_order() {
        let r = call(
            "f",
            &[
                json!(1).into(),
                json!({"a": [1, {"b": null}]}).into(),
                json!("x").into(),
                verdict_contract::json::Json::from_text("123456789012345678901234567890").unwrap(),
            ],
        )
        .unwrap();
        assert_eq!(
            r,
            r#"["call",{"global":"f"},[1,{"dict":[["a",[1,{"dict":[["b",null]]}]]]},"x",{"int":"123456789012345678901234567890"}],{"dict":[]},false]"#
        );
    }
}
