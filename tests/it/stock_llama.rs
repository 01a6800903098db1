//! candle-transformers' own `quantized_llama`, run on the same file for comparison.

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use pae_local::model::Model;

/// Logits of the stock model for positions `from - 1 ..` of `ids`, one token at a time (it
/// returns only the last position's logits).
pub fn logits(m: &Model, ids: &[u32], from: usize) -> Vec<Vec<f32>> {
    let mut file = std::fs::File::open(m.path()).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut w = ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();
    let prompt = Tensor::new(&ids[..from], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let mut out = vec![w.forward(&prompt, 0).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap()];
    for pos in from..ids.len() - 1 {
        let x = Tensor::new(&ids[pos..pos + 1], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        out.push(w.forward(&x, pos).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap());
    }
    out
}
