//! The one error of intake: which field of a message is wrong, and why.
//!
//! Every path that reads a rollout — a JSONL line, an HTTP body, a gRPC message, a Python dict,
//! a trainer's dataset columns, a dataset adapter's fields — reports a bad input as a
//! [`FieldError`], so a caller branches on one shape and a person reads one style of message:
//! `tests[2].call.expected: not JSON text: …`.

/// A field of an input that does not hold a valid value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct FieldError {
    /// The field's path inside the input, e.g. `tests[0].stdout` or `ground_truth`; empty
    /// when the input as a whole is at fault (not JSON, nested too deep).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// An error of `field` (a path; empty for the whole input).
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An error of the input as a whole.
    pub fn whole(reason: impl Into<String>) -> Self {
        FieldError::new("", reason)
    }

    /// The same error, its field inside `outer`: `labels[3]` + `tests` → `labels[3].tests`,
    /// `rollouts` + `[2].id` → `rollouts[2].id`, `labels[3]` + (the whole) → `labels[3]`.
    pub fn within(self, outer: &str) -> Self {
        let field = if self.field.is_empty() {
            outer.to_string()
        } else if outer.is_empty() {
            self.field
        } else if self.field.starts_with('[') {
            format!("{outer}{}", self.field)
        } else {
            format!("{outer}.{}", self.field)
        };
        FieldError { field, ..self }
    }

    /// `field: reason`, or the reason alone when the whole input is at fault.
    fn message(&self) -> String {
        if self.field.is_empty() {
            self.reason.clone()
        } else {
            format!("{}: {}", self.field, self.reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_as_written() {
        let e = FieldError::new("tests[0].stdout", "is required");
        assert_eq!(e.to_string(), "tests[0].stdout: is required");
        assert_eq!(
            e.clone().within("rollouts[2]").field,
            "rollouts[2].tests[0].stdout"
        );
        assert_eq!(FieldError::new("[1]", "x").within("args").field, "args[1]");
        assert_eq!(
            FieldError::whole("not JSON").within("labels[3]").field,
            "labels[3]"
        );
        assert_eq!(e.clone().within("").field, "tests[0].stdout");
        assert_eq!(FieldError::whole("not JSON").to_string(), "not JSON");
    }
}
