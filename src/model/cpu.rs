//! What the hand-written CPU kernels (`quant_cpu`, `attention_cpu`) share: the check for the
//! instructions they are compiled with, and a pointer their worker threads write through.

/// Whether this CPU has AVX2, FMA and F16C. The kernels are compiled with
/// `#[target_feature(enable = "avx2,fma,f16c")]` while the binary targets baseline x86-64, so
/// calling them on a CPU without these would be undefined behaviour; every call checks first
/// (the standard library caches the detection).
pub(super) fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// An output buffer's pointer handed to candle's thread pool, which needs `Send + Sync`
/// closures: each work item writes its own part of the buffer, something a shared `&mut`
/// slice cannot express.
pub(super) struct SendPtr<T>(pub(super) *mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
// SAFETY: the pointer is only written at disjoint indices, one work item each: `quant_cpu`'s
// `matmul` gives every item its own (row, column) cells and its activation quantization its
// own rows, `attention_cpu`'s `attend` its own output rows, `layers`' gated activation its
// own rows; the buffer outlives the pool's
// `execute_chunked`, which returns after all items are done.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    /// The pointer, through a method so that a closure captures the whole `SendPtr`: naming
    /// the field would capture the bare `*mut T` alone, which is not `Send`.
    pub(super) fn get(self) -> *mut T {
        self.0
    }
}
