//! Criterion targets for the same workloads as `synack bench`, at sizes
//! that suit criterion's repeated sampling: `cargo bench -p synack-bench`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use synack_bench::{bulk, churn, scaling, Silent};

const CAP: Duration = Duration::from_secs(60);

fn churn_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("churn");
    g.sample_size(10);
    for concurrent in [1usize, 100] {
        let total = 1_000u64;
        g.throughput(Throughput::Elements(total));
        g.bench_with_input(
            BenchmarkId::new("synack", concurrent),
            &concurrent,
            |b, &n| b.iter(|| churn::synack(n, total, CAP, &mut Silent)),
        );
        for tw in churn::TimeWait::BOTH {
            g.bench_with_input(
                BenchmarkId::new(format!("smoltcp-time-wait-{}", tw.name()), concurrent),
                &concurrent,
                |b, &n| b.iter(|| churn::smoltcp(n, total, tw, CAP, &mut Silent)),
            );
        }
    }
    g.finish();
}

fn bulk_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulk");
    g.sample_size(10);
    let bytes = 16u64 << 20;
    g.throughput(Throughput::Bytes(bytes));
    for buffer in [64usize << 10, 4 << 20] {
        g.bench_with_input(BenchmarkId::new("synack", buffer), &buffer, |b, &buf| {
            b.iter(|| bulk::synack(bytes, buf, CAP, &mut Silent))
        });
        g.bench_with_input(BenchmarkId::new("smoltcp", buffer), &buffer, |b, &buf| {
            b.iter(|| bulk::smoltcp(bytes, buf, CAP, &mut Silent))
        });
    }
    g.finish();
}

fn scaling_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("scaling");
    g.sample_size(10);
    for idle in [10u64, 10_000] {
        g.bench_with_input(BenchmarkId::new("synack", idle), &idle, |b, &n| {
            b.iter(|| scaling::synack(n, 1_000, &mut Silent))
        });
    }
    g.finish();
}

criterion_group!(benches, churn_bench, bulk_bench, scaling_bench);
criterion_main!(benches);
