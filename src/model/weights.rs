//! Tensor data: the file mapped once, tensors copied out by name with their shape checked.
//!
//! Each tensor's pages are handed back to the kernel once its bytes are copied: a mapped page
//! that was read counts in the process's resident memory until it is unmapped, so a model
//! read whole would otherwise hold its file size twice at the end of the load (the map and
//! the copies), which had been 40% of the peak on Gemma-3-270M.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};

use super::gguf::{GgufHeader, TensorInfo};
use super::Error;

/// Bytes copied between two releases of the map's pages: large enough that the system calls
/// cost nothing, small enough that the map and the copy never overlap by much.
const CHUNK: usize = 8 << 20;

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
    /// Whether `map` is a file's, whose released pages read back from the file if touched
    /// again (an anonymous map's would read back as zeros).
    file_backed: bool,
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
        let mut this = Self::from_map(header, map, device, progress);
        this.file_backed = true;
        Ok(this)
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
            file_backed: false,
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
        let len = info.size_in_bytes as usize;
        let storage = if self.device.is_cpu() {
            self.cpu_storage(start, len, info.dtype)?
        } else {
            // The upload copies the bytes; they are released whole afterwards.
            let storage = QStorage::from_data(Cow::Borrowed(&self.map[start..start + len]), &self.device, info.dtype)?;
            self.release(start, len);
            storage
        };
        let t = QTensor::new(storage, info.shape.as_slice())?;
        self.count_loaded(info.size_in_bytes);
        Ok(Arc::new(t))
    }

    fn count_loaded(&mut self, bytes: u64) {
        self.loaded += bytes;
        (self.progress)(LoadProgress {
            loaded_bytes: self.loaded,
            total_bytes: self.total,
        });
    }

    /// Hands `len` bytes at `start` to `take` in pieces of whole `block`-byte blocks,
    /// releasing each piece of the map once taken.
    fn copy_in_chunks(&self, start: usize, len: usize, block: usize, mut take: impl FnMut(&[u8])) {
        let step = (CHUNK / block.max(1)).max(1) * block.max(1);
        let mut done = 0;
        while done < len {
            let n = step.min(len - done);
            take(&self.map[start + done..start + done + n]);
            self.release(start + done, n);
            done += n;
        }
    }

    /// Copies `len` bytes at `start` into candle's CPU storage for `dtype`, a few megabytes at
    /// a time, releasing each piece of the map once copied: `QStorage::from_data` would need
    /// the whole tensor mapped while it copies, which for a 178 MB embedding had put the map
    /// and the copy in memory together. Copying into typed blocks also aligns them, whatever
    /// the file's `general.alignment`.
    fn cpu_storage(&self, start: usize, len: usize, dtype: GgmlDType) -> Result<QStorage, Error> {
        use candle_core::quantized::k_quants::*;
        use half::{bf16, f16};
        macro_rules! blocks {
            ($($variant:ident => $block:ty),* $(,)?) => {
                match dtype {
                    $(GgmlDType::$variant => QStorage::Cpu(Box::new(self.copy_blocks::<$block>(start, len)?)),)*
                }
            };
        }
        Ok(blocks!(
            F32 => f32, F16 => f16, BF16 => bf16,
            Q4_0 => BlockQ4_0, Q4_1 => BlockQ4_1, Q5_0 => BlockQ5_0, Q5_1 => BlockQ5_1,
            Q8_0 => BlockQ8_0, Q8_1 => BlockQ8_1,
            Q2K => BlockQ2K, Q3K => BlockQ3K, Q4K => BlockQ4K, Q5K => BlockQ5K, Q6K => BlockQ6K, Q8K => BlockQ8K,
        ))
    }

    fn copy_blocks<T: candle_core::quantized::k_quants::GgmlType>(&self, start: usize, len: usize) -> Result<Vec<T>, Error> {
        let size = std::mem::size_of::<T>();
        if size != T::DTYPE.type_size() || !len.is_multiple_of(size) {
            return Err(Error::Truncated(format!(
                "{:?} tensor of {len} bytes is not a whole number of {}-byte blocks",
                T::DTYPE,
                T::DTYPE.type_size()
            )));
        }
        let count = len / size;
        let mut out: Vec<T> = Vec::with_capacity(count);
        let dst = out.as_mut_ptr() as *mut u8;
        let mut done = 0;
        self.copy_in_chunks(start, len, size, |bytes| {
            // SAFETY: `out` has room for `count * size = len` bytes, and the pieces add up to
            // `len`; the source is the map, which cannot overlap `out`.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.add(done), bytes.len()) };
            done += bytes.len();
        });
        // SAFETY: every byte of the `count` elements was written above, and each block type is
        // plain data (floats and integers) for which any bit pattern is a value.
        unsafe { out.set_len(count) };
        Ok(out)
    }

    /// Drops the map's pages over `len` bytes at `start` from this process's resident memory,
    /// once they have been copied.
    fn release(&self, start: usize, len: usize) {
        if !self.file_backed || len == 0 {
            return;
        }
        // SAFETY: the map is a read-only file map, and nothing borrows these bytes any more
        // (`QStorage::from_data` copied them). A released page, including those the rounding
        // to page boundaries takes from a neighbouring tensor, is read again from the file if
        // touched. Failure only leaves the pages resident, so it is ignored.
        #[cfg(unix)]
        let _ = unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len) };
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
