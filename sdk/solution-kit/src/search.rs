//! ML-Master's search tree (REFERENCE.md §2): a virtual root whose children are drafts; each
//! node's operator follows from its state (buggy or invalid → debug, good → improve); capacity
//! per node; UCT with a decaying exploration constant; draft locks; rewards backpropagated to
//! the root. Pure data and rules, no host calls, so it is unit-tested natively.

/// The search's constants (every one configurable; defaults are ML-Master's).
#[derive(Clone, Debug)]
pub struct Settings {
    pub max_nodes: u32,
    /// Drafts the root holds.
    pub num_drafts: u32,
    /// Children a good node takes (improvements).
    pub improve_capacity: u32,
    /// Children a buggy node takes (debug attempts).
    pub debug_capacity: u32,
    pub uct_c: f64,
    /// Exploration constant lost per step once decay starts.
    pub uct_decay: f64,
    pub uct_floor: f64,
    /// Decay starts at min(`decay_start`, `decay_start_fraction` × `max_nodes`).
    pub decay_start: u32,
    pub decay_start_fraction: f64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_nodes: 60,
            num_drafts: 5,
            improve_capacity: 3,
            debug_capacity: 1,
            uct_c: 1.414,
            uct_decay: 0.01,
            uct_floor: 0.5,
            decay_start: 45,
            decay_start_fraction: 0.3,
        }
    }
}

/// A node of the tree. The virtual root is not stored: drafts have `parent == None`.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub id: String,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub plan: String,
    pub code: String,
    pub output: String,
    pub analysis: String,
    pub metric: Option<f64>,
    pub submission: Option<String>,
    /// A bug, no metric, no submission, or an invalid submission.
    pub buggy: bool,
    pub visits: u32,
    pub total_reward: f64,
    /// Closed for expansion (a stop rule ended here).
    pub terminal: bool,
    /// Children being generated or done (counted when generation starts, so parallel workers
    /// see in-flight children).
    pub expected_children: u32,
    /// The worker exploring this draft's subtree, if any.
    pub locked_by: Option<usize>,
    /// As a trajectory's local best: children that did not beat it.
    pub failures: u32,
    /// Debug steps in a row that led here.
    pub debug_chain: u32,
    /// Its script's wall time, when it ran.
    pub seconds: Option<f64>,
}

impl Node {
    /// The node as prompts show it.
    pub fn shown(&self) -> crate::prompts::Shown<'_> {
        crate::prompts::Shown {
            id: &self.id,
            plan: &self.plan,
            code: &self.code,
            output: &self.output,
            metric: self.metric.filter(|_| !self.buggy),
            seconds: self.seconds,
        }
    }
}

/// Where a worker expands next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Root,
    Node(usize),
}

#[derive(Debug, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub root_visits: u32,
    pub root_expected: u32,
    pub lower_is_better: bool,
    pub global_best: Option<f64>,
}

impl Tree {
    pub fn better(&self, a: f64, b: f64) -> bool {
        if self.lower_is_better { a < b } else { a > b }
    }

    /// Whether `a` beats `b` by at least `margin`, in the metric's direction.
    pub fn beats_by(&self, a: f64, b: f64, margin: f64) -> bool {
        if self.lower_is_better {
            b - a >= margin
        } else {
            a - b >= margin
        }
    }

    /// Capacity left at `i`: a buggy node takes `debug-capacity` children (none once a child
    /// is good), a good one `improve-capacity`.
    pub fn can_expand(&self, i: usize, settings: &Settings) -> bool {
        let node = &self.nodes[i];
        if node.terminal {
            return false;
        }
        if node.buggy {
            let fixed = node.children.iter().any(|&c| !self.nodes[c].buggy);
            !fixed && node.expected_children < settings.debug_capacity
        } else {
            node.expected_children < settings.improve_capacity
        }
    }

    /// The exploration constant at `step`: `uct-c` until step min(`decay-start`,
    /// `decay-start-fraction` × max nodes), then `uct-decay` less per step, never under
    /// `uct-floor`.
    pub fn exploration(step: u32, settings: &Settings) -> f64 {
        let start = f64::from(settings.decay_start)
            .min(settings.decay_start_fraction * f64::from(settings.max_nodes));
        let step = f64::from(step);
        if step < start {
            settings.uct_c
        } else {
            (settings.uct_c - settings.uct_decay * (step - start)).max(settings.uct_floor)
        }
    }

    fn uct(&self, i: usize, parent_visits: u32, c: f64) -> f64 {
        let node = &self.nodes[i];
        if node.visits == 0 {
            return f64::INFINITY;
        }
        let mean = node.total_reward / f64::from(node.visits);
        mean + c * (f64::from(parent_visits.max(1)).ln() / f64::from(node.visits)).sqrt()
    }

    /// Whether the subtree under `i` has anything left to expand.
    fn open(&self, i: usize, settings: &Settings) -> bool {
        self.can_expand(i, settings)
            || self.nodes[i]
                .children
                .iter()
                .any(|&c| !self.nodes[c].terminal && self.open(c, settings))
    }

    /// Select where `worker` expands: a new draft while the root has room, else down the tree
    /// by UCT (skipping drafts locked by other workers and closed subtrees) to the first node
    /// with room. Reserves the child (`expected_children`) and locks the draft. `None` when
    /// nothing is open.
    pub fn select(&mut self, worker: usize, step: u32, settings: &Settings) -> Option<Target> {
        if self.root_expected < settings.num_drafts {
            self.root_expected += 1;
            return Some(Target::Root);
        }
        let c = Self::exploration(step, settings);
        let drafts: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].parent.is_none())
            .filter(|&i| self.nodes[i].locked_by.is_none_or(|w| w == worker))
            .filter(|&i| self.open(i, settings))
            .collect();
        let mut current = *drafts.iter().max_by(|&&a, &&b| {
            self.uct(a, self.root_visits, c)
                .total_cmp(&self.uct(b, self.root_visits, c))
        })?;
        self.nodes[current].locked_by = Some(worker);
        loop {
            if self.can_expand(current, settings) {
                self.nodes[current].expected_children += 1;
                return Some(Target::Node(current));
            }
            let visits = self.nodes[current].visits;
            let next = self.nodes[current]
                .children
                .iter()
                .copied()
                .filter(|&ch| self.open(ch, settings))
                .max_by(|&a, &b| self.uct(a, visits, c).total_cmp(&self.uct(b, visits, c)))?;
            current = next;
        }
    }

    /// Reserve a child of `i` for a worker continuing its trajectory (ignoring capacity: a
    /// trajectory continues from the child it just made).
    pub fn reserve(&mut self, i: usize) {
        self.nodes[i].expected_children += 1;
    }

    /// Add `node` as a child of `parent` (the root when `None`); returns its index.
    pub fn add(&mut self, mut node: Node, parent: Option<usize>) -> usize {
        node.parent = parent;
        node.debug_chain = match parent {
            Some(p) if self.nodes[p].buggy => self.nodes[p].debug_chain + 1,
            _ => 0,
        };
        let i = self.nodes.len();
        self.nodes.push(node);
        if let Some(p) = parent {
            self.nodes[p].children.push(i);
        }
        i
    }

    /// ML-Master's reward for node `i`: −1 when buggy, else +1, plus `bonus` when it beats the
    /// global best (which it then becomes).
    pub fn reward(&mut self, i: usize, bonus: bool) -> f64 {
        let node = &self.nodes[i];
        let Some(metric) = node.metric.filter(|_| !node.buggy) else {
            return -1.0;
        };
        let beats = self.global_best.is_none_or(|g| self.better(metric, g));
        if beats {
            self.global_best = Some(metric);
        }
        if beats && bonus { 2.0 } else { 1.0 }
    }

    /// Add `reward` to `i` and every ancestor and the root; unlock `i`'s draft.
    pub fn backpropagate(&mut self, i: usize, reward: f64) {
        let mut at = Some(i);
        let mut draft = i;
        while let Some(n) = at {
            self.nodes[n].visits += 1;
            self.nodes[n].total_reward += reward;
            draft = n;
            at = self.nodes[n].parent;
        }
        self.root_visits += 1;
        self.nodes[draft].locked_by = None;
    }

    /// The best valid node by metric.
    pub fn best(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, node) in self.nodes.iter().enumerate() {
            if let (false, Some(m)) = (node.buggy, node.metric)
                && best.is_none_or(|b| self.better(m, self.nodes[b].metric.unwrap_or(m)))
            {
                best = Some(i);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(buggy: bool, metric: Option<f64>) -> Node {
        Node {
            buggy,
            metric,
            ..Node::default()
        }
    }

    #[test]
    fn the_root_takes_its_drafts_first_then_uct_prefers_unvisited_then_rewarded_nodes() {
        let s = Settings::default();
        let mut tree = Tree::default();
        for _ in 0..s.num_drafts {
            assert_eq!(tree.select(0, 0, &s), Some(Target::Root));
        }
        let good = tree.add(node(false, Some(0.8)), None);
        let bad = tree.add(node(true, None), None);
        let r = tree.reward(good, true);
        assert_eq!(r, 2.0, "beats the (empty) global best: +1 and the bonus");
        tree.backpropagate(good, r);
        // `bad` is unvisited: +inf.
        assert_eq!(tree.select(1, 10, &s), Some(Target::Node(bad)));
        assert_eq!(tree.nodes[bad].locked_by, Some(1));
        // Its one debug slot is taken; worker 2 goes to `good`.
        assert_eq!(tree.select(2, 10, &s), Some(Target::Node(good)));
        // A locked draft is skipped by others; when nothing is open, no target.
        assert!(tree.select(3, 10, &s).is_none());
    }

    #[test]
    fn capacity_follows_node_state() {
        let s = Settings::default();
        let mut tree = Tree::default();
        let bad = tree.add(node(true, None), None);
        assert!(tree.can_expand(bad, &s));
        tree.reserve(bad);
        assert!(
            !tree.can_expand(bad, &s),
            "a buggy node takes one debug child"
        );
        let good = tree.add(node(false, Some(1.0)), None);
        for _ in 0..s.improve_capacity {
            assert!(tree.can_expand(good, &s));
            tree.reserve(good);
        }
        assert!(!tree.can_expand(good, &s));
        let fixed = tree.add(node(false, Some(0.5)), Some(bad));
        assert_eq!(tree.nodes[fixed].debug_chain, 1);
    }

    #[test]
    fn the_exploration_constant_decays_to_its_floor() {
        let s = Settings {
            max_nodes: 100,
            ..Settings::default()
        };
        // Decay starts at min(45, 0.3 × 100) = 30.
        assert_eq!(Tree::exploration(29, &s), 1.414);
        assert!((Tree::exploration(40, &s) - 1.314).abs() < 1e-9);
        assert_eq!(Tree::exploration(500, &s), 0.5);
    }

    #[test]
    fn rewards_and_margins_respect_the_direction() {
        let mut tree = Tree {
            lower_is_better: true,
            ..Tree::default()
        };
        let a = tree.add(node(false, Some(0.5)), None);
        let b = tree.add(node(false, Some(0.7)), None);
        assert_eq!(tree.reward(a, false), 1.0);
        assert_eq!(tree.global_best, Some(0.5));
        assert_eq!(
            tree.reward(b, true),
            1.0,
            "worse than the global best: no bonus"
        );
        assert!(tree.beats_by(0.4, 0.5, 1e-4) && !tree.beats_by(0.49995, 0.5, 1e-4));
        assert_eq!(tree.best(), Some(a));
    }
}
