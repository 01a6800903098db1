//! Tensor data: the file mapped once, tensors copied out by name with their shape checked.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};

use super::gguf::{GgufHeader, TensorInfo};
use super::Error;

/// Progress of a model load, in bytes of tensor data.
#[derive(Debug, Clone, Copy)]
pub struct LoadProgress {
    /// Bytes of tensor data read so far.
    pub loaded_bytes: u64,
    /// Bytes of tensor data in the file, in all.
    pub total_bytes: u64,
}

/// The tensors of one GGUF file, read on demand.
pub struct Weights<'a> {
    header: &'a GgufHeader,
    map: memmap2::Mmap,
    device: Device,
    loaded: u64,
    total: u64,
    progress: &'a mut dyn FnMut(LoadProgress),
}

impl<'a> Weights<'a> {
    /// Maps the file at `path`, whose header is `header`; tensors go to `device`, and
    /// `progress` hears of each one read.
    pub fn open(
        path: &Path,
        header: &'a GgufHeader,
        device: &Device,
        progress: &'a mut dyn FnMut(LoadProgress),
    ) -> Result<Self, Error> {
        let file = File::open(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: the map is read-only and lives while we copy tensors out of it. A file changed
        // by another process during the load could give wrong weights, never unsafety in our
        // code, since every read is bounds-checked against the header-validated sizes.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        if (map.len() as u64) < header.file_size {
            return Err(Error::Truncated(format!(
                "the file shrank to {} bytes while loading",
                map.len()
            )));
        }
        Ok(Self::from_map(header, map, device, progress))
    }

    /// Tensors whose data is already in `map` (a synthetic model's, made in memory) at the
    /// offsets `header` gives.
    pub(crate) fn from_map(
        header: &'a GgufHeader,
        map: memmap2::Mmap,
        device: &Device,
        progress: &'a mut dyn FnMut(LoadProgress),
    ) -> Self {
        let total = header.tensors.iter().map(|t| t.size_in_bytes).sum();
        Self {
            header,
            map,
            device: device.clone(),
            loaded: 0,
            total,
            progress,
        }
    }

    /// The device tensors are loaded to.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&'a [usize]> {
        self.header.tensor(name).map(|t| t.shape.as_slice())
    }

    /// Whether the file has a tensor named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.header.tensor(name).is_some()
    }

    fn info(&self, name: &str, shape: &[usize]) -> Result<&'a TensorInfo, Error> {
        let info = self
            .header
            .tensor(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        if info.shape != shape {
            return Err(Error::TensorShape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: info.shape.clone(),
            });
        }
        Ok(info)
    }

    /// The tensor `name`, kept in its file type, after checking it has `shape`.
    pub fn qtensor(&mut self, name: &str, shape: &[usize]) -> Result<Arc<QTensor>, Error> {
        let info = self.info(name, shape)?;
        let start = info.offset as usize;
        let bytes = &self.map[start..start + info.size_in_bytes as usize];
        // candle reinterprets the bytes as blocks in place, which needs them aligned; a file
        // with a small `general.alignment` gets its misaligned tensors copied first.
        let storage = if (bytes.as_ptr() as usize).is_multiple_of(8) {
            QStorage::from_data(Cow::Borrowed(bytes), &self.device, info.dtype)?
        } else {
            let mut words = vec![0u64; bytes.len().div_ceil(8)];
            // SAFETY: `words` holds at least `bytes.len()` bytes and u8 has no alignment needs.
            let aligned = unsafe {
                std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, bytes.len())
            };
            aligned.copy_from_slice(bytes);
            QStorage::from_data(Cow::Borrowed(aligned), &self.device, info.dtype)?
        };
        let t = QTensor::new(storage, info.shape.as_slice())?;
        self.loaded += info.size_in_bytes;
        (self.progress)(LoadProgress {
            loaded_bytes: self.loaded,
            total_bytes: self.total,
        });
        Ok(Arc::new(t))
    }

    /// The tensor `name` as f32 (norm weights, biases: small tensors used element-wise).
    pub fn f32(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, Error> {
        let q = self.qtensor(name, shape)?;
        Ok(q.dequantize(&self.device)?.to_dtype(DType::F32)?)
    }

    /// Like [`Self::f32`] for an optional tensor.
    pub fn f32_opt(&mut self, name: &str, shape: &[usize]) -> Result<Option<Tensor>, Error> {
        if self.has(name) {
            self.f32(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The type of `name`, if present.
    pub fn dtype(&self, name: &str) -> Option<GgmlDType> {
        self.header.tensor(name).map(|t| t.dtype)
    }
}
