//! A project's in-memory labelling state: which items exist, their live labels, who holds
//! which lease, the ranked queue from the last model, and the model's predictions. Plain data
//! and plain methods (no I/O, no clock of its own: `now` is passed in) so that it is unit
//! tested directly and rebuilt from the database after a restart.

use std::collections::{HashMap, HashSet, VecDeque};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// (embedding row, class) of a labelled item.
pub type RowLabel = (usize, i64);

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Trained on.
    Train,
    /// Held out: drawn uniformly at random, never trained on, used to measure accuracy.
    Test,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Train => "train",
            Stage::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Stage {
        if s == "test" {
            Stage::Test
        } else {
            Stage::Train
        }
    }
}

#[derive(Debug, Clone)]
pub struct Item {
    /// Database id (stable across restarts).
    pub id: i64,
    /// Path relative to the dataset directory, or the row key.
    pub key: String,
    /// Row in the embedding matrix, once embedded; `None` while pending or if unreadable.
    pub row: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct LiveLabel {
    pub label_id: i64,
    pub class: usize,
    pub user_id: i64,
    pub stage: Stage,
    /// Labelled through batch confirmation rather than one by one.
    pub from_batch: bool,
    pub time_taken_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    user_id: i64,
    expires: Millis,
    stage: Stage,
}

/// Why a label cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelRefusal {
    #[error("item {0} does not exist in this project")]
    UnknownItem(i64),
    #[error("`{0}` is not one of the project's classes")]
    UnknownClass(String),
    #[error("item {0} is leased to another labeller")]
    LeasedElsewhere(i64),
}

/// What the caller should write for a label that passed the checks.
#[derive(Debug, Clone, Copy)]
pub struct LabelPlan {
    pub index: usize,
    pub class: usize,
    pub stage: Stage,
}

/// One item handed out by [`ProjectState::next`].
#[derive(Debug, Clone, Copy)]
pub struct Handout {
    pub index: usize,
    pub stage: Stage,
}

/// A batch of confident predictions awaiting one-click confirmation.
#[derive(Debug, Clone)]
pub struct PendingBatch {
    pub id: String,
    pub class: usize,
    /// (item index, calibrated probability).
    pub items: Vec<(usize, f32)>,
    pub user_id: i64,
    pub expires: Millis,
}

/// A model's outputs for every item, as the trainer thread prepares them (sorting the pool by
/// confidence there keeps it off the actor, which answers labellers meanwhile).
pub struct Predictions {
    /// `[items x classes]` by item index.
    pub probs: Vec<f32>,
    /// Every item grouped by its predicted class, most confident first.
    pub ranked_by_class: Vec<Vec<(usize, f32)>>,
}

impl Predictions {
    pub fn new(probs: Vec<f32>, num_classes: usize) -> Predictions {
        let all: Vec<usize> = (0..probs.len() / num_classes.max(1)).collect();
        let mut ranked = vec![Vec::new(); num_classes];
        for batch in crate::ml::autolabel::propose(&probs, &all, num_classes, f64::NEG_INFINITY, 0) {
            ranked[batch.class] = batch.items;
        }
        Predictions { probs, ranked_by_class: ranked }
    }
}

pub struct ProjectState {
    pub classes: Vec<String>,
    items: Vec<Item>,
    index_of_id: HashMap<i64, usize>,
    labels: HashMap<usize, LiveLabel>,
    leases: HashMap<usize, Lease>,
    /// Items picked for the TEST stage that have no label yet (keep that stage if re-leased).
    test_pending: HashSet<usize>,
    /// Ranked by the strategy after the last training; stale entries are skipped lazily.
    queue: VecDeque<usize>,
    /// Skipped items go to the back of the line: not handed out again before the rest.
    skipped: VecDeque<usize>,
    skipped_set: HashSet<usize>,
    /// Per user, their labels newest last (for undo): (label id, item index).
    history: HashMap<i64, Vec<(i64, usize)>>,
    /// The latest model's calibrated probabilities, with the pool ranked per class (computed
    /// once per model, so the auto-label counts in each stats event do not re-sort the pool).
    model: Option<Predictions>,
    batches: HashMap<String, PendingBatch>,
    /// Items in a batch someone is reviewing (not handed out one by one meanwhile).
    in_batch: HashSet<usize>,
    test_fraction: f64,
    lease_ms: Millis,
    /// A fixed random permutation of the items; `random_available` walks it from `cursor`, so
    /// a uniform draw costs O(1) amortised instead of a scan of the whole dataset.
    random_order: Vec<usize>,
    cursor: usize,
    next_batch_seq: u64,
    /// Share of first human labels whose item also goes to a second labeller (agreement).
    overlap: f64,
    /// Labelled items waiting for a second labeller: (item index, first labeller).
    second_opinions: VecDeque<(usize, i64)>,
    overlap_rng: ChaCha8Rng,
}

impl ProjectState {
    pub fn new(classes: Vec<String>, items: Vec<Item>, test_fraction: f64, lease_ms: Millis, seed: u64) -> Self {
        let index_of_id = items.iter().enumerate().map(|(i, it)| (it.id, i)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut random_order: Vec<usize> = (0..items.len()).collect();
        random_order.shuffle(&mut rng);
        ProjectState {
            classes,
            items,
            index_of_id,
            labels: HashMap::new(),
            leases: HashMap::new(),
            test_pending: HashSet::new(),
            queue: VecDeque::new(),
            skipped: VecDeque::new(),
            skipped_set: HashSet::new(),
            history: HashMap::new(),
            model: None,
            batches: HashMap::new(),
            in_batch: HashSet::new(),
            test_fraction: test_fraction.clamp(0.0, 0.9),
            lease_ms,
            random_order,
            cursor: 0,
            next_batch_seq: 0,
            overlap: 0.0,
            second_opinions: VecDeque::new(),
            // Its own stream, so second opinions do not shift the random order of items.
            overlap_rng: ChaCha8Rng::seed_from_u64(seed.wrapping_add(1)),
        }
    }

    /// Sets the share of first labels that get a second labeller (clamped to 0-0.5).
    pub fn set_overlap(&mut self, share: f64) {
        self.overlap = share.clamp(0.0, 0.5);
    }

    /// A labelled item waiting for a second opinion that `user_id` did not label, with the
    /// stage its first label has.
    fn take_second_opinion(&mut self, user_id: i64) -> Option<(usize, Stage)> {
        let pos = self.second_opinions.iter().position(|&(i, first)| {
            first != user_id
                && !self.leases.contains_key(&i)
                && !self.in_batch.contains(&i)
                && self.labels.get(&i).is_some_and(|l| l.user_id == first)
        })?;
        let (index, _) = self.second_opinions.remove(pos)?;
        Some((index, self.labels.get(&index)?.stage))
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn item(&self, index: usize) -> &Item {
        &self.items[index]
    }

    pub fn index_of(&self, item_id: i64) -> Option<usize> {
        self.index_of_id.get(&item_id).copied()
    }

    pub fn label_of(&self, index: usize) -> Option<&LiveLabel> {
        self.labels.get(&index)
    }

    pub fn labels(&self) -> impl Iterator<Item = (usize, &LiveLabel)> {
        self.labels.iter().map(|(&i, l)| (i, l))
    }

    pub fn label_count(&self) -> usize {
        self.labels.len()
    }

    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == name)
    }

    pub fn set_rows(&mut self, rows: &[Option<usize>]) {
        for (item, &row) in self.items.iter_mut().zip(rows) {
            item.row = row;
        }
    }

    /// Restores a label read from the database (at start-up); it is the item's live label.
    pub fn restore_label(&mut self, index: usize, label: LiveLabel) {
        self.history.entry(label.user_id).or_default().push((label.label_id, index));
        self.test_pending.remove(&index);
        self.labels.insert(index, label);
    }

    fn expire(&mut self, now: Millis) {
        self.leases.retain(|_, l| l.expires > now);
        let batches = self.batches.len();
        self.batches.retain(|_, b| b.expires > now);
        if self.batches.len() != batches {
            let in_batch: HashSet<usize> =
                self.batches.values().flat_map(|b| b.items.iter().map(|&(i, _)| i)).collect();
            self.in_batch = in_batch;
        }
    }

    fn available(&self, index: usize) -> bool {
        !self.labels.contains_key(&index) && !self.leases.contains_key(&index) && !self.in_batch.contains(&index)
    }

    /// Human labels on the TEST stage and in all (batch confirmations excluded: the test
    /// share is of items a person picked one by one).
    fn human_counts(&self) -> (usize, usize) {
        let human = self.labels.values().filter(|l| !l.from_batch);
        let (mut test, mut all) = (0, 0);
        for l in human {
            all += 1;
            test += usize::from(l.stage == Stage::Test);
        }
        (test, all)
    }

    /// A uniformly random available item, preferring ones not skipped: the next available
    /// one in the fixed random permutation. Items passed over because they were leased or in a
    /// batch come round again when the walk restarts.
    fn random_available(&mut self) -> Option<usize> {
        for _ in 0..2 {
            while self.cursor < self.random_order.len() {
                let i = self.random_order[self.cursor];
                if self.available(i) && !self.skipped_set.contains(&i) {
                    self.cursor += 1;
                    return Some(i);
                }
                if self.labels.contains_key(&i) {
                    // Labelled items never come back: drop them so later walks are shorter.
                    self.random_order.swap_remove(self.cursor);
                } else {
                    self.cursor += 1;
                }
            }
            self.cursor = 0;
        }
        None
    }

    fn pop_queue(&mut self) -> Option<usize> {
        while let Some(i) = self.queue.pop_front() {
            if self.available(i) && !self.skipped_set.contains(&i) {
                return Some(i);
            }
        }
        None
    }

    fn pop_skipped(&mut self) -> Option<usize> {
        while let Some(i) = self.skipped.pop_front() {
            self.skipped_set.remove(&i);
            if self.available(i) {
                return Some(i);
            }
        }
        None
    }

    /// Leases up to `count` items to `user_id`. The TEST share is kept at `test_fraction` of
    /// human labels (counting outstanding test leases) by drawing uniformly at random; the rest
    /// come from the strategy's queue, then at random, then from skipped items.
    pub fn next(&mut self, user_id: i64, count: usize, now: Millis) -> Vec<Handout> {
        self.expire(now);
        let mut out = Vec::with_capacity(count);
        let (mut test, mut all) = self.human_counts();
        let leased_test = self.leases.values().filter(|l| l.stage == Stage::Test).count();
        test += leased_test;
        all += self.leases.len();
        // Pending test items whose lease lapsed go out again first, still as TEST.
        let mut pending: Vec<usize> = self.test_pending.iter().copied().filter(|&i| self.available(i)).collect();
        pending.sort_unstable();
        let mut pending = pending.into_iter();
        for _ in 0..count {
            let want_test = (test as f64) < self.test_fraction * (all + 1) as f64;
            let pick = if want_test {
                pending.next().or_else(|| self.random_available()).map(|i| (i, Stage::Test))
            } else {
                None
            };
            let pick = pick
                .or_else(|| self.take_second_opinion(user_id))
                .or_else(|| self.pop_queue().map(|i| (i, Stage::Train)))
                .or_else(|| self.random_available().map(|i| (i, Stage::Train)))
                .or_else(|| self.pop_skipped().map(|i| (i, Stage::Train)));
            let Some((index, stage)) = pick else { break };
            if stage == Stage::Test {
                self.test_pending.insert(index);
                test += 1;
            }
            all += 1;
            self.leases.insert(index, Lease { user_id, expires: now + self.lease_ms, stage });
            out.push(Handout { index, stage });
        }
        out
    }

    /// Checks a label before it is written.
    pub fn plan_label(
        &mut self,
        user_id: i64,
        item_id: i64,
        class: &str,
        now: Millis,
    ) -> Result<LabelPlan, LabelRefusal> {
        self.expire(now);
        let index = self.index_of(item_id).ok_or(LabelRefusal::UnknownItem(item_id))?;
        let class = self.class_index(class).ok_or_else(|| LabelRefusal::UnknownClass(class.to_string()))?;
        let stage = match self.leases.get(&index) {
            Some(l) if l.user_id != user_id => return Err(LabelRefusal::LeasedElsewhere(item_id)),
            Some(l) => l.stage,
            // Unleased: a relabel keeps the item's stage; a fresh item pending test stays test.
            None => match self.labels.get(&index) {
                Some(l) => l.stage,
                None if self.test_pending.contains(&index) => Stage::Test,
                None => Stage::Train,
            },
        };
        Ok(LabelPlan { index, class, stage })
    }

    /// Records a label that was written (durably) as `label_id`.
    pub fn commit_label(&mut self, user_id: i64, plan: LabelPlan, label_id: i64, from_batch: bool, ms: Option<i64>) {
        // A person's first label on an item may be checked by a second labeller; the later
        // label is the one the model learns from, both count for agreement.
        let first = !self.labels.contains_key(&plan.index);
        if first && !from_batch && self.overlap > 0.0 && self.overlap_rng.random::<f64>() < self.overlap {
            self.second_opinions.push_back((plan.index, user_id));
        }
        self.leases.remove(&plan.index);
        self.test_pending.remove(&plan.index);
        if self.skipped_set.remove(&plan.index) {
            self.skipped.retain(|&i| i != plan.index);
        }
        self.history.entry(user_id).or_default().push((label_id, plan.index));
        self.labels.insert(
            plan.index,
            LiveLabel { label_id, class: plan.class, user_id, stage: plan.stage, from_batch, time_taken_ms: ms },
        );
    }

    /// The caller's newest live label: (label id, item index).
    pub fn last_label_of(&mut self, user_id: i64) -> Option<(i64, usize)> {
        let hist = self.history.get_mut(&user_id)?;
        // Entries replaced by someone else's relabel are no longer the caller's to undo.
        while let Some(&(label_id, index)) = hist.last() {
            if self.labels.get(&index).is_some_and(|l| l.label_id == label_id) {
                return Some((label_id, index));
            }
            hist.pop();
        }
        None
    }

    /// Removes a label that was undone in the database and leases the item back to `user_id`.
    /// Restores a lease remembered outside this process (a takeover from a dead owner), unless
    /// it expired or the item got a label meanwhile. A TEST lease keeps its item in TEST.
    pub fn restore_lease(&mut self, index: usize, user_id: i64, expires: Millis, test: bool, now: Millis) -> bool {
        if expires <= now || index >= self.items.len() || self.labels.contains_key(&index) {
            return false;
        }
        let stage = if test { Stage::Test } else { Stage::Train };
        if test {
            self.test_pending.insert(index);
        }
        self.leases.insert(index, Lease { user_id, expires, stage });
        true
    }

    /// Whether an unlabelled item is reserved for the TEST stage.
    pub fn is_test_pending(&self, index: usize) -> bool {
        self.test_pending.contains(&index)
    }

    /// When the lease on an item ends (None: not leased).
    pub fn lease_expiry(&self, index: usize) -> Option<Millis> {
        self.leases.get(&index).map(|l| l.expires)
    }

    pub fn commit_undo(&mut self, user_id: i64, label_id: i64, index: usize, now: Millis) -> Option<LiveLabel> {
        let live = self.labels.get(&index).filter(|l| l.label_id == label_id)?.clone();
        self.labels.remove(&index);
        if let Some(h) = self.history.get_mut(&user_id) {
            h.retain(|&(id, _)| id != label_id);
        }
        if live.stage == Stage::Test {
            self.test_pending.insert(index);
        }
        self.leases.insert(index, Lease { user_id, expires: now + self.lease_ms, stage: live.stage });
        Some(live)
    }

    /// Releases the caller's lease on an item and moves it to the back of the line.
    pub fn skip(&mut self, user_id: i64, item_id: i64, now: Millis) -> Result<usize, LabelRefusal> {
        self.expire(now);
        let index = self.index_of(item_id).ok_or(LabelRefusal::UnknownItem(item_id))?;
        match self.leases.get(&index) {
            Some(l) if l.user_id != user_id => return Err(LabelRefusal::LeasedElsewhere(item_id)),
            Some(_) => {
                self.leases.remove(&index);
            }
            None => {}
        }
        if !self.labels.contains_key(&index) && self.skipped_set.insert(index) {
            self.skipped.push_back(index);
        }
        Ok(index)
    }

    /// Installs a new model's outputs: predictions for every item (by index) and the ranked
    /// queue of the unlabelled ones.
    pub fn install_model(&mut self, model: Predictions, queue: Vec<usize>) {
        debug_assert_eq!(model.probs.len(), self.items.len() * self.classes.len());
        self.model = Some(model);
        self.queue = queue.into();
    }

    /// Installs a ranked queue without a model (cold start).
    pub fn install_queue(&mut self, queue: Vec<usize>) {
        self.queue = queue.into();
    }

    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }

    /// The latest model's probabilities for an item.
    pub fn prediction(&self, index: usize) -> Option<&[f32]> {
        let c = self.classes.len();
        self.model.as_ref().map(|m| &m.probs[index * c..(index + 1) * c])
    }

    /// Unlabelled items whose top probability is at least `threshold`, grouped by class.
    pub fn confident(&self, threshold: f64) -> Vec<(usize, Vec<(usize, f32)>)> {
        let Some(model) = &self.model else { return Vec::new() };
        model
            .ranked_by_class
            .iter()
            .enumerate()
            .map(|(class, ranked)| {
                let items: Vec<(usize, f32)> = ranked
                    .iter()
                    .take_while(|&&(_, p)| p as f64 >= threshold)
                    .filter(|&&(i, _)| self.available(i))
                    .copied()
                    .collect();
                (class, items)
            })
            .filter(|(_, items)| !items.is_empty())
            .collect()
    }

    /// Reserves the next auto-label batch (largest confident class first) for `user_id`.
    pub fn take_batch(&mut self, user_id: i64, threshold: f64, size: usize, now: Millis) -> Option<PendingBatch> {
        self.expire(now);
        let mut groups = self.confident(threshold);
        groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let (class, items) = groups.into_iter().next()?;
        let items: Vec<(usize, f32)> = items.into_iter().take(size.max(1)).collect();
        self.next_batch_seq += 1;
        let batch = PendingBatch {
            id: format!("b{}-{}", now, self.next_batch_seq),
            class,
            items,
            user_id,
            expires: now + self.lease_ms,
        };
        self.in_batch.extend(batch.items.iter().map(|&(i, _)| i));
        self.batches.insert(batch.id.clone(), batch.clone());
        Some(batch)
    }

    /// Removes a reserved batch (on confirmation), if it is the caller's.
    pub fn finish_batch(&mut self, user_id: i64, batch_id: &str, now: Millis) -> Option<PendingBatch> {
        self.expire(now);
        let batch = self.batches.get(batch_id).filter(|b| b.user_id == user_id)?.clone();
        self.batches.remove(batch_id);
        for (i, _) in &batch.items {
            self.in_batch.remove(i);
        }
        Some(batch)
    }

    /// Rows (embedding) and classes of the TRAIN labels, and of the TEST labels.
    pub fn training_sets(&self) -> (Vec<RowLabel>, Vec<RowLabel>) {
        let mut train = Vec::new();
        let mut test = Vec::new();
        let mut keys: Vec<usize> = self.labels.keys().copied().collect();
        keys.sort_unstable();
        for i in keys {
            let l = &self.labels[&i];
            let Some(row) = self.items[i].row else { continue };
            match l.stage {
                Stage::Train => train.push((row, l.class as i64)),
                Stage::Test => test.push((row, l.class as i64)),
            }
        }
        (train, test)
    }

    /// Item indices with an embedding and no label (the pool a strategy ranks).
    pub fn unlabelled_embedded(&self) -> Vec<usize> {
        (0..self.items.len()).filter(|&i| self.items[i].row.is_some() && !self.labels.contains_key(&i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: usize, test_fraction: f64) -> ProjectState {
        let items = (0..n).map(|i| Item { id: 100 + i as i64, key: format!("{i}.png"), row: Some(i) }).collect();
        ProjectState::new(vec!["a".into(), "b".into()], items, test_fraction, 60_000, 1)
    }

    #[test]
    fn no_item_is_handed_to_two_labellers() {
        let mut s = state(50, 0.25);
        let a = s.next(1, 20, 0);
        let b = s.next(2, 20, 0);
        let mut seen: HashSet<usize> = a.iter().map(|h| h.index).collect();
        assert_eq!(seen.len(), 20);
        for h in &b {
            assert!(seen.insert(h.index), "item {} handed out twice", h.index);
        }
        // After the lease expires the items come back.
        let c = s.next(3, 50, 60_001);
        assert_eq!(c.len(), 50);
    }

    #[test]
    fn a_quarter_of_human_labels_go_to_test() {
        let mut s = state(400, 0.25);
        for round in 0..100 {
            for h in s.next(1, 1, round) {
                let id = s.item(h.index).id;
                let plan = s.plan_label(1, id, "a", round).unwrap();
                s.commit_label(1, plan, round, false, None);
            }
        }
        let (train, test) = s.training_sets();
        assert_eq!(train.len() + test.len(), 100);
        assert!((24..=26).contains(&test.len()), "{} test labels", test.len());
        // The trainer's job carries `train` only, for the head and for the strategy alike:
        // not one TEST item's row may be in it.
        let test_rows: std::collections::HashSet<usize> =
            s.labels.iter().filter(|(_, l)| l.stage == Stage::Test).filter_map(|(&i, _)| s.items[i].row).collect();
        assert_eq!(test_rows.len(), test.len());
        assert!(train.iter().all(|(row, _)| !test_rows.contains(row)), "a TEST row among the training rows");
    }

    #[test]
    fn a_share_of_labelled_items_goes_to_a_second_labeller_never_the_first() {
        let mut s = state(40, 0.25);
        s.set_overlap(0.5);
        let handed = s.next(1, 20, 0);
        for h in &handed {
            let plan = s.plan_label(1, s.item(h.index).id, "a", 0).unwrap();
            s.commit_label(1, plan, h.index as i64, false, Some(500));
        }
        let waiting = s.second_opinions.len();
        assert!((4..=16).contains(&waiting), "about half of 20 first labels: {waiting}");
        let again: Vec<usize> = s.next(1, 20, 0).into_iter().map(|h| h.index).collect();
        assert!(again.iter().all(|i| !s.labels.contains_key(i)), "the first labeller gets only new items");
        let second = s.next(2, 5, 0);
        assert!(second.iter().any(|h| s.labels.contains_key(&h.index)), "the second labeller gets labelled items");
        let checks: Vec<Handout> = second.into_iter().filter(|h| s.labels.contains_key(&h.index)).collect();
        for h in &checks {
            let stage = s.labels[&h.index].stage;
            assert_eq!(h.stage, stage, "a second opinion keeps the item's stage");
            let plan = s.plan_label(2, s.item(h.index).id, "b", 0).unwrap();
            s.commit_label(2, plan, 1000 + h.index as i64, false, None);
            assert_eq!(s.labels[&h.index].user_id, 2, "the later label is the live one");
        }
    }

    #[test]
    fn restored_leases_hold_their_items_and_their_stage() {
        let mut s = state(10, 0.0);
        assert!(s.restore_lease(3, 7, 5_000, true, 1_000));
        assert!(!s.restore_lease(4, 7, 500, false, 1_000), "an expired lease is not restored");
        let handed: Vec<usize> = s.next(8, 9, 1_000).into_iter().map(|h| h.index).collect();
        assert!(!handed.contains(&3), "{handed:?}");
        let plan = s.plan_label(7, s.item(3).id, "a", 1_000).unwrap();
        assert_eq!(plan.stage, Stage::Test, "a restored TEST lease keeps its item in TEST");
        assert_eq!(s.lease_expiry(3), Some(5_000));
    }

    #[test]
    fn leased_items_refuse_other_labellers_and_unknowns_are_named() {
        let mut s = state(10, 0.0);
        let h = s.next(1, 1, 0)[0];
        let id = s.item(h.index).id;
        assert_eq!(s.plan_label(2, id, "a", 1).unwrap_err(), LabelRefusal::LeasedElsewhere(id));
        assert_eq!(s.plan_label(1, 9999, "a", 1).unwrap_err(), LabelRefusal::UnknownItem(9999));
        assert_eq!(s.plan_label(1, id, "zebra", 1).unwrap_err(), LabelRefusal::UnknownClass("zebra".into()));
        assert!(s.plan_label(1, id, "b", 1).is_ok());
    }

    #[test]
    fn undo_returns_the_item_to_its_labeller() {
        let mut s = state(10, 0.0);
        let h = s.next(1, 1, 0)[0];
        let plan = s.plan_label(1, s.item(h.index).id, "a", 0).unwrap();
        s.commit_label(1, plan, 7, false, Some(500));
        assert_eq!(s.last_label_of(1), Some((7, h.index)));
        assert_eq!(s.last_label_of(2), None);
        let undone = s.commit_undo(1, 7, h.index, 1).unwrap();
        assert_eq!(undone.class, 0);
        assert!(s.label_of(h.index).is_none());
        // Leased back to the caller: someone else cannot label it meanwhile.
        assert!(s.plan_label(2, s.item(h.index).id, "a", 2).is_err());
    }

    #[test]
    fn skipped_items_come_last() {
        let mut s = state(3, 0.0);
        s.install_queue(vec![0, 1, 2]);
        let first = s.next(1, 1, 0)[0].index;
        assert_eq!(first, 0);
        s.skip(1, s.item(0).id, 0).unwrap();
        let rest: Vec<usize> = s.next(1, 3, 0).iter().map(|h| h.index).collect();
        assert_eq!(rest, vec![1, 2, 0]);
    }

    #[test]
    fn batches_hold_confident_items_away_from_the_queue() {
        let mut s = state(4, 0.0);
        // Items 0 and 1 confidently "b"; 2 and 3 unsure.
        s.install_model(Predictions::new(vec![0.01, 0.99, 0.02, 0.98, 0.5, 0.5, 0.6, 0.4], 2), vec![2, 3, 0, 1]);
        let batch = s.take_batch(1, 0.97, 10, 0).unwrap();
        assert_eq!(batch.class, 1);
        assert_eq!(batch.items.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 1]);
        let handed: Vec<usize> = s.next(2, 4, 0).iter().map(|h| h.index).collect();
        assert_eq!(handed, vec![2, 3]);
        assert!(s.finish_batch(2, &batch.id, 0).is_none(), "another user's batch");
        assert!(s.finish_batch(1, &batch.id, 0).is_some());
    }
}
