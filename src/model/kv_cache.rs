//! The key/value cache of one decoding session, owned by the caller rather than the layers.
//!
//! Keeping it outside the model lets one loaded model serve several sessions (planner,
//! executor, replanner) at once, and lets a session go back to any earlier length: the agent
//! reuses a prompt prefix by truncating to it instead of recomputing it.
//!
//! On CPU each layer is a pair of growable buffers `[position][kv_head][dim]` read by the fused
//! attention in `attention_cpu.rs`. On other devices each layer is a pair of tensors
//! `[kv_head, capacity, dim]` written in place, whose capacity grows by doubling up to the
//! context length, so a decode step copies one token, not the whole cache.

use candle_core::{DType, Device, Result, Tensor};

use super::attention_cpu::LayerCache;
use super::config::ModelConfig;

const INITIAL_CAPACITY: usize = 256;

#[derive(Debug, Clone)]
enum Store {
    Cpu(Vec<LayerCache>),
    Device { layers: Vec<(Tensor, Tensor)>, capacity: usize },
}

/// How a cache stores keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheLayout {
    /// Flat buffers for the fused CPU attention on CPU, tensors elsewhere.
    #[default]
    Auto,
    /// Tensors on every device, attended with tensor operations (what non-CPU devices use;
    /// on CPU it is slower, and useful to check one path against the other).
    Tensors,
}

/// Per-session attention cache.
#[derive(Debug)]
pub struct KvCache {
    store: Store,
    len: usize,
    max_len: usize,
    n_layer: usize,
    n_kv: usize,
    head_dim: usize,
    value_dim: usize,
    device: Device,
}

/// A copy of a cache's contents, to return to later with [`KvCache::restore`].
#[derive(Debug, Clone)]
pub struct KvSnapshot {
    store: Store,
    len: usize,
}

impl KvSnapshot {
    /// Number of tokens the snapshot holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the snapshot holds no tokens.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl KvCache {
    /// An empty cache for `cfg` that can hold up to `max_len` tokens.
    pub fn new(cfg: &ModelConfig, max_len: usize, device: &Device) -> Self {
        Self::with_layout(cfg, max_len, device, CacheLayout::Auto)
    }

    /// Like [`Self::new`], choosing the layout.
    pub fn with_layout(cfg: &ModelConfig, max_len: usize, device: &Device, layout: CacheLayout) -> Self {
        let store = if device.is_cpu() && layout == CacheLayout::Auto {
            Store::Cpu(vec![LayerCache::default(); cfg.n_layer])
        } else {
            Store::Device {
                layers: Vec::new(),
                capacity: 0,
            }
        };
        Self {
            store,
            len: 0,
            max_len,
            n_layer: cfg.n_layer,
            n_kv: cfg.n_head_kv,
            head_dim: cfg.head_dim,
            value_dim: cfg.value_dim,
            device: device.clone(),
        }
    }

    /// Whether layers read the flat CPU buffers (else tensors).
    pub(crate) fn is_flat(&self) -> bool {
        matches!(self.store, Store::Cpu(_))
    }

    /// Tokens currently cached (the position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most tokens this cache may hold (the session's context length).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Forgets everything after the first `len` tokens. O(1); memory is kept for reuse.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Copies the cached tokens out: O(tokens) memory copy, no recomputation.
    pub fn snapshot(&self) -> Result<KvSnapshot> {
        self.snapshot_prefix(self.len)
    }

    /// Copies out the first `len` cached tokens (all of them when `len` is larger): what
    /// another session with the same prompt prefix can [`restore`](Self::restore) instead of
    /// computing it.
    pub fn snapshot_prefix(&self, len: usize) -> Result<KvSnapshot> {
        let len = len.min(self.len);
        let store = match &self.store {
            Store::Cpu(layers) => Store::Cpu(
                layers
                    .iter()
                    .map(|l| LayerCache {
                        k: l.k[..len * self.n_kv * self.head_dim].to_vec(),
                        v: l.v[..len * self.n_kv * self.value_dim].to_vec(),
                    })
                    .collect(),
            ),
            Store::Device { layers, .. } => Store::Device {
                layers: if len == 0 {
                    Vec::new()
                } else {
                    layers
                        .iter()
                        .map(|(k, v)| {
                            // `copy` would keep the narrowed (strided) layout over a copy of
                            // the whole capacity, which `restore`'s `slice_set` refuses.
                            Ok((k.narrow(1, 0, len)?.force_contiguous()?, v.narrow(1, 0, len)?.force_contiguous()?))
                        })
                        .collect::<Result<_>>()?
                },
                capacity: len,
            },
        };
        Ok(KvSnapshot { store, len })
    }

    /// Returns the cache to the state of `snap`.
    pub fn restore(&mut self, snap: &KvSnapshot) -> Result<()> {
        if snap.len > self.max_len {
            candle_core::bail!("snapshot of {} tokens exceeds this cache's {} limit", snap.len, self.max_len)
        }
        match &snap.store {
            Store::Cpu(layers) => self.store = Store::Cpu(layers.clone()),
            Store::Device { layers: saved, .. } => {
                self.len = 0;
                if snap.len > 0 {
                    self.reserve(snap.len)?;
                    if let Store::Device { layers, .. } = &self.store {
                        for ((k, v), (sk, sv)) in layers.iter().zip(saved) {
                            k.slice_set(sk, 1, 0)?;
                            v.slice_set(sv, 1, 0)?;
                        }
                    }
                }
            }
        }
        self.len = snap.len;
        Ok(())
    }

    /// Makes room for `extra` more tokens.
    pub(crate) fn reserve(&mut self, extra: usize) -> Result<()> {
        let needed = self.len + extra;
        if needed > self.max_len {
            candle_core::bail!("{needed} tokens exceed the context of {}", self.max_len)
        }
        let (kd, vd, len) = (self.n_kv * self.head_dim, self.n_kv * self.value_dim, self.len);
        match &mut self.store {
            Store::Cpu(layers) => {
                for l in layers.iter_mut() {
                    // Drops whatever a failed forward pass may have appended past `len`.
                    l.k.truncate(len * kd);
                    l.v.truncate(len * vd);
                    l.k.reserve(extra * kd);
                    l.v.reserve(extra * vd);
                }
            }
            Store::Device { layers, capacity } => {
                if needed <= *capacity {
                    return Ok(());
                }
                let mut cap = (*capacity).max(INITIAL_CAPACITY);
                while cap < needed {
                    cap *= 2;
                }
                let cap = cap.min(self.max_len);
                let mut grown = Vec::with_capacity(self.n_layer);
                // `layers` is empty before the first growth, one pair per layer after it.
                for il in 0..self.n_layer {
                    let k = Tensor::zeros((self.n_kv, cap, self.head_dim), DType::F32, &self.device)?;
                    let v = Tensor::zeros((self.n_kv, cap, self.value_dim), DType::F32, &self.device)?;
                    if let Some((ok, ov)) = layers.get(il).filter(|_| len > 0) {
                        k.slice_set(&ok.narrow(1, 0, len)?.contiguous()?, 1, 0)?;
                        v.slice_set(&ov.narrow(1, 0, len)?.contiguous()?, 1, 0)?;
                    }
                    grown.push((k, v));
                }
                *layers = grown;
                *capacity = cap;
            }
        }
        Ok(())
    }

    /// The CPU buffers of layer `il`, holding exactly [`Self::len`] positions; `None` on other
    /// devices.
    pub(crate) fn cpu_layer(&mut self, il: usize) -> Option<&mut LayerCache> {
        let (kd, vd, len) = (self.n_kv * self.head_dim, self.n_kv * self.value_dim, self.len);
        match &mut self.store {
            Store::Cpu(layers) => {
                let l = &mut layers[il];
                l.k.truncate(len * kd);
                l.v.truncate(len * vd);
                Some(l)
            }
            Store::Device { .. } => None,
        }
    }

    /// Device path: writes the keys/values of new tokens for layer `il` at the current length
    /// and returns views of keys and values from `start` up to and including them.
    pub(crate) fn write(&mut self, il: usize, k: &Tensor, v: &Tensor, start: usize) -> Result<(Tensor, Tensor)> {
        let Store::Device { layers, .. } = &self.store else {
            candle_core::bail!("tensor write into a CPU cache")
        };
        let t = k.dim(1)?;
        let (kc, vc) = &layers[il];
        kc.slice_set(k, 1, self.len)?;
        vc.slice_set(v, 1, self.len)?;
        let end = self.len + t;
        Ok((kc.narrow(1, start, end - start)?, vc.narrow(1, start, end - start)?))
    }

    /// Commits `t` tokens once every layer holds them, so a failed forward pass leaves the
    /// cache as it was.
    pub(crate) fn advance(&mut self, t: usize) {
        self.len += t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gguf::{GgufHeader, Value};

    /// 2 layers, 2 key/value heads of 4 dimensions.
    fn cfg() -> ModelConfig {
        let meta = [
            ("general.architecture", Value::String("llama".into())),
            ("llama.block_count", Value::U32(2)),
            ("llama.embedding_length", Value::U32(16)),
            ("llama.attention.head_count", Value::U32(4)),
            ("llama.attention.head_count_kv", Value::U32(2)),
            ("llama.feed_forward_length", Value::U32(32)),
            ("llama.context_length", Value::U32(64)),
        ];
        let meta = meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        ModelConfig::from_gguf(&GgufHeader::from_metadata(meta)).unwrap()
    }

    fn caches(max_len: usize) -> [KvCache; 2] {
        let c = cfg();
        [
            KvCache::new(&c, max_len, &Device::Cpu),
            KvCache::with_layout(&c, max_len, &Device::Cpu, CacheLayout::Tensors),
        ]
    }

    /// Appends one token per value in `xs`, as a forward pass would: layer `il` stores keys
    /// `x + 100·il` and values `-x` in every head and dimension.
    fn append(cache: &mut KvCache, xs: &[f32]) -> Result<()> {
        let t = xs.len();
        cache.reserve(t)?;
        let (n_kv, hd) = (cache.n_kv, cache.head_dim);
        for il in 0..cache.n_layer {
            let key = |x: f32| x + 100.0 * il as f32;
            if let Some(l) = cache.cpu_layer(il) {
                for &x in xs {
                    l.k.extend(std::iter::repeat_n(half::f16::from_f32(key(x)), n_kv * hd));
                    l.v.extend(std::iter::repeat_n(half::f16::from_f32(-x), n_kv * hd));
                }
            } else {
                let col = |f: &dyn Fn(f32) -> f32| {
                    let data: Vec<f32> = (0..n_kv).flat_map(|_| xs.iter().flat_map(|&x| std::iter::repeat_n(f(x), hd))).collect();
                    Tensor::from_vec(data, (n_kv, t, hd), &Device::Cpu)
                };
                let start = cache.len;
                let (k, v) = cache.write(il, &col(&key)?, &col(&|x| -x)?, start)?;
                assert_eq!(k.dims(), &[n_kv, t, hd]);
                assert_eq!(v.dims(), &[n_kv, t, hd]);
            }
        }
        cache.advance(t);
        Ok(())
    }

    /// Per layer, the key and value stored at each cached position (checking that every head
    /// and dimension of a position holds the same number).
    fn contents(cache: &KvCache) -> Vec<(Vec<f32>, Vec<f32>)> {
        let snap = cache.snapshot().unwrap();
        assert_eq!(snap.len(), cache.len());
        let (n_kv, hd) = (cache.n_kv, cache.head_dim);
        let per_pos = |flat: Vec<f32>, pos_major: bool| -> Vec<f32> {
            (0..snap.len)
                .map(|p| {
                    let all: Vec<f32> = (0..n_kv)
                        .flat_map(|h| {
                            let at = if pos_major { (p * n_kv + h) * hd } else { (h * snap.len + p) * hd };
                            flat[at..at + hd].to_vec()
                        })
                        .collect();
                    assert!(all.iter().all(|&x| x == all[0]), "position {p} holds {all:?}");
                    all[0]
                })
                .collect()
        };
        match &snap.store {
            Store::Cpu(layers) => {
                let f32s = |xs: &[half::f16]| xs.iter().map(|x| x.to_f32()).collect();
                layers.iter().map(|l| (per_pos(f32s(&l.k), true), per_pos(f32s(&l.v), true))).collect()
            }
            Store::Device { layers, .. } if snap.len == 0 => vec![(vec![], vec![]); layers.len().max(cache.n_layer)],
            Store::Device { layers, .. } => layers
                .iter()
                .map(|(k, v)| {
                    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    (per_pos(flat(k), false), per_pos(flat(v), false))
                })
                .collect(),
        }
    }

    fn expect(xs: &[f32]) -> Vec<(Vec<f32>, Vec<f32>)> {
        (0..2)
            .map(|il| (xs.iter().map(|x| x + 100.0 * il as f32).collect(), xs.iter().map(|x| -x).collect()))
            .collect()
    }

    #[test]
    fn new_cache_is_empty() {
        for c in caches(16) {
            assert!(c.is_empty());
            assert_eq!((c.len(), c.max_len()), (0, 16));
            assert_eq!(contents(&c), expect(&[]));
        }
        let [flat, tensors] = caches(16);
        assert!(flat.is_flat());
        assert!(!tensors.is_flat());
    }

    #[test]
    fn append_grows_in_order() {
        for mut c in caches(16) {
            append(&mut c, &[1.0, 2.0, 3.0]).unwrap();
            append(&mut c, &[4.0]).unwrap();
            assert_eq!(c.len(), 4);
            assert!(!c.is_empty());
            assert_eq!(contents(&c), expect(&[1.0, 2.0, 3.0, 4.0]), "flat: {}", c.is_flat());
        }
    }

    #[test]
    fn device_cache_grows_past_initial_capacity() {
        let [_, mut c] = caches(1000);
        let xs: Vec<f32> = (0..300).map(|i| i as f32).collect();
        append(&mut c, &xs[..200]).unwrap();
        append(&mut c, &xs[200..]).unwrap();
        let Store::Device { capacity, .. } = &c.store else { unreachable!() };
        assert_eq!(*capacity, 512);
        assert_eq!(contents(&c), expect(&xs));
    }

    #[test]
    fn device_capacity_stops_at_max_len() {
        let [_, mut c] = caches(300);
        append(&mut c, &[0.0; 257]).unwrap();
        let Store::Device { capacity, .. } = &c.store else { unreachable!() };
        assert_eq!(*capacity, 300);
    }

    #[test]
    fn truncate_forgets_the_tail_and_appends_over_it() {
        for mut c in caches(16) {
            append(&mut c, &[1.0, 2.0, 3.0, 4.0]).unwrap();
            c.truncate(10); // longer than the cache: no change
            assert_eq!(c.len(), 4);
            c.truncate(2);
            assert_eq!(c.len(), 2);
            assert_eq!(contents(&c), expect(&[1.0, 2.0]));
            append(&mut c, &[7.0]).unwrap();
            assert_eq!(contents(&c), expect(&[1.0, 2.0, 7.0]), "flat: {}", c.is_flat());
            c.clear();
            assert!(c.is_empty());
            append(&mut c, &[9.0]).unwrap();
            assert_eq!(contents(&c), expect(&[9.0]));
        }
    }

    #[test]
    fn snapshot_and_restore() {
        for mut c in caches(16) {
            let empty = c.snapshot().unwrap();
            assert!(empty.is_empty());
            append(&mut c, &[1.0, 2.0]).unwrap();
            let snap = c.snapshot().unwrap();
            assert_eq!(snap.len(), 2);
            append(&mut c, &[3.0, 4.0, 5.0]).unwrap();
            c.restore(&snap).unwrap();
            assert_eq!(c.len(), 2);
            assert_eq!(contents(&c), expect(&[1.0, 2.0]), "flat: {}", c.is_flat());
            // The snapshot is a copy: writing after a restore does not change it.
            append(&mut c, &[6.0]).unwrap();
            c.restore(&snap).unwrap();
            assert_eq!(contents(&c), expect(&[1.0, 2.0]));
            c.restore(&empty).unwrap();
            assert!(c.is_empty());
            append(&mut c, &[8.0]).unwrap();
            assert_eq!(contents(&c), expect(&[8.0]));
        }
    }

    #[test]
    fn capacity_errors() {
        for mut c in caches(4) {
            append(&mut c, &[1.0, 2.0, 3.0]).unwrap();
            let err = c.reserve(2).unwrap_err().to_string();
            assert!(err.contains("5 tokens exceed the context of 4"), "{err}");
            assert_eq!(c.len(), 3, "a refused reservation leaves the cache as it was");
            append(&mut c, &[4.0]).unwrap();
            assert!(c.reserve(1).is_err());
            assert_eq!(contents(&c), expect(&[1.0, 2.0, 3.0, 4.0]));
        }
    }

    #[test]
    fn restore_refuses_a_snapshot_longer_than_the_cache() {
        let [mut big_flat, mut big_tensors] = caches(8);
        let [mut small_flat, mut small_tensors] = caches(2);
        for (big, small) in [(&mut big_flat, &mut small_flat), (&mut big_tensors, &mut small_tensors)] {
            append(big, &[1.0, 2.0, 3.0]).unwrap();
            let snap = big.snapshot().unwrap();
            let err = small.restore(&snap).unwrap_err().to_string();
            assert!(err.contains("snapshot of 3 tokens exceeds this cache's 2 limit"), "{err}");
            assert!(small.is_empty());
        }
    }

    #[test]
    fn a_failed_forward_pass_leaves_no_trace() {
        // A pass that appends to the flat buffers and then fails never calls `advance`;
        // the next reservation drops what it wrote.
        let [mut c, _] = caches(16);
        append(&mut c, &[1.0]).unwrap();
        c.reserve(1).unwrap();
        c.cpu_layer(0).unwrap().k.extend([half::f16::from_f32(5.0); 8]);
        append(&mut c, &[2.0]).unwrap();
        assert_eq!(contents(&c), expect(&[1.0, 2.0]));
    }
}
