//! The assertion guard, applied on the host: assert-test code is rewritten so that comparisons,
//! arithmetic, `not`, boolean operators and the conditions of `assert`, `if`, `while` and
//! conditional expressions go through the harness's checks (`__verdict_cmp`, `__verdict_bin`,
//! `__verdict_unary`, `__verdict_truth`, `__verdict_assert`), which accept only plain builtin
//! data. An object whose `__eq__` always returns `True` can then not decide an assertion.
//!
//! The harness has the same rewrite as an `ast.NodeTransformer` (`_Guard` in
//! `sandbox/harness.py`); doing it here with tree-sitter is about six times cheaper than walking
//! Python AST objects inside the interpreter, and no code that ran in the instance (the
//! program of an earlier test of the same rollout) can tamper with it. The output parses to the
//! same Python AST as `_Guard` produces (`tests/it/guard.rs` checks that with the host's
//! `python3`). When tree-sitter does not parse the code cleanly, [`guard`] returns `None` and the
//! guest applies its own rewrite (and reports the syntax error when there is one).
//!
//! Line numbers are kept: every newline of the original stays (inside the inserted call's
//! parentheses where an operator or comment was dropped), so tracebacks still point at the
//! right line.

use tree_sitter::Node;

use crate::pysource::syntax;

/// Nesting deeper than this is left to the guest (whose rewrite reports a `RecursionError` as a
/// test failure) rather than recursed into on the host's stack.
const MAX_DEPTH: usize = 400;

/// The guarded source of assert-test code, or `None` when it does not parse cleanly (or nests
/// too deeply) and the guest should guard it instead.
pub fn guard(source: &str) -> Option<String> {
    let tree = syntax::parse(source)?;
    let root = tree.root_node();
    if root.has_error() {
        return None;
    }
    let mut out = String::with_capacity(source.len() * 2);
    Rewriter { src: source }.node(root, &mut out, 0).ok()?;
    Some(out)
}

/// Why a rewrite was abandoned (the guest then guards the code itself).
#[derive(Debug)]
struct Unsupported;

struct Rewriter<'s> {
    src: &'s str,
}

/// The operands of a node: its named children, comments excluded.
fn operands<'t>(node: Node<'t>) -> Vec<Node<'t>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
        .filter(|c| c.kind() != "comment")
        .collect()
}

/// The name `ast` gives a binary operator's class.
fn binary_name(op: &str) -> Option<&'static str> {
    Some(match op {
        "+" => "Add",
        "-" => "Sub",
        "*" => "Mult",
        "@" => "MatMult",
        "/" => "Div",
        "//" => "FloorDiv",
        "%" => "Mod",
        "**" => "Pow",
        "<<" => "LShift",
        ">>" => "RShift",
        "&" => "BitAnd",
        "^" => "BitXor",
        "|" => "BitOr",
        _ => return None,
    })
}

/// The name `ast` gives a unary operator's class.
fn unary_name(op: &str) -> Option<&'static str> {
    Some(match op {
        "-" => "USub",
        "+" => "UAdd",
        "~" => "Invert",
        "not" => "Not",
        _ => return None,
    })
}

/// A comparison operator as the harness spells it (`_CMP_NAMES`).
fn comparison_name(op: &str) -> Option<&'static str> {
    Some(match op {
        "==" => "==",
        "!=" => "!=",
        "<" => "<",
        "<=" => "<=",
        ">" => ">",
        ">=" => ">=",
        "is" => "is",
        "is not" => "is not",
        "in" => "in",
        "not in" => "not in",
        _ => return None,
    })
}

impl<'s> Rewriter<'s> {
    fn text(&self, node: Node<'_>) -> &'s str {
        &self.src[node.byte_range()]
    }

    /// Pushes the newlines of the source between byte offsets `from` and `to`, which is being
    /// dropped, so line numbers stay (the output is inside a call's parentheses, so legal).
    fn keep_newlines(&self, from: usize, to: usize, out: &mut String) {
        for _ in 0..self.src[from..to].matches('\n').count() {
            out.push('\n');
        }
    }

    /// `, ` plus the newlines of the dropped gap between two nodes.
    fn separator(&self, a: Node<'_>, b: Node<'_>, out: &mut String) {
        out.push_str(", ");
        self.keep_newlines(a.end_byte(), b.start_byte(), out);
    }

    fn node(&self, node: Node<'_>, out: &mut String, depth: usize) -> Result<(), Unsupported> {
        if depth > MAX_DEPTH {
            return Err(Unsupported);
        }
        let depth = depth + 1;
        match node.kind() {
            "comparison_operator" => self.comparison(node, out, depth),
            "binary_operator" => {
                let (Some(left), Some(op), Some(right)) = (
                    node.child_by_field_name("left"),
                    node.child_by_field_name("operator"),
                    node.child_by_field_name("right"),
                ) else {
                    return Err(Unsupported);
                };
                let name = binary_name(self.text(op)).ok_or(Unsupported)?;
                out.push_str("__verdict_bin(\"");
                out.push_str(name);
                out.push_str("\", ");
                self.node(left, out, depth)?;
                self.separator(left, right, out);
                self.node(right, out, depth)?;
                out.push(')');
                Ok(())
            }
            "unary_operator" | "not_operator" => {
                let Some(argument) = node.child_by_field_name("argument") else {
                    return Err(Unsupported);
                };
                let op = match node.child_by_field_name("operator") {
                    Some(op) => self.text(op),
                    None => "not",
                };
                let name = unary_name(op).ok_or(Unsupported)?;
                out.push_str("__verdict_unary(\"");
                out.push_str(name);
                out.push_str("\", ");
                self.keep_newlines(node.start_byte(), argument.start_byte(), out);
                self.node(argument, out, depth)?;
                out.push(')');
                Ok(())
            }
            "boolean_operator" => self.boolean(node, out, depth),
            "assert_statement" => {
                let parts = operands(node);
                let (condition, message) = match parts.as_slice() {
                    [c] => (*c, None),
                    [c, m] => (*c, Some(*m)),
                    _ => return Err(Unsupported),
                };
                out.push_str("__verdict_assert(");
                self.keep_newlines(node.start_byte(), condition.start_byte(), out);
                self.node(condition, out, depth)?;
                if let Some(message) = message {
                    self.separator(condition, message, out);
                    self.node(message, out, depth)?;
                }
                out.push(')');
                Ok(())
            }
            "if_statement" | "elif_clause" | "while_statement" => {
                let condition = node.child_by_field_name("condition").ok_or(Unsupported)?;
                self.copy_with_truth(node, &[condition], out, depth)
            }
            "conditional_expression" => {
                // `body if condition else orelse`: the second operand is the condition.
                let parts = operands(node);
                let condition = *parts.get(1).ok_or(Unsupported)?;
                self.copy_with_truth(node, &[condition], out, depth)
            }
            _ => self.copy_with_truth(node, &[], out, depth),
        }
    }

    /// `a < b <= c` → `__verdict_cmp(("<", "<="), a, b, c)`.
    fn comparison(
        &self,
        node: Node<'_>,
        out: &mut String,
        depth: usize,
    ) -> Result<(), Unsupported> {
        let mut ops = Vec::new();
        let mut values = Vec::new();
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if child.kind() == "comment" {
                continue;
            }
            if child.is_named() {
                values.push(child);
            } else {
                // `not in` and `is not` are one aliased node spanning two tokens.
                let spelled = self
                    .text(child)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                ops.push(comparison_name(&spelled).ok_or(Unsupported)?);
            }
        }
        if values.len() != ops.len() + 1 || ops.is_empty() {
            return Err(Unsupported);
        }
        out.push_str("__verdict_cmp((");
        for (i, op) in ops.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push('"');
            out.push_str(op);
            out.push('"');
        }
        if ops.len() == 1 {
            out.push(',');
        }
        out.push_str("), ");
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.separator(values[i - 1], *value, out);
            }
            self.node(*value, out, depth)?;
        }
        out.push(')');
        Ok(())
    }

    /// `a and b and c` → `__verdict_truth(a) and __verdict_truth(b) and __verdict_truth(c)`.
    /// A chain of the same operator is one `ast.BoolOp` with several values, so it is flattened
    /// the same way (parenthesized sub-chains stay separate, as in `ast`).
    fn boolean(&self, node: Node<'_>, out: &mut String, depth: usize) -> Result<(), Unsupported> {
        let op = node.child_by_field_name("operator").ok_or(Unsupported)?;
        let op = self.text(op);
        let mut values = Vec::new();
        self.chain(node, op, &mut values, depth)?;
        self.copy_with_truth(node, &values, out, depth)
    }

    fn chain<'t>(
        &self,
        node: Node<'t>,
        op: &str,
        values: &mut Vec<Node<'t>>,
        depth: usize,
    ) -> Result<(), Unsupported> {
        if depth > MAX_DEPTH {
            return Err(Unsupported);
        }
        let same = node.kind() == "boolean_operator"
            && node
                .child_by_field_name("operator")
                .is_some_and(|o| self.text(o) == op);
        if !same {
            values.push(node);
            return Ok(());
        }
        let left = node.child_by_field_name("left").ok_or(Unsupported)?;
        let right = node.child_by_field_name("right").ok_or(Unsupported)?;
        self.chain(left, op, values, depth + 1)?;
        // `and`/`or` are left-associative: an unparenthesized right operand is never the same
        // operator, but a parenthesized one is a separate value either way.
        values.push(right);
        Ok(())
    }

    /// Copies `node`'s text, rewriting descendants, with each of `wrapped` (descendants, in
    /// source order, not nested in one another) replaced by `__verdict_truth(<rewritten>)`.
    fn copy_with_truth(
        &self,
        node: Node<'_>,
        wrapped: &[Node<'_>],
        out: &mut String,
        depth: usize,
    ) -> Result<(), Unsupported> {
        if node.child_count() == 0 {
            out.push_str(self.text(node));
            return Ok(());
        }
        let mut pos = node.start_byte();
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            out.push_str(&self.src[pos..child.start_byte()]);
            self.copy_child(child, wrapped, out, depth)?;
            pos = child.end_byte();
        }
        out.push_str(&self.src[pos..node.end_byte()]);
        Ok(())
    }

    /// One child of [`Self::copy_with_truth`]: wrapped when it is one of `wrapped`, descended
    /// into when it contains one (a flattened boolean chain), rewritten otherwise.
    fn copy_child(
        &self,
        child: Node<'_>,
        wrapped: &[Node<'_>],
        out: &mut String,
        depth: usize,
    ) -> Result<(), Unsupported> {
        if wrapped.contains(&child) {
            out.push_str("__verdict_truth(");
            self.node(child, out, depth)?;
            out.push(')');
            return Ok(());
        }
        let inside = |w: &Node<'_>| {
            w.start_byte() >= child.start_byte()
                && w.end_byte() <= child.end_byte()
                && w.byte_range() != child.byte_range()
        };
        if wrapped.iter().any(inside) {
            // An inner link of a flattened chain: copy it, wrapping its values.
            return self.copy_with_truth(child, wrapped, out, depth + 1);
        }
        self.node(child, out, depth)
    }
}

#[cfg(test)]
mod tests {
    use super::guard;

    #[test]
    fn comparisons_become_checked_calls() {
        assert_eq!(
            guard("assert f(1) == 2\n").unwrap(),
            "__verdict_assert(__verdict_cmp((\"==\",), f(1), 2))\n"
        );
        assert_eq!(
            guard("x = a < b <= c\n").unwrap(),
            "x = __verdict_cmp((\"<\", \"<=\"), a, b, c)\n"
        );
        assert_eq!(
            guard("y = a not in b or c is not d\n").unwrap(),
            "y = __verdict_truth(__verdict_cmp((\"not in\",), a, b)) or \
             __verdict_truth(__verdict_cmp((\"is not\",), c, d))\n"
        );
    }

    #[test]
    fn arithmetic_and_unary_operators_are_checked() {
        assert_eq!(
            guard("assert abs(f(x) - 8) < 1e-9, 'msg'\n").unwrap(),
            "__verdict_assert(__verdict_cmp((\"<\",), abs(__verdict_bin(\"Sub\", f(x), 8)), 1e-9), 'msg')\n"
        );
        assert_eq!(
            guard("z = -x ** 2 + ~y\nw = not q\n").unwrap(),
            "z = __verdict_bin(\"Add\", __verdict_unary(\"USub\", __verdict_bin(\"Pow\", x, 2)), \
             __verdict_unary(\"Invert\", y))\nw = __verdict_unary(\"Not\", q)\n"
        );
    }

    #[test]
    fn boolean_chains_are_flattened_like_ast() {
        assert_eq!(
            guard("r = a and b and (c and d)\n").unwrap(),
            "r = __verdict_truth(a) and __verdict_truth(b) and \
             __verdict_truth((__verdict_truth(c) and __verdict_truth(d)))\n"
        );
    }

    #[test]
    fn conditions_are_truth_checked() {
        let src = "if a:\n    pass\nelif b:\n    pass\nwhile c:\n    break\nv = 1 if d else 2\n";
        assert_eq!(
            guard(src).unwrap(),
            "if __verdict_truth(a):\n    pass\nelif __verdict_truth(b):\n    pass\n\
             while __verdict_truth(c):\n    break\nv = 1 if __verdict_truth(d) else 2\n"
        );
    }

    #[test]
    fn line_numbers_survive_dropped_operators_and_comments() {
        let src = "assert (f(1)  # first\n        == [1,\n 2])\nassert g()\n";
        let out = guard(src).unwrap();
        assert_eq!(out.lines().count(), src.lines().count(), "{out}");
        assert!(out
            .lines()
            .nth(3)
            .unwrap()
            .starts_with("__verdict_assert(g())"));
    }

    #[test]
    fn unparseable_code_is_left_to_the_guest() {
        assert_eq!(guard("assert f(1 ==\n"), None);
        assert_eq!(guard("assert 1 <> 2\n"), None);
        let deep = format!("x = {}1{}\n", "(".repeat(2000), ")".repeat(2000));
        assert_eq!(guard(&deep), None);
    }
}
