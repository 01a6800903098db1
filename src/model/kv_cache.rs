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
        let store = match &self.store {
            Store::Cpu(layers) => Store::Cpu(
                layers
                    .iter()
                    .map(|l| LayerCache {
                        k: l.k[..self.len * self.n_kv * self.head_dim].to_vec(),
                        v: l.v[..self.len * self.n_kv * self.value_dim].to_vec(),
                    })
                    .collect(),
            ),
            Store::Device { layers, .. } => Store::Device {
                layers: if self.len == 0 {
                    Vec::new()
                } else {
                    layers
                        .iter()
                        .map(|(k, v)| {
                            // `copy` would keep the narrowed (strided) layout over a copy of
                            // the whole capacity, which `restore`'s `slice_set` refuses.
                            Ok((k.narrow(1, 0, self.len)?.force_contiguous()?, v.narrow(1, 0, self.len)?.force_contiguous()?))
                        })
                        .collect::<Result<_>>()?
                },
                capacity: self.len,
            },
        };
        Ok(KvSnapshot { store, len: self.len })
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
