//! A seeded generator of small Python programming problems the tiny policy can learn:
//! list/string/number transformations ("return the numbers sorted with 42 at the start"), each
//! with a reference solution and call tests whose expected values are computed here in Rust.
//!
//! Problems are identified by family and parameter; the train/held-out split hashes that id, so
//! the splits never share a problem. [`Problem::rollout_json`] writes verdict's rollout format.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::tokenizer::{EOS, THINK_CLOSE, THINK_OPEN};

/// One generated problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Stable id: family and parameters, e.g. `sorted_with_first-42`.
    pub id: String,
    /// The task as shown to the model.
    pub statement: String,
    /// The function to write.
    pub entry_point: String,
    /// A known-good solution.
    pub reference: String,
    /// The short reasoning used by the SFT target.
    pub reasoning: String,
    /// `(args, expected)` call tests.
    pub tests: Vec<(Vec<Value>, Value)>,
    /// How the prompt presents the statement ([`Problem::prompt`]). Default [`PromptTemplate::Plain`].
    pub template: PromptTemplate,
    /// How the base-corpus document marks the statement ([`Problem::corpus_document`]).
    pub markup: StatementMarkup,
}

/// How a problem is put to the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptTemplate {
    /// `User: {statement}\nAssistant: ` (the SFT cold start teaches the answer's shape).
    #[default]
    Plain,
    /// DeepSeek-R1-Zero's template (DeepSeek-R1, arXiv:2501.12948, Table 1), shortened for a
    /// code answer: an instruction to reason inside `<think> </think>` and then write the Python
    /// code, then the same `User:`/`Assistant:` turn. Nothing else about the answer is fixed.
    R1Zero,
}

/// The R1-Zero preamble, before the user turn (see [`PromptTemplate::R1Zero`]).
///
/// Reference (DeepSeek-R1 Table 1): "A conversation between User and Assistant. The user asks a
/// question, and the Assistant solves it. The assistant first thinks about the reasoning process
/// in the mind and then provides the user with the answer. The reasoning process and answer are
/// enclosed within <think> </think> and <answer> </answer> tags, respectively, …"
pub const R1_ZERO_PREAMBLE: &str = "A conversation between User and Assistant. The User asks for \
a Python function, and the Assistant writes it. The Assistant first thinks about the reasoning \
process in the mind and then gives the answer: the reasoning inside <think> </think>, then the \
Python code.";

/// How a base-corpus document introduces its program's statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementMarkup {
    /// A Python comment: `# {statement}`.
    #[default]
    Comment,
    /// Prose between the tags: `<think>{statement}</think>` (markup around the prose that
    /// precedes code, so that the base model has seen the tag tokens at all).
    Tags,
}

/// Which split a problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Used for training.
    Train,
    /// Never trained on.
    HeldOut,
}

impl Problem {
    /// The prompt given to the policy (R1-Zero-style template, the reasoning tag opened by the
    /// completion).
    pub fn prompt(&self) -> String {
        match self.template {
            PromptTemplate::Plain => format!("User: {}\nAssistant: ", self.statement),
            PromptTemplate::R1Zero => {
                format!("{R1_ZERO_PREAMBLE}\nUser: {}\nAssistant: ", self.statement)
            }
        }
    }

    /// The SFT target: `<think>reasoning</think>` then a fenced Python answer, then EOS.
    pub fn sft_completion(&self) -> String {
        format!(
            "{THINK_OPEN}{}{THINK_CLOSE}\n```python\n{}```{EOS}",
            self.reasoning, self.reference
        )
    }

    /// A base-corpus document: the statement (marked as [`Problem::markup`] says) and the
    /// reference program. Neither the prompt template nor a fenced answer appears.
    pub fn corpus_document(&self) -> String {
        match self.markup {
            StatementMarkup::Comment => format!("# {}\n{}{EOS}", self.statement, self.reference),
            StatementMarkup::Tags => format!(
                "{THINK_OPEN}{}{THINK_CLOSE}\n{}{EOS}",
                self.statement, self.reference
            ),
        }
    }

    /// Whether this problem's corpus document is among a `share` (in `[0, 1]`) of problems
    /// chosen by a hash of the id (stable, independent of the train/held-out split's hash).
    pub fn in_share(&self, share: f64) -> bool {
        let bucket = fnv1a(format!("markup:{}", self.id).as_bytes()) % 10_000;
        (bucket as f64) < share * 10_000.0
    }

    /// The problem in verdict's rollout format (`completion` filled by the caller).
    pub fn rollout_json(&self, id: &str, completion: &str) -> Value {
        let tests: Vec<Value> = self
            .tests
            .iter()
            .map(|(args, expected)| {
                json!({"kind": "call", "fn": self.entry_point, "args": args, "expected": expected})
            })
            .collect();
        json!({
            "id": id,
            "problem_id": self.id,
            "prompt": self.prompt(),
            "completion": completion,
            "tests": tests,
            "entry_point": self.entry_point,
            "reference": self.reference,
        })
    }

    /// The problem's family: its id without the parameter (`sorted_with_first-42` →
    /// `sorted_with_first`).
    pub fn family(&self) -> &str {
        family_of(&self.id)
    }

    /// The split this problem belongs to, for a held-out fraction in `[0, 1]`.
    pub fn split(&self, heldout_fraction: f64) -> Split {
        let bucket = fnv1a(self.id.as_bytes()) % 10_000;
        if (bucket as f64) < heldout_fraction * 10_000.0 {
            Split::HeldOut
        } else {
            Split::Train
        }
    }
}

/// The family of a problem id (the id without its `-parameter` suffix).
pub fn family_of(id: &str) -> &str {
    id.rsplit_once('-').map_or(id, |(family, _)| family)
}

/// FNV-1a: a stable hash (std's `DefaultHasher` may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// The input of a problem's function.
#[derive(Debug, Clone)]
enum Input {
    Ints(Vec<i64>),
    Text(String),
}

impl Input {
    fn json(&self) -> Value {
        match self {
            Input::Ints(xs) => json!(xs),
            Input::Text(s) => json!(s),
        }
    }
}

/// A problem family: how to phrase, solve and check it for a parameter `k`.
struct Family {
    name: &'static str,
    /// The function name.
    entry: &'static str,
    /// Input kind: true for a list of integers, false for a string.
    ints: bool,
    /// Parameter range.
    params: std::ops::Range<i64>,
    describe: fn(i64) -> String,
    reason: fn(i64) -> String,
    /// The body's return expression, in terms of `xs` or `s`.
    body: fn(i64) -> String,
    eval: fn(&Input, i64) -> Value,
}

fn ints(input: &Input) -> Vec<i64> {
    match input {
        Input::Ints(xs) => xs.clone(),
        Input::Text(_) => Vec::new(),
    }
}

fn text(input: &Input) -> String {
    match input {
        Input::Text(s) => s.clone(),
        Input::Ints(_) => String::new(),
    }
}

fn letter(k: i64) -> char {
    (b'a' + (k.rem_euclid(26)) as u8) as char
}

fn families() -> Vec<Family> {
    vec![
        Family {
            name: "sorted_with_first",
            entry: "sorted_with_first",
            ints: true,
            params: 0..100,
            describe: |k| {
                format!("return the numbers sorted in ascending order with {k} at the start")
            },
            reason: |k| format!("Sort the list ascending, then put {k} in front."),
            body: |k| format!("[{k}] + sorted(xs)"),
            eval: |i, k| {
                let mut xs = ints(i);
                xs.sort();
                xs.insert(0, k);
                json!(xs)
            },
        },
        Family {
            name: "sorted_desc_with_last",
            entry: "sorted_desc_with_last",
            ints: true,
            params: 0..100,
            describe: |k| {
                format!("return the numbers sorted from largest to smallest with {k} appended at the end")
            },
            reason: |k| format!("Sort in reverse order, then append {k}."),
            body: |k| format!("sorted(xs, reverse=True) + [{k}]"),
            eval: |i, k| {
                let mut xs = ints(i);
                xs.sort_by(|a, b| b.cmp(a));
                xs.push(k);
                json!(xs)
            },
        },
        Family {
            name: "greater_than",
            entry: "greater_than",
            ints: true,
            params: 0..100,
            describe: |k| format!("return the numbers greater than {k}, in their original order"),
            reason: |k| format!("Keep each number x with x > {k}."),
            body: |k| format!("[x for x in xs if x > {k}]"),
            eval: |i, k| json!(ints(i).into_iter().filter(|&x| x > k).collect::<Vec<_>>()),
        },
        Family {
            name: "less_than",
            entry: "less_than",
            ints: true,
            params: 0..100,
            describe: |k| format!("return the numbers smaller than {k}, in their original order"),
            reason: |k| format!("Keep each number x with x < {k}."),
            body: |k| format!("[x for x in xs if x < {k}]"),
            eval: |i, k| json!(ints(i).into_iter().filter(|&x| x < k).collect::<Vec<_>>()),
        },
        Family {
            name: "add_each",
            entry: "add_each",
            ints: true,
            params: 1..100,
            describe: |k| format!("return each number plus {k}"),
            reason: |k| format!("Add {k} to every element."),
            body: |k| format!("[x + {k} for x in xs]"),
            eval: |i, k| json!(ints(i).into_iter().map(|x| x + k).collect::<Vec<_>>()),
        },
        Family {
            name: "times_each",
            entry: "times_each",
            ints: true,
            params: 2..20,
            describe: |k| format!("return each number multiplied by {k}"),
            reason: |k| format!("Multiply every element by {k}."),
            body: |k| format!("[x * {k} for x in xs]"),
            eval: |i, k| json!(ints(i).into_iter().map(|x| x * k).collect::<Vec<_>>()),
        },
        Family {
            name: "count_value",
            entry: "count_value",
            ints: true,
            params: 0..100,
            describe: |k| format!("return how many times {k} appears in the list"),
            reason: |k| format!("Count the elements equal to {k}."),
            body: |k| format!("xs.count({k})"),
            eval: |i, k| json!(ints(i).into_iter().filter(|&x| x == k).count()),
        },
        Family {
            name: "sum_plus",
            entry: "sum_plus",
            ints: true,
            params: 1..100,
            describe: |k| format!("return the sum of the numbers plus {k}"),
            reason: |k| format!("Sum the list and add {k}."),
            body: |k| format!("sum(xs) + {k}"),
            eval: |i, k| json!(ints(i).into_iter().sum::<i64>() + k),
        },
        Family {
            name: "max_or_default",
            entry: "max_or_default",
            ints: true,
            params: 0..100,
            describe: |k| format!("return the largest number, or {k} if the list is empty"),
            reason: |k| format!("Use max when the list has elements, otherwise {k}."),
            body: |k| format!("max(xs) if xs else {k}"),
            eval: |i, k| json!(ints(i).into_iter().max().unwrap_or(k)),
        },
        Family {
            name: "without_value",
            entry: "without_value",
            ints: true,
            params: 0..100,
            describe: |k| format!("return the list without any occurrence of {k}"),
            reason: |k| format!("Keep every element that is not {k}."),
            body: |k| format!("[x for x in xs if x != {k}]"),
            eval: |i, k| json!(ints(i).into_iter().filter(|&x| x != k).collect::<Vec<_>>()),
        },
        Family {
            name: "multiples_of",
            entry: "multiples_of",
            ints: true,
            params: 2..13,
            describe: |k| format!("return the numbers divisible by {k}"),
            reason: |k| format!("Keep each x where x % {k} == 0."),
            body: |k| format!("[x for x in xs if x % {k} == 0]"),
            eval: |i, k| {
                json!(ints(i)
                    .into_iter()
                    .filter(|&x| x.rem_euclid(k) == 0)
                    .collect::<Vec<_>>())
            },
        },
        Family {
            name: "first_n",
            entry: "first_n",
            ints: true,
            params: 1..10,
            describe: |k| format!("return the first {k} numbers of the list"),
            reason: |k| format!("Slice the first {k} elements."),
            body: |k| format!("xs[:{k}]"),
            eval: |i, k| json!(ints(i).into_iter().take(k as usize).collect::<Vec<_>>()),
        },
        Family {
            name: "repeat_text",
            entry: "repeat_text",
            ints: false,
            params: 2..6,
            describe: |k| format!("return the string repeated {k} times"),
            reason: |k| format!("Multiply the string by {k}."),
            body: |k| format!("s * {k}"),
            eval: |i, k| json!(text(i).repeat(k as usize)),
        },
        Family {
            name: "upper_with_suffix",
            entry: "upper_with_suffix",
            ints: false,
            params: 0..100,
            describe: |k| format!("return the string in upper case followed by {k}"),
            reason: |k| format!("Upper-case the string, then append str({k})."),
            body: |k| format!("s.upper() + \"{k}\""),
            eval: |i, k| json!(format!("{}{k}", text(i).to_uppercase())),
        },
        Family {
            name: "count_letter",
            entry: "count_letter",
            ints: false,
            params: 0..26,
            describe: |k| {
                format!(
                    "return how many times the letter '{}' appears in the string",
                    letter(k)
                )
            },
            reason: |k| format!("Count the occurrences of '{}'.", letter(k)),
            body: |k| format!("s.count(\"{}\")", letter(k)),
            eval: |i, k| json!(text(i).chars().filter(|&c| c == letter(k)).count()),
        },
        Family {
            name: "replace_letter",
            entry: "replace_letter",
            ints: false,
            params: 0..26 * 25,
            describe: |k| {
                let (a, b) = replace_pair(k);
                format!("return the string with every '{a}' replaced by '{b}'")
            },
            reason: |k| {
                let (a, b) = replace_pair(k);
                format!("Replace '{a}' with '{b}' everywhere.")
            },
            body: |k| {
                let (a, b) = replace_pair(k);
                format!("s.replace(\"{a}\", \"{b}\")")
            },
            eval: |i, k| {
                let (a, b) = replace_pair(k);
                json!(text(i).replace(a, &b.to_string()))
            },
        },
        Family {
            name: "prefix",
            entry: "prefix",
            ints: false,
            params: 1..10,
            describe: |k| format!("return the first {k} characters of the string"),
            reason: |k| format!("Slice the first {k} characters."),
            body: |k| format!("s[:{k}]"),
            eval: |i, k| json!(text(i).chars().take(k as usize).collect::<String>()),
        },
        Family {
            name: "starts_with_letter",
            entry: "starts_with_letter",
            ints: false,
            params: 0..26,
            describe: |k| {
                format!(
                    "return True if the string starts with '{}', else False",
                    letter(k)
                )
            },
            reason: |k| format!("Check startswith('{}').", letter(k)),
            body: |k| format!("s.startswith(\"{}\")", letter(k)),
            eval: |i, k| json!(text(i).starts_with(letter(k))),
        },
    ]
}

fn replace_pair(k: i64) -> (char, char) {
    let a = letter(k / 25);
    let offset = k % 25;
    let b = letter(k / 25 + 1 + offset);
    (a, b)
}

fn random_input(rng: &mut StdRng, ints: bool) -> Input {
    let len = rng.random_range(0..8);
    if ints {
        Input::Ints((0..len).map(|_| rng.random_range(-20..120)).collect())
    } else {
        let words = [
            "apple", "banana", "cherry", "data", "echo", "zebra", "kiwi", "moon",
        ];
        let n = rng.random_range(1..4);
        Input::Text(
            (0..n)
                .map(|_| words[rng.random_range(0..words.len())])
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

fn build(family: &Family, k: i64, seed: u64) -> Problem {
    let id = format!("{}-{k}", family.name);
    let arg = if family.ints { "xs" } else { "s" };
    let kind = if family.ints {
        "a list of integers xs"
    } else {
        "a string s"
    };
    let statement = format!(
        "Write a Python function {}({arg}) that takes {kind} and {}.",
        family.entry,
        (family.describe)(k)
    );
    let reference = format!(
        "def {}({arg}):\n    return {}\n",
        family.entry,
        (family.body)(k)
    );
    let mut rng = StdRng::seed_from_u64(seed ^ fnv1a(id.as_bytes()));
    let tests = (0..4)
        .map(|_| {
            let input = random_input(&mut rng, family.ints);
            (vec![input.json()], (family.eval)(&input, k))
        })
        .collect();
    Problem {
        id,
        statement,
        entry_point: family.entry.to_string(),
        reference,
        reasoning: (family.reason)(k),
        tests,
        template: PromptTemplate::default(),
        markup: StatementMarkup::default(),
    }
}

/// Generate up to `count` distinct problems (of the 1751 the families define), deterministic
/// in `seed`.
pub fn generate(count: usize, seed: u64) -> Vec<Problem> {
    let families = families();
    let mut keys: Vec<(usize, i64)> = families
        .iter()
        .enumerate()
        .flat_map(|(f, family)| family.params.clone().map(move |k| (f, k)))
        .collect();
    keys.shuffle(&mut StdRng::seed_from_u64(seed));
    keys.truncate(count);
    keys.sort();
    keys.into_iter()
        .map(|(f, k)| build(&families[f], k, seed))
        .collect()
}

/// The train and held-out problems of a generated set.
pub fn split(problems: Vec<Problem>, heldout_fraction: f64) -> (Vec<Problem>, Vec<Problem>) {
    problems
        .into_iter()
        .partition(|p| p.split(heldout_fraction) == Split::Train)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generation_is_deterministic_and_ids_are_unique() {
        let a = generate(500, 3);
        assert_eq!(a, generate(500, 3));
        assert_ne!(a, generate(500, 4));
        let ids: HashSet<_> = a.iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids.len(), 500);
    }

    #[test]
    fn splits_never_share_a_problem_and_both_are_populated() {
        let (train, heldout) = split(generate(2000, 3), 0.1);
        let train_ids: HashSet<_> = train.iter().map(|p| &p.id).collect();
        assert!(heldout.iter().all(|p| !train_ids.contains(&p.id)));
        assert!((100..=300).contains(&heldout.len()), "{}", heldout.len());
        // The split is a property of the problem, not of the sample drawn.
        let (_, heldout_small) = split(generate(2000, 9), 0.1);
        assert!(heldout_small.iter().all(|p| !train_ids.contains(&p.id)));
    }

    #[test]
    fn the_example_from_the_issue_is_generated_with_correct_tests() {
        let problem = generate(100_000, 1)
            .into_iter()
            .find(|p| p.id == "sorted_with_first-42")
            .unwrap();
        assert!(problem
            .statement
            .contains("sorted in ascending order with 42 at the start"));
        assert_eq!(
            problem.reference,
            "def sorted_with_first(xs):\n    return [42] + sorted(xs)\n"
        );
        for (args, expected) in &problem.tests {
            let mut xs: Vec<i64> = serde_json::from_value(args[0].clone()).unwrap();
            xs.sort();
            xs.insert(0, 42);
            assert_eq!(expected, &json!(xs));
        }
    }

    #[test]
    fn references_parse_and_sft_targets_have_the_r1_shape() {
        for problem in generate(300, 5) {
            assert!(
                crate::python::parses(&problem.reference),
                "{}",
                problem.reference
            );
            let target = problem.sft_completion();
            assert!(target.starts_with("<think>") && target.ends_with("```<|eos|>"));
            let rollout = problem.rollout_json("r-1", &target);
            assert_eq!(rollout["tests"][0]["kind"], "call");
        }
    }

    #[test]
    fn the_r1_zero_template_asks_for_tagged_reasoning_and_the_corpus_never_shows_the_task() {
        let mut problem = generate(1, 0).remove(0);
        assert_eq!(
            problem.prompt(),
            format!("User: {}\nAssistant: ", problem.statement)
        );
        problem.template = PromptTemplate::R1Zero;
        let prompt = problem.prompt();
        assert!(prompt.starts_with(R1_ZERO_PREAMBLE) && prompt.contains("<think> </think>"));
        assert!(prompt.ends_with(&format!("\nUser: {}\nAssistant: ", problem.statement)));
        // The base corpus: the statement and the program, no template, fence or reasoning.
        for markup in [StatementMarkup::Comment, StatementMarkup::Tags] {
            problem.markup = markup;
            let doc = problem.corpus_document();
            assert!(doc.contains(&problem.statement) && doc.contains(&problem.reference));
            assert!(!doc.contains("Assistant") && !doc.contains("```"));
            assert!(!doc.contains(&problem.reasoning));
        }
        assert!(problem
            .corpus_document()
            .starts_with("<think>Write a Python function"));
        // The share of tagged documents is about what was asked for.
        let problems = generate(2000, 3);
        let tagged = problems.iter().filter(|p| p.in_share(0.25)).count();
        assert!((350..=520).contains(&tagged), "{tagged}");
        assert!(problems.iter().all(|p| !p.in_share(0.0) && p.in_share(1.0)));
        assert_eq!(family_of("sorted_with_first-42"), "sorted_with_first");
    }

    #[test]
    fn the_families_define_1751_problems() {
        assert_eq!(generate(usize::MAX, 0).len(), 1751);
    }

    #[test]
    fn replacement_pairs_use_two_different_letters() {
        for k in 0..26 * 25 {
            let (a, b) = replace_pair(k);
            assert_ne!(a, b, "k={k}");
        }
    }
}
