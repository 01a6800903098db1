//! What a GGUF file holds, read from its header alone (no tensor data): for `info` and for
//! the load path's validation.

use serde::Serialize;

use super::config::ModelConfig;
use super::gguf::GgufHeader;
use super::Error;

/// Share of the weights stored in one quantization type.
#[derive(Debug, Clone, Serialize)]
pub struct QuantShare {
    /// ggml's name for the type (`Q4_1`, `Q6_K`, `F32` …).
    pub dtype: String,
    /// Tensors stored in this type.
    pub tensors: usize,
    /// Bytes of tensor data in this type.
    pub bytes: u64,
    /// Parameters (tensor elements) in this type.
    pub params: u64,
}

/// Summary of a model file.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The validated hyper-parameters.
    pub config: ModelConfig,
    /// Size of the file, in bytes.
    pub file_size: u64,
    /// Number of tensors.
    pub n_tensors: usize,
    /// Number of parameters (elements of all tensors).
    pub n_params: u64,
    /// Weights by storage type, most bytes first.
    pub quant_mix: Vec<QuantShare>,
    /// `tokenizer.ggml.model` (`gpt2`, `llama` …), or `none` when absent.
    pub tokenizer_model: String,
    /// `tokenizer.ggml.pre`, the pre-tokenizer's name, if the file has one.
    pub tokenizer_pre: Option<String>,
    /// Whether the file holds a chat template.
    pub has_chat_template: bool,
}

impl ModelInfo {
    /// Reads the summary from a GGUF header; fails when its configuration is invalid.
    pub fn from_header(h: &GgufHeader) -> Result<Self, Error> {
        let config = ModelConfig::from_gguf(h)?;
        let mut mix: Vec<QuantShare> = Vec::new();
        let mut n_params = 0u64;
        for t in &h.tensors {
            let name = ggml_name(t.dtype);
            let params = t.elem_count() as u64;
            n_params += params;
            match mix.iter_mut().find(|q| q.dtype == name) {
                Some(q) => {
                    q.tensors += 1;
                    q.bytes += t.size_in_bytes;
                    q.params += params;
                }
                None => mix.push(QuantShare {
                    dtype: name.to_string(),
                    tensors: 1,
                    bytes: t.size_in_bytes,
                    params,
                }),
            }
        }
        mix.sort_by_key(|m| std::cmp::Reverse(m.bytes));
        Ok(Self {
            config,
            file_size: h.file_size,
            n_tensors: h.tensors.len(),
            n_params,
            quant_mix: mix,
            tokenizer_model: h.str_opt("tokenizer.ggml.model")?.unwrap_or("none").to_string(),
            tokenizer_pre: h.str_opt("tokenizer.ggml.pre")?.map(str::to_string),
            has_chat_template: h.get("tokenizer.chat_template").is_some(),
        })
    }
}

/// ggml's spelling of a type name.
pub fn ggml_name(t: candle_core::quantized::GgmlDType) -> &'static str {
    use candle_core::quantized::GgmlDType as G;
    match t {
        G::F32 => "F32",
        G::F16 => "F16",
        G::BF16 => "BF16",
        G::Q4_0 => "Q4_0",
        G::Q4_1 => "Q4_1",
        G::Q5_0 => "Q5_0",
        G::Q5_1 => "Q5_1",
        G::Q8_0 => "Q8_0",
        G::Q8_1 => "Q8_1",
        G::Q2K => "Q2_K",
        G::Q3K => "Q3_K",
        G::Q4K => "Q4_K",
        G::Q5K => "Q5_K",
        G::Q6K => "Q6_K",
        G::Q8K => "Q8_K",
    }
}
