//! Which other language is this? Fence tags and per-line signatures.
//!
//! Each signature is a test on one trimmed line with a weight (4: only that language writes it,
//! such as `console.log(` or `fn main(`; 1–2: suggestive, such as `;` endings). A signature counts
//! at most twice, so one repeated weak cue cannot win alone. C-family cues shared by many
//! languages (`) {`, `} else {`, `//` comments, `i++`, `;` endings) go to whichever C-family
//! language has the most specific evidence, or to `c` when none has any.

/// A language this module can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    JavaScript,
    TypeScript,
    Rust,
    C,
    Cpp,
    Java,
    CSharp,
    Go,
    Shell,
    Ruby,
    Php,
    Sql,
    Kotlin,
    Html,
    /// Cues shared by the C family, attributed at the end.
    CFamily,
}

impl Lang {
    const SPECIFIC: [Lang; 14] = [
        Lang::JavaScript,
        Lang::TypeScript,
        Lang::Rust,
        Lang::C,
        Lang::Cpp,
        Lang::Java,
        Lang::CSharp,
        Lang::Go,
        Lang::Shell,
        Lang::Ruby,
        Lang::Php,
        Lang::Sql,
        Lang::Kotlin,
        Lang::Html,
    ];

    fn name(self) -> &'static str {
        match self {
            Lang::JavaScript => "javascript",
            Lang::TypeScript => "typescript",
            Lang::Rust => "rust",
            Lang::C | Lang::CFamily => "c",
            Lang::Cpp => "cpp",
            Lang::Java => "java",
            Lang::CSharp => "csharp",
            Lang::Go => "go",
            Lang::Shell => "shell",
            Lang::Ruby => "ruby",
            Lang::Php => "php",
            Lang::Sql => "sql",
            Lang::Kotlin => "kotlin",
            Lang::Html => "html",
        }
    }

    fn c_family(self) -> bool {
        matches!(
            self,
            Lang::JavaScript
                | Lang::TypeScript
                | Lang::Rust
                | Lang::C
                | Lang::Cpp
                | Lang::Java
                | Lang::CSharp
                | Lang::Go
                | Lang::Php
                | Lang::Kotlin
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many [`Lang`] variants there are (`CFamily` is the last).
const LANGS: usize = Lang::CFamily as usize + 1;

/// What a fence tag says about the language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FenceTag {
    /// No tag, or one that names no language (`text`, `output`, `pseudocode`, …).
    Neutral,
    /// A Python tag.
    Python,
    /// Another language, normalised (`js` → `javascript`); unknown tags are kept as written.
    Other(String),
}

/// Read a fence tag (already lower-cased by extraction, but not necessarily).
pub(super) fn fence_tag(tag: Option<&str>) -> FenceTag {
    let Some(tag) = tag.map(str::trim).filter(|t| !t.is_empty()) else {
        return FenceTag::Neutral;
    };
    let tag = tag.to_ascii_lowercase();
    let name = match tag.as_str() {
        "python" | "py" | "python3" | "py3" | "python2" | "py2" | "pycon" | "ipython" | "sage" => {
            return FenceTag::Python
        }
        "text" | "txt" | "plaintext" | "plain" | "output" | "none" | "pseudo" | "pseudocode"
        | "pseudo-code" | "markdown" | "md" | "math" | "latex" | "tex" => return FenceTag::Neutral,
        "js" | "javascript" | "jsx" | "node" | "nodejs" | "mjs" | "cjs" => "javascript",
        "ts" | "typescript" | "tsx" => "typescript",
        "rs" | "rust" => "rust",
        "c" | "h" => "c",
        "cpp" | "c++" | "cc" | "cxx" | "hpp" => "cpp",
        "java" => "java",
        "cs" | "csharp" | "c#" => "csharp",
        "go" | "golang" => "go",
        "sh" | "bash" | "shell" | "zsh" | "console" | "shell-session" | "shellsession"
        | "terminal" | "ksh" | "fish" => "shell",
        "rb" | "ruby" => "ruby",
        "kt" | "kotlin" => "kotlin",
        "ps" | "ps1" | "powershell" | "pwsh" => "powershell",
        "yml" | "yaml" => "yaml",
        "hs" | "haskell" => "haskell",
        other => {
            if other
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+#-_".contains(c))
            {
                return FenceTag::Other(other.to_string());
            }
            return FenceTag::Neutral;
        }
    };
    FenceTag::Other(name.to_string())
}

/// The best guess at another language, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Guess {
    /// Language name (`javascript`, `rust`, …).
    pub(super) language: &'static str,
    /// Summed weight of its signatures.
    pub(super) score: u32,
    /// Labels of the signatures seen, strongest first.
    pub(super) evidence: Vec<&'static str>,
}

struct Sig {
    lang: Lang,
    weight: u32,
    label: &'static str,
    test: fn(&str) -> bool,
}

const fn sig(lang: Lang, weight: u32, label: &'static str, test: fn(&str) -> bool) -> Sig {
    Sig {
        lang,
        weight,
        label,
        test,
    }
}

/// Whether `s` starts with an identifier (ASCII letters, digits, `_`, not starting with a digit).
fn ident_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.first()
        .is_none_or(|c| !(c.is_ascii_alphabetic() || *c == b'_'))
    {
        return 0;
    }
    b.iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count()
}

/// `prefix` followed by an identifier.
fn prefix_ident(l: &str, prefix: &str) -> bool {
    l.strip_prefix(prefix).is_some_and(|r| ident_len(r) > 0)
}

/// `prefix`, an identifier, then (after spaces) one of `next`.
fn decl(l: &str, prefix: &str, next: &[char]) -> bool {
    l.strip_prefix(prefix).is_some_and(|r| {
        let n = ident_len(r);
        n > 0 && r[n..].trim_start().starts_with(next)
    })
}

/// A shell command word at the start of the line, followed by an argument (not an operator, so
/// `cat = 3` or `ls(x)` stay Python).
fn command(l: &str) -> bool {
    const COMMANDS: &[&str] = &[
        "apt", "apt-get", "brew", "cat", "cd", "chmod", "chown", "cp", "curl", "docker", "echo",
        "export", "git", "grep", "ls", "make", "mkdir", "mv", "npm", "pip", "pip3", "rm", "sed",
        "sudo", "tar", "touch", "wget", "yarn", "conda", "source", "awk", "gcc", "g++", "cargo",
        "node", "javac", "go",
    ];
    let word = l.split_whitespace().next().unwrap_or("");
    if !COMMANDS.contains(&word) {
        return false;
    }
    let rest = l[word.len()..].trim_start();
    l[word.len()..].starts_with(' ')
        && !rest.is_empty()
        && !rest.starts_with([
            '=', '(', '[', '.', ',', ':', '+', '*', '/', '%', '<', '>', '!', '&', '|',
        ])
        || (word == "ls" && rest.is_empty())
}

/// `python foo.py`, `python3 -m x`: running Python from a shell.
fn runs_python(l: &str) -> bool {
    let mut words = l.split_whitespace();
    matches!(words.next(), Some("python" | "python3" | "py"))
        && words
            .next()
            .is_some_and(|w| w.ends_with(".py") || w.starts_with('-'))
}

/// An identifier immediately followed by `!(`, `![` or `!{`: a Rust macro call.
fn rust_macro(l: &str) -> bool {
    let b = l.as_bytes();
    b.windows(3).any(|w| {
        (w[0].is_ascii_alphanumeric() || w[0] == b'_')
            && w[1] == b'!'
            && matches!(w[2], b'(' | b'[' | b'{')
    })
}

/// Go's short declaration at the start of a statement: `x := …`, `a, b := …`.
fn go_short_decl(l: &str) -> bool {
    let Some(pos) = l.find(" := ") else {
        return false;
    };
    let lhs = l[..pos]
        .trim_start_matches("if ")
        .trim_start_matches("for ");
    !lhs.is_empty()
        && lhs
            .split(',')
            .all(|p| ident_len(p.trim()) == p.trim().len() && !p.trim().is_empty())
}

/// A C-style typed declaration: `int x = …`, `long long f(…`, `char *s;`, `void f(`.
fn typed_decl(l: &str) -> bool {
    const TYPES: &[&str] = &[
        "int ",
        "long ",
        "char ",
        "double ",
        "float ",
        "void ",
        "unsigned ",
        "bool ",
        "short ",
        "size_t ",
        "const int ",
        "static int ",
        "string ",
        "auto ",
    ];
    TYPES.iter().any(|t| {
        l.strip_prefix(t).is_some_and(|r| {
            let r = r
                .trim_start_matches(['*', '&', ' '])
                .trim_start_matches("long ");
            let n = ident_len(r);
            n > 0 && r[n..].trim_start().starts_with(['=', '(', ';', '[', ','])
        })
    })
}

fn word(l: &str, w: &str) -> bool {
    l.match_indices(w).any(|(i, _)| {
        let before = l[..i].chars().next_back();
        let after = l[i + w.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

use Lang::*;

const SIGS: &[Sig] = &[
    // JavaScript
    sig(JavaScript, 4, "`function` declaration", |l| {
        // Pseudo-code writes `function f(x):`; JavaScript never ends the line with `:`.
        (l.starts_with("function ") || l.starts_with("async function "))
            && l.contains('(')
            && !l.contains('$')
            && !l.ends_with(':')
    }),
    sig(JavaScript, 3, "`function (…)` expression", |l| {
        l.contains("= function(") || l.contains("= function (")
    }),
    sig(JavaScript, 4, "`const`/`var` declaration", |l| {
        decl(l, "const ", &['=', ';'])
            || decl(l, "var ", &['=', ';', ':'])
            || l.starts_with("const {")
            || l.starts_with("const [")
    }),
    // `let x = …;` is JavaScript or Rust; other evidence decides.
    sig(JavaScript, 2, "`let` declaration", |l| {
        decl(l, "let ", &['=', ';'])
    }),
    sig(JavaScript, 3, "arrow function `=>`", |l| {
        l.contains("=>") && !l.contains("=>>")
    }),
    sig(JavaScript, 4, "`console.log`", |l| {
        l.contains("console.log(") || l.contains("console.error(")
    }),
    sig(JavaScript, 3, "`===`/`!==`", |l| {
        l.contains("===") || l.contains("!==")
    }),
    sig(JavaScript, 4, "`module.exports`/`require`", |l| {
        l.contains("module.exports") || l.contains("require(")
    }),
    sig(JavaScript, 4, "ES module import", |l| {
        l.starts_with("import ") && (l.contains(" from '") || l.contains(" from \""))
            || l.starts_with("export ")
    }),
    sig(JavaScript, 2, "JS built-ins", |l| {
        [
            "Math.",
            "JSON.",
            "parseInt(",
            "parseFloat(",
            "document.",
            "window.",
            "process.",
            "undefined",
            ".forEach(",
            ".length;",
            "new Map(",
            "new Set(",
            "Array.",
            ".push(",
        ]
        .iter()
        .any(|p| l.contains(p))
    }),
    // TypeScript
    sig(TypeScript, 4, "TypeScript type annotation", |l| {
        [
            ": number",
            ": string",
            ": boolean",
            ": any",
            "<number>",
            "number[]",
            "string[]",
        ]
        .iter()
        .any(|p| l.contains(p))
    }),
    sig(TypeScript, 4, "`interface`/`type` declaration", |l| {
        decl(l, "interface ", &['{', '<'])
            || decl(l, "export interface ", &['{', '<'])
            || decl(l, "type ", &['=', '<'])
    }),
    // Rust
    sig(Rust, 4, "`fn` item", |l| {
        prefix_ident(l, "fn ") || prefix_ident(l, "pub fn ") || l.contains("fn main(")
    }),
    sig(Rust, 4, "`let mut`", |l| l.starts_with("let mut ")),
    sig(Rust, 4, "macro call (`println!`, `vec!`)", rust_macro),
    sig(Rust, 4, "`impl`/`use …::`/`#[derive]`", |l| {
        l.starts_with("impl ")
            || l.starts_with("impl<")
            || (l.starts_with("use ") && l.contains("::"))
            || l.starts_with("#[")
    }),
    sig(Rust, 3, "Rust types and methods", |l| {
        [
            "&str",
            "&mut ",
            ".unwrap()",
            "Vec<",
            "Option<",
            "Result<",
            "String::",
            "::new(",
        ]
        .iter()
        .any(|p| l.contains(p))
    }),
    sig(Rust, 2, "Rust primitive types", |l| {
        ["usize", "i32", "i64", "u64", "f64", "u8"]
            .iter()
            .any(|w| word(l, w))
    }),
    sig(Rust, 4, "`pub` item", |l| {
        l.starts_with("pub(")
            || l.strip_prefix("pub ").is_some_and(|r| {
                [
                    "const ",
                    "static ",
                    "struct ",
                    "enum ",
                    "fn ",
                    "mod ",
                    "use ",
                    "type ",
                    "trait ",
                    "impl",
                    "unsafe ",
                    "extern ",
                    "async fn ",
                ]
                .iter()
                .any(|k| r.starts_with(k))
            })
    }),
    sig(Rust, 3, "typed `let`/`const`/`static`, `mod`", |l| {
        decl(l, "let ", &[':'])
            || decl(l, "const ", &[':'])
            || decl(l, "static ", &[':'])
            || decl(l, "mod ", &[';', '{'])
    }),
    sig(Rust, 3, "match arm", |l| {
        l.contains("=>")
            && (l.contains("::")
                || ["Some(", "None", "Ok(", "Err(", "_ =>"]
                    .iter()
                    .any(|p| l.starts_with(p)))
    }),
    sig(Rust, 2, "`match`/`let` with `;`", |l| {
        decl(l, "match ", &['{']) || (decl(l, "let ", &['=', ':']) && l.ends_with(';'))
    }),
    // C
    sig(C, 4, "C header include", |l| {
        l.starts_with("#include")
            && [
                "stdio.h",
                "stdlib.h",
                "string.h",
                "math.h",
                "stdbool.h",
                "limits.h",
            ]
            .iter()
            .any(|h| l.contains(h))
    }),
    sig(C, 3, "C library calls", |l| {
        [
            "printf(", "scanf(", "malloc(", "sizeof(", "fgets(", "strlen(", "memset(",
        ]
        .iter()
        .any(|p| l.contains(p))
    }),
    sig(C, 2, "`int main(`", |l| l.contains("int main(")),
    sig(C, 2, "`#define`", |l| l.starts_with("#define ")),
    // C++
    sig(Cpp, 4, "C++ header include", |l| {
        l.starts_with("#include")
            && [
                "iostream",
                "vector",
                "bits/stdc++",
                "algorithm",
                "string>",
                "map>",
                "unordered_map",
            ]
            .iter()
            .any(|h| l.contains(h))
    }),
    sig(Cpp, 4, "`std::`/`cout`/`cin`", |l| {
        l.contains("std::")
            || l.contains("cout <<")
            || l.contains("cout<<")
            || l.contains("cin >>")
            || l.contains("cin>>")
    }),
    sig(Cpp, 4, "`using namespace`/`template`", |l| {
        l.starts_with("using namespace ")
            || l.starts_with("template <")
            || l.starts_with("template<")
    }),
    sig(Cpp, 3, "C++ types", |l| {
        ["vector<", "nullptr", "unordered_map<", "pair<", "endl"]
            .iter()
            .any(|p| l.contains(p))
    }),
    sig(Cpp, 2, "access specifier", |l| {
        matches!(l, "public:" | "private:" | "protected:")
    }),
    // Java
    sig(Java, 4, "`public class`/`main`", |l| {
        l.contains("public class ")
            || l.contains("public static void main")
            || l.contains("class Solution {")
    }),
    sig(Java, 4, "`System.out`/`java.` import", |l| {
        l.contains("System.out.") || l.starts_with("import java")
    }),
    sig(Java, 3, "Java types", |l| {
        [
            "String[]",
            "ArrayList<",
            "HashMap<",
            "List<Integer>",
            "Map<String",
            "new int[",
            "Scanner(",
            "Integer.",
            "@Override",
        ]
        .iter()
        .any(|p| l.contains(p))
    }),
    sig(Java, 3, "access modifier", |l| {
        ["public ", "private ", "protected "]
            .iter()
            .any(|p| l.starts_with(p))
            && (l.contains('(') || l.ends_with(';') || l.ends_with('{'))
    }),
    // C#
    sig(CSharp, 4, "`Console.WriteLine`/`using System`", |l| {
        l.contains("Console.Write") || l.contains("Console.Read") || l.starts_with("using System")
    }),
    sig(CSharp, 3, "`namespace`/`static void Main`", |l| {
        l.starts_with("namespace ") || l.contains("static void Main(")
    }),
    // Go
    sig(Go, 4, "`package`/`import \"…\"`", |l| {
        prefix_ident(l, "package ") || l.starts_with("import \"") || l == "import ("
    }),
    sig(Go, 4, "`func`", |l| {
        (prefix_ident(l, "func ") || l.starts_with("func (")) && l.contains('(')
    }),
    sig(Go, 4, "`fmt.`/`err != nil`", |l| {
        l.contains("fmt.") || l.contains("err != nil")
    }),
    sig(Go, 3, "`:=` declaration", go_short_decl),
    sig(Go, 3, "Go types", |l| {
        [
            "[]int",
            "[]string",
            "map[string]",
            "chan ",
            "make([]",
            "defer ",
        ]
        .iter()
        .any(|p| l.contains(p))
    }),
    // Shell
    sig(Shell, 4, "`$ ` prompt", |l| {
        l.starts_with("$ ") && l.len() > 2
    }),
    sig(Shell, 3, "shell command", command),
    sig(Shell, 3, "`python file.py`", runs_python),
    sig(Shell, 4, "`if [ … ]`/`then`/`fi`/`done`", |l| {
        l.starts_with("if [")
            || l.ends_with("; then")
            || l.ends_with("; do")
            || matches!(l, "fi" | "done" | "then" | "do" | "esac")
    }),
    sig(Shell, 3, "redirection or variable expansion", |l| {
        [
            "2>&1",
            "> /dev/null",
            "$(",
            "${",
            "| grep",
            "| sort",
            "| wc",
            "| head",
            "| xargs",
            "$1",
            "$@",
        ]
        .iter()
        .any(|p| l.contains(p))
    }),
    // Ruby
    sig(Ruby, 4, "`puts`/`elsif`/block `do |x|`", |l| {
        prefix_ident(l, "puts ")
            || l.starts_with("puts \"")
            || l.starts_with("elsif ")
            || l.contains(" do |")
            || l.contains(".each do")
    }),
    sig(Ruby, 2, "`end`", |l| l == "end"),
    sig(Ruby, 1, "`def` without `:`", |l| {
        l.starts_with("def ") && !l.ends_with(':') && !l.contains('{')
    }),
    // PHP
    sig(Php, 5, "`<?php`", |l| l.starts_with("<?php")),
    sig(Php, 3, "`$variables`", |l| {
        l.starts_with('$') && l.contains(" = ") && l.ends_with(';')
            || l.contains("$this->")
            || l.contains("function") && l.contains("($")
    }),
    // SQL
    sig(Sql, 4, "SQL statement", |l| {
        let u = l.to_ascii_uppercase();
        (u.starts_with("SELECT ") && (u.contains(" FROM ") || u.ends_with(';')))
            || u.starts_with("INSERT INTO ")
            || u.starts_with("CREATE TABLE ")
            || (u.starts_with("UPDATE ") && u.contains(" SET "))
            || u.starts_with("DELETE FROM ")
    }),
    // Kotlin
    sig(Kotlin, 4, "`fun`/`val`", |l| {
        prefix_ident(l, "fun ") || decl(l, "val ", &['=', ':'])
    }),
    // HTML / XML
    sig(Html, 4, "markup tags", |l| {
        l.to_ascii_lowercase().starts_with("<!doctype")
            || (l.starts_with('<')
                && l[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
                && l.ends_with('>'))
    }),
    // Shared by the C family
    sig(CFamily, 2, "inline `{ …; }` block", |l| {
        l.find('{')
            .is_some_and(|i| l[i..].contains(';') && l.ends_with('}'))
    }),
    sig(CFamily, 3, "`{` after `)` or `else`", |l| {
        l.ends_with(") {")
            || l.ends_with("else {")
            || l.ends_with("){")
            || l == "{"
            || l.starts_with("} else")
    }),
    sig(CFamily, 1, "`}` line", |l| l == "}" || l == "};"),
    sig(CFamily, 2, "`//` or `/*` comment", |l| {
        l.starts_with("//") || l.starts_with("/*")
    }),
    sig(CFamily, 2, "C-style `for (…; …; …)`", |l| {
        (l.starts_with("for (") || l.starts_with("for(")) && l.matches(';').count() >= 2
    }),
    sig(CFamily, 2, "`++`/`--`/`&&`/`||`", |l| {
        l.contains("++") || l.contains("&&") || l.contains("||") || l.ends_with("--;")
    }),
    sig(CFamily, 2, "typed declaration", typed_decl),
    sig(CFamily, 1, "`return …;`", |l| {
        word(l, "return") && l.ends_with(';')
    }),
];

/// Interpreters whose `#!` line (on the first line only) marks a shell script.
const SHELLS: &[&str] = &[
    "/sh", "/bash", "/zsh", "/ksh", " sh", " bash", " zsh", " ksh",
];

/// Score `lines` (code lines: prose and string rows already left out) against every language.
///
/// Returns the best guess, or `None` when nothing matched.
pub(super) fn guess<'a>(lines: impl Iterator<Item = &'a str>) -> Option<Guess> {
    // Per signature: how many lines matched (counted up to 2).
    let mut hits = [0u8; SIGS.len()];
    let mut code_lines = 0u32;
    let mut semicolon_lines = 0u32;
    let mut buf = String::new();
    let mut shebang = false;
    for line in lines {
        strip_literals(line.trim(), &mut buf);
        let l = buf.trim_end();
        if l.is_empty() {
            continue;
        }
        if code_lines == 0 {
            shebang = l.starts_with("#!") && SHELLS.iter().any(|sh| l.ends_with(sh));
        }
        code_lines += 1;
        if l.ends_with(';') {
            semicolon_lines += 1;
        }
        // A line ending with `:` is a Python header (`for (a, b) in x:`), whatever it holds.
        let header = l.ends_with(':');
        for (i, s) in SIGS.iter().enumerate() {
            if hits[i] < 2 && !(header && s.lang == CFamily) && (s.test)(l) {
                hits[i] += 1;
            }
        }
    }
    let mut scores = [0u32; LANGS];
    for (s, &h) in SIGS.iter().zip(&hits) {
        scores[s.lang.index()] += s.weight * u32::from(h);
    }
    if shebang {
        scores[Shell.index()] += 5;
    }
    // Most lines ending with `;` (Python allows it, but hardly anyone writes it).
    let semicolons = code_lines >= 2 && semicolon_lines * 2 >= code_lines;
    if semicolons {
        scores[CFamily.index()] += 2;
    }
    // TypeScript is JavaScript with types.
    if scores[TypeScript.index()] > 0 {
        scores[TypeScript.index()] += scores[JavaScript.index()];
        scores[JavaScript.index()] = 0;
    }
    let generic = scores[CFamily.index()];
    if generic > 0 {
        let family = best(&scores, Lang::c_family)
            .filter(|l| scores[l.index()] > 0)
            .unwrap_or(C);
        scores[family.index()] += generic;
    }
    let lang = best(&scores, |_| true)?;
    let score = scores[lang.index()];
    if score == 0 {
        return None;
    }
    let mut evidence: Vec<(u32, &'static str)> = SIGS
        .iter()
        .zip(&hits)
        .filter(|(s, &h)| {
            h > 0
                && (s.lang == lang
                    || (s.lang == CFamily && lang.c_family())
                    || (lang == TypeScript && s.lang == JavaScript))
        })
        .map(|(s, _)| (s.weight, s.label))
        .collect();
    if shebang && lang == Shell {
        evidence.push((5, "shebang"));
    }
    if semicolons && lang.c_family() {
        evidence.push((2, "`;` line endings"));
    }
    evidence.sort_by_key(|&(w, _)| std::cmp::Reverse(w));
    Some(Guess {
        language: lang.name(),
        score,
        evidence: evidence.into_iter().map(|(_, l)| l).collect(),
    })
}

/// Copy `line` into `out` with the contents of string literals removed (`"a && b"` → `""`) and
/// a trailing `#` comment dropped, so that text about code does not count as code. A line that
/// starts with `#` is kept whole: `#include`, `#!/bin/sh` and `#[derive]` are signatures.
fn strip_literals(line: &str, out: &mut String) {
    out.clear();
    if line.starts_with('#') {
        out.push_str(line);
        return;
    }
    let mut quote = None;
    let mut escaped = false;
    for c in line.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    out.push(c);
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => {
                    out.push(c);
                    quote = Some(c);
                }
                '#' => return,
                _ => out.push(c),
            },
        }
    }
}

/// The highest-scoring language among those `pred` accepts (ties: the first declared).
fn best(scores: &[u32; LANGS], pred: fn(Lang) -> bool) -> Option<Lang> {
    Lang::SPECIFIC
        .iter()
        .copied()
        .filter(|l| pred(*l))
        .max_by_key(|l| (scores[l.index()], std::cmp::Reverse(l.index())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(code: &str) -> Option<Guess> {
        guess(code.lines())
    }

    #[test]
    fn fence_tags_are_normalised() {
        assert_eq!(fence_tag(Some("js")), FenceTag::Other("javascript".into()));
        assert_eq!(fence_tag(Some("C++")), FenceTag::Other("cpp".into()));
        assert_eq!(fence_tag(Some("bash")), FenceTag::Other("shell".into()));
        assert_eq!(fence_tag(Some("Python3")), FenceTag::Python);
        assert_eq!(fence_tag(Some("text")), FenceTag::Neutral);
        assert_eq!(fence_tag(Some("elixir")), FenceTag::Other("elixir".into()));
        assert_eq!(fence_tag(Some("{.weird}")), FenceTag::Neutral);
        assert_eq!(fence_tag(None), FenceTag::Neutral);
    }

    #[test]
    fn each_language_has_a_signature() {
        let cases = [
            ("function f(a) {\n  return a;\n}", "javascript"),
            ("const f = (a: number): number => a;", "typescript"),
            ("fn main() {\n    let mut x = 1;\n}", "rust"),
            ("#include <stdio.h>\nint main() {\n  printf(\"x\");\n}", "c"),
            ("#include <iostream>\nint main() { std::cout << 1; }", "cpp"),
            (
                "public class Main {\n  public static void main(String[] args) {}\n}",
                "java",
            ),
            ("package main\nfunc main() {\n  fmt.Println(1)\n}", "go"),
            ("#!/bin/bash\necho hi | grep h", "shell"),
            ("$ pip install numpy", "shell"),
            ("using System;\nConsole.WriteLine(1);", "csharp"),
            ("def f(x)\n  puts x\nend", "ruby"),
            ("<?php\n$x = 1;", "php"),
            ("SELECT name FROM users;", "sql"),
            ("fun main() {\n  val x = 1\n}", "kotlin"),
            ("for (i = 0; i < n; i++) {\n  s += a[i];\n}", "c"),
            ("public int add(int a, int b) { return a + b; }", "java"),
            ("<html><body>hi</body></html>", "html"),
        ];
        for (code, lang) in cases {
            assert_eq!(g(code).map(|g| g.language), Some(lang), "{code}");
        }
    }

    #[test]
    fn string_contents_and_comments_are_not_signatures() {
        let mut out = String::new();
        strip_literals(
            r#"x = "a && b \" === c" + 'd => e'  # console.log(x);"#,
            &mut out,
        );
        assert_eq!(out, r#"x = "" + ''  "#);
        strip_literals("#include <stdio.h>", &mut out);
        assert_eq!(out, "#include <stdio.h>");
        let data = "FLAGS = {\n    'cc': 'gcc && ld',\n    'js': 'a => a === b; i++',\n}\n";
        // Only the closing `}` of the dict counts, too little to name a language.
        assert_eq!(
            g(data).map(|g| (g.score, g.evidence)),
            Some((1, vec!["`}` line"]))
        );
    }

    #[test]
    fn python_lines_match_no_signature() {
        let code = "import sys\nfrom typing import List\n\ndef solve(nums: List[int]) -> int:\n    \
                    total = 0\n    for i, n in enumerate(nums):\n        if n > 0 and i % 2 == 0:\n            \
                    total += n\n    d = {'a': 1}\n    cat = len(d); ls = [x for x in nums]\n    \
                    print(f\"{total}\")\n    return total\n\nif __name__ == \"__main__\":\n    \
                    solve(list(map(int, sys.stdin.read().split())))\n";
        assert_eq!(g(code), None);
    }
}
