//! Every `synack demo` scenario as an integration test: each checks its own
//! outcome (data intact, the expected state sequence on both sides).

use synack::scenarios::{Options, ALL};

fn run(name: &str) {
    let s = synack::scenarios::find(name).expect("scenario exists");
    let out = s.run(&Options::default());
    if let Err(e) = &out.verdict {
        panic!("{name}: {e}");
    }
}

macro_rules! scenario_tests {
    ($($fn:ident => $name:expr),* $(,)?) => {
        $(#[test] fn $fn() { run($name); })*
    };
}

scenario_tests! {
    basic => "basic",
    syn_lost => "syn-lost",
    synack_lost => "synack-lost",
    final_ack_lost => "final-ack-lost",
    simultaneous_open => "simultaneous-open",
    simultaneous_close => "simultaneous-close",
    half_close => "half-close",
    close_wait => "close-wait",
    refused => "refused",
    lossy_transfer => "lossy-transfer",
    zero_window => "zero-window",
}

#[test]
fn every_scenario_is_tested() {
    assert_eq!(ALL.len(), 11);
}

#[test]
fn scenarios_pass_over_many_seeds() {
    for s in ALL {
        for seed in 1..=20 {
            let opts = Options {
                seed,
                ..Options::default()
            };
            if let Err(e) = s.run(&opts).verdict {
                panic!("{} with seed {seed}: {e}", s.name);
            }
        }
    }
}
