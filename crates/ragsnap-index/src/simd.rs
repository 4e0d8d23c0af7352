//! Dot product with runtime dispatch: AVX-512F or AVX2+FMA kernels when the CPU has them, the
//! portable (compiler-vectorised, baseline x86-64 = SSE2) loop otherwise.
//!
//! The workspace compiles for baseline x86-64, so without this the dot runs at SSE2 width and
//! without FMA (34 ns against 23 ns per 384-dim pair on the reference machine).
// The SIMD kernels need `unsafe` (raw-pointer loads and calling `#[target_feature]` functions).
// The workspace denies unsafe code; this module is the one exception. Every unsafe call sits
// right after the runtime check of the CPU features its kernel is compiled for.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const PORTABLE: u8 = 1;
const AVX2: u8 = 2;
const AVX512: u8 = 3;

static PATH: AtomicU8 = AtomicU8::new(UNKNOWN);

#[cold]
fn detect() -> u8 {
    let mut p = PORTABLE;
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            p = AVX512;
        } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            p = AVX2;
        }
    }
    PATH.store(p, Ordering::Relaxed);
    p
}

#[inline]
fn path() -> u8 {
    match PATH.load(Ordering::Relaxed) {
        UNKNOWN => detect(),
        p => p,
    }
}

/// Which kernel [`dot`] uses on this CPU: `"avx512f"`, `"avx2+fma"` or `"portable"`.
pub fn dot_kernel() -> &'static str {
    match path() {
        AVX512 => "avx512f",
        AVX2 => "avx2+fma",
        _ => "portable",
    }
}

/// Dot product over the common length of `a` and `b`, with the widest kernel the CPU has.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    match path() {
        #[cfg(target_arch = "x86_64")]
        AVX512 => {
            // SAFETY: `path()` returns AVX512 only after `is_x86_feature_detected!("avx512f")`
            // was true on this CPU; both slices have length n.
            unsafe { x86::dot_avx512(a, b) }
        }
        #[cfg(target_arch = "x86_64")]
        AVX2 => {
            // SAFETY: `path()` returns AVX2 only after AVX2 and FMA were detected on this CPU;
            // both slices have length n.
            unsafe { x86::dot_avx2(a, b) }
        }
        _ => dot_portable(a, b),
    }
}

/// The portable dot (eight independent accumulators, vectorised by the compiler).
#[inline]
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// AVX2+FMA kernel when the CPU has it (for tests and benchmarks on AVX-512 machines).
pub fn dot_avx2_only(a: &[f32], b: &[f32]) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            let n = a.len().min(b.len());
            // SAFETY: AVX2 and FMA were detected just above; both slices have length n.
            return Some(unsafe { x86::dot_avx2(&a[..n], &b[..n]) });
        }
    }
    let _ = (a, b);
    None
}

/// Hint the CPU to start loading the cache line at the start of `v` (no effect elsewhere).
#[inline(always)]
pub fn prefetch(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = v.as_ptr() as *const i8;
        // SAFETY: SSE is part of the x86-64 baseline; a prefetch never faults and reads
        // nothing into the program, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
        if v.len() > 16 {
            // SAFETY: as above; the address is inside `v` (length > 16).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(64)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX-512F; `a.len() == b.len()`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads below): every offset read is < n, the length of both slices;
        // the masked tail load reads only the lanes below n - i.
        while i + 64 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                let x = unsafe { _mm512_loadu_ps(pa.add(i + 16 * j)) };
                let y = unsafe { _mm512_loadu_ps(pb.add(i + 16 * j)) };
                *s = _mm512_fmadd_ps(x, y, *s);
            }
            i += 64;
        }
        while i + 16 <= n {
            let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i))) };
            acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
            i += 16;
        }
        if i < n {
            let mask: __mmask16 = ((1u32 << (n - i)) - 1) as __mmask16;
            let (x, y) = unsafe { (_mm512_maskz_loadu_ps(mask, pa.add(i)), _mm512_maskz_loadu_ps(mask, pb.add(i))) };
            acc[1] = _mm512_fmadd_ps(x, y, acc[1]);
        }
        let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads below): every offset read is < n, the length of both slices.
        while i + 32 <= n {
            for (j, s) in acc.iter_mut().enumerate() {
                let x = unsafe { _mm256_loadu_ps(pa.add(i + 8 * j)) };
                let y = unsafe { _mm256_loadu_ps(pb.add(i + 8 * j)) };
                *s = _mm256_fmadd_ps(x, y, *s);
            }
            i += 32;
        }
        while i + 8 <= n {
            let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let lo = _mm256_castps256_ps128(s);
        let hi = _mm256_extractf128_ps(s, 1);
        let q = _mm_add_ps(lo, hi);
        let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
        let mut sum = _mm_cvtss_f32(q);
        for k in i..n {
            sum += a[k] * b[k];
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vecs(n: usize) -> (Vec<f32>, Vec<f32>) {
        let a: Vec<f32> = (0..n).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
        let b: Vec<f32> = (0..n).map(|i| ((i * 104_729) % 89) as f32 / 89.0 - 0.5).collect();
        (a, b)
    }

    #[test]
    fn every_kernel_matches_a_f64_reference() {
        for n in [0usize, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 383, 384, 385, 768, 1001] {
            let (a, b) = vecs(n);
            let want: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            let tol = 1e-5 * (n as f64).max(1.0);
            assert!((f64::from(dot(&a, &b)) - want).abs() < tol, "dispatched n={n} ({})", dot_kernel());
            assert!((f64::from(dot_portable(&a, &b)) - want).abs() < tol, "portable n={n}");
            if let Some(v) = dot_avx2_only(&a, &b) {
                assert!((f64::from(v) - want).abs() < tol, "avx2 n={n}");
            }
        }
    }

    #[test]
    fn unequal_lengths_use_the_common_prefix() {
        let (a, b) = vecs(384);
        assert!((dot(&a[..383], &b) - dot_portable(&a[..383], &b[..383])).abs() < 1e-4);
        assert!((dot(&a, &b[..17]) - dot_portable(&a[..17], &b[..17])).abs() < 1e-5);
    }

    #[test]
    fn unit_vectors_agree_with_the_portable_dot_within_float_tolerance() {
        let (mut a, mut b) = vecs(384);
        for v in [&mut a, &mut b] {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
        }
        assert!((dot(&a, &b) - dot_portable(&a, &b)).abs() < 1e-6);
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
    }
}
