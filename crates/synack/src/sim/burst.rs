//! Bursts of loss: the Gilbert-Elliott model, a two-state Markov chain. In
//! the good state packets get through (the link's plain `loss` still
//! applies); in the bad state each is lost with `loss_in_bad`. Per packet
//! the chain first moves (good to bad with `enter_bad`, bad to good with
//! `leave_bad`), then the packet meets the state it is in.
//!
//! With `loss_in_bad` 1 the losses come in runs of mean length
//! 1/`leave_bad`, starting on average every 1/`enter_bad` packets of good
//! state; the long-run share of packets in the bad state is
//! `enter_bad / (enter_bad + leave_bad)`.

use super::Rng;

/// Settings of the Gilbert-Elliott loss model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurstLoss {
    /// Chance per packet of going from the good state to the bad one.
    pub enter_bad: f64,
    /// Chance per packet of going from the bad state back to the good one.
    pub leave_bad: f64,
    /// Chance that a packet is lost in the bad state.
    pub loss_in_bad: f64,
}

impl BurstLoss {
    /// Runs of `mean_run` lost packets (on average), starting with chance
    /// `p` at each packet: "lose about N in a row with probability p".
    pub fn runs(p: f64, mean_run: f64) -> Self {
        BurstLoss {
            enter_bad: p,
            leave_bad: 1.0 / mean_run.max(1.0),
            loss_in_bad: 1.0,
        }
    }

    /// The long-run share of packets this model loses.
    pub fn mean_loss(&self) -> f64 {
        let bad = self.enter_bad / (self.enter_bad + self.leave_bad);
        bad * self.loss_in_bad
    }
}

/// The chain's state for one direction.
#[derive(Clone, Copy, Debug, Default)]
pub struct BurstState {
    bad: bool,
}

impl BurstState {
    /// Moves the chain one packet on; true when that packet is lost.
    pub fn lose(&mut self, cfg: &BurstLoss, rng: &mut Rng) -> bool {
        self.bad = if self.bad {
            !rng.chance(cfg.leave_bad)
        } else {
            rng.chance(cfg.enter_bad)
        };
        self.bad && rng.chance(cfg.loss_in_bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over a long seeded run the loss rate and the mean length of a run of
    /// losses are what the model's parameters say, and losses do come in
    /// runs (a loss follows a loss far more often than the mean rate).
    #[test]
    fn burst_statistics_match_the_model() {
        let cfg = BurstLoss::runs(0.01, 4.0);
        let mut rng = Rng::new(42);
        let mut st = BurstState::default();
        let n = 1_000_000;
        let (mut lost, mut runs, mut after_loss, mut prev) = (0u64, 0u64, 0u64, false);
        for _ in 0..n {
            let l = st.lose(&cfg, &mut rng);
            lost += u64::from(l);
            runs += u64::from(l && !prev);
            after_loss += u64::from(l && prev);
            prev = l;
        }
        let rate = lost as f64 / n as f64;
        let want = cfg.mean_loss(); // 0.01 / 0.26 = 3.85 %
        assert!((rate - want).abs() < want * 0.05, "loss {rate} vs {want}");
        let mean_run = lost as f64 / runs as f64;
        assert!((mean_run - 4.0).abs() < 0.15, "mean run {mean_run}");
        // P(loss | loss before) = 1 - leave_bad = 0.75, against 0.04 overall.
        let cond = after_loss as f64 / lost as f64;
        assert!((cond - 0.75).abs() < 0.02, "P(loss|loss) {cond}");
    }

    /// Same seed, same losses.
    #[test]
    fn bursts_are_deterministic() {
        let cfg = BurstLoss {
            enter_bad: 0.05,
            leave_bad: 0.3,
            loss_in_bad: 0.5,
        };
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut st = BurstState::default();
            (0..1000)
                .map(|_| st.lose(&cfg, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
