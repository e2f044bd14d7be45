//! The checksum loops compiled for AVX-512 and AVX2, chosen at run time.
//!
//! The loops are written with the vector intrinsics of each instruction
//! set; a copy and its sum run in one pass (each chunk is loaded once,
//! stored and summed from the register). Which of them
//! runs is decided by CPUID (through `cpufeatures`, which also checks that
//! the operating system saves the wide registers, and needs no `std`); a
//! CPU with neither gets the portable code.
//!
//! This is the one module of the crate with `unsafe`: calling a function
//! built for instructions the CPU may lack is `unsafe`, and every such call
//! sits behind the detection of exactly the features it was built with.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::{add_native, copy_and_sum_portable, sum_portable, sum_words, BLOCK, CHUNK};

cpufeatures::new!(has_avx512, "avx512f");
cpufeatures::new!(has_avx2, "avx2");

/// Inputs shorter than this skip the dispatch: the portable loop is as
/// quick for them (headers, pseudo-headers, tiny payloads).
pub(super) const MIN_LEN: usize = 128;

/// [`super::sum`] in the widest vectors the CPU has.
pub(super) fn sum(acc: u64, data: &[u8]) -> u64 {
    if has_avx512::get() {
        // SAFETY: built for avx512f, which CPUID just reported
        // present and enabled by the OS.
        unsafe { sum_avx512(acc, data) }
    } else if has_avx2::get() {
        // SAFETY: built for avx2, which CPUID just reported present and
        // enabled by the OS.
        unsafe { sum_avx2(acc, data) }
    } else {
        sum_portable(acc, data)
    }
}

/// [`super::copy_and_sum`] in the widest vectors the CPU has: one fused
/// loop that loads each chunk once, stores it and sums it.
pub(super) fn copy_and_sum(dst: &mut [u8], src: &[u8]) -> u64 {
    if has_avx512::get() {
        // SAFETY: as in `sum`.
        unsafe { copy_and_sum_avx512(dst, src) }
    } else if has_avx2::get() {
        // SAFETY: as in `sum`.
        unsafe { copy_and_sum_avx2(dst, src) }
    } else {
        copy_and_sum_portable(dst, src)
    }
}

// The loops below split each 64-bit element of a vector into its low and
// high 32-bit halves and add each half into a 64-bit accumulator lane: that
// sums the data as native-endian 32-bit words (see `sum_portable` for why
// that is a valid way to compute the checksum). A lane gains less than 2^32
// per 64-byte chunk and a block has 1024 chunks, so within a block no lane,
// nor the total of all lanes, can wrap: the block's total is exact and is
// folded in with end-around carry once, by `add_native`.

#[target_feature(enable = "avx512f")]
unsafe fn sum_avx512(mut acc: u64, data: &[u8]) -> u64 {
    let bulk = data.len() - data.len() % CHUNK;
    let (body, rest) = data.split_at(bulk);
    let low = _mm512_set1_epi64(0xffff_ffff);
    for block in body.chunks(BLOCK) {
        let (mut lo, mut hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        for chunk in block.chunks_exact(CHUNK) {
            // SAFETY: `chunk` is 64 readable bytes; the load is unaligned.
            let v = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) };
            lo = _mm512_add_epi64(lo, _mm512_and_si512(v, low));
            hi = _mm512_add_epi64(hi, _mm512_srli_epi64::<32>(v));
        }
        // Exact: see above, so a wrapping horizontal add is fine.
        let native = _mm512_reduce_add_epi64(_mm512_add_epi64(lo, hi)) as u64;
        acc = add_native(acc, native);
    }
    sum_words(acc, rest)
}

#[target_feature(enable = "avx2")]
unsafe fn sum_avx2(mut acc: u64, data: &[u8]) -> u64 {
    let bulk = data.len() - data.len() % CHUNK;
    let (body, rest) = data.split_at(bulk);
    let low = _mm256_set1_epi64x(0xffff_ffff);
    for block in body.chunks(BLOCK) {
        let mut lanes = [_mm256_setzero_si256(); 4];
        for chunk in block.chunks_exact(CHUNK) {
            let p = chunk.as_ptr();
            // SAFETY: `chunk` is 64 readable bytes; the loads are unaligned.
            let (v0, v1) = unsafe {
                (
                    _mm256_loadu_si256(p.cast()),
                    _mm256_loadu_si256(p.add(32).cast()),
                )
            };
            add_halves_256(&mut lanes, v0, v1, low);
        }
        acc = add_native(acc, total_256(&lanes));
    }
    sum_words(acc, rest)
}

#[target_feature(enable = "avx512f")]
unsafe fn copy_and_sum_avx512(dst: &mut [u8], src: &[u8]) -> u64 {
    let n = src.len().min(dst.len());
    let bulk = n - n % CHUNK;
    let (dst_body, dst_rest) = dst[..n].split_at_mut(bulk);
    let (src_body, src_rest) = src[..n].split_at(bulk);
    let low = _mm512_set1_epi64(0xffff_ffff);
    let mut acc = 0;
    for (dst_block, src_block) in dst_body.chunks_mut(BLOCK).zip(src_body.chunks(BLOCK)) {
        let (mut lo, mut hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        for (d, s) in dst_block
            .chunks_exact_mut(CHUNK)
            .zip(src_block.chunks_exact(CHUNK))
        {
            // SAFETY: `s` is 64 readable bytes and `d` 64 writable ones, of
            // distinct slices; the load and store are unaligned.
            let v = unsafe {
                let v = _mm512_loadu_si512(s.as_ptr().cast());
                store_512(d.as_mut_ptr(), v);
                v
            };
            lo = _mm512_add_epi64(lo, _mm512_and_si512(v, low));
            hi = _mm512_add_epi64(hi, _mm512_srli_epi64::<32>(v));
        }
        let native = _mm512_reduce_add_epi64(_mm512_add_epi64(lo, hi)) as u64;
        acc = add_native(acc, native);
    }
    dst_rest.copy_from_slice(src_rest);
    sum_words(acc, src_rest)
}

#[target_feature(enable = "avx2")]
unsafe fn copy_and_sum_avx2(dst: &mut [u8], src: &[u8]) -> u64 {
    let n = src.len().min(dst.len());
    let bulk = n - n % CHUNK;
    let (dst_body, dst_rest) = dst[..n].split_at_mut(bulk);
    let (src_body, src_rest) = src[..n].split_at(bulk);
    let low = _mm256_set1_epi64x(0xffff_ffff);
    let mut acc = 0;
    for (dst_block, src_block) in dst_body.chunks_mut(BLOCK).zip(src_body.chunks(BLOCK)) {
        let mut lanes = [_mm256_setzero_si256(); 4];
        for (d, s) in dst_block
            .chunks_exact_mut(CHUNK)
            .zip(src_block.chunks_exact(CHUNK))
        {
            let (sp, dp) = (s.as_ptr(), d.as_mut_ptr());
            // SAFETY: `s` is 64 readable bytes and `d` 64 writable ones, of
            // distinct slices; the loads and stores are unaligned.
            let (v0, v1) = unsafe {
                let v0 = _mm256_loadu_si256(sp.cast());
                let v1 = _mm256_loadu_si256(sp.add(32).cast());
                store_256(dp, v0);
                store_256(dp.add(32), v1);
                (v0, v1)
            };
            add_halves_256(&mut lanes, v0, v1, low);
        }
        acc = add_native(acc, total_256(&lanes));
    }
    dst_rest.copy_from_slice(src_rest);
    sum_words(acc, src_rest)
}

/// Stores 64 bytes at `dst`, unaligned, with one AVX-512 instruction.
///
/// Inline assembly because with the store intrinsic LLVM recognises the
/// copy in the loop, moves it out into a `memcpy` call and leaves a second
/// loop that reads the source again for the sum: two passes where one was
/// meant.
///
/// # Safety
///
/// `dst` must be valid for writing 64 bytes, and the CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store_512(dst: *mut u8, v: __m512i) {
    // SAFETY: the caller's; the asm writes 64 bytes at `dst` and nothing else.
    unsafe {
        core::arch::asm!(
            "vmovdqu64 zmmword ptr [{dst}], {v}",
            dst = in(reg) dst,
            v = in(zmm_reg) v,
            options(nostack, preserves_flags),
        );
    }
}

/// Stores 32 bytes at `dst`, unaligned, with one AVX instruction; as
/// [`store_512`].
///
/// # Safety
///
/// `dst` must be valid for writing 32 bytes, and the CPU must have AVX2.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn store_256(dst: *mut u8, v: __m256i) {
    // SAFETY: the caller's; the asm writes 32 bytes at `dst` and nothing else.
    unsafe {
        core::arch::asm!(
            "vmovdqu ymmword ptr [{dst}], {v}",
            dst = in(reg) dst,
            v = in(ymm_reg) v,
            options(nostack, preserves_flags),
        );
    }
}

/// Adds the low and the high 32-bit halves of the 64-bit elements of two
/// vectors to four accumulators.
#[target_feature(enable = "avx2")]
fn add_halves_256(lanes: &mut [__m256i; 4], v0: __m256i, v1: __m256i, low: __m256i) {
    lanes[0] = _mm256_add_epi64(lanes[0], _mm256_and_si256(v0, low));
    lanes[1] = _mm256_add_epi64(lanes[1], _mm256_srli_epi64::<32>(v0));
    lanes[2] = _mm256_add_epi64(lanes[2], _mm256_and_si256(v1, low));
    lanes[3] = _mm256_add_epi64(lanes[3], _mm256_srli_epi64::<32>(v1));
}

/// The plain sum of every 64-bit element of four accumulators (exact: see
/// the note above the loops).
#[target_feature(enable = "avx2")]
fn total_256(lanes: &[__m256i; 4]) -> u64 {
    let v = _mm256_add_epi64(
        _mm256_add_epi64(lanes[0], lanes[1]),
        _mm256_add_epi64(lanes[2], lanes[3]),
    );
    let mut out = [0u64; 4];
    // SAFETY: `out` is 32 writable bytes; the store is unaligned.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) };
    out.iter().sum()
}

/// Every vector variant this CPU can run, by name, for the tests to hold
/// against the reference.
#[cfg(test)]
use super::tests::{CopyFn, SumFn};

#[cfg(test)]
pub(super) fn variants() -> impl Iterator<Item = (&'static str, SumFn, CopyFn)> {
    let avx512: (&str, SumFn, CopyFn) = (
        "avx512",
        // SAFETY: only kept when the CPU has the features.
        |acc, data| unsafe { sum_avx512(acc, data) },
        |dst, src| unsafe { copy_and_sum_avx512(dst, src) },
    );
    let avx2: (&str, SumFn, CopyFn) = (
        "avx2",
        // SAFETY: only kept when the CPU has the features.
        |acc, data| unsafe { sum_avx2(acc, data) },
        |dst, src| unsafe { copy_and_sum_avx2(dst, src) },
    );
    [(has_avx512::get(), avx512), (has_avx2::get(), avx2)]
        .into_iter()
        .filter_map(|(present, v)| present.then_some(v))
}
