//! Dual agreement (after CodeT, Chen et al. 2022): which generated tests to trust when the
//! problem has no reference solution, judged by the problem's own rollouts.
//!
//! ## The rule
//! Each rollout ran every candidate test. Rollouts that pass exactly the same set of tests form
//! a *cluster*; a cluster's score is `rollouts in it × tests it passes`. The cluster with the
//! highest score wins (ties: more tests, then the cluster met first). Its tests are kept, the
//! others dropped as [`super::DropReason::Disagreement`]. The problem has tests only when the
//! winning cluster has at least `min_rollouts` rollouts and its set at least `min_tests` tests;
//! otherwise it is `tests_unavailable`. Tests whose result changed between a rollout's two runs
//! (different seeds) are removed before clustering.
//!
//! ## Where it fails
//! Agreement is evidence, not proof. It keeps wrong tests when **most rollouts share the same
//! bug** and the model that wrote the tests made it too (an off-by-one at a boundary both the
//! policy and the test writer get wrong): the buggy majority and the wrong tests agree, and the
//! correct minority is scored as failing. It also rewards a cluster of programs that pass many
//! weak tests over a smaller one that passes a strong test the others fail. And a group
//! smaller than `min_rollouts`, or one where every rollout fails differently, yields no tests.
//! With a `reference` none of this applies: the reference decides.

/// The winning cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// Indices (into the tests) kept, ascending.
    pub tests: Vec<usize>,
    /// Indices (into the rollouts) in the winning cluster, ascending.
    pub rollouts: Vec<usize>,
}

/// The winning cluster of `passes` (`passes[r][t]`: rollout `r` passed test `t`; every row as
/// long as the number of tests), considering only the tests `usable[t]`; `None` when it has
/// fewer than `min_rollouts` rollouts or fewer than `min_tests` tests.
pub fn select(
    passes: &[Vec<bool>],
    usable: &[bool],
    min_rollouts: usize,
    min_tests: usize,
) -> Option<Agreement> {
    // Clusters by pass set, in order of first appearance.
    let mut clusters: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (r, row) in passes.iter().enumerate() {
        let set: Vec<usize> = row
            .iter()
            .enumerate()
            .filter(|&(t, &p)| p && usable.get(t).copied().unwrap_or(false))
            .map(|(t, _)| t)
            .collect();
        match clusters.iter_mut().find(|(s, _)| *s == set) {
            Some((_, members)) => members.push(r),
            None => clusters.push((set, vec![r])),
        }
    }
    let best = clusters
        .into_iter()
        .filter(|(set, _)| !set.is_empty())
        .enumerate()
        .max_by_key(|(i, (set, members))| {
            (set.len() * members.len(), set.len(), std::cmp::Reverse(*i))
        })
        .map(|(_, c)| c)?;
    let (tests, rollouts) = best;
    (rollouts.len() >= min_rollouts.max(1) && tests.len() >= min_tests.max(1))
        .then_some(Agreement { tests, rollouts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[&str]) -> Vec<Vec<bool>> {
        text.iter()
            .map(|r| r.chars().map(|c| c == '1').collect())
            .collect()
    }

    #[test]
    fn the_largest_agreeing_cluster_keeps_its_tests_and_drops_the_wrong_one() {
        // Tests 0–2 are right, test 3 is wrong. Four correct rollouts, two with different bugs.
        let p = rows(&["1110", "1110", "1110", "1110", "1001", "0101"]);
        let a = select(&p, &[true; 4], 3, 2).unwrap();
        assert_eq!(a.tests, [0, 1, 2]);
        assert_eq!(a.rollouts, [0, 1, 2, 3]);
    }

    #[test]
    fn too_few_agreeing_rollouts_or_tests_give_none() {
        let p = rows(&["1110", "1110", "0001"]);
        assert_eq!(select(&p, &[true; 4], 3, 1), None);
        assert!(select(&p, &[true; 4], 2, 3).is_some());
        assert_eq!(select(&p, &[true; 4], 2, 4), None);
        assert_eq!(
            select(&rows(&["000", "000", "000"]), &[true; 3], 1, 1),
            None
        );
    }

    #[test]
    fn unusable_tests_take_no_part() {
        let p = rows(&["11", "11", "10"]);
        let a = select(&p, &[true, false], 3, 1).unwrap();
        assert_eq!(a.tests, [0]);
        assert_eq!(a.rollouts, [0, 1, 2]);
    }

    #[test]
    fn a_shared_bug_wins_when_it_is_the_majority() {
        // The documented failure: five rollouts share a bug that wrong test 1 encodes; the two
        // correct ones pass tests 0 and 2. The majority's cluster wins.
        let p = rows(&["110", "110", "110", "110", "110", "101", "101"]);
        let a = select(&p, &[true; 3], 3, 1).unwrap();
        assert_eq!(a.tests, [0, 1]);
    }
}
