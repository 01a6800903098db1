//! `pae-local info`: what a model file holds, from its header alone.

use clap::Args;
use pae_local::model::{GgufHeader, ModelInfo, TemplateSource, Tokenizer};
use pae_local::source;

use super::args::ModelArgs;
use super::printer;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(margs: &ModelArgs, args: InfoArgs) -> anyhow::Result<()> {
    let path = source::resolve(margs.model.as_deref())?;
    let header = GgufHeader::read_path(&path)?;
    let info = ModelInfo::from_header(&header)?;
    let tok = Tokenizer::load(&header, &path)?;
    let template = match header.str_opt("tokenizer.chat_template")? {
        Some(_) => TemplateSource::Gguf,
        None => TemplateSource::BuiltinPlain,
    };
    let c = &info.config;
    let text = |id: Option<u32>| id.map(|i| String::from_utf8_lossy(tok.token_bytes(i)).into_owned());
    let specials: Vec<serde_json::Value> = tok
        .control_tokens()
        .take(64)
        .map(|i| serde_json::json!({"id": i, "text": String::from_utf8_lossy(tok.token_bytes(i))}))
        .collect();
    let n_special = tok.control_tokens().count();
    let value = serde_json::json!({
        "path": path.display().to_string(),
        "name": c.name,
        "architecture": c.arch.as_str(),
        "file_size": info.file_size,
        "parameters": info.n_params,
        "tensors": info.n_tensors,
        "quantization": info.quant_mix,
        "context_length": c.context_length,
        "layers": c.n_layer,
        "embedding": c.n_embd,
        "heads": c.n_head,
        "kv_heads": c.n_head_kv,
        "head_dim": c.head_dim,
        "feed_forward": c.ffn_dim,
        "rope_base": c.rope_base,
        "sliding_window": c.sliding_window,
        "vocab_size": tok.vocab_size(),
        "tokenizer": info.tokenizer_model,
        "pre_tokenizer": info.tokenizer_pre,
        "bos": {"id": tok.bos(), "text": text(tok.bos()), "added": tok.adds_bos()},
        "eos": {"id": tok.eos(), "text": text(tok.eos())},
        "special_tokens": n_special,
        "special_token_list": specials,
        "chat_template": match template {
            TemplateSource::Gguf => "from the GGUF (tokenizer.chat_template)",
            TemplateSource::BuiltinPlain => "none in the GGUF: the built-in plain User:/Assistant: template is used",
        },
    });
    if args.json {
        printer::json(&value)?;
        return Ok(());
    }
    let mb = |b: u64| b as f64 / 1e6;
    let mut lines = vec![
        format!("file          {} ({:.1} MB)", path.display(), mb(info.file_size)),
        format!("name          {}", c.name.as_deref().unwrap_or("-")),
        format!("architecture  {}", c.arch),
        format!(
            "size          {:.1}M parameters, {} layers, embedding {}, {} heads ({} key/value, dim {}), feed-forward {}",
            info.n_params as f64 / 1e6,
            c.n_layer,
            c.n_embd,
            c.n_head,
            c.n_head_kv,
            c.head_dim,
            c.ffn_dim
        ),
        format!(
            "context       {} tokens{}",
            c.context_length,
            c.sliding_window.map(|w| format!(", sliding window {w}")).unwrap_or_default()
        ),
        format!("rope          base {}{}", c.rope_base, c.rope_base_local.map(|b| format!(" (local layers {b})")).unwrap_or_default()),
    ];
    let mix: Vec<String> = info
        .quant_mix
        .iter()
        .map(|q| format!("{} {} tensors {:.1} MB", q.dtype, q.tensors, mb(q.bytes)))
        .collect();
    lines.push(format!("quantization  {}", mix.join(", ")));
    lines.push(format!(
        "tokenizer     {} ({}), {} tokens, {} special",
        info.tokenizer_model,
        info.tokenizer_pre.as_deref().unwrap_or("-"),
        tok.vocab_size(),
        n_special
    ));
    let shown: Vec<String> = tok
        .control_tokens()
        .take(12)
        .map(|i| format!("{}={}", i, String::from_utf8_lossy(tok.token_bytes(i))))
        .collect();
    lines.push(format!(
        "special       {}{}",
        shown.join(" "),
        if n_special > shown.len() { format!(" … ({n_special} in all)") } else { String::new() }
    ));
    lines.push(format!(
        "bos / eos     {} / {}{}",
        text(tok.bos()).unwrap_or_else(|| "-".into()),
        text(tok.eos()).unwrap_or_else(|| "-".into()),
        if tok.adds_bos() { " (BOS added to prompts)" } else { "" }
    ));
    lines.push(format!("chat template {}", value["chat_template"].as_str().unwrap_or_default()));
    for l in lines {
        printer::line(&l)?;
    }
    Ok(())
}
