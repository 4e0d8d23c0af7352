//! A local copy of ragsnap's HNSW distance (`max(0, 1 − dot)`) whose dot product uses explicit
//! AVX-512F or AVX2+FMA code chosen at run time, to measure how much of HNSW build and search
//! time goes into `ragsnap_index::dot`, which is compiled for the x86-64 baseline (SSE2, no FMA)
//! because the workspace sets no `target-cpu`.
//!
//! This is the change proposed for `crates/ragsnap-index/src/lib.rs` (`dot`); the benchmark
//! builds the same hnsw_rs graph with both distances and compares.
// The SIMD paths need `unsafe` (raw-pointer loads and calling `#[target_feature]` functions).
// The workspace denies unsafe code; this bench-only module is the one exception, and every
// unsafe call is guarded by the matching runtime feature check.
#![allow(unsafe_code)]

use hnsw_rs::prelude::Distance;
use std::cell::Cell;

/// Which code path [`dot`] takes on this machine.
pub fn dot_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
    }
    "portable"
}

/// Dot product with the widest SIMD the CPU has (runtime detection; the detection result is
/// cached by std, so the check costs one relaxed load per call).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked above); both slices have length n.
            return unsafe { x86::dot_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked above); both slices have length n.
            return unsafe { x86::dot_avx2(a, b) };
        }
    }
    ragsnap::index::dot(a, b)
}

/// AVX2+FMA only (to compare with AVX-512 on machines that have both).
pub fn dot_avx2_only(a: &[f32], b: &[f32]) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            let n = a.len().min(b.len());
            // SAFETY: the CPU supports AVX2 and FMA (checked above); both slices have length n.
            return Some(unsafe { x86::dot_avx2(&a[..n], &b[..n]) });
        }
    }
    let _ = (a, b);
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX-512F; `a.len() == b.len()`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i + 64 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                let x = _mm512_loadu_ps(pa.add(i + 16 * j));
                let y = _mm512_loadu_ps(pb.add(i + 16 * j));
                *s = _mm512_fmadd_ps(x, y, *s);
            }
            i += 64;
        }
        while i + 16 <= n {
            acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc[0]);
            i += 16;
        }
        if i < n {
            let mask: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as __mmask16;
            let x = _mm512_maskz_loadu_ps(mask, pa.add(i));
            let y = _mm512_maskz_loadu_ps(mask, pb.add(i));
            acc[1] = _mm512_fmadd_ps(x, y, acc[1]);
        }
        let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                *s = _mm256_fmadd_ps(x, y, *s);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let lo = _mm256_castps256_ps128(s);
        let hi = _mm256_extractf128_ps(s, 1);
        let q = _mm_add_ps(lo, hi);
        let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
        let mut sum = _mm_cvtss_f32(q);
        while i < n {
            sum += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        sum
    }
}

/// `max(0, 1 − dot)` with the runtime-dispatched [`dot`]: a drop-in for `DotDistance`. It also
/// counts its calls on the calling thread ([`counted_evals`]), which costs one thread-local
/// increment (about a nanosecond, against tens for the dot product itself).
#[derive(Clone, Copy, Debug, Default)]
pub struct FastDotDistance;

impl Distance<f32> for FastDotDistance {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        EVALS.with(|c| c.set(c.get() + 1));
        (1.0 - dot(va, vb)).max(0.0)
    }
}

thread_local! {
    static EVALS: Cell<u64> = const { Cell::new(0) };
}

/// Distance evaluations [`FastDotDistance`] made on this thread so far.
pub fn counted_evals() -> u64 {
    EVALS.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_paths_match_the_portable_dot() {
        for n in [0usize, 1, 7, 8, 15, 16, 17, 63, 64, 65, 383, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 104_729) % 89) as f32 / 89.0 - 0.5).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-4, "n={n}");
            if let Some(v) = dot_avx2_only(&a, &b) {
                assert!((f64::from(v) - want).abs() < 1e-4, "avx2 n={n}");
            }
            assert!((f64::from(ragsnap::index::dot(&a, &b)) - want).abs() < 1e-4);
        }
    }
}
