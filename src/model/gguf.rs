//! Bounded GGUF parsing: metadata and tensor directory, never tensor data.
//!
//! Why not `candle_core::quantized::gguf_file::Content::read`: it trusts every length it reads
//! (a string of 2^60 bytes is allocated before the read fails), and its errors do not say where.
//! Here every length is checked against the bytes that remain in the file before anything is
//! allocated, and every error names the key, tensor or offset (quoting at most a short,
//! escaped excerpt of a name, whatever the file holds).
//!
//! Why not candle's `gguf_file::Value` either: it holds an array as one 32-byte `Value` per
//! element, so a file of 30 MB of u8 metadata costs a gigabyte. [`Value`] here holds each
//! array as one vector of its element type, and strings as one buffer, so metadata never
//! takes more memory than the bytes it was read from (nested arrays are capped apart).

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

use candle_core::quantized::GgmlDType;

use super::Error;

const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// llama.cpp refuses more dimensions than this; so do we.
const MAX_DIMS: u32 = 4;
const DEFAULT_ALIGNMENT: u64 = 32;
/// Longest metadata key and tensor name accepted (llama.cpp's tensor names stop at 64).
const MAX_NAME_BYTES: u64 = 4096;
/// Most arrays nested inside arrays, in all: each costs a few dozen bytes of memory for its
/// 12 bytes of file, the one place where memory could outgrow the file.
const MAX_NESTED_ARRAYS: u64 = 1 << 16;
/// Longest excerpt of a file's name or key quoted in an error.
const EXCERPT_CHARS: usize = 64;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// GGUF type 0, `u8`.
    U8(u8),
    /// GGUF type 1, `i8`.
    I8(i8),
    /// GGUF type 2, `u16`.
    U16(u16),
    /// GGUF type 3, `i16`.
    I16(i16),
    /// GGUF type 4, `u32`.
    U32(u32),
    /// GGUF type 5, `i32`.
    I32(i32),
    /// GGUF type 6, `f32`.
    F32(f32),
    /// GGUF type 7, `bool`.
    Bool(bool),
    /// GGUF type 8, a string (invalid UTF-8 replaced by U+FFFD).
    String(String),
    /// GGUF type 10, `u64`.
    U64(u64),
    /// GGUF type 11, `i64`.
    I64(i64),
    /// GGUF type 12, `f64`.
    F64(f64),
    /// GGUF type 9, an array of one element type.
    Array(Array),
}

/// A metadata array, held as one vector of its element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// An array of `u8`.
    U8(Vec<u8>),
    /// An array of `i8`.
    I8(Vec<i8>),
    /// An array of `u16`.
    U16(Vec<u16>),
    /// An array of `i16`.
    I16(Vec<i16>),
    /// An array of `u32`.
    U32(Vec<u32>),
    /// An array of `i32`.
    I32(Vec<i32>),
    /// An array of `f32`.
    F32(Vec<f32>),
    /// An array of `bool`.
    Bool(Vec<bool>),
    /// An array of strings, in one buffer.
    String(Strings),
    /// An array of `u64`.
    U64(Vec<u64>),
    /// An array of `i64`.
    I64(Vec<i64>),
    /// An array of `f64`.
    F64(Vec<f64>),
    /// An array of arrays (how many in all is capped).
    Array(Vec<Array>),
}

/// Strings held in one buffer: 8 bytes of bookkeeping each, as the file's length prefix.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Strings {
    text: String,
    ends: Vec<usize>,
}

impl Strings {
    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no strings.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i`, if there are that many.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..end])
    }

    /// The strings in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Strings from a list, for metadata built in memory (tests, synthetic models).
    pub(crate) fn from_strs<'a>(items: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = Self::default();
        for s in items {
            out.push(s);
        }
        out
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }
}

impl Array {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::String(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::Array(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The strings, if this is an array of strings.
    pub fn strings(&self) -> Option<&Strings> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// Every element as an i64, if this is an array of integers (u64 above i64::MAX fails).
    pub fn integers(&self) -> Option<Vec<i64>> {
        fn all<T: Copy>(v: &[T], f: impl Fn(T) -> Option<i64>) -> Option<Vec<i64>> {
            v.iter().map(|&x| f(x)).collect()
        }
        match self {
            Self::U8(v) => all(v, |x| Some(x.into())),
            Self::I8(v) => all(v, |x| Some(x.into())),
            Self::U16(v) => all(v, |x| Some(x.into())),
            Self::I16(v) => all(v, |x| Some(x.into())),
            Self::U32(v) => all(v, |x| Some(x.into())),
            Self::I32(v) => all(v, |x| Some(x.into())),
            Self::U64(v) => all(v, |x| i64::try_from(x).ok()),
            Self::I64(v) => all(v, Some),
            _ => None,
        }
    }

    /// Every element as an f32, if this is an array of floats.
    pub fn floats(&self) -> Option<Vec<f32>> {
        match self {
            Self::F32(v) => Some(v.clone()),
            Self::F64(v) => Some(v.iter().map(|&x| x as f32).collect()),
            _ => None,
        }
    }

    /// The GGUF name of the element type.
    pub fn element_type(&self) -> &'static str {
        match self {
            Self::U8(_) => "u8",
            Self::I8(_) => "i8",
            Self::U16(_) => "u16",
            Self::I16(_) => "i16",
            Self::U32(_) => "u32",
            Self::I32(_) => "i32",
            Self::F32(_) => "f32",
            Self::Bool(_) => "bool",
            Self::String(_) => "string",
            Self::U64(_) => "u64",
            Self::I64(_) => "i64",
            Self::F64(_) => "f64",
            Self::Array(_) => "array",
        }
    }
}

/// A name read from a file, for an error message: control characters escaped, and cut to a
/// few dozen characters, so that a hostile 90 MB key cannot flood a terminal.
pub fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(EXCERPT_CHARS).flat_map(char::escape_debug).collect();
    if s.chars().nth(EXCERPT_CHARS).is_some() {
        out.push_str(&format!("… ({} bytes)", s.len()));
    }
    out
}

/// One entry of the tensor directory.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Shape in candle's order (outermost first); GGUF stores it innermost first.
    pub shape: Vec<usize>,
    /// How its data is stored (float or quantized type).
    pub dtype: GgmlDType,
    /// Absolute offset of the data in the file.
    pub offset: u64,
    /// Bytes of data it holds.
    pub size_in_bytes: u64,
}

impl TensorInfo {
    /// Number of elements (the product of the shape).
    pub fn elem_count(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The parsed header of a GGUF file.
#[derive(Debug)]
pub struct GgufHeader {
    /// GGUF version, 2 or 3.
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    index: HashMap<String, usize>,
    /// The tensor directory, in file order.
    pub tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    /// Size of the whole file, in bytes.
    pub file_size: u64,
}

impl GgufHeader {
    /// Reads the header of the file at `path`.
    pub fn read_path(path: &Path) -> Result<Self, Error> {
        let meta = std::fs::metadata(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            return Err(Error::IsDirectory(path.to_path_buf()));
        }
        let file = std::fs::File::open(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::read(BufReader::new(file), meta.len())
    }

    /// Reads a header from `reader`, which holds `file_size` bytes in all.
    pub fn read<R: Read>(reader: R, file_size: u64) -> Result<Self, Error> {
        let mut r = Bounded {
            inner: reader,
            pos: 0,
            len: file_size,
            nested_arrays: 0,
        };
        let mut magic = [0u8; 4];
        r.read_exact_at(&mut magic, "magic")?;
        if magic != GGUF_MAGIC {
            return Err(Error::BadMagic(magic));
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(Error::UnsupportedVersion(version));
        }
        let tensor_count = r.u64("tensor count")?;
        let kv_count = r.u64("metadata count")?;
        // Smallest possible entries: a key/value is an 8-byte key length, a 4-byte type and a
        // 1-byte value; a tensor info is an 8-byte name length, 4-byte dims, 4-byte type and 8-byte
        // offset. Counts that could not fit in the file are rejected before any allocation.
        r.check_count(kv_count, 13, "metadata count")?;
        r.check_count(tensor_count, 24, "tensor count")?;

        let mut metadata = Vec::with_capacity(kv_count as usize);
        let mut index = HashMap::with_capacity(kv_count as usize);
        for _ in 0..kv_count {
            let key = r.name("metadata key")?;
            let shown = excerpt(&key);
            let ty = r.u32(&shown)?;
            let value = r.value(ty, &shown, 0)?;
            index.insert(key.clone(), metadata.len());
            metadata.push((key, value));
        }

        let mut raw_tensors = Vec::with_capacity(tensor_count as usize);
        for _ in 0..tensor_count {
            let name = r.name("tensor name")?;
            let shown = excerpt(&name);
            let n_dims = r.u32(&shown)?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(Error::Format(format!(
                    "tensor `{shown}` has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64(&shown)?);
            }
            let ty = r.u32(&shown)?;
            let offset = r.u64(&shown)?;
            raw_tensors.push((name, dims, ty, offset));
        }

        let alignment = match index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if *a > 0 && a.is_power_of_two() => *a as u64,
            Some(Value::U32(a)) => {
                return Err(Error::Format(format!("`general.alignment` must be a power of two, found {a}")))
            }
            Some(v) => {
                return Err(Error::Format(format!("`general.alignment` must be a u32, found {}", type_name(v))))
            }
        };
        let data_start = r.pos.div_ceil(alignment) * alignment;

        let mut tensors = Vec::with_capacity(raw_tensors.len());
        let mut tensor_index = HashMap::with_capacity(raw_tensors.len());
        for (name, dims, ty, offset) in raw_tensors {
            let shown = excerpt(&name);
            let dtype = ggml_dtype(ty).map_err(|type_name| Error::UnsupportedTensorType {
                tensor: shown.clone(),
                type_name,
            })?;
            let impossible = || Error::Format(format!("tensor `{shown}` has an impossible shape {dims:?}"));
            let mut elems: u64 = 1;
            for &d in &dims {
                elems = elems.checked_mul(d).ok_or_else(impossible)?;
            }
            let block = dtype.block_size() as u64;
            if dims[0] % block != 0 {
                return Err(Error::Format(format!(
                    "tensor `{shown}`: inner dimension {} is not a multiple of the {dtype:?} block size {block}",
                    dims[0]
                )));
            }
            let size_in_bytes = (elems / block)
                .checked_mul(dtype.type_size() as u64)
                .ok_or_else(impossible)?;
            if offset % alignment != 0 {
                return Err(Error::Format(format!(
                    "tensor `{shown}`: data offset {offset} is not aligned to {alignment}"
                )));
            }
            let start = data_start.saturating_add(offset);
            let end = start.saturating_add(size_in_bytes);
            if end > file_size {
                return Err(Error::Truncated(format!(
                    "tensor `{shown}` needs {size_in_bytes} bytes at offset {start}, the file has {file_size} bytes"
                )));
            }
            tensor_index.insert(name.clone(), tensors.len());
            tensors.push(TensorInfo {
                name,
                shape: dims.iter().rev().map(|&d| d as usize).collect(),
                dtype,
                offset: start,
                size_in_bytes,
            });
        }
        Ok(Self {
            version,
            metadata,
            index,
            tensors,
            tensor_index,
            file_size,
        })
    }

    /// A header holding `metadata` and no tensors, for unit tests of what reads metadata.
    #[cfg(test)]
    pub(crate) fn from_metadata(metadata: Vec<(String, Value)>) -> Self {
        Self::from_parts(metadata, Vec::new(), 0)
    }

    /// A header built in memory (synthetic models), not read from a file: tensor offsets are
    /// relative to a data buffer of `data_size` bytes.
    pub(crate) fn from_parts(metadata: Vec<(String, Value)>, tensors: Vec<TensorInfo>, data_size: u64) -> Self {
        let index = metadata.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
        let tensor_index = tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Self {
            version: 3,
            metadata,
            index,
            tensors,
            tensor_index,
            file_size: data_size,
        }
    }

    /// The metadata value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// The tensor named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// A required unsigned integer (any width; llama.cpp's writers vary).
    pub fn u64(&self, key: &str) -> Result<u64, Error> {
        let v = self.get(key).ok_or_else(|| Error::MissingKey(key.to_string()))?;
        value_u64(v).ok_or_else(|| Error::KeyType {
            key: key.to_string(),
            expected: "an unsigned integer",
            found: type_name(v),
        })
    }

    /// An optional unsigned integer.
    pub fn u64_opt(&self, key: &str) -> Result<Option<u64>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.u64(key).map(Some),
        }
    }

    /// An optional float (f32 or f64).
    pub fn f64_opt(&self, key: &str) -> Result<Option<f64>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::F32(f)) => Ok(Some(*f as f64)),
            Some(Value::F64(f)) => Ok(Some(*f)),
            Some(v) => Err(Error::KeyType {
                key: key.to_string(),
                expected: "a float",
                found: type_name(v),
            }),
        }
    }

    /// An optional string.
    pub fn str_opt(&self, key: &str) -> Result<Option<&str>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(Error::KeyType {
                key: key.to_string(),
                expected: "a string",
                found: type_name(v),
            }),
        }
    }

    /// An optional boolean.
    pub fn bool_opt(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(Error::KeyType {
                key: key.to_string(),
                expected: "a boolean",
                found: type_name(v),
            }),
        }
    }

    /// An optional array.
    pub fn array_opt(&self, key: &str) -> Result<Option<&Array>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(Error::KeyType {
                key: key.to_string(),
                expected: "an array",
                found: type_name(v),
            }),
        }
    }
}

/// Any unsigned or non-negative integer value as u64.
pub fn value_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::U8(x) => Some(x as u64),
        Value::U16(x) => Some(x as u64),
        Value::U32(x) => Some(x as u64),
        Value::U64(x) => Some(x),
        Value::I8(x) => u64::try_from(x).ok(),
        Value::I16(x) => u64::try_from(x).ok(),
        Value::I32(x) => u64::try_from(x).ok(),
        Value::I64(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

/// Any integer value as i64.
pub fn value_i64(v: &Value) -> Option<i64> {
    match *v {
        Value::I8(x) => Some(x as i64),
        Value::I16(x) => Some(x as i64),
        Value::I32(x) => Some(x as i64),
        Value::I64(x) => Some(x),
        _ => value_u64(v).and_then(|x| i64::try_from(x).ok()),
    }
}

/// The GGUF name of a value's type, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::U8(_) => "u8",
        Value::I8(_) => "i8",
        Value::U16(_) => "u16",
        Value::I16(_) => "i16",
        Value::U32(_) => "u32",
        Value::I32(_) => "i32",
        Value::U64(_) => "u64",
        Value::I64(_) => "i64",
        Value::F32(_) => "f32",
        Value::F64(_) => "f64",
        Value::Bool(_) => "bool",
        Value::String(_) => "string",
        Value::Array(_) => "array",
    }
}

/// Maps a ggml type id to candle's type, or names the unsupported type.
fn ggml_dtype(ty: u32) -> Result<GgmlDType, String> {
    Ok(match ty {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        9 => GgmlDType::Q8_1,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        15 => GgmlDType::Q8K,
        30 => GgmlDType::BF16,
        other => {
            let name = match other {
                4 | 5 => "Q4_2/Q4_3 (removed from ggml)",
                16 => "IQ2_XXS",
                17 => "IQ2_XS",
                18 => "IQ3_XXS",
                19 => "IQ1_S",
                20 => "IQ4_NL",
                21 => "IQ3_S",
                22 => "IQ2_S",
                23 => "IQ4_XS",
                24 => "I8",
                25 => "I16",
                26 => "I32",
                27 => "I64",
                28 => "F64",
                29 => "IQ1_M",
                34 => "TQ1_0",
                35 => "TQ2_0",
                39 => "MXFP4",
                _ => return Err(format!("unknown type id {other}")),
            };
            return Err(name.to_string());
        }
    })
}

/// A reader that knows how many bytes remain and refuses to read past them.
struct Bounded<R> {
    inner: R,
    pos: u64,
    len: u64,
    /// Arrays read inside arrays so far.
    nested_arrays: u64,
}

impl<R: Read> Bounded<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn read_exact_at(&mut self, buf: &mut [u8], what: &str) -> Result<(), Error> {
        if (buf.len() as u64) > self.remaining() {
            return Err(Error::Truncated(format!(
                "{what} needs {} bytes at offset {}, only {} remain",
                buf.len(),
                self.pos,
                self.remaining()
            )));
        }
        self.inner.read_exact(buf).map_err(|e| {
            Error::Truncated(format!("reading {what} at offset {}: {e}", self.pos))
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn check_count(&self, count: u64, min_size: u64, what: &str) -> Result<(), Error> {
        if count.saturating_mul(min_size) > self.remaining() {
            return Err(Error::Truncated(format!(
                "{what} {count} at offset {} cannot fit in the {} bytes that remain",
                self.pos,
                self.remaining()
            )));
        }
        Ok(())
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Error> {
        let mut b = [0u8; N];
        self.read_exact_at(&mut b, what)?;
        Ok(b)
    }

    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, Error> {
        let at = self.pos;
        let len = self.u64(what)?;
        self.string_body(len, at, what)
    }

    /// The `len` bytes of a string whose length prefix was read at `at`.
    fn string_body(&mut self, len: u64, at: u64, what: &str) -> Result<String, Error> {
        if len > self.remaining() {
            return Err(Error::Truncated(format!(
                "{what}: string of {len} bytes at offset {at}, only {} remain",
                self.remaining()
            )));
        }
        let mut buf = vec![0u8; len as usize];
        self.read_exact_at(&mut buf, what)?;
        // llama.cpp keeps invalid UTF-8 in token strings; replace rather than refuse.
        Ok(match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// A key or tensor name: a string of at most [`MAX_NAME_BYTES`], refused before it is read.
    fn name(&mut self, what: &str) -> Result<String, Error> {
        let at = self.pos;
        let len = self.u64(what)?;
        if len > MAX_NAME_BYTES {
            return Err(Error::Format(format!(
                "{what} of {len} bytes at offset {at}: names are limited to {MAX_NAME_BYTES} bytes"
            )));
        }
        self.string_body(len, at, what)
    }

    /// `count` fixed-size elements, read in chunks (the count was checked against the file).
    fn vec<T, const N: usize>(&mut self, count: u64, key: &str, conv: fn([u8; N]) -> T) -> Result<Vec<T>, Error> {
        let mut out = Vec::with_capacity(count as usize);
        let mut chunk = vec![0u8; N * 4096];
        let mut left = count as usize;
        while left > 0 {
            let n = left.min(4096);
            self.read_exact_at(&mut chunk[..n * N], key)?;
            out.extend(chunk[..n * N].chunks_exact(N).map(|c| conv(c.try_into().expect("chunks of N bytes"))));
            left -= n;
        }
        Ok(out)
    }

    fn array(&mut self, elem_ty: u32, count: u64, key: &str, depth: u32) -> Result<Array, Error> {
        Ok(match elem_ty {
            0 => Array::U8(self.vec(count, key, |b: [u8; 1]| b[0])?),
            1 => Array::I8(self.vec(count, key, |b: [u8; 1]| b[0] as i8)?),
            2 => Array::U16(self.vec(count, key, u16::from_le_bytes)?),
            3 => Array::I16(self.vec(count, key, i16::from_le_bytes)?),
            4 => Array::U32(self.vec(count, key, u32::from_le_bytes)?),
            5 => Array::I32(self.vec(count, key, i32::from_le_bytes)?),
            6 => Array::F32(self.vec(count, key, f32::from_le_bytes)?),
            7 => {
                let bytes = self.vec(count, key, |b: [u8; 1]| b[0])?;
                if let Some(b) = bytes.iter().find(|&&b| b > 1) {
                    return Err(Error::Format(format!("metadata `{key}`: invalid boolean byte {b}")));
                }
                Array::Bool(bytes.into_iter().map(|b| b == 1).collect())
            }
            8 => {
                let mut s = Strings::default();
                s.ends.reserve(count as usize);
                for _ in 0..count {
                    s.push(&self.string(key)?);
                }
                Array::String(s)
            }
            9 => {
                if depth > 2 {
                    return Err(Error::Format(format!("metadata `{key}`: arrays nested too deep")));
                }
                self.nested_arrays = self.nested_arrays.saturating_add(count);
                if self.nested_arrays > MAX_NESTED_ARRAYS {
                    return Err(Error::Format(format!(
                        "metadata `{key}`: more than {MAX_NESTED_ARRAYS} arrays nested in arrays"
                    )));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let ty = self.u32(key)?;
                    let n = self.u64(key)?;
                    self.check_array(ty, n, key)?;
                    items.push(self.array(ty, n, key, depth + 1)?);
                }
                Array::Array(items)
            }
            10 => Array::U64(self.vec(count, key, u64::from_le_bytes)?),
            11 => Array::I64(self.vec(count, key, i64::from_le_bytes)?),
            12 => Array::F64(self.vec(count, key, f64::from_le_bytes)?),
            t => return Err(Error::Format(format!("metadata `{key}`: unknown array element type {t}"))),
        })
    }

    /// Refuses an array whose elements could not fit in the rest of the file.
    fn check_array(&self, elem_ty: u32, count: u64, key: &str) -> Result<(), Error> {
        let min = match elem_ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 | 10..=12 => 8,
            9 => 12,
            t => return Err(Error::Format(format!("metadata `{key}`: unknown array element type {t}"))),
        };
        self.check_count(count, min, &format!("metadata `{key}`: array length"))
    }

    fn value(&mut self, ty: u32, key: &str, depth: u32) -> Result<Value, Error> {
        Ok(match ty {
            0 => Value::U8(self.bytes::<1>(key)?[0]),
            1 => Value::I8(self.bytes::<1>(key)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.bytes(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.bytes(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.bytes(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.bytes(key)?)),
            7 => match self.bytes::<1>(key)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(Error::Format(format!(
                        "metadata `{key}`: invalid boolean byte {b}"
                    )))
                }
            },
            8 => Value::String(self.string(key)?),
            9 => {
                let elem_ty = self.u32(key)?;
                let count = self.u64(key)?;
                self.check_array(elem_ty, count, key)?;
                Value::Array(self.array(elem_ty, count, key, depth)?)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.bytes(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.bytes(key)?)),
            t => {
                return Err(Error::Format(format!(
                    "metadata `{key}`: unknown value type {t} at offset {}",
                    self.pos
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Little-endian GGUF bytes, written field by field so that each test can break one.
    #[derive(Default, Clone)]
    struct Bytes(Vec<u8>);

    impl Bytes {
        fn raw(mut self, b: &[u8]) -> Self {
            self.0.extend_from_slice(b);
            self
        }
        fn u32(self, v: u32) -> Self {
            self.raw(&v.to_le_bytes())
        }
        fn u64(self, v: u64) -> Self {
            self.raw(&v.to_le_bytes())
        }
        fn str(self, s: &str) -> Self {
            self.u64(s.len() as u64).raw(s.as_bytes())
        }
        /// Magic, version 3 and the two counts.
        fn header(tensors: u64, kvs: u64) -> Self {
            Self::default().raw(b"GGUF").u32(3).u64(tensors).u64(kvs)
        }
        /// A tensor directory entry.
        fn tensor(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
            let mut b = self.str(name).u32(dims.len() as u32);
            for &d in dims {
                b = b.u64(d);
            }
            b.u32(ty).u64(offset)
        }
        /// Pads to the default alignment, then `n` bytes of tensor data.
        fn data(mut self, n: usize) -> Self {
            while !self.0.len().is_multiple_of(DEFAULT_ALIGNMENT as usize) {
                self.0.push(0);
            }
            self.0.resize(self.0.len() + n, 0);
            self
        }
    }

    fn parse(b: &[u8]) -> Result<GgufHeader, Error> {
        GgufHeader::read(b, b.len() as u64)
    }

    /// Asserts that `bytes` are refused with an error of the expected kind whose message holds
    /// `fragment` (and that parsing neither panics nor succeeds).
    fn assert_rejects(bytes: &[u8], kind: fn(&Error) -> bool, fragment: &str) -> Result<(), String> {
        match std::panic::catch_unwind(|| parse(bytes)) {
            Err(_) => Err("parser panicked".into()),
            Ok(Ok(h)) => Err(format!("accepted: {h:?}")),
            Ok(Err(e)) => {
                let msg = e.to_string();
                if !kind(&e) {
                    Err(format!("wrong error kind: {e:?}"))
                } else if !msg.contains(fragment) {
                    Err(format!("`{msg}` does not contain `{fragment}`"))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn truncated(e: &Error) -> bool {
        matches!(e, Error::Truncated(_))
    }
    fn format(e: &Error) -> bool {
        matches!(e, Error::Format(_))
    }

    #[test]
    fn well_formed_file_parses() {
        let b = Bytes::header(2, 2)
            .str("general.architecture").u32(8).str("llama")
            .str("general.alignment").u32(4).u32(32)
            .tensor("a", &[4, 2], 0, 0)
            .tensor("b", &[32], 8, 32)
            .data(32 + 34);
        let h = parse(&b.0).expect("parses");
        assert_eq!(h.version, 3);
        assert_eq!(h.get("general.architecture"), Some(&Value::String("llama".into())));
        let a = h.tensor("a").unwrap();
        assert_eq!(a.shape, vec![2, 4]);
        assert_eq!(a.size_in_bytes, 32);
        let q = h.tensor("b").unwrap();
        assert_eq!(q.dtype, GgmlDType::Q8_0);
        assert_eq!(q.size_in_bytes, 34);
        assert_eq!(q.offset, a.offset + 32);
    }

    #[test]
    fn malformed_files_are_rejected() {
        let ok_tensor = |name: &str, dims: &[u64], ty: u32, off: u64| Bytes::header(1, 0).tensor(name, dims, ty, off);
        /// Name, file bytes, expected kind, message fragment.
        type Case = (&'static str, Vec<u8>, fn(&Error) -> bool, &'static str);
        let cases: Vec<Case> = vec![
            ("empty file", vec![], truncated, "magic needs 4 bytes at offset 0"),
            ("short magic", b"GG".to_vec(), truncated, "magic"),
            ("bad magic", b"GGML\x03\0\0\0".to_vec(), |e| matches!(e, Error::BadMagic(m) if m == b"GGML"), "expected \"GGUF\""),
            ("version 1", Bytes::default().raw(b"GGUF").u32(1).u64(0).u64(0).0, |e| matches!(e, Error::UnsupportedVersion(1)), "version 1"),
            ("version 4", Bytes::default().raw(b"GGUF").u32(4).u64(0).u64(0).0, |e| matches!(e, Error::UnsupportedVersion(4)), "version 4"),
            ("header cut in tensor count", Bytes::default().raw(b"GGUF").u32(3).u32(0).0, truncated, "tensor count needs 8 bytes"),
            ("header cut in kv count", Bytes::default().raw(b"GGUF").u32(3).u64(0).0, truncated, "metadata count needs 8 bytes"),
            ("absurd tensor count", Bytes::header(u64::MAX, 0).0, truncated, "tensor count 18446744073709551615"),
            ("absurd kv count", Bytes::header(0, 1 << 40).0, truncated, "metadata count 1099511627776"),
            ("key length past end", Bytes::header(0, 1).u64(1000).u32(8).raw(b"x").0, truncated, "string of 1000 bytes"),
            ("key longer than names may be", Bytes::header(0, 1).u64(MAX_NAME_BYTES + 1).raw(&[0; 16]).0, format, "names are limited to 4096 bytes"),
            ("string value past end", Bytes::header(0, 1).str("k").u32(8).u64(1 << 50).0, truncated, "k: string of 1125899906842624 bytes"),
            ("unknown value type", Bytes::header(0, 1).str("k").u32(13).u64(0).0, format, "metadata `k`: unknown value type 13"),
            ("invalid bool", Bytes::header(0, 1).str("k").u32(7).raw(&[2]).0, format, "invalid boolean byte 2"),
            ("invalid bool in array", Bytes::header(0, 1).str("k").u32(9).u32(7).u64(2).raw(&[1, 5]).0, format, "invalid boolean byte 5"),
            ("unknown array element type", Bytes::header(0, 1).str("k").u32(9).u32(42).u64(0).0, format, "unknown array element type 42"),
            ("array longer than file", Bytes::header(0, 1).str("k").u32(9).u32(10).u64(1 << 60).0, truncated, "metadata `k`: array length"),
            ("string array element past end", Bytes::header(0, 1).str("k").u32(9).u32(8).u64(1).u64(99).0, truncated, "string of 99 bytes"),
            ("value cut short", Bytes::header(0, 1).str("k").u32(10).u32(0).0, truncated, "k needs 8 bytes"),
            ("arrays nested too deep", {
                let mut b = Bytes::header(0, 1).str("k").u32(9);
                for _ in 0..4 {
                    b = b.u32(9).u64(1);
                }
                b.u32(0).u64(0).raw(&[0; 64]).0
            }, format, "arrays nested too deep"),
            ("too many nested arrays", {
                // 70 000 empty u8 arrays: 12 bytes each, so the file holds them all.
                let mut b = Bytes::header(0, 1).str("k").u32(9).u32(9).u64(70_000);
                for _ in 0..70_000 {
                    b = b.u32(0).u64(0);
                }
                b.0
            }, format, "more than 65536 arrays nested in arrays"),
            ("alignment not a power of two", Bytes::header(0, 1).str("general.alignment").u32(4).u32(24).0, format, "power of two, found 24"),
            ("alignment zero", Bytes::header(0, 1).str("general.alignment").u32(4).u32(0).0, format, "power of two, found 0"),
            ("alignment wrong type", Bytes::header(0, 1).str("general.alignment").u32(10).u64(32).0, format, "must be a u32, found u64"),
            ("zero dimensions", ok_tensor("t", &[], 0, 0).data(0).0, format, "tensor `t` has 0 dimensions"),
            ("five dimensions", ok_tensor("t", &[1; 5], 0, 0).data(4).0, format, "tensor `t` has 5 dimensions (1 to 4 allowed)"),
            ("unknown tensor type", ok_tensor("t", &[4], 99, 0).data(16).0,
                |e| matches!(e, Error::UnsupportedTensorType { tensor, type_name } if tensor == "t" && type_name == "unknown type id 99"), "unknown type id 99"),
            ("known but unsupported tensor type", ok_tensor("t", &[256], 16, 0).data(1024).0,
                |e| matches!(e, Error::UnsupportedTensorType { type_name, .. } if type_name == "IQ2_XXS"), "IQ2_XXS, which is not supported"),
            ("shape overflows", ok_tensor("t", &[1 << 32, 1 << 32, 1 << 32], 0, 0).data(0).0, format, "impossible shape"),
            ("size overflows", ok_tensor("t", &[1 << 32, 1 << 31], 0, 0).data(0).0, format, "impossible shape"),
            ("inner dim not a block multiple", ok_tensor("t", &[33], 8, 0).data(68).0, format, "inner dimension 33 is not a multiple of the Q8_0 block size 32"),
            ("misaligned offset", ok_tensor("t", &[4], 0, 4).data(64).0, format, "data offset 4 is not aligned to 32"),
            ("data past end of file", ok_tensor("t", &[4], 0, 0).data(15).0, truncated, "tensor `t` needs 16 bytes"),
            ("data offset far past end", ok_tensor("t", &[4], 0, 1 << 40).data(16).0, truncated, "tensor `t` needs 16 bytes"),
            ("offset near u64::MAX does not wrap", ok_tensor("t", &[4], 0, u64::MAX - 31).data(16).0, truncated, "needs 16 bytes"),
            ("directory cut mid-tensor", Bytes::header(1, 0).str("t").u32(2).u64(4).raw(&[0; 12]).0, truncated, "t needs 8 bytes"),
            ("tensor name past end", Bytes::header(1, 0).u64(200).raw(&[b'x'; 30]).0, truncated, "tensor name: string of 200 bytes"),
        ];
        let failures: Vec<String> = cases
            .into_iter()
            .filter_map(|(what, bytes, kind, fragment)| {
                assert_rejects(&bytes, kind, fragment).err().map(|e| format!("{what}: {e}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn hostile_names_are_excerpted_in_errors() {
        let name = format!("{}\u{1b}[2J", "n".repeat(100));
        let b = Bytes::header(1, 0).tensor(&name, &[4], 99, 0).data(16);
        let msg = parse(&b.0).unwrap_err().to_string();
        assert!(msg.contains("… (104 bytes)"), "{msg}");
        assert!(!msg.contains('\u{1b}'), "{msg}");
    }

    #[test]
    fn overlapping_tensors_are_accepted() {
        // The parser only checks that each tensor fits in the file; weights loading does not
        // need disjoint tensors, so two names sharing bytes parse (documents current behaviour).
        let b = Bytes::header(2, 0).tensor("a", &[8], 0, 0).tensor("b", &[8], 0, 0).data(32);
        let h = parse(&b.0).expect("parses");
        assert_eq!(h.tensor("a").unwrap().offset, h.tensor("b").unwrap().offset);
    }
}
