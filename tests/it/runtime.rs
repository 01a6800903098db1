//! The forward pass of every architecture: chunked prefill, truncation and snapshots give the
//! logits of a plain forward; the CPU and tensor attention paths agree.

use candle_core::quantized::GgmlDType;
use candle_core::Tensor;
use pae_local::model::{CacheLayout, KvCache, LoadOptions, Logits, Model};

use crate::common::{model, temp_dir, GEMMA, SMOLLM};
use crate::fake_gguf::{write_model, Spec};

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

/// Agreement of two runs that differ in float summation order: an activation rounded to f16
/// or 8 bits can land on the other side of a step, so single logits may move, but the
/// distribution may not: mean |Δ| small and the same top-1 wherever it is clear.
fn assert_close(what: &str, a: &Tensor, b: &Tensor, scale: f32) {
    let mean = (a - b).unwrap().abs().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(mean <= 1e-2 * scale, "{what}: mean |Δ| {mean} (scale {scale})");
    let (ra, rb) = (a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
    for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
        let mut sorted = x.clone();
        sorted.sort_by(|p, q| q.total_cmp(p));
        if sorted[0] - sorted[1] > 0.05 * scale {
            assert_eq!(argmax(x), argmax(y), "{what}: top-1 at position {i}");
        }
    }
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap()
}

fn all_logits(m: &Model, cache: &mut KvCache, ids: &[u32]) -> Tensor {
    m.forward(ids, cache, Logits::All).unwrap()
}

/// Logits of `ids` fed in chunks of the given sizes.
fn chunked(m: &Model, ids: &[u32], sizes: &[usize]) -> Tensor {
    let mut cache = m.new_cache();
    let mut outs = Vec::new();
    let mut at = 0;
    for &s in sizes.iter().cycle() {
        if at >= ids.len() {
            break;
        }
        let end = (at + s).min(ids.len());
        outs.push(all_logits(m, &mut cache, &ids[at..end]));
        at = end;
    }
    Tensor::cat(&outs, 0).unwrap()
}

/// The checks every architecture must pass. With `exact`, chunks, truncation and snapshots
/// must agree to the last bit: true when every matmul runs on our own CPU kernels (Q4_1,
/// Q5_0, Q5_1), which compute each row the same way whatever the batch. candle's float and
/// repacked K-quant matmuls sum in an order that depends on the number of rows, so models
/// using them are held to [`assert_close`].
fn check_consistency(m: &Model, ids: &[u32], exact: bool) {
    let mut cache = m.new_cache();
    let whole = all_logits(m, &mut cache, ids);
    assert_eq!(cache.len(), ids.len());
    let scale = whole.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1.0);
    // Exact models agree to rounding; the others as closely as `assert_close` demands.
    let agree = |what: &str, a: &Tensor, b: &Tensor| {
        if exact {
            let d = max_diff(a, b);
            assert!(d <= 1e-5 * scale, "{what}: max diff {d}");
        } else {
            assert_close(what, a, b, scale);
        }
    };
    // Chunked prefill, any split, including one token at a time.
    for sizes in [&[1usize][..], &[3, 5], &[7, 1, 2], &[ids.len() - 1]] {
        let c = chunked(m, ids, sizes);
        agree(&format!("chunks {sizes:?}"), &whole, &c);
    }
    // Truncate and continue differently = recompute from scratch.
    let cut = ids.len() / 2;
    let other: Vec<u32> = ids[cut..].iter().rev().copied().collect();
    let mut cache = m.new_cache();
    all_logits(m, &mut cache, ids);
    cache.truncate(cut);
    let after_truncate = all_logits(m, &mut cache, &other);
    let mut fresh = m.new_cache();
    let mut seq = ids[..cut].to_vec();
    seq.extend_from_slice(&other);
    let recomputed = all_logits(m, &mut fresh, &seq).narrow(0, cut, other.len()).unwrap();
    agree("truncate", &after_truncate, &recomputed);
    // Snapshot, wander off, restore = never left.
    let mut cache = m.new_cache();
    all_logits(m, &mut cache, &ids[..cut]);
    let snap = cache.snapshot().unwrap();
    all_logits(m, &mut cache, &other);
    cache.restore(&snap).unwrap();
    assert_eq!(cache.len(), cut);
    let restored = all_logits(m, &mut cache, &ids[cut..]);
    agree("restore", &restored, &whole.narrow(0, cut, ids.len() - cut).unwrap());
    // The tensor attention (used off the CPU) agrees with the fused CPU attention.
    let mut tcache = m.new_cache_with(CacheLayout::Tensors);
    let mut tensor_path = all_logits(m, &mut tcache, &ids[..cut]);
    for &id in &ids[cut..] {
        tensor_path = Tensor::cat(&[tensor_path, all_logits(m, &mut tcache, &[id])], 0).unwrap();
    }
    assert_close("tensor path", &whole, &tensor_path, scale);
}

fn load(path: &std::path::Path) -> Model {
    Model::load(path, LoadOptions::default()).unwrap()
}

fn ids(n: usize, vocab: u32) -> Vec<u32> {
    (0..n as u32).map(|i| (i * 37 + 11) % vocab).collect()
}

#[test]
fn every_architecture_is_consistent() {
    let dir = temp_dir();
    let mut specs = vec![
        Spec::new("llama"),
        Spec { rope_freqs: true, dtype: GgmlDType::Q4K, n_embd: 256, head_dim: 64, ffn: 256, tied: true, ..Spec::new("llama") },
        Spec { dtype: GgmlDType::Q4_1, ..Spec::new("llama") },
        Spec { dtype: GgmlDType::Q4_0, ..Spec::new("qwen2") },
        Spec { dtype: GgmlDType::F16, head_dim: 32, ..Spec::new("qwen3") },
        Spec { sliding_window: Some(5), rope_dims: Some(8), dtype: GgmlDType::Q5_0, ..Spec::new("phi3") },
        Spec { n_layer: 6, n_kv: 1, sliding_window: Some(4), dtype: GgmlDType::Q6K, n_embd: 256, head_dim: 64, ffn: 256, tied: true, chat_template: None, ..Spec::new("gemma3") },
        Spec { n_layer: 6, n_kv: 1, sliding_window: Some(4), dtype: GgmlDType::Q5_1, tied: true, chat_template: None, ..Spec::new("gemma3") },
    ];
    for (i, spec) in specs.drain(..).enumerate() {
        let path = write_model(&dir.path().join(format!("m{i}.gguf")), &spec);
        let m = load(&path);
        assert_eq!(m.config().arch.as_str(), spec.arch);
        eprintln!("{} {:?}", spec.arch, spec.dtype);
        let exact = matches!(spec.dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1);
        check_consistency(&m, &ids(23, m.tokenizer().vocab_size() as u32), exact);
    }
}

#[test]
fn sliding_window_hides_old_tokens() {
    // With a window of 4, every layer local (phi3 style), the logits after a long prefix depend
    // only on the last 4 tokens... through each layer: with 2 layers, on the last 7.
    let dir = temp_dir();
    let spec = Spec { sliding_window: Some(4), ..Spec::new("phi3") };
    let m = load(&write_model(&dir.path().join("w.gguf"), &spec));
    let tail = [5u32, 6, 7, 8, 9, 10, 11];
    let mut a = vec![1u32, 2, 3, 4, 5, 6];
    a.extend_from_slice(&tail);
    let mut b = vec![200u32, 100, 50, 25, 12, 6];
    b.extend_from_slice(&tail);
    let la = m.forward(&a, &mut m.new_cache(), Logits::Last).unwrap();
    let lb = m.forward(&b, &mut m.new_cache(), Logits::Last).unwrap();
    assert!(max_diff(&la, &lb) <= 1e-5);
    // Without the window the prefix matters.
    let spec = Spec { sliding_window: None, ..spec };
    let m = load(&write_model(&dir.path().join("nw.gguf"), &spec));
    let la = m.forward(&a, &mut m.new_cache(), Logits::Last).unwrap();
    let lb = m.forward(&b, &mut m.new_cache(), Logits::Last).unwrap();
    assert!(max_diff(&la, &lb) > 1e-3);
}

#[test]
fn real_models_are_consistent() {
    for file in [SMOLLM, GEMMA] {
        let m = model(file);
        let ids = m
            .tokenizer()
            .encode("The quick brown fox jumps over the lazy dog, then naps in the sun.", true, true)
            .unwrap();
        check_consistency(&m, &ids, false);
    }
}

#[test]
fn context_limit_is_enforced() {
    let m = model(SMOLLM);
    let small = Model::load(
        m.path(),
        LoadOptions {
            context: Some(8),
            ..Default::default()
        },
    )
    .unwrap();
    let mut cache = small.new_cache();
    let err = small.forward(&[1; 9], &mut cache, Logits::Last).unwrap_err().to_string();
    assert!(err.contains("exceeds"), "{err}");
    assert_eq!(cache.len(), 0);
    let err = Model::load(m.path(), LoadOptions { context: Some(1 << 20), ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(err.contains("8192"), "{err}");
}

#[test]
fn a_role_starts_from_the_prefix_another_role_computed() {
    use pae_local::decode::{Engine, GenerateRequest};
    let m = model(SMOLLM);
    let engine = Engine::new(m.clone());
    let tok = m.tokenizer();
    let shared = tok
        .encode("You are a careful assistant. Tools: calculator, read_file, sql_query. Objective: add the two budgets.", false, false)
        .unwrap();
    assert!(shared.len() > 20, "{}", shared.len());
    let planner_prompt = [shared.clone(), tok.encode(" Write a plan.", false, false).unwrap()].concat();
    let executor_prompt = [shared.clone(), tok.encode(" Carry out step 1.", false, false).unwrap()].concat();
    let req = GenerateRequest {
        max_tokens: 8,
        ..GenerateRequest::default()
    };
    let planner = engine.shared_session();
    let executor = engine.shared_session();
    let first = engine.generate_shared(&planner, &planner_prompt, &req, &mut |_| {}).unwrap();
    assert_eq!((first.stats.reused_tokens, first.stats.adopted_tokens), (0, 0));
    let second = engine.generate_shared(&executor, &executor_prompt, &req, &mut |_| {}).unwrap();
    // The executor's session was empty: the shared part came from the planner's.
    let common = planner_prompt.iter().zip(&executor_prompt).take_while(|(a, b)| a == b).count();
    assert!(common >= shared.len() - 1, "{common}");
    assert_eq!((second.stats.reused_tokens, second.stats.adopted_tokens), (common, common));
    // And what it generates is what a session computing everything itself generates.
    let mut alone = engine.session();
    let expected = engine.generate(&mut alone, &executor_prompt, &req, &mut |_| {}).unwrap();
    assert_eq!(second.tokens, expected.tokens);
    // The planner's own session keeps its longer prefix: nothing is copied back to it.
    let again = engine.generate_shared(&planner, &planner_prompt, &req, &mut |_| {}).unwrap();
    assert_eq!((again.stats.reused_tokens, again.stats.adopted_tokens), (planner_prompt.len() - 1, 0));
    // Unshared sessions are never sources.
    let mut other = engine.session();
    let lone = engine.generate(&mut other, &executor_prompt, &req, &mut |_| {}).unwrap();
    assert_eq!(lone.stats.adopted_tokens, 0);
}
