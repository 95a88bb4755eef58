//! One tree-sitter-python parse and one walk over the tree: the first syntax error, how much
//! Python structure there is, and which rows are strings or comments.
//!
//! tree-sitter-python is more permissive than CPython. Its grammar keeps Python 2 forms and
//! recovers silently from some indentation mistakes, so the walk flags these as errors too:
//! `print "x"` and `exec "x"` statements, `except A, B as e:`, backtick strings, the `<>` operator,
//! integer literals with leading zeros or an `L` suffix, a block header with no indented body
//! (`def f():` followed by an unindented line), and an unexpected indent (a statement indented
//! deeper than its siblings, or an indented first line at module level).
//!
//! Every walk here is linear in the size of the text and none recurses over its nesting: the
//! tree walk uses a cursor, `is_trivial_expr` an explicit stack, and "is this node the first
//! thing on its line" is answered from a per-row table, not by scanning back to the line start
//! (which made one long line quadratic). The parse itself stops at a deadline
//! (`Scan::gave_up`).
//!
//! Known gaps (accepted by tree-sitter and by this walk, rejected by CPython): an unparenthesised
//! walrus as a statement (`x := 1`), `f(x for x in y, 1)`, `return`/`yield` outside a function,
//! `break` outside a loop, `nonlocal` at module level, `del f()`, `ur""` prefixes, and other
//! checks CPython only makes when compiling.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use tree_sitter::{Node, ParseOptions, ParseState, Parser, Tree};

thread_local! {
    /// One parser per thread: creating one and loading the grammar costs more than a small parse.
    static PARSER: RefCell<Parser> = RefCell::new(new_parser());
}

fn new_parser() -> Parser {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("tree-sitter-python grammar matches the tree-sitter version");
    parser
}

/// How a bounded parse ended.
enum Parsed {
    Tree(Tree),
    /// The deadline passed.
    PastDeadline,
    /// The parser slowed down on row `row`, a long one: see [`SlowLine`].
    LongErrorLine {
        row: usize,
    },
}

/// When a long line is too slow to parse.
///
/// tree-sitter's error recovery does not end before a newline, and on some erroneous lines it
/// costs quadratic time in the line's length (a 200 KB line of `<div>` took 14 s; the same tags
/// one per line, 0.05 s), because each recovery copies the error node built so far. Valid code
/// parses at 0.5–2 µs per byte, long lines included. So on a line longer than
/// [`SlowLine::MIN_BYTES`], once the parser has spent more than [`SlowLine::GRACE`] on it and
/// more than [`SlowLine::PER_BYTE`] per byte it has advanced into it (over ten times the normal
/// rate), the parse stops there: the line is reported as a syntax error and the text before
/// it is parsed again. The parse's cost is then linear in the text: a quadratic line is cut off
/// after about 25 KB and 0.6 s. (tree-sitter reports no "in error recovery" state that could
/// decide this without a clock: its `has_error` stays false while any parse version is alive.)
struct SlowLine;

impl SlowLine {
    const MIN_BYTES: usize = 4096;
    const GRACE: Duration = Duration::from_millis(50);
    const PER_BYTE: Duration = Duration::from_micros(25);
}

/// Parses `code` with this thread's parser, giving up at `deadline`: the tree, or `None` when
/// the deadline passed first (for readers of text that is not a candidate's program, such as
/// generated tests).
pub(crate) fn parse_until(code: &str, deadline: Instant) -> Option<Tree> {
    match parse_bounded(code, Some(deadline), None) {
        Parsed::Tree(tree) => Some(tree),
        Parsed::PastDeadline | Parsed::LongErrorLine { .. } => None,
    }
}

/// Parses with this thread's parser, stopping at `deadline` and, given the text's `rows`, when
/// error recovery runs long on one line.
fn parse_bounded(code: &str, deadline: Option<Instant>, rows: Option<&Rows>) -> Parsed {
    PARSER.with(|p| {
        let mut parser = p.borrow_mut();
        if deadline.is_none() && rows.is_none() {
            return parser
                .parse(code, None)
                .map_or(Parsed::PastDeadline, Parsed::Tree);
        }
        let bytes = code.as_bytes();
        let mut stopped = None;
        // The row the parser is on, and since when.
        let mut on_row = (usize::MAX, Instant::now());
        let mut stop = |state: &ParseState| {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                stopped = Some(Parsed::PastDeadline);
                return true;
            }
            if let Some(rows) = rows {
                let offset = state.current_byte_offset();
                let row = rows
                    .starts
                    .partition_point(|&s| s <= offset)
                    .saturating_sub(1);
                if row != on_row.0 {
                    on_row = (row, now);
                } else if rows.len(row) > SlowLine::MIN_BYTES {
                    let spent = now - on_row.1;
                    let into = u32::try_from(offset - rows.starts[row]).unwrap_or(u32::MAX);
                    if spent > SlowLine::GRACE && spent > SlowLine::PER_BYTE * into {
                        stopped = Some(Parsed::LongErrorLine { row });
                        return true;
                    }
                }
            }
            false
        };
        let tree = parser.parse_with_options(
            &mut |i, _| bytes.get(i..).unwrap_or_default(),
            None,
            Some(ParseOptions::new().progress_callback(&mut stop)),
        );
        match tree {
            Some(tree) => Parsed::Tree(tree),
            None => {
                // A cancelled parse would otherwise resume on the next call.
                parser.reset();
                stopped.unwrap_or(Parsed::PastDeadline)
            }
        }
    })
}

/// Where the first syntax problem is, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ErrorSite {
    /// 0-based row.
    pub(super) row: usize,
    /// 0-based byte column within the row.
    pub(super) byte_col: usize,
    /// What is wrong, as far as the tree tells.
    pub(super) message: String,
}

/// What one walk over the tree found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// The first ERROR or MISSING node, or construct tree-sitter accepts but CPython rejects, in
    /// document order.
    pub(super) first_error: Option<ErrorSite>,
    /// Whether tree-sitter itself reported an ERROR or MISSING node.
    pub(super) tree_error: bool,
    /// Weighted count of constructs only Python has (definitions, imports, compound statements
    /// with a `:` and a body, comprehensions, lambdas), outside error nodes.
    pub(super) py_score: u32,
    /// Top-level statements other than comments and bare string literals.
    pub(super) statements: usize,
    /// Whether every such statement is a trivial expression: identifiers, literals, and
    /// `is`/`in`/`not`/`and`/`or`/`,` between them (what a word or a short phrase parses as).
    pub(super) trivial: bool,
    /// Rows that are inside a multi-line string or hold only a comment (not judged as prose).
    pub(super) neutral_rows: Vec<bool>,
    /// The parse passed its deadline and was abandoned; nothing else in the scan is meaningful.
    pub(super) gave_up: bool,
}

/// Parse `code` (giving up at `deadline`) and walk the tree once.
///
/// When the parse slows down on one long line (see [`SlowLine`]), the text before that
/// line is parsed instead and the scan covers only it, plus an error at the start of that line
/// (any earlier error comes first, as usual); each such retry parses a shorter prefix.
pub(super) fn scan(code: &str, deadline: Option<Instant>) -> Scan {
    let rows = Rows::new(code);
    let mut end = code.len();
    let mut long_row = None;
    let tree = loop {
        match parse_bounded(&code[..end], deadline, Some(&rows)) {
            Parsed::Tree(tree) => break Some(tree),
            Parsed::PastDeadline => break None,
            Parsed::LongErrorLine { row } => {
                end = rows.starts[row];
                long_row = Some(row);
            }
        }
    };
    let mut scan = scan_tree(&code[..end], tree, &rows);
    if let Some(row) = long_row {
        scan.tree_error = true;
        let message = format!(
            "invalid syntax in a line of {} bytes (tree-sitter's error recovery on it passed its budget)",
            rows.len(row)
        );
        record_at(&mut scan, row, rows.indent[row], message);
    }
    scan
}

/// The scan of `code` (a prefix of the text `rows` describe) given its tree (`None`: the parse
/// passed its deadline).
fn scan_tree(code: &str, tree: Option<Tree>, rows: &Rows) -> Scan {
    let mut scan = Scan {
        trivial: true,
        neutral_rows: vec![false; rows.indent.len()],
        ..Scan::default()
    };
    let Some(tree) = tree else {
        scan.gave_up = true;
        scan.tree_error = true;
        scan.first_error = Some(ErrorSite {
            row: 0,
            byte_col: 0,
            message: "the parser gave up".into(),
        });
        return scan;
    };
    let root = tree.root_node();
    scan.tree_error = root.has_error();

    let src = Src {
        bytes: code.as_bytes(),
        rows,
    };
    let mut cursor = root.walk();
    // How many ERROR nodes enclose the cursor's node.
    let mut error_depth = 0usize;
    // For each ancestor on the path: whether it is an ERROR node.
    let mut path: Vec<bool> = Vec::new();
    loop {
        let node = cursor.node();
        visit(&mut scan, node, error_depth > 0, &src);
        if cursor.goto_first_child() {
            path.push(node.is_error());
            error_depth += usize::from(node.is_error());
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return finish(scan, root, &src);
            }
            if path.pop() == Some(true) {
                error_depth -= 1;
            }
        }
    }
}

/// The source text with its per-row indentation, so that "does this node start its line" costs
/// O(1) however long the line is.
struct Src<'a> {
    bytes: &'a [u8],
    rows: &'a Rows,
}

/// Per row (split at `\n`): where it starts, and the byte column of its first non-whitespace
/// byte (the row's length when it is blank).
struct Rows {
    starts: Vec<usize>,
    indent: Vec<usize>,
    total: usize,
}

impl Rows {
    fn new(code: &str) -> Rows {
        let mut starts = Vec::new();
        let mut indent = Vec::new();
        let mut start = 0;
        for line in code.split('\n') {
            starts.push(start);
            start += line.len() + 1;
            indent.push(
                line.bytes()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(line.len()),
            );
        }
        Rows {
            starts,
            indent,
            total: code.len(),
        }
    }

    /// The length of `row` in bytes, without its newline.
    fn len(&self, row: usize) -> usize {
        self.starts.get(row + 1).map_or(self.total, |&s| s - 1) - self.starts[row]
    }
}

fn finish(mut scan: Scan, root: Node<'_>, src: &Src<'_>) -> Scan {
    let mut cursor = root.walk();
    for child in root.named_children(&mut cursor) {
        if child.kind() == "comment" || is_bare_string(child) {
            continue;
        }
        scan.statements += 1;
        if scan.trivial
            && !(child.kind() == "expression_statement"
                && is_trivial_expr(child)
                && !child.has_error())
        {
            scan.trivial = false;
        }
        // Module-level statements start at column 0.
        if child.start_position().column > 0 && starts_line(child, src) && !child.is_error() {
            record(&mut scan, child, "unexpected indent".into());
        }
    }
    if scan.statements == 0 {
        scan.trivial = false;
    }
    scan
}

/// A statement that is only a string literal (a docstring, or prose in quotes).
fn is_bare_string(node: Node<'_>) -> bool {
    node.kind() == "expression_statement"
        && node.named_child_count() == 1
        && node
            .named_child(0)
            .is_some_and(|c| matches!(c.kind(), "string" | "concatenated_string"))
}

/// Whether `node` and everything below it is a trivial expression (see [`Scan::trivial`]).
/// Iterative: a literal nested 100,000 brackets deep must not overflow the stack.
fn is_trivial_expr(node: Node<'_>) -> bool {
    let mut stack = vec![node];
    let mut cursor = node.walk();
    while let Some(node) = stack.pop() {
        if !is_trivial_kind(node) {
            return false;
        }
        stack.extend(node.children(&mut cursor));
    }
    true
}

fn is_trivial_kind(node: Node<'_>) -> bool {
    match node.kind() {
        "expression_statement"
        | "identifier"
        | "integer"
        | "float"
        | "string"
        | "concatenated_string"
        | "string_start"
        | "string_content"
        | "string_end"
        | "true"
        | "false"
        | "none"
        | "expression_list"
        | "tuple"
        | "comparison_operator"
        | "boolean_operator"
        | "not_operator"
        | "parenthesized_expression"
        | "dictionary"
        | "pair"
        | "list"
        | "set"
        | "unary_operator" => true,
        k => {
            !node.is_named()
                && matches!(
                    k,
                    "is" | "in"
                        | "not"
                        | "and"
                        | "or"
                        | ","
                        | "("
                        | ")"
                        | "["
                        | "]"
                        | "{"
                        | "}"
                        | ":"
                        | "-"
                        | "+"
                )
        }
    }
}

/// Whether only whitespace precedes `node` on its first row.
fn starts_line(node: Node<'_>, src: &Src<'_>) -> bool {
    let p = node.start_position();
    src.rows.indent.get(p.row).is_some_and(|&i| p.column <= i)
}

fn record(scan: &mut Scan, node: Node<'_>, message: String) {
    let p = node.start_position();
    record_at(scan, p.row, p.column, message);
}

fn record_at(scan: &mut Scan, row: usize, byte_col: usize, message: String) {
    let site = ErrorSite {
        row,
        byte_col,
        message,
    };
    // Sites arrive out of document order (the module-level indentation check runs at the end;
    // an error inside a wrapping ERROR node is found by descending into it): keep the earliest.
    match &scan.first_error {
        Some(e) if (e.row, e.byte_col) <= (site.row, site.byte_col) => {}
        _ => scan.first_error = Some(site),
    }
}

/// Whether an error already recorded comes before anything `node` could report (every site a
/// node reports lies at or after its start), so that the costlier messages need not be built.
fn earlier_error_than(scan: &Scan, node: Node<'_>) -> bool {
    let p = node.start_position();
    scan.first_error
        .as_ref()
        .is_some_and(|e| (e.row, e.byte_col) <= (p.row, p.column))
}

fn visit(scan: &mut Scan, node: Node<'_>, in_error: bool, src: &Src<'_>) {
    let kind = node.kind();
    let known = earlier_error_than(scan, node);
    if node.is_missing() {
        record(scan, node, format!("missing `{kind}`"));
        return;
    }
    if node.is_error() {
        if !in_error && !known {
            let inner = innermost_error(node);
            if inner.is_missing() {
                record(scan, inner, format!("missing `{}`", inner.kind()));
            } else {
                let (message, at) = error_message(inner, src.bytes);
                record(scan, at, message);
            }
        }
        return;
    }
    let start = node.start_position();
    let end = node.end_position();
    match kind {
        "comment" => {
            if starts_line(node, src) {
                scan.neutral_rows[start.row] = true;
            }
            return;
        }
        "string" if end.row > start.row && !node.has_error() => {
            for row in start.row + 1..=end.row {
                scan.neutral_rows[row] = true;
            }
        }
        _ => {}
    }
    if in_error {
        return;
    }
    if known {
        // Nothing this node reports can come first.
    } else if kind == "block" && node.start_byte() == node.end_byte() {
        // Like CPython, point at the line that should have been indented.
        let (row, col) = next_code_line(src.bytes, start.row, node.start_byte())
            .unwrap_or((start.row, start.column));
        record_at(scan, row, col, "expected an indented block".into());
    } else if kind == "block" {
        if let Some(child) = unexpected_indent(node, src) {
            record(scan, child, "unexpected indent".into());
        }
    } else if let Some(message) = cpython_rejects(node, src.bytes) {
        record(scan, node, message);
    }
    // A `def`/`class` header or an import is Python even when its body is broken.
    let headed = matches!(
        kind,
        "function_definition" | "class_definition" | "import_statement" | "import_from_statement"
    );
    if headed || !node.has_error() {
        scan.py_score += python_weight(node);
    }
}

/// Constructs tree-sitter-python accepts and CPython 3 rejects.
fn cpython_rejects(node: Node<'_>, src: &[u8]) -> Option<String> {
    let text = || node.utf8_text(src).unwrap_or("");
    let message = match node.kind() {
        "print_statement" => "Python 2 print statement (use `print(...)`)".into(),
        "exec_statement" => "Python 2 exec statement (use `exec(...)`)".into(),
        // `except A, B:` is Python 3.14 (PEP 758: several exception types without
        // parentheses), which the sandbox runs; only `except A, B as e:` stays an error.
        "except_clause" if has_anon_child(node, ",") && binds_a_name(node) => {
            "`except A, B as e:` needs parentheses (`except (A, B) as e:`)".into()
        }
        "comparison_operator" if has_anon_child(node, "<>") => {
            "Python 2 `<>` operator (use `!=`)".into()
        }
        "string" if text().starts_with('`') => "Python 2 backtick repr (use `repr(...)`)".into(),
        "integer" => {
            let t = text();
            let b = t.as_bytes();
            if t.ends_with(['l', 'L']) {
                "Python 2 long literal suffix `L`".into()
            } else if b.len() > 1
                && b[0] == b'0'
                && b[1].is_ascii_digit()
                && t.bytes().any(|c| c != b'0' && c != b'_')
            {
                "leading zeros in a decimal integer literal (use `0o` for octal)".into()
            } else {
                return None;
            }
        }
        _ => return None,
    };
    Some(message)
}

/// The first statement of `block` indented deeper than the block's first statement (tree-sitter
/// accepts it; CPython raises `IndentationError: unexpected indent`).
fn unexpected_indent<'t>(block: Node<'t>, src: &Src<'_>) -> Option<Node<'t>> {
    let mut cursor = block.walk();
    let mut column = None;
    for child in block.named_children(&mut cursor) {
        if child.kind() == "comment" || !starts_line(child, src) {
            continue;
        }
        let c = child.start_position().column;
        match column {
            None => column = Some(c),
            Some(first) if c > first => return Some(child),
            Some(_) => {}
        }
    }
    None
}

/// Row and byte column of the first non-blank character on a line after the one holding `byte`
/// (which is on `row`).
fn next_code_line(src: &[u8], row: usize, byte: usize) -> Option<(usize, usize)> {
    let mut row = row;
    let mut line_start = byte + src[byte..].iter().position(|&b| b == b'\n')? + 1;
    loop {
        row += 1;
        let line_end = src[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(src.len(), |i| line_start + i);
        let line = &src[line_start..line_end];
        match line.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(col) if line[col] != b'#' => return Some((row, col)),
            _ => {}
        }
        if line_end >= src.len() {
            return None;
        }
        line_start = line_end + 1;
    }
}

/// Whether an `except` clause binds the exception (`as e`), however the grammar nests the `as`.
fn binds_a_name(node: Node<'_>) -> bool {
    let mut cursor = node.walk();
    let found = node
        .children(&mut cursor)
        .any(|c| c.kind() == "as" || c.kind() == "as_pattern");
    found
}

fn has_anon_child(node: Node<'_>, kind: &str) -> bool {
    let mut cursor = node.walk();
    let found = node
        .children(&mut cursor)
        .any(|c| !c.is_named() && c.kind() == kind);
    found
}

/// What an ERROR node says: an unclosed bracket, else the first token it holds.
fn error_message<'t>(node: Node<'t>, src: &[u8]) -> (String, Node<'t>) {
    let mut cursor = node.walk();
    let mut open: Vec<Node<'t>> = Vec::new();
    for child in node.children(&mut cursor) {
        match child.kind() {
            "(" | "[" | "{" if !child.is_named() => open.push(child),
            ")" | "]" | "}" if !child.is_named() => {
                open.pop();
            }
            _ => {}
        }
    }
    if let Some(bracket) = open.first() {
        return (format!("`{}` was never closed", bracket.kind()), *bracket);
    }
    (token_message(node, src), node)
}

/// The node where the trouble starts. An ERROR node that opens with a skipped token (`for each`,
/// `function f(`) is the place. One that opens with a whole statement (a `def` whose body holds
/// the real error) only wraps it: descend to its first child holding an error or MISSING node.
fn innermost_error(node: Node<'_>) -> Node<'_> {
    let mut node = node;
    'descend: loop {
        if node.is_error() && !node.named_child(0).is_some_and(is_statement) {
            return node;
        }
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if child.is_missing() {
                return child;
            }
            if child.is_error() || child.has_error() {
                node = child;
                continue 'descend;
            }
        }
        return node;
    }
}

fn is_statement(node: Node<'_>) -> bool {
    let kind = node.kind();
    kind.ends_with("_statement") || kind.ends_with("_definition")
}

/// "unexpected `tok`" for the first token of an error node, or a missing `:` after a header.
fn token_message(node: Node<'_>, src: &[u8]) -> String {
    let mut leaf = node;
    while let Some(child) = leaf.child(0) {
        leaf = child;
    }
    let token = leaf.utf8_text(src).unwrap_or("").trim();
    if token.is_empty() {
        return "invalid syntax".into();
    }
    if COMPOUND_KEYWORDS.contains(&token) && !header_has_colon(src, leaf.start_byte()) {
        return format!("expected `:` after the `{token}` header");
    }
    let short: String = token.chars().take(24).collect();
    if short.contains('`') {
        format!("unexpected `` {short} ``")
    } else {
        format!("unexpected `{short}`")
    }
}

/// Keywords that open a compound statement, whose header ends with `:`.
const COMPOUND_KEYWORDS: &[&str] = &[
    "def", "class", "if", "elif", "else", "for", "while", "with", "try", "except", "finally",
];

/// Whether the line holding `byte` has a `:` (ignoring a trailing comment).
fn header_has_colon(src: &[u8], byte: usize) -> bool {
    let end = src[byte..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(src.len(), |i| byte + i);
    let line = String::from_utf8_lossy(&src[byte..end]);
    let code = line.split('#').next().unwrap_or("");
    // A `:` anywhere (`for each x in xs: …`) means the header is there but garbled.
    code.contains(':')
}

/// How much a node says "this is Python": constructs no other common language shares.
fn python_weight(node: Node<'_>) -> u32 {
    match node.kind() {
        "function_definition" | "class_definition" | "import_from_statement" => 3,
        "import_statement"
        | "decorator"
        | "elif_clause"
        | "except_clause"
        | "with_statement"
        | "lambda"
        | "list_comprehension"
        | "dictionary_comprehension"
        | "set_comprehension"
        | "generator_expression" => 2,
        "if_statement" | "for_statement" | "while_statement" | "try_statement" => {
            // Only with a real `:` and body; an empty block is an indentation error.
            let mut cursor = node.walk();
            let has_body = node
                .named_children(&mut cursor)
                .any(|c| c.kind() == "block" && c.start_byte() < c.end_byte());
            if has_body {
                2
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// Whether the module `root` (parsed from `src`) binds `name` at its top level: by a `def`
/// (decorated or not, `async` too), a `class`, an assignment to the bare name or a
/// `from … import … [as] name`, anywhere outside a function, a class or a lambda (so in the
/// body of a top-level `if`, `try`, `with` or loop too). An explicit stack: linear, whatever the
/// nesting.
pub(crate) fn binds_at_top_level(root: Node<'_>, src: &[u8], name: &str) -> bool {
    let is_name = |n: Option<Node<'_>>| {
        n.is_some_and(|n| n.kind() == "identifier" && n.utf8_text(src) == Ok(name))
    };
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match node.kind() {
            "function_definition" | "class_definition" => {
                if is_name(node.child_by_field_name("name")) {
                    return true;
                }
                // Names bound inside are not the module's.
                continue;
            }
            "lambda" => continue,
            "assignment" if is_name(node.child_by_field_name("left")) => return true,
            "import_from_statement" => {
                let mut cursor = node.walk();
                let imported =
                    node.children_by_field_name("name", &mut cursor)
                        .any(|n| match n.kind() {
                            "dotted_name" => n.utf8_text(src) == Ok(name),
                            "aliased_import" => is_name(n.child_by_field_name("alias")),
                            _ => false,
                        });
                if imported {
                    return true;
                }
                continue;
            }
            _ => {}
        }
        let mut cursor = node.walk();
        stack.extend(node.named_children(&mut cursor));
    }
    false
}
