//! A smoke run of every benchmark at tiny sizes: each runs to the end and
//! yields sane figures. No timing is asserted (benchmarks are not tests).

use synack_bench::{bulk, churn, report, Silent, Sizes};

#[test]
fn churn_completes_every_connection_on_both_stacks() {
    let sizes = Sizes::tiny();
    let figures = churn::run(&sizes, &mut Silent);
    assert_eq!(figures.len(), churn::ROWS_PER_CASE * sizes.churn.len());
    for f in &figures {
        let note = f.note.as_deref().unwrap_or("");
        assert!(
            !note.contains("capped") && !note.contains("failed"),
            "{f:?}"
        );
        assert!(f.value.is_some_and(|v| v > 0.0), "{f:?}");
    }
    // Per case: synack (TIME-WAIT held), smoltcp dropped, smoltcp held.
    for (case, rows) in sizes.churn.iter().zip(figures.chunks(churn::ROWS_PER_CASE)) {
        let tw: Vec<(&str, String)> = rows
            .iter()
            .map(|f| {
                let (_, v) = f.params.iter().find(|(k, _)| *k == "time_wait").unwrap();
                (f.stack, v.as_str().unwrap().to_string())
            })
            .collect();
        let want = [
            ("synack", "held"),
            ("smoltcp", "dropped"),
            ("smoltcp", "held"),
        ];
        assert!(
            tw.iter()
                .zip(want)
                .all(|((s, t), (ws, wt))| *s == ws && t == wt),
            "{case:?}: {tw:?}"
        );
    }
    println!("{}", report::table(&figures));
}

#[test]
fn churn_does_the_same_work_with_time_wait_held_or_dropped() {
    use churn::TimeWait;
    let cap = Sizes::tiny().cap;
    let o = churn::synack(3, 30, cap, &mut Silent);
    assert_eq!((o.completed, o.failed), (30, 0));
    // Every TIME-WAIT ran out on the virtual clock.
    assert!(o.virtual_secs >= 10.0, "{o:?}");
    let held = churn::smoltcp(3, 30, TimeWait::Held, cap, &mut Silent);
    assert_eq!((held.completed, held.failed), (30, 0));
    assert!(held.virtual_secs >= 10.0, "{held:?}");
    // All 30 are in the set at the end: none has waited out its 10 s.
    assert_eq!(held.peak_alive, 30, "{held:?}");
    let dropped = churn::smoltcp(3, 30, TimeWait::Dropped, cap, &mut Silent);
    assert_eq!((dropped.completed, dropped.failed), (30, 0));
    // Freed as they enter TIME-WAIT: only those in progress stay in the set.
    assert!(dropped.peak_alive <= 6, "{dropped:?}");
    assert!(dropped.virtual_secs < 1.0, "{dropped:?}");
    // The same packets cross the link: each socket's last ACK went out
    // before it was removed (otherwise the server would retransmit its
    // FIN and be answered with a reset).
    assert_eq!(dropped.packets, held.packets, "{dropped:?} {held:?}");
}

#[test]
fn bulk_moves_every_byte_on_both_stacks() {
    let sizes = Sizes::tiny();
    let figures = bulk::run(&sizes, &mut Silent);
    for f in &figures {
        assert!(f.note.is_none(), "{f:?}");
        assert!(f.value.is_some_and(|v| v > 0.0), "{f:?}");
    }
    println!("{}", report::table(&figures));
}

#[test]
fn memory_settles_every_connection_on_both_stacks() {
    use synack_bench::memory::{measure, Kind};
    for stack in ["synack", "smoltcp"] {
        for kind in [Kind::Established, Kind::TimeWait] {
            let v = measure(None, stack, kind, 100);
            assert!(v.is_ok_and(f64::is_finite), "{stack} {kind:?}");
        }
    }
}

#[test]
fn scaling_times_every_round_trip_on_both_stacks() {
    use synack_bench::scaling;
    let o = scaling::synack(50, 20, &mut Silent).expect("synack");
    assert_eq!(o.round_trips, 20);
    assert!(o.segments >= 40, "{o:?}");
    let o = scaling::smoltcp(50, 20, &mut Silent).expect("smoltcp");
    assert_eq!(o.round_trips, 20);
    assert!(o.segments >= 40, "{o:?}");
}

#[test]
fn every_figure_renders_as_the_contract_says() {
    let sizes = Sizes::tiny();
    let mut figures = synack_bench::run_bench("tun", &sizes, &mut Silent, None);
    figures.extend(synack_bench::run_bench("churn", &sizes, &mut Silent, None));
    for f in &figures {
        let j = f.to_json();
        for key in ["bench", "stack", "params", "value", "unit"] {
            assert!(j.get(key).is_some(), "{key} missing in {j}");
        }
        assert!(["synack", "smoltcp", "kernel"].contains(&f.stack));
        assert!(["conn/s", "Gbit/s", "bytes/conn", "ns/segment", "req/s"].contains(&f.unit));
    }
    let table = report::table(&figures);
    assert_eq!(table.lines().count(), figures.len() + 2);
}
