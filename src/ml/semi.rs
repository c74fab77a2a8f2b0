//! Semi-supervised learning from the unlabelled pool: label spreading over a k-nearest-
//! neighbour graph of the embeddings (Zhou et al. 2004), whose most confident pseudo-labels
//! join the human labels, down-weighted, when the head is fit.
//!
//! The graph depends only on the embeddings, so it is built once per pool and reused while
//! labels arrive; spreading itself is a few sparse passes (milliseconds).

use tch::{Kind, Tensor};

use crate::config::task::SemiSupervised;
use crate::ml::embeddings::Embeddings;
use crate::ml::head::{Augment, Extra, Head, HeadParams, Normalizer, Selected};

/// Rows of the similarity matrix computed per matmul while building the graph.
const CHUNK: i64 = 4096;

/// Symmetrically normalised k-nearest-neighbour graph over some embedding rows.
pub struct KnnGraph {
    /// Embedding row of each node.
    pub rows: Vec<usize>,
    /// For each node, `(neighbour node, normalised weight)`.
    neighbours: Vec<Vec<(u32, f32)>>,
}

impl KnnGraph {
    /// Builds the graph with cosine similarity; `k` neighbours per node (made symmetric).
    pub fn build(embeddings: &Embeddings, rows: &[usize], k: usize) -> Self {
        let n = rows.len();
        let k = k.min(n.saturating_sub(1));
        let x = embeddings.gather(rows);
        let x = &x / x.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12);
        let mut adj: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        if k > 0 {
            let mut start = 0i64;
            while start < n as i64 {
                let len = CHUNK.min(n as i64 - start);
                let sim = x.narrow(0, start, len).matmul(&x.tr());
                // Exclude self-similarity.
                let idx = Tensor::arange_start(start, start + len, (Kind::Int64, tch::Device::Cpu)).unsqueeze(1);
                let sim = sim.scatter_value(1, &idx, -2.0);
                let (vals, inds) = sim.topk(k as i64, 1, true, true);
                let vals: Vec<f32> = Vec::try_from(vals.flatten(0, -1)).unwrap_or_default();
                let inds: Vec<i64> = Vec::try_from(inds.flatten(0, -1)).unwrap_or_default();
                for r in 0..len as usize {
                    let node = start as usize + r;
                    for j in 0..k {
                        // Cosine similarities of neighbours are positive for these features;
                        // clamp so a stray negative one cannot flip mass.
                        let w = vals[r * k + j].max(0.0);
                        adj[node].push((inds[r * k + j] as u32, w));
                    }
                }
                start += len;
            }
        }
        // Symmetrise: W = max(W, W^T).
        let mut sym: Vec<Vec<(u32, f32)>> = adj.clone();
        for (i, list) in adj.iter().enumerate() {
            for &(j, w) in list {
                if !sym[j as usize].iter().any(|&(t, _)| t as usize == i) {
                    sym[j as usize].push((i as u32, w));
                }
            }
        }
        // D^-1/2 W D^-1/2.
        let degree: Vec<f32> = sym.iter().map(|l| l.iter().map(|&(_, w)| w).sum::<f32>().max(1e-12)).collect();
        let neighbours = sym
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.into_iter().map(|(j, w)| (j, w / (degree[i] * degree[j as usize]).sqrt())).collect())
            .collect();
        Self { rows: rows.to_vec(), neighbours }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Label spreading: F <- alpha S F + (1 - alpha) Y, iterated; returns row-normalised
    /// class distributions `[nodes x classes]`. `seeds` are (node, class) pairs.
    pub fn spread(&self, seeds: &[(usize, i64)], classes: usize, alpha: f32, iters: usize) -> Vec<f32> {
        let n = self.len();
        let mut y = vec![0f32; n * classes];
        for &(node, class) in seeds {
            y[node * classes + class as usize] = 1.0;
        }
        let mut f = y.clone();
        let mut next = vec![0f32; n * classes];
        for _ in 0..iters {
            for (i, list) in self.neighbours.iter().enumerate() {
                let out = &mut next[i * classes..(i + 1) * classes];
                for (o, yv) in out.iter_mut().zip(&y[i * classes..(i + 1) * classes]) {
                    *o = (1.0 - alpha) * yv;
                }
                for &(j, w) in list {
                    let src = &f[j as usize * classes..(j as usize + 1) * classes];
                    for (o, s) in out.iter_mut().zip(src) {
                        *o += alpha * w * s;
                    }
                }
            }
            std::mem::swap(&mut f, &mut next);
        }
        for row in f.chunks_mut(classes) {
            let sum: f32 = row.iter().sum();
            if sum > 0.0 {
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
        f
    }
}

/// Settings of the pseudo-labelling step.
#[derive(Debug, Clone, Copy)]
pub struct SemiParams {
    pub alpha: f32,
    pub iters: usize,
    /// Pseudo-labels per human label at most (keeps humans in charge at low counts).
    pub per_label: usize,
    /// Minimum spread confidence for a pseudo-label.
    pub min_confidence: f32,
    /// Weight of a pseudo-label relative to a human label (scaled by its confidence).
    pub weight: f32,
}

impl Default for SemiParams {
    fn default() -> Self {
        Self { alpha: 0.99, iters: 20, per_label: 10, min_confidence: 0.5, weight: 0.5 }
    }
}

/// Neighbours per node of the label-spreading graph.
pub const GRAPH_K: usize = 10;

/// Whether a fit with label spreading must earn its pseudo-labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spreading {
    /// Always train on the pseudo-labels.
    Always,
    /// Train on them only where they predict held-out human labels better than the human
    /// labels alone (the folds that choose C; the plain fit wins ties and is used when there
    /// are too few labels for folds). Spreading helps where classes are topics, whose
    /// neighbours share a class, and hurts where they are not (review sentiment).
    WhereItHelps,
}

impl Spreading {
    /// How a fit uses label spreading under `model.semi_supervised`; None when it does not.
    pub fn for_setting(setting: SemiSupervised) -> Option<Self> {
        match setting {
            SemiSupervised::Off => None,
            SemiSupervised::On => Some(Self::Always),
            SemiSupervised::Auto => Some(Self::WhereItHelps),
        }
    }
}

/// How much the human labels must grow before a `WhereItHelps` fit that dropped the
/// pseudo-labels compares again; until then fits use the human labels alone. Comparing fits
/// every C with and without the pseudo-labels on every fold, 10 to 20 times the cost of a
/// plain fit where spreading is dropped (review sentiment, `bench/results/lc-adaptive.md`),
/// while a drop rarely turns into a keep a few labels later. A keep is not repeated: it is
/// compared again on every fit, because repeating one chosen on a few dozen noisy labels cost
/// review sentiment 1.4 points at 78 labels.
pub const RECOMPARE_GROWTH: f64 = 1.25;

/// A fitter's label-spreading setting and, under `WhereItHelps`, the label count at which the
/// last comparison dropped the pseudo-labels: one per simulator run, one per project trainer.
#[derive(Debug, Clone)]
pub struct SpreadingPolicy {
    spreading: Spreading,
    dropped_at: Option<usize>,
}

/// The training sets the next fit tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Plain,
    Spread,
    Compare,
}

impl SpreadingPolicy {
    pub fn new(spreading: Spreading) -> Self {
        Self { spreading, dropped_at: None }
    }

    /// What a fit on `labels` human labels tries: `Always` spreads; `WhereItHelps` fits the
    /// human labels alone while they are fewer than `RECOMPARE_GROWTH` times those of the last
    /// comparison that dropped the pseudo-labels (and no fewer: labels can be deleted), and
    /// compares otherwise.
    fn plan(&self, labels: usize) -> Plan {
        match (self.spreading, self.dropped_at) {
            (Spreading::Always, _) => Plan::Spread,
            (Spreading::WhereItHelps, Some(at)) if labels >= at && (labels as f64) < at as f64 * RECOMPARE_GROWTH => {
                Plan::Plain
            }
            (Spreading::WhereItHelps, _) => Plan::Compare,
        }
    }
}

/// Fits a head on human labels plus confident label-spreading pseudo-labels; returns it and
/// whether it was trained on pseudo-labels. `labelled` are graph nodes with classes `y`;
/// pseudo-labels go only to nodes of `unlabelled` (the pool: a held-out test item is a node
/// the labels spread through, but it is never trained on, not even under a pseudo-label).
/// The folds that calibrate the head (and choose C) spread each fold's training labels only,
/// so a held-out label never reaches the pseudo-labels it is scored against. `policy` says
/// whether to spread (and remembers what a comparison chose); `stats` are the pool's feature
/// statistics when the head uses them (`HeadParams::pool_statistics`), as for a fit on human
/// labels alone.
#[allow(clippy::too_many_arguments)]
pub fn fit_with_graph(
    head: &HeadParams,
    semi: &SemiParams,
    policy: &mut SpreadingPolicy,
    embeddings: &Embeddings,
    graph: &KnnGraph,
    labelled: &[usize],
    y: &[i64],
    unlabelled: &[usize],
    classes: usize,
    stats: Option<&Normalizer>,
) -> anyhow::Result<(Head, bool)> {
    let spread = |subset: &[usize]| -> anyhow::Result<Option<Extra>> {
        let nodes: Vec<usize> = subset.iter().map(|&i| labelled[i]).collect();
        let classes_of: Vec<i64> = subset.iter().map(|&i| y[i]).collect();
        let pseudo = pseudo_labels(semi, graph, &nodes, &classes_of, unlabelled, classes);
        if pseudo.is_empty() {
            return Ok(None);
        }
        let rows: Vec<usize> = pseudo.iter().map(|&(n, _, _)| graph.rows[n]).collect();
        Ok(Some(Extra {
            x: embeddings.gather(&rows),
            y: pseudo.iter().map(|&(_, c, _)| c).collect(),
            weight: pseudo.iter().map(|&(_, _, p)| semi.weight * p).collect(),
        }))
    };
    let spread: &Augment = &spread;
    let plan = policy.plan(labelled.len());
    let variants: Vec<Option<&Augment>> = match plan {
        Plan::Plain => vec![None],
        Plan::Spread => vec![Some(spread)],
        Plan::Compare => vec![None, Some(spread)],
    };
    let rows: Vec<usize> = labelled.iter().map(|&n| graph.rows[n]).collect();
    let Selected { head: fitted, variant, compared } =
        Head::fit_selected(head, &embeddings.gather(&rows), y, classes, None, stats, &variants)?;
    let used = variants[variant].is_some();
    if plan == Plan::Compare && compared {
        policy.dropped_at = (!used).then_some(labelled.len());
    }
    Ok((fitted, used))
}

/// The most confident label-spreading guesses among `unlabelled` nodes, as
/// `(node, class, spread confidence)`: at least `min_confidence`, at most `per_label` per
/// human label, most confident first.
pub fn pseudo_labels(
    semi: &SemiParams,
    graph: &KnnGraph,
    labelled: &[usize],
    y: &[i64],
    unlabelled: &[usize],
    classes: usize,
) -> Vec<(usize, i64, f32)> {
    let seeds: Vec<(usize, i64)> = labelled.iter().copied().zip(y.iter().copied()).collect();
    let dist = graph.spread(&seeds, classes, semi.alpha, semi.iters);
    let mut pseudo: Vec<(usize, i64, f32)> = unlabelled
        .iter()
        .copied()
        .filter_map(|n| {
            let row = &dist[n * classes..(n + 1) * classes];
            let (class, &p) = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
            (p >= semi.min_confidence).then_some((n, class as i64, p))
        })
        .collect();
    pseudo.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    pseudo.truncate(semi.per_label * labelled.len());
    pseudo
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 4-neighbour graph of two tight clusters of `per` rows each, around the first and
    /// the second axis (nodes `0..per` and `per..2 per`).
    fn two_cluster_graph(per: usize) -> KnnGraph {
        let mut e = Embeddings::new(4);
        for cluster in 0..2 {
            for i in 0..per {
                let mut row = [0.05 * (i % 3) as f32, 0.05 * (i % 2) as f32, 0.02 * i as f32, 0.0];
                row[cluster] += 1.0;
                e.push(&row);
            }
        }
        let rows: Vec<usize> = (0..2 * per).collect();
        KnnGraph::build(&e, &rows, 4)
    }

    #[test]
    fn pseudo_labels_follow_the_clusters_and_stay_in_the_pool() {
        let graph = two_cluster_graph(10);
        // One label per cluster; nodes 5..10 and 15..20 stand for held-out test items.
        let pool: Vec<usize> = (1..5).chain(11..15).collect();
        let pseudo = pseudo_labels(&SemiParams::default(), &graph, &[0, 10], &[0, 1], &pool, 2);
        assert_eq!(pseudo.len(), pool.len(), "{pseudo:?}");
        for &(node, class, p) in &pseudo {
            assert!(pool.contains(&node), "node {node} is not in the pool");
            assert_eq!(class, (node / 10) as i64, "node {node}");
            assert!(p >= 0.5);
        }
        assert!(pseudo.windows(2).all(|w| w[0].2 >= w[1].2), "most confident first");
    }

    #[test]
    fn pseudo_labels_are_capped_per_human_label() {
        let graph = two_cluster_graph(30);
        let pool: Vec<usize> = (1..30).chain(31..60).collect();
        let params = SemiParams { per_label: 3, ..SemiParams::default() };
        let pseudo = pseudo_labels(&params, &graph, &[0, 30], &[0, 1], &pool, 2);
        assert_eq!(pseudo.len(), 6);
    }

    /// 2,000 rows in six topic clusters (centres of norm 1.5 in random directions of 64
    /// dimensions, noise wider than the centres) and labels for them: by topic (three topics
    /// per class; what spreading is for), or by the sign of a 65th feature the topics share
    /// (neighbours agree on a topic, not on a label: review sentiment). The first 60 rows are
    /// labelled, the rest unlabelled.
    fn topic_pool(by_topic: bool) -> (Embeddings, Vec<i64>, KnnGraph) {
        use rand::{Rng, SeedableRng};
        let (dim, topics, center) = (64, 6, 1.5f32);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let centers: Vec<Vec<f32>> = (0..topics)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| center * x / norm).collect()
            })
            .collect();
        let mut e = Embeddings::new(dim + 1);
        let mut labels = Vec::new();
        for i in 0..2000 {
            let topic = i % topics;
            let mut row: Vec<f32> = centers[topic].iter().map(|c| c + rng.random_range(-1.0f32..1.0)).collect();
            let sign = rng.random_range(-1.0f32..1.0);
            row.push(0.5 * sign);
            e.push(&row);
            labels.push(if by_topic { (topic % 2) as i64 } else { i64::from(sign > 0.0) });
        }
        let rows: Vec<usize> = (0..2000).collect();
        let graph = KnnGraph::build(&e, &rows, GRAPH_K);
        (e, labels, graph)
    }

    /// Accuracy on the unlabelled rows of a fit with `spreading` (None: human labels only),
    /// and whether it used pseudo-labels.
    fn fit_and_score(by_topic: bool, spreading: Option<Spreading>) -> (f64, bool) {
        let m = 60;
        let (e, labels, graph) = topic_pool(by_topic);
        let labelled: Vec<usize> = (0..m).collect();
        let pool: Vec<usize> = (m..2000).collect();
        let y = &labels[..m];
        let params = HeadParams::default();
        let stats = Normalizer::fit_pool(&e, &graph.rows, &params).unwrap();
        let semi = SemiParams::default();
        let (head, used) = match spreading {
            Some(s) => {
                let mut policy = SpreadingPolicy::new(s);
                fit_with_graph(&params, &semi, &mut policy, &e, &graph, &labelled, y, &pool, 2, Some(&stats)).unwrap()
            }
            None => (Head::fit_calibrated(&params, &e.gather(&labelled), y, 2, None, Some(&stats)).unwrap(), false),
        };
        let probs = head.score(&e, Some(&pool));
        let right = pool.iter().enumerate().filter(|&(k, &r)| i64::from(probs[2 * k + 1] > probs[2 * k]) == labels[r]);
        (right.count() as f64 / pool.len() as f64, used)
    }

    #[test]
    fn auto_keeps_spreading_where_neighbours_share_a_class_and_drops_it_where_not() {
        for by_topic in [true, false] {
            let (plain, _) = fit_and_score(by_topic, None);
            let (forced, used) = fit_and_score(by_topic, Some(Spreading::Always));
            let (auto, kept) = fit_and_score(by_topic, Some(Spreading::WhereItHelps));
            let report = format!("by topic: {by_topic}; plain {plain}, always {forced}, auto {auto} (kept: {kept})");
            assert!(used, "{report}");
            if by_topic {
                // Spreading helps, and auto keeps it.
                assert!(forced > plain + 0.02 && kept && auto == forced, "{report}");
            } else {
                // Spreading costs a lot, and auto drops it.
                assert!(forced < plain - 0.1 && !kept && auto == plain, "{report}");
            }
        }
    }

    #[test]
    fn auto_repeats_a_drop_until_the_labels_grow_by_a_quarter_or_shrink_and_never_a_keep() {
        let mut policy = SpreadingPolicy::new(Spreading::WhereItHelps);
        assert_eq!(policy.plan(40), Plan::Compare, "nothing compared yet");
        policy.dropped_at = Some(40);
        assert_eq!(policy.plan(40), Plan::Plain);
        assert_eq!(policy.plan(49), Plan::Plain);
        assert_eq!(policy.plan(50), Plan::Compare, "a quarter more labels");
        assert_eq!(policy.plan(39), Plan::Compare, "labels deleted");
        assert_eq!(SpreadingPolicy::new(Spreading::Always).plan(45), Plan::Spread);
    }

    #[test]
    fn a_fit_records_a_dropping_comparison_and_the_next_fits_skip_spreading() {
        let pool: Vec<usize> = (70..2000).collect();
        let params = HeadParams::default();
        let semi = SemiParams::default();
        let fit = |by_topic: bool, policy: &mut SpreadingPolicy, m: usize| {
            let (e, labels, graph) = topic_pool(by_topic);
            let stats = Normalizer::fit_pool(&e, &graph.rows, &params).unwrap();
            let labelled: Vec<usize> = (0..m).collect();
            let y = &labels[..m];
            fit_with_graph(&params, &semi, policy, &e, &graph, &labelled, y, &pool, 2, Some(&stats)).unwrap().1
        };
        let mut policy = SpreadingPolicy::new(Spreading::WhereItHelps);
        // Four labels are too few for folds: the plain fit, and nothing recorded.
        assert!(!fit(true, &mut policy, 4));
        assert_eq!(policy.dropped_at, None);
        assert!(fit(true, &mut policy, 60), "neighbours share a class: the comparison keeps spreading");
        assert_eq!(policy.dropped_at, None, "a keep is compared again next time");
        assert!(!fit(false, &mut policy, 60), "neighbours do not share a class: dropped");
        assert_eq!(policy.dropped_at, Some(60));
        assert!(!fit(true, &mut policy, 70), "70 < 75 labels: the drop is repeated without comparing");
        assert_eq!(policy.dropped_at, Some(60));
    }
}
